"""Typed values at the engine's boundary: the request in, the result out."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.names import AGENTS as AGENTS  # re-exported: callers import it from engine.models
from engine.names import AgentName, ProviderName, RouterName, TaskName

__all__ = [
    "AGENTS",
    "AgentName",
    "Overrides",
    "PassageRef",
    "ProviderName",
    "QueryRequest",
    "QueryResult",
    "RouterName",
    "StepRecord",
    "TaskName",
    "VerdictLabel",
    "strip_task_prefix",
]

VerdictLabel = Literal["correct", "incorrect", "unknown"]

_PREFIXES = (
    (re.compile(r"^\s*(?:24|game24|game of 24)\s*:", re.I), "game24"),
    (re.compile(r"^\s*(?:tictactoe|tic-tac-toe|ttt)\s*:", re.I), "tictactoe"),
    (re.compile(r"^\s*(?:connect4|connect-four|connect four|c4)\s*:", re.I), "connect4"),
)


def strip_task_prefix(text: str) -> str:
    """``text`` without a leading task prefix (``24:``, ``ttt:``, ``connect four:``, ...), stripped."""
    for pattern, _ in _PREFIXES:
        m = pattern.match(text)
        if m:
            return text[m.end() :].strip()
    return text.strip()


class Overrides(BaseModel):
    """Engine settings an experiment variant may change for one request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mcts_c: float | None = Field(None, ge=0.0, le=100.0)
    mcts_selection: Literal["ucb1", "puct"] | None = None
    confidence_threshold: float | None = Field(None, ge=0.0, le=1.0)
    consensus_threshold: float | None = Field(None, ge=0.0, le=1.0)
    hybrid_weight: float | None = Field(None, ge=0.0, le=1.0)


class QueryRequest(BaseModel):
    """One query to the engine (validated user input)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str = Field(min_length=1, max_length=10_000)
    task: TaskName = "auto"
    use_mcts: bool = True
    use_rag: bool = True
    mcts_iterations: int = Field(1000, ge=1, le=10_000)
    seed: int | None = Field(None, ge=0, lt=2**53)
    router: RouterName = "rules"
    provider: ProviderName | None = None
    max_steps: int = Field(3, ge=1, le=10)
    user_id: str | None = Field(None, max_length=200)
    thread_id: str | None = Field(None, pattern=r"^[a-zA-Z0-9_-]{1,100}$")
    #: Ties this request's spans and log lines to others (a load run, an upstream call); default:
    #: the correlation id already in context, else the request's own id.
    correlation_id: str | None = Field(None, pattern=r"^[!-~]{1,128}$")
    overrides: Overrides = Field(default_factory=Overrides)

    @field_validator("query")
    @classmethod
    def _has_visible_text(cls, query: str) -> str:
        """Reject a query of only whitespace and control/format characters (nothing to answer)."""
        if all(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in query):
            raise ValueError("the query is empty: it has only whitespace or control characters")
        return query

    def resolved_task(self) -> str:
        """The task named by ``task``, or detected from the query's prefix when ``auto``."""
        if self.task != "auto":
            return self.task
        for pattern, name in _PREFIXES:
            if pattern.match(self.query):
                return name
        return "freeform"

    def position_text(self) -> str:
        """The query without its task prefix (the position or puzzle text)."""
        return strip_task_prefix(self.query)


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of the loop: the routing decision and what the agent produced.

    ``index`` is 0-based (shown as step ``index + 1``); ``exact`` whether the answer was
    rules-checked or proven; ``refined_from`` the candidate answer the agent was given and
    refined (None when it worked without one) -- what ``engine.loop.confidence`` needs to tell
    an independent answer from a repeat.
    """

    index: int
    agent: AgentName
    router: str
    probabilities: dict[str, float]
    features: tuple[float, ...]
    reason: str
    answer: str | None
    confidence: float
    evidence: str
    latency_ms: float
    exact: bool = False
    refined_from: str | None = None


@dataclass(frozen=True, slots=True)
class PassageRef:
    """A retrieved passage as shown with a result."""

    doc: str
    title: str
    section: str
    text: str
    score: float


@dataclass(frozen=True, slots=True)
class QueryResult:
    """The engine's answer to one request, with everything needed to audit it.

    ``answer_kind`` says what the answer is: ``move``, ``expression``,
    ``no_solution``, ``extractive`` (sentences quoted from the corpus),
    ``generated`` (an LLM's text) or ``none``.  ``quality`` is 1.0/0.0 when a
    ground truth judged the answer, None when unknown.  ``provider`` is the LLM
    provider that actually answered (comma-separated when several did; ``"none"``
    for a game task); ``fallback_from`` names the providers that failed before a
    fallback answered (comma-separated, None when none failed) and
    ``fallback_error`` says how the first of them failed.
    """

    request_id: str
    trace_id: str
    task: str
    query: str
    answer: str
    answer_kind: str
    verdict: VerdictLabel
    verdict_detail: str
    quality: float | None
    confidence: float
    agents_used: list[str]
    steps: list[StepRecord]
    stop_reason: str
    latency_ms: float
    seed: int
    router: str
    provider: str
    passages: tuple[PassageRef, ...] = ()
    mcts: dict[str, float | int | str] = field(default_factory=dict)
    tokens: int = 0
    cost_usd: float = 0.0
    fallback_from: str | None = None
    fallback_error: str | None = None
    #: The feature flags that applied to this request, by name (see :mod:`engine.flags`).
    flags: tuple[str, ...] = ()
