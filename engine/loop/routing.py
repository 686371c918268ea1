"""The loop's routing step: which router serves a request, and one routing decision per step.

:class:`RouterFactory` builds the router a request names (the GRU's weights are loaded once, on
first use, by the injected loader); :class:`RoutingStep` holds one request's router state and
turns the routing features after each agent into a :class:`~engine.events.RouteDecision`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from engine.agents import AgentOutput, available_agents
from engine.events import RouteDecision
from engine.loop.consensus import Agreement
from engine.loop.steps import QueryError
from engine.models import AGENTS, AgentName, QueryRequest
from engine.names import fixed_agent
from engine.routing import FixedRouter, GRURouter, HybridRouter, Router, RoutingState, RulesRouter, decide

__all__ = [
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "DEFAULT_HYBRID_WEIGHT",
    "RouterFactory",
    "RoutingStep",
    "check_router",
    "features_after",
]

DEFAULT_CONFIDENCE_THRESHOLD = 0.4
"""Below this top probability the router is unsure and the loop falls back (see ``decide``)."""
DEFAULT_HYBRID_WEIGHT = 0.5
"""The GRU's weight in the hybrid router when a request does not say."""


class RouterFactory:
    """The router a request names; thread-safe.

    ``gru`` is the trained router (default: loaded by ``load_gru`` -- ``GRURouter.load`` when
    None -- on the first ``gru`` or ``hybrid`` request; it raises ``RouterUnavailable`` when there
    are no weights, and is asked again by the next such request).
    """

    def __init__(self, gru: GRURouter | None = None, load_gru: Callable[[], GRURouter] | None = None) -> None:
        self._gru = gru
        self._load_gru = load_gru
        self._lock = threading.Lock()

    def gru(self) -> GRURouter:
        """The trained GRU router (loaded once)."""
        with self._lock:
            if self._gru is None:
                self._gru = self._load_gru() if self._load_gru is not None else GRURouter.load()
            return self._gru

    def __call__(self, request: QueryRequest) -> Router:
        """A router for ``request`` (``rules``, ``gru``, ``hybrid`` with its weight, or a fixed
        single-agent baseline ``fixed:<agent>``)."""
        agent = fixed_agent(request.router)
        if agent is not None:
            return FixedRouter(agent)
        if request.router == "rules":
            return RulesRouter()
        gru = self.gru()
        if request.router == "gru":
            return gru
        weight = request.overrides.hybrid_weight
        return HybridRouter(RulesRouter(), gru, DEFAULT_HYBRID_WEIGHT if weight is None else weight)


def check_router(request: QueryRequest, task_name: str) -> None:
    """Reject a fixed router whose agent cannot run on this request (it has no fallback).

    Raises:
        QueryError: ``fixed:mcts`` on freeform text (MCTS needs moves) or with ``use_mcts`` off.
    """
    agent = fixed_agent(request.router)
    if agent is None:
        return
    if agent not in available_agents(task_name):
        raise QueryError(f"router {request.router}: {agent} cannot work on {task_name} queries")
    if agent == "mcts" and not request.use_mcts:
        raise QueryError(f"router {request.router} needs MCTS, but the request turns MCTS off (use_mcts)")


class RoutingStep:
    """One request's routing: the router's running state and the agents it may choose.

    ``usable`` are the task's agents (MCTS only when the request allows it), in ``AGENTS`` order;
    ``threshold`` is the confidence below which ``decide`` falls back.  A fixed router
    (``fixed``: its agent) is not asked to decide: its agent runs, with reason ``fixed: ...``, and
    the loop stops after that one step.
    """

    def __init__(self, router: Router, request: QueryRequest, task_name: str) -> None:
        self.router = router
        available = available_agents(task_name)
        self._mask = np.array([a in available and (a != "mcts" or request.use_mcts) for a in AGENTS])
        self.usable: tuple[AgentName, ...] = tuple(a for a, m in zip(AGENTS, self._mask, strict=True) if m)
        threshold = request.overrides.confidence_threshold
        self.threshold = DEFAULT_CONFIDENCE_THRESHOLD if threshold is None else threshold
        self._state: Any = router.start()
        self.fixed: AgentName | None = router.agent if isinstance(router, FixedRouter) else None

    @property
    def name(self) -> str:
        """The router's name, as recorded (``rules``, ``gru``, ``hybrid``)."""
        return self.router.name

    def decide(self, index: int, features: RoutingState, ran: set[str]) -> RouteDecision:
        """Step the router on ``features`` and pick the next agent among those not in ``ran``."""
        x = features.vector()
        probs, self._state = self.router.step(x, self._mask, self._state)
        if self.fixed is not None:
            agent: AgentName = self.fixed
            reason = f"fixed: the {self.router.name} baseline runs {agent} once and answers with its output"
        else:
            agent, reason = decide(probs, self.usable, ran, self.threshold)
        prob_map: dict[str, float] = {a: float(p) for a, p in zip(AGENTS, probs, strict=True)}
        return RouteDecision(index, self.router.name, tuple(float(v) for v in x), prob_map, agent, reason)


def features_after(
    outputs: Mapping[str, AgentOutput],
    agreement: Agreement,
    mcts_value_01: float,
    last_agent: str,
    index: int,
    query_length: int,
    has_rag_context: bool,
) -> RoutingState:
    """The routing features after step ``index`` ran ``last_agent``: the agents' confidences so
    far, the MCTS root value scaled to 0..1, the agreement score and where the loop is."""
    return RoutingState(
        hrm_confidence=outputs["hrm"].confidence if "hrm" in outputs else 0.0,
        trm_confidence=outputs["trm"].confidence if "trm" in outputs else 0.0,
        mcts_value=mcts_value_01,
        consensus_score=agreement.score,
        last_agent=last_agent,
        iteration=index + 1,
        query_length=query_length,
        has_rag_context=has_rag_context,
    )
