"""The only place that wires the engine, the store and clients into the console.

Long-lived objects are created once per process with ``st.cache_resource``;
callers must not mutate what these functions return.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from engine import Engine, QueryError, QueryRequest, QueryResult
from engine.config import Settings, load_settings
from engine.events import Event
from engine.explorer import ExploreOutcome, ExploreRequest, explore
from engine.llm import LLMError
from engine.mcts import TreeSnapshot
from engine.models import AGENTS
from engine.routing import RouterUnavailable
from engine.tasks import Task, load_task
from observability.metrics import start_exporter

log = logging.getLogger(__name__)

ROUTERS: tuple[str, ...] = ("rules", "gru", "hybrid")
MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"
ROUTER_REPORT = MODELS_DIR / "router_report.json"
ROUTER_WEIGHTS = MODELS_DIR / "router_gru.npz"

#: What can go wrong with a well-formed request; shown as messages, never as tracebacks.
ENGINE_ERRORS: tuple[type[Exception], ...] = (QueryError, RouterUnavailable, LLMError)


@st.cache_resource
def get_settings() -> Settings:
    """The console's settings, read once from ARBOR_* variables and .env (raises ConfigError)."""
    return load_settings()


@st.cache_resource
def get_engine() -> Engine:
    """One embedded engine per process, shared by every session (thread-safe; do not mutate).

    Its metrics exporter starts here, once per process (``ARBOR_METRICS_PORT``, 0 disables it);
    a port already in use is logged and the console runs on without it.
    """
    settings = get_settings()
    engine = Engine(settings)
    metrics = engine.telemetry.metrics
    if metrics is not None and settings.metrics_port:
        try:
            start_exporter(settings.metrics_port, metrics.registry, multiproc_dir=settings.metrics_dir)
        except OSError as exc:
            log.warning("metrics exporter not started on port %s: %s", settings.metrics_port, exc)
    return engine


def task(name: str) -> Task:
    """The task domain called ``name``."""
    return load_task(name)


def run_exploration(
    request: ExploreRequest, on_snapshot: Callable[[TreeSnapshot], Any] | None = None
) -> ExploreOutcome:
    """Run one MCTS exploration, streaming snapshots to ``on_snapshot``."""
    return explore(request, on_snapshot)


# -- queries ------------------------------------------------------------------------------------------


def stream_query(request: QueryRequest) -> Iterator[Event]:
    """The engine's events for ``request`` as they happen (MCTS snapshots included), ending
    with ``Final``.  Raises QueryError (malformed position) before the first event and
    RouterUnavailable when the request names a router without trained weights."""
    return get_engine().stream(request, live=True)


def run_query(request: QueryRequest) -> QueryResult:
    """Answer ``request`` without live events (same errors as :func:`stream_query`)."""
    return get_engine().run(request)


def error_message(exc: Exception, request: QueryRequest | None = None) -> str:
    """One line an operator can act on, for an error in ENGINE_ERRORS."""
    if isinstance(exc, RouterUnavailable):
        name = request.router if request is not None else "requested"
        return f"The {name} router is unavailable: {exc}"
    if isinstance(exc, QueryError):
        return f"The query cannot be answered: {exc}"
    return f"The LLM provider failed: {exc}"


@dataclass(frozen=True, slots=True)
class RouterRun:
    """One router's answer to a shared request, or why it could not answer."""

    router: str
    result: QueryResult | None
    error: str | None


def compare_routers(
    query: str, seed: int, *, routers: tuple[str, ...] = ROUTERS, **options: Any
) -> list[RouterRun]:
    """Run the same request (query, seed, options) once per router with ``engine.run``.

    A router that cannot run (e.g. the GRU has no trained weights) comes back as a
    RouterRun with ``error`` set, never as an exception.  Invalid options raise
    pydantic's ValidationError before anything runs.
    """
    requests = [QueryRequest(query=query, seed=seed, router=r, **options) for r in routers]
    runs: list[RouterRun] = []
    for request in requests:
        try:
            runs.append(RouterRun(request.router, run_query(request), None))
        except ENGINE_ERRORS as exc:
            runs.append(RouterRun(request.router, None, error_message(exc, request)))
    return runs


# -- the router's model card --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RouterReport:
    """The GRU router's training report (``data/models/router_report.json`` and ``.md``, written
    by ``python -m engine train-router``), read tolerantly: a missing entry is None or empty.

    ``accuracy`` and ``train_accuracy`` map gru / rules / majority to their accuracy on the
    held-out and training steps; ``confusion`` is the GRU's held-out confusion matrix (rows: label,
    columns: prediction) over ``labels``.
    """

    path: Path
    raw: dict[str, Any]
    markdown: str | None
    weights_present: bool
    architecture: str | None
    queries: int | None
    train_queries: int | None
    held_out_queries: int | None
    train_steps: int | None
    held_out_steps: int | None
    by_task: dict[str, int]
    train_label_counts: dict[str, int]
    majority_class: str | None
    accuracy: dict[str, float]
    train_accuracy: dict[str, float]
    confusion: list[list[float]] | None
    labels: list[str]
    training: dict[str, Any]


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _accuracies(section: dict[str, Any]) -> dict[str, float]:
    """``accuracy_<router>`` entries as {router: accuracy}."""
    return {
        k.removeprefix("accuracy_"): float(v)
        for k, v in section.items()
        if k.startswith("accuracy_") and isinstance(v, int | float) and math.isfinite(v)
    }


def _matrix(value: Any) -> list[list[float]] | None:
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        return [[float(c) for c in r] for r in value]
    return None


def parse_router_report(raw: dict[str, Any], path: Path, markdown: str | None = None) -> RouterReport:
    """The report's figures by name (see RouterReport); entries it lacks stay empty."""
    model, data, held, fit = (_section(raw, k) for k in ("model", "data", "held_out", "train_fit"))
    labels = model.get("agents")
    return RouterReport(
        path=path,
        raw=raw,
        markdown=markdown,
        weights_present=ROUTER_WEIGHTS.exists(),
        architecture=model.get("architecture") if isinstance(model.get("architecture"), str) else None,
        queries=_int(data.get("queries")),
        train_queries=_int(data.get("train_queries")),
        held_out_queries=_int(data.get("held_out_queries")),
        train_steps=_int(data.get("train_steps")),
        held_out_steps=_int(held.get("steps")),
        by_task={k: v for k, v in _section(data, "by_task").items() if _int(v) is not None},
        train_label_counts={
            k: v for k, v in _section(data, "train_label_counts").items() if _int(v) is not None
        },
        majority_class=data.get("majority_class") if isinstance(data.get("majority_class"), str) else None,
        accuracy=_accuracies(held),
        train_accuracy=_accuracies(fit),
        confusion=_matrix(held.get("confusion_matrix")),
        labels=[str(x) for x in labels] if isinstance(labels, list) else list(AGENTS),
        training=_section(raw, "training"),
    )


def router_report(path: Path | None = None) -> RouterReport | None:
    """The trained router's report, or None when it has not been trained yet.
    Read on every call (cheap) so the page shows a report as soon as training writes it.
    Raises ValueError when the file exists but is not a JSON object."""
    path = path or ROUTER_REPORT
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    md_path = path.with_suffix(".md")
    markdown = md_path.read_text(encoding="utf-8") if md_path.exists() else None
    return parse_router_report(raw, path, markdown)


def router_weights_present() -> bool:
    """Whether the GRU's trained weights exist (gru and hybrid can run)."""
    return ROUTER_WEIGHTS.exists()
