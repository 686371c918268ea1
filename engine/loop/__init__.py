"""The query loop's parts, each with its collaborators passed in (``engine.pipeline.Engine``
runs them): routing (:mod:`.routing`), agent steps (:mod:`.steps`), agreement and the stop rule
(:mod:`.consensus`), fault injection (:mod:`.injection`), telemetry recording
(:mod:`.recording`) and the result (:mod:`.synthesis`)."""

from __future__ import annotations

from engine.loop.consensus import DEFAULT_CONSENSUS_THRESHOLD, Agreement, agreement, stop_decision
from engine.loop.injection import FailingProvider, FaultInjector
from engine.loop.recording import CallLog, Progress, RequestRecorder, RunInfo
from engine.loop.routing import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_HYBRID_WEIGHT,
    RouterFactory,
    RoutingStep,
    check_router,
    features_after,
)
from engine.loop.steps import Position, QueryError, agent_seeds, mcts_summary, parse_position, run_agent
from engine.loop.synthesis import Outcome, synthesise

__all__ = [
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "DEFAULT_CONSENSUS_THRESHOLD",
    "DEFAULT_HYBRID_WEIGHT",
    "Agreement",
    "CallLog",
    "FailingProvider",
    "FaultInjector",
    "Outcome",
    "Position",
    "Progress",
    "QueryError",
    "RequestRecorder",
    "RouterFactory",
    "RoutingStep",
    "RunInfo",
    "agent_seeds",
    "agreement",
    "check_router",
    "features_after",
    "mcts_summary",
    "parse_position",
    "run_agent",
    "stop_decision",
    "synthesise",
]
