"""The only place that wires the engine, the store and clients into the console.

Long-lived objects are created once per process with ``st.cache_resource``;
callers must not mutate what these functions return.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import streamlit as st

from app import auth
from engine import Engine, QueryError, QueryRequest, QueryResult
from engine.config import Settings, load_settings
from engine.events import Event
from engine.explorer import ExploreOutcome, ExploreRequest, explore
from engine.llm import LLMError, ProviderNotConfigured
from engine.mcts import TreeSnapshot
from engine.models import AGENTS, strip_task_prefix
from engine.routing import RouterUnavailable
from engine.tasks import Task, load_task
from engine.telemetry import fallback_note as _fallback_note
from engine.wiring import build_runtime
from observability import traces as tracelib
from observability.overview import OverviewView, load_overview
from observability.promql import PromSource, SourceStatus
from observability.store import Store

log = logging.getLogger(__name__)

ROUTERS: tuple[str, ...] = ("rules", "gru", "hybrid")
#: The console's name for each task a query can name (the explorer searches all but freeform).
TASK_LABELS: dict[str, str] = {
    "game24": "Game of 24",
    "tictactoe": "Tic-tac-toe",
    "connect4": "Connect four",
    "freeform": "Freeform question",
}
EXPLORER_TASKS: tuple[str, ...] = ("tictactoe", "connect4", "game24")
#: The Query console's task choices: auto-detection first.
CONSOLE_TASKS: dict[str, str] = {"auto": "Auto-detect", **TASK_LABELS}
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

    Built by the composition root ``engine.wiring.build_runtime``, which also starts the metrics
    exporter once per process (``ARBOR_METRICS_PORT``, 0 disables it; a port already in use is
    logged and the console runs on without it).
    """
    runtime = build_runtime(get_settings(), serve_metrics=True)
    atexit.register(_close_at_exit, runtime.engine)
    return runtime.engine


def _close_at_exit(engine: Engine) -> None:
    """Flush the console's engine when the process ends: Streamlit stops its server on SIGTERM
    and SIGINT and the interpreter then runs atexit, so every request the console answered is
    in the store (and its spans exported).  A write error is logged, never raised at exit."""
    try:
        engine.close()
    except Exception as exc:
        log.error("telemetry not fully flushed at exit: %s", exc)


def get_store() -> Store | None:
    """The engine's telemetry store (shared, thread-safe reads), or None when telemetry is off."""
    return get_engine().telemetry.store


@st.cache_resource
def get_prom_source() -> PromSource | None:
    """The Prometheus source at ``ARBOR_PROMETHEUS_URL``, or None when it is not configured.

    Uses ``ARBOR_PROMETHEUS_TIMEOUT_S`` (total deadline per query) and the credentials
    (``ARBOR_PROMETHEUS_USERNAME``/``_PASSWORD`` or ``_BEARER_TOKEN``, or userinfo in the URL);
    every credential, also one in the URL's query, is among the secrets the composition root
    (``engine.wiring.configured_secrets``) hands to the tracer and telemetry.  Creating it does
    not contact the server; ask ``status()``."""
    settings = get_settings()
    url = settings.prometheus_url
    if not url:
        return None
    return PromSource(
        url,
        settings.prometheus_timeout_s,
        username=settings.prometheus_username,
        password=settings.prometheus_password,
        bearer_token=settings.prometheus_bearer_token,
    )


@st.cache_data(ttl=15, show_spinner=False)
def prometheus_status() -> SourceStatus | None:
    """Whether the configured Prometheus answers (re-asked at most every 15 s), or None when
    ``ARBOR_PROMETHEUS_URL`` is unset.  Never raises: an unreachable server is a status."""
    source = get_prom_source()
    return None if source is None else source.status()


def task(name: str) -> Task:
    """The task domain called ``name``."""
    return load_task(name)


def run_exploration(
    request: ExploreRequest, on_snapshot: Callable[[TreeSnapshot], Any] | None = None
) -> ExploreOutcome:
    """Run one MCTS exploration, streaming snapshots to ``on_snapshot`` (operators only)."""
    auth.require_operator("run_search")
    return explore(request, on_snapshot)


# -- queries ------------------------------------------------------------------------------------------


def stream_query(request: QueryRequest) -> Iterator[Event]:
    """The engine's events for ``request`` as they happen (MCTS snapshots included), ending
    with ``Final``.  Raises QueryError (malformed position) before the first event and
    RouterUnavailable when the request names a router without trained weights.  Operators only."""
    auth.require_operator("run_query")
    return get_engine().stream(request, live=True)


def run_query(request: QueryRequest) -> QueryResult:
    """Answer ``request`` without live events (same errors as :func:`stream_query`; operators only)."""
    auth.require_operator("run_query")
    return get_engine().run(request)


def error_message(exc: Exception, request: QueryRequest | None = None) -> str:
    """One line an operator can act on, for an error in ENGINE_ERRORS."""
    if isinstance(exc, RouterUnavailable):
        name = request.router if request is not None else "requested"
        return f"The {name} router is unavailable: {exc}"
    if isinstance(exc, QueryError):
        return f"The query cannot be answered: {exc}"
    if isinstance(exc, ProviderNotConfigured):
        return (
            f"Configuration error, the request was not run: {exc}. Set {exc.setting} in the environment "
            "or .env and restart the console, or pick another LLM provider."
        )
    return f"The LLM provider failed: {exc}"


def fallback_note(provider: str | None, fallback_from: str | None, fallback_error: str | None) -> str | None:
    """``"Answered by the offline fallback after openai failed: <error>"`` for an answer (or a
    recorded request) that a fallback LLM provider gave; None when no provider failed.  Plain text:
    the error part quotes a provider's message, so render it with ``st.text``, never as markdown."""
    note = _fallback_note(provider, fallback_from, fallback_error)
    return None if note is None else note[0].upper() + note[1:]


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


# -- overview (pages/overview.py) ----------------------------------------------------------------------

#: How long the Overview's figures are reused (s); shorter than the shortest live-refresh interval.
OVERVIEW_TTL_S = 4


@st.cache_data(ttl=OVERVIEW_TTL_S, show_spinner=False)
def overview(source: str, preset: str) -> OverviewView:
    """The Overview's figures for ``source`` (``"sqlite"`` or ``"prometheus"``) over the time-range
    preset ``preset`` (``"15m"`` ... ``"28d"``), ending now; cached for OVERVIEW_TTL_S seconds.

    Prometheus not configured or unreachable comes back as a view with ``status_ok`` False, a
    message, and the SQLite figures.  Raises ValueError for an unknown source or preset.
    """
    return load_overview(source, preset, store=get_store(), prom=get_prom_source(), now=time.time())


# -- traces (pages/traces.py) --------------------------------------------------------------------------

#: How long a trace list / a trace's detail is reused (s): new requests show up within this.
TRACES_LIST_TTL_S = 5
TRACES_DETAIL_TTL_S = 10


@dataclass(frozen=True, slots=True)
class TraceListing:
    """The Traces page's list: ``enabled`` False when telemetry is off (no store); ``problems``
    are the filter's (or the store's) errors, one line each, and then ``traces`` is empty;
    ``total`` counts every request in the store; ``limit`` is the filter's row limit."""

    enabled: bool
    traces: tuple[tracelib.TraceSummary, ...] = ()
    problems: tuple[str, ...] = ()
    total: int = 0
    limit: int = 0


@dataclass(frozen=True, slots=True)
class TraceLookup:
    """One trace for the page, or why there is none (``message``: unknown id, telemetry off, the
    store unreadable).  ``replay_url`` reopens the Query console on the same request and
    ``explorer_urls`` maps an MCTS run id to the explorer re-running that search (relative URLs)."""

    detail: tracelib.TraceDetail | None
    message: str | None = None
    replay_url: str | None = None
    explorer_urls: dict[str, str] | None = None


class _TraceMissing(LookupError):
    """Raised inside the cached reader so that a miss is not cached (the trace may land soon)."""


def _url(path: str, params: dict[str, Any]) -> str:
    return path + "?" + urlencode({k: str(v) for k, v in params.items() if v is not None}, quote_via=quote)


def explorer_url(run: tracelib.MctsRunInfo) -> str | None:
    """A relative URL opening the MCTS explorer on ``run``'s search (task, position without its
    ``task:`` prefix, seed, the configured iterations, c, selection; URL-encoded), or None when
    the explorer cannot run it.  The explorer then repeats the search exactly."""
    if run.task not in EXPLORER_TASKS or run.position is None:
        return None
    position = strip_task_prefix(run.position)
    config = run.config
    selection = config.get("selection") if config.get("selection") in ("ucb1", "puct") else None
    iterations = config.get("iterations") if isinstance(config.get("iterations"), int) else run.iterations
    c = config.get("c") if isinstance(config.get("c"), int | float) else None
    params = {"task": run.task, "position": position, "seed": run.seed, "iterations": iterations}
    return _url("mcts", params | {"c": c, "selection": selection})


def replay_url(detail: tracelib.TraceDetail) -> str | None:
    """A relative URL opening the Query console on the trace's request (query, task, seed,
    router, and the MCTS iterations when it ran a search; URL-encoded), or None without a query."""
    request = detail.request
    if request is None or request.query is None:
        return None
    iterations = next((r.config.get("iterations") for r in detail.mcts_runs), None)
    return _url(
        "./",
        {
            "q": request.query,
            "task": request.task if request.task in CONSOLE_TASKS else None,
            "seed": request.seed,
            "router": request.router if request.router in ROUTERS else None,
            "iterations": iterations if isinstance(iterations, int) else None,
        },
    )


@st.cache_data(ttl=TRACES_LIST_TTL_S, show_spinner=False)
def _cached_traces(
    db_path: str, filter_json: str, committed: int
) -> tuple[tuple[tracelib.TraceSummary, ...], int]:
    """The listing for one filter.  ``db_path`` keys the cache to the store's file and
    ``committed`` (this process's committed rows) drops it as soon as this console records more."""
    store = get_store()
    assert store is not None
    flt = tracelib.TraceFilter.model_validate_json(filter_json)
    return tuple(tracelib.list_traces(store, flt)), store.count("requests")


@st.cache_data(ttl=TRACES_DETAIL_TTL_S, show_spinner=False)
def _cached_trace(db_path: str, trace_id: str | None, request_id: str | None) -> tracelib.TraceDetail:
    store = get_store()
    assert store is not None
    if trace_id is None and request_id is not None:
        trace_id = tracelib.trace_id_for_request(store, request_id)
    detail = None if trace_id is None else tracelib.trace_detail(store, trace_id)
    if detail is None:
        raise _TraceMissing(trace_id or request_id)
    return detail


def trace_list(**fields: Any) -> TraceListing:
    """The traces matching the filter ``fields`` (see observability.traces.TraceFilter), newest
    first.  Runs this console has finished are included at once (pending telemetry is flushed
    first); other processes' requests show up within TRACES_LIST_TTL_S seconds.  Bad filter
    values, and a store that cannot be read, come back as ``problems``; telemetry off as
    ``enabled`` False.  Never raises for them."""
    store = get_store()
    if store is None:
        return TraceListing(enabled=False)
    try:
        flt = tracelib.parse_filter(fields)
    except tracelib.TraceFilterError as exc:
        return TraceListing(enabled=True, problems=exc.problems)
    try:
        _flush_quietly(store)
        traces, total = _cached_traces(str(store.path), flt.model_dump_json(), store.stats.committed_rows)
    except sqlite3.Error as exc:
        return TraceListing(enabled=True, problems=(f"The store could not be read: {exc}",))
    return TraceListing(enabled=True, traces=traces, total=total, limit=flt.limit)


def trace_lookup(trace_id: str | None = None, request_id: str | None = None) -> TraceLookup:
    """The trace ``trace_id`` (or the trace of request ``request_id``) with its links; cached for
    TRACES_DETAIL_TTL_S seconds.  A miss first waits for this process's pending telemetry (a
    run that just finished) and reads again; an unknown id, telemetry off or an unreadable store
    come back as ``message``.  Never raises for them."""
    store = get_store()
    if store is None:
        return TraceLookup(None, "Telemetry is off (ARBOR_TELEMETRY=off): no traces are recorded.")
    asked = f"trace {trace_id}" if trace_id is not None else f"request {request_id}"
    detail = None
    try:
        for attempt in range(2):
            try:
                detail = _cached_trace(str(store.path), trace_id, request_id)
                break
            except _TraceMissing:
                if attempt == 0:
                    _flush_quietly(store)
    except sqlite3.Error as exc:
        return TraceLookup(None, f"The store could not be read: {exc}")
    if detail is None:
        return TraceLookup(None, f"No {asked} in the store ({store.path}).")
    urls = {r.run_id: u for r in detail.mcts_runs if (u := explorer_url(r)) is not None}
    return TraceLookup(detail, replay_url=replay_url(detail), explorer_urls=urls)


def _flush_quietly(store: Store) -> None:
    """Wait (at most 5 s) for telemetry this process has queued.  Write errors are left to the
    store, which reports them when the engine flushes or closes."""
    store.wait(timeout_s=5.0)
