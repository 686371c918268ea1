"""The Query console's services (pages/query.py): run a request through the embedded engine,
live or not, and what the page needs to build requests and show results.

Running a query is an operator action: :func:`stream_query` and :func:`run_query` refuse anyone
else (``auth.require_operator``) whatever the page shows.
"""

from __future__ import annotations

from collections.abc import Iterator

from app import auth, runtime
from app.links import QueryLink, parse_query_link, query_link_params
from app.messages import ENGINE_ERRORS, error_message, fallback_note
from app.names import CONSOLE_TASKS, DEFAULT_CONFIDENCE_THRESHOLD, PROVIDERS, ROUTER_LABELS, ROUTERS
from app.runtime import get_settings, task
from engine import QueryRequest, QueryResult
from engine.events import Consensus, Event
from engine.mcts import TreeSnapshot

__all__ = [
    "CONSOLE_TASKS",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "ENGINE_ERRORS",
    "PROVIDERS",
    "ROUTERS",
    "ROUTER_LABELS",
    "Consensus",
    "QueryLink",
    "QueryRequest",
    "QueryResult",
    "TreeSnapshot",
    "error_message",
    "fallback_note",
    "get_settings",
    "parse_query_link",
    "query_link_params",
    "run_query",
    "stream_query",
    "task",
]


def stream_query(request: QueryRequest) -> Iterator[Event]:
    """The engine's events for ``request`` as they happen (MCTS snapshots included), ending
    with ``Final``.  Raises QueryError (malformed position) before the first event and
    RouterUnavailable when the request names a router without trained weights.  Operators only."""
    auth.require_operator("run_query")
    return runtime.get_engine().stream(request, live=True)


def run_query(request: QueryRequest) -> QueryResult:
    """Answer ``request`` without live events (same errors as :func:`stream_query`; operators only)."""
    auth.require_operator("run_query")
    return runtime.get_engine().run(request)
