"""What every agent receives and returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from engine.llm import LLMProvider
from engine.mcts import SearchConfig, SearchResult, TreeSnapshot
from engine.models import PassageRef
from engine.tasks import Task

__all__ = ["AgentContext", "AgentOutput", "AgentUnavailable", "AnswerKind"]

AnswerKind = Literal["move", "expression", "no_solution", "extractive", "generated", "none"]


@dataclass(frozen=True, slots=True)
class AgentContext:
    """The state of a request as an agent sees it.

    ``task`` is None for freeform text.  ``candidate`` is the leading answer so
    far (what TRM refines).  ``seed`` is this agent's own seed, derived from the
    request's.  ``on_snapshot`` receives MCTS snapshots for live views.
    """

    task: Task | None
    state: Any
    query: str
    candidate: str | None
    passages: tuple[PassageRef, ...]
    seed: int
    mcts: SearchConfig
    llm: LLMProvider
    on_snapshot: Callable[[TreeSnapshot], None] | None = None


@dataclass(frozen=True, slots=True)
class AgentOutput:
    """An agent's answer and how much to trust it.

    ``confidence`` is grounded in what the agent did: 1.0 only when ``exact``
    (checked by the task's rules or proven by exhaustive search), otherwise a
    share it measured (surviving candidates, visit share, refuted
    alternatives, question-term support).  ``evidence`` says which.
    ``refined_from`` is the candidate answer the agent started from and refined (TRM), None
    when it worked without being given one: an output equal to it, not ``exact``, repeats the
    candidate and is not independent agreement (see ``engine.loop.confidence``).
    """

    answer: str | None
    confidence: float
    evidence: str
    kind: AnswerKind
    exact: bool = False
    search: SearchResult | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    refined_from: str | None = None


class AgentUnavailable(Exception):
    """Raised when an agent has nothing to offer for this kind of task."""
