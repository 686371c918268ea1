"""Events ``Engine.stream`` yields, in order, while a query runs."""

from __future__ import annotations

from dataclasses import dataclass

from engine.mcts import TreeSnapshot
from engine.models import AgentName, PassageRef, QueryResult

__all__ = [
    "AgentFinished",
    "AgentStarted",
    "Consensus",
    "Event",
    "Final",
    "MctsSnapshot",
    "Retrieved",
    "RouteDecision",
]


@dataclass(frozen=True, slots=True)
class Retrieved:
    """Passages retrieved for the query (empty when RAG is off or not used)."""

    passages: tuple[PassageRef, ...]


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """The meta-controller's choice for one step."""

    step: int
    router: str
    features: tuple[float, ...]
    probabilities: dict[str, float]
    chosen: AgentName
    reason: str


@dataclass(frozen=True, slots=True)
class AgentStarted:
    step: int
    agent: str


@dataclass(frozen=True, slots=True)
class MctsSnapshot:
    """The MCTS agent's tree, every few iterations while it searches."""

    step: int
    snapshot: TreeSnapshot


@dataclass(frozen=True, slots=True)
class AgentFinished:
    step: int
    agent: str
    answer: str | None
    confidence: float
    evidence: str
    latency_ms: float
    exact: bool = False
    refined_from: str | None = None


@dataclass(frozen=True, slots=True)
class Consensus:
    """Agreement after a step and whether the loop stops.

    ``score`` is the leading answer's share of the independent answers' confidence, None while
    fewer than two independent answers exist (nothing to agree with yet)."""

    step: int
    score: float | None
    leading_answer: str | None
    stop: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Final:
    result: QueryResult


Event = Retrieved | RouteDecision | AgentStarted | MctsSnapshot | AgentFinished | Consensus | Final
