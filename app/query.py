"""The Query console's services (pages/query.py): run a request through the embedded engine,
live or not, and what the page needs to build requests and show results.

Running a query is an operator action: :func:`stream_query` and :func:`run_query` refuse anyone
else (``auth.require_operator``) whatever the page shows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from app import auth, runtime
from app.links import QueryLink, parse_query_link, query_link_params
from app.messages import ENGINE_ERRORS, ValidationError, error_message, fallback_note, validation_problems
from app.names import CONSOLE_TASKS, DEFAULT_CONFIDENCE_THRESHOLD, PROVIDERS, ROUTER_LABELS, ROUTERS
from app.runtime import get_settings, task
from engine import QueryRequest, QueryResult
from engine.events import Consensus, Event
from engine.mcts import TreeSnapshot
from engine.models import PassageRef

__all__ = [
    "CONSOLE_TASKS",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "ENGINE_ERRORS",
    "FREEFORM_EXAMPLES",
    "PROVIDERS",
    "ROUTERS",
    "ROUTER_LABELS",
    "Consensus",
    "QueryLink",
    "QueryRequest",
    "QueryResult",
    "TreeSnapshot",
    "ValidationError",
    "cited_passages",
    "error_message",
    "examples",
    "fallback_note",
    "get_settings",
    "parse_query_link",
    "query_link_params",
    "run_query",
    "stream_query",
    "task",
    "validation_problems",
]

#: The Query console's freeform examples (label, text): operations questions the corpus answers.
FREEFORM_EXAMPLES: tuple[tuple[str, str], ...] = (
    ("Error budget fast burn", "What should I do when the error budget fast-burn alert fires?"),
    ("UCB1", "How does UCB1 balance exploration and exploitation?"),
    ("Router fallback", "When does the meta-controller fall back to another agent?"),
    ("p95 latency", "How do I investigate high p95 latency?"),
    ("Sample ratio mismatch", "What does a sample ratio mismatch mean for an experiment?"),
)


def examples(task_name: str) -> list[tuple[str, str]]:
    """(label, text) of the example queries for ``task_name`` (a key of CONSOLE_TASKS); for
    ``"auto"`` every task's, each label prefixed with its task's name (``"Game of 24 · ..."``).
    Raises ValueError for a name that is not a task."""
    names = [task_name] if task_name != "auto" else [t for t in CONSOLE_TASKS if t != "auto"]
    out: list[tuple[str, str]] = []
    for name in names:
        prefix = f"{CONSOLE_TASKS[name]} · " if task_name == "auto" else ""
        if name == "freeform":
            pairs = list(FREEFORM_EXAMPLES)
        else:
            pairs = [(e.label, e.text) for e in task(name).examples]
        out += [(prefix + label, text) for label, text in pairs]
    return out


def stream_query(request: QueryRequest, *, request_id: str | None = None) -> Iterator[Event]:
    """The engine's events for ``request`` as they happen (MCTS snapshots included), ending
    with ``Final``; ``request_id`` names the request (default: a random id).  Raises QueryError
    (malformed position) before the first event and RouterUnavailable when the request names a
    router without trained weights.  Closing the iterator before ``Final`` stops the run (a live
    search at its next snapshot) and records it as cancelled.  Operators only."""
    auth.require_operator("run_query")
    return runtime.get_engine().stream(request, live=True, request_id=request_id)


_CITATION = re.compile(r"(?<![\\!])\[(\d{1,3})\](?![(\[])")


def cited_passages(answer: str, passages: Sequence[PassageRef]) -> list[tuple[int, PassageRef | None]]:
    """The ``[n]`` citations of ``answer`` in order of first appearance, each with the passage it
    names (``passages`` are numbered from 1, as the engine's prompt numbers them) or None when
    ``n`` names none of them."""
    numbers = dict.fromkeys(int(m.group(1)) for m in _CITATION.finditer(answer))
    return [(n, passages[n - 1] if 1 <= n <= len(passages) else None) for n in numbers]


def run_query(request: QueryRequest) -> QueryResult:
    """Answer ``request`` without live events (same errors as :func:`stream_query`; operators only)."""
    auth.require_operator("run_query")
    return runtime.get_engine().run(request)
