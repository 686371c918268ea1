"""The Routing page's services (pages/routing.py): one request answered by each router side by
side, and the trained GRU router's model card.

Comparing routers runs queries, an operator action: :func:`compare_routers` refuses anyone else
(``auth.require_operator``) whatever the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from app import auth
from app.messages import ENGINE_ERRORS, ValidationError, error_message, validation_problems
from app.model_card import CardRow, RouterReport, card_rows, router_report, router_weights_present
from app.names import (
    AGENTS,
    CONSOLE_TASKS,
    DEFAULT_CONFIDENCE_THRESHOLD,
    ROUTER_LABELS,
    ROUTERS,
    RouterName,
)
from app.query import run_query
from app.runtime import get_settings
from engine import QueryRequest, QueryResult
from engine.names import FIXED_ROUTERS

#: The meta-controller's routers (the side-by-side default; the fixed baselines are one agent each).
META_ROUTERS: tuple[RouterName, ...] = tuple(r for r in ROUTERS if r not in FIXED_ROUTERS)

__all__ = [
    "AGENTS",
    "CONSOLE_TASKS",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "ENGINE_ERRORS",
    "META_ROUTERS",
    "ROUTERS",
    "ROUTER_LABELS",
    "CardRow",
    "QueryRequest",
    "QueryResult",
    "RouterReport",
    "RouterRun",
    "ValidationError",
    "card_rows",
    "card_table",
    "compare_routers",
    "error_message",
    "get_settings",
    "router_report",
    "router_weights_present",
    "run_query",
    "validation_problems",
]


@dataclass(frozen=True, slots=True)
class RouterRun:
    """One router's answer to a shared request, or why it could not answer."""

    router: str
    result: QueryResult | None
    error: str | None


def compare_routers(
    query: str, seed: int, *, routers: tuple[RouterName, ...] = META_ROUTERS, **options: Any
) -> list[RouterRun]:
    """Run the same request (query, seed, options) once per router with ``engine.run``.

    A router that cannot run (e.g. the GRU has no trained weights) comes back as a
    RouterRun with ``error`` set, never as an exception.  Invalid options raise
    pydantic's ValidationError before anything runs.  Operators only.
    """
    auth.require_operator("compare_routers")
    requests = [QueryRequest(query=query, seed=seed, router=r, **options) for r in routers]
    runs: list[RouterRun] = []
    for request in requests:
        try:
            runs.append(RouterRun(request.router, run_query(request), None))
        except ENGINE_ERRORS as exc:
            runs.append(RouterRun(request.router, None, error_message(exc, request)))
    return runs


def card_table(rows: list[CardRow]) -> pd.DataFrame:
    """The model card's rows as a table (one row per router; blanks where a figure is absent)."""
    return pd.DataFrame(
        [
            {
                "router": r.router,
                "label agreement": r.label_agreement,
                "correct share": r.correct_share,
                "mean ms": r.mean_ms,
                "p95 ms": r.p95_ms,
                "mean steps": r.mean_steps,
                "missed": None if r.missed is None else int(r.missed),
                "queries": None if r.queries is None else int(r.queries),
            }
            for r in rows
        ],
        columns=[
            "router",
            "label agreement",
            "correct share",
            "mean ms",
            "p95 ms",
            "mean steps",
            "missed",
            "queries",
        ],
    )
