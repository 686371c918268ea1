"""The query loop's parts, each with its collaborators passed in (``engine.pipeline.Engine``
runs them): routing (:mod:`.routing`), agent steps (:mod:`.steps`), agreement and the stop rule
(:mod:`.consensus`), the final confidence rule (:mod:`.confidence`), fault injection
(:mod:`.injection`), telemetry recording
(:mod:`.recording`) and the result (:mod:`.synthesis`)."""

from __future__ import annotations

from engine.loop.confidence import (
    RULE,
    ConfidenceExplanation,
    final_confidence,
    is_independent,
    step_role,
)
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
    "RULE",
    "Agreement",
    "CallLog",
    "ConfidenceExplanation",
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
    "final_confidence",
    "is_independent",
    "mcts_summary",
    "parse_position",
    "run_agent",
    "step_role",
    "stop_decision",
    "synthesise",
]
