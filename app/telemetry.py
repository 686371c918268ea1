"""The Overview's and the Traces page's services (pages/overview.py, pages/traces.py): what the
store (or Prometheus) recorded, read through short-lived caches.

Reads never raise for a store that cannot be read, an unknown id or telemetry switched off:
those come back as messages or problem lines the pages show.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import streamlit as st

from app import runtime
from app.links import TracesLink, explorer_url, parse_trace_link, parse_traces_link, replay_url
from app.messages import fallback_note
from app.names import TASK_LABELS
from observability import traces as tracelib
from observability.overview import PRESETS, OverviewView, Tile, load_overview, tiles
from observability.store import Store
from observability.traces import (
    ORDERS,
    STATUSES,
    RequestInfo,
    RoutingStep,
    TraceDetail,
    TraceSummary,
    WaterfallRow,
    step_outcomes,
    untraced_notes,
    waterfall_rows,
)

__all__ = [
    "COUNT_CAP",
    "FILTER_LINK_KEYS",
    "ORDERS",
    "OVERVIEW_TTL_S",
    "PRESETS",
    "STATUSES",
    "TASK_LABELS",
    "TRACES_DETAIL_TTL_S",
    "TRACES_LIST_TTL_S",
    "OverviewView",
    "RequestInfo",
    "RoutingStep",
    "Tile",
    "TraceDetail",
    "TraceListing",
    "TraceLookup",
    "TraceSummary",
    "TracesLink",
    "WaterfallRow",
    "fallback_note",
    "link_filter_text",
    "overview",
    "parse_trace_link",
    "parse_traces_link",
    "step_outcomes",
    "tiles",
    "trace_list",
    "trace_lookup",
    "untraced_notes",
    "waterfall_rows",
]

# -- overview (pages/overview.py) ----------------------------------------------------------------------

#: How long the Overview's figures are reused (s); shorter than the shortest live-refresh interval.
OVERVIEW_TTL_S = 4


@st.cache_data(ttl=OVERVIEW_TTL_S, show_spinner=False)
def overview(source: str, preset: str) -> OverviewView:
    """The Overview's figures for ``source`` (``"sqlite"`` or ``"prometheus"``) over the time-range
    preset ``preset`` (``"15m"`` ... ``"28d"``), ending now; cached for OVERVIEW_TTL_S seconds.

    Tiles and charts come from the same source.  Prometheus not configured, unreachable, slow or
    answering garbage comes back as a view with ``status_ok`` False, a message, and the SQLite
    figures.  Raises ValueError for an unknown source or preset.
    """
    return load_overview(
        source, preset, store=runtime.get_store(), prom=runtime.get_prom_source(), now=time.time()
    )


# -- traces (pages/traces.py) --------------------------------------------------------------------------

#: How long a trace list / a trace's detail is reused (s): new requests show up within this.
TRACES_LIST_TTL_S = 5
TRACES_DETAIL_TTL_S = 10
#: The trace list counts matching requests up to this many (then says "more than").
COUNT_CAP = 10_000


@dataclass(frozen=True, slots=True)
class TraceListing:
    """The Traces page's list: ``enabled`` False when telemetry is off (no store); ``problems``
    are the filter's (or the store's) errors, one line each, and then ``traces`` is empty;
    ``total`` counts every request in the store; ``limit`` is the filter's row limit;
    ``matched`` how many requests match the filter (ignoring the limit; above COUNT_CAP it is
    COUNT_CAP + 1: "more than COUNT_CAP")."""

    enabled: bool
    traces: tuple[tracelib.TraceSummary, ...] = ()
    problems: tuple[str, ...] = ()
    total: int = 0
    limit: int = 0
    matched: int = 0


@dataclass(frozen=True, slots=True)
class TraceLookup:
    """One trace for the page, or why there is none (``message``: unknown id, telemetry off, the
    store unreadable).  ``replay_url`` reopens the Query console on the same request and
    ``explorer_urls`` maps an MCTS run id to the explorer re-running that search (relative URLs)."""

    detail: tracelib.TraceDetail | None
    message: str | None = None
    replay_url: str | None = None
    explorer_urls: dict[str, str] | None = None


#: The query parameters of a Traces filter link (app.links.parse_traces_link).
FILTER_LINK_KEYS: tuple[str, ...] = (
    "status", "task", "verdict", "agent", "provider", "router", "variant", "experiment", "correlation",
    "over_ms", "since", "until",
)  # fmt: skip


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def link_filter_text(link: TracesLink) -> str | None:
    """The filters of a Traces link that the page has no widget for, in words ("verdict
    incorrect · last agent hrm · latency over 500 ms · after 2026-01-01 00:00:00 UTC · ..."),
    None when it has none.  Plain text: escape it for Markdown."""
    parts = [f"verdict {link.verdict}"] if link.verdict else []
    names = {
        "agent": "last agent", "provider": "provider", "router": "router", "variant": "variant",
        "experiment": "experiment", "correlation": "correlation id",
    }  # fmt: skip
    parts += [f"{label} {value}" for key, label in names.items() if (value := getattr(link, key))]
    if link.over_ms is not None:
        parts.append(f"latency over {link.over_ms:g} ms")
    if link.since is not None:
        parts.append(f"after {_utc(link.since)}")
    if link.until is not None:
        parts.append(f"up to {_utc(link.until)} included")
    return " · ".join(parts) or None


class _TraceMissing(LookupError):
    """Raised inside the cached reader so that a miss is not cached (the trace may land soon)."""


@st.cache_data(ttl=TRACES_LIST_TTL_S, show_spinner=False)
def _cached_traces(
    db_path: str, filter_json: str, committed: int
) -> tuple[tuple[tracelib.TraceSummary, ...], int, int]:
    """The listing for one filter, the requests in all and how many match (at most COUNT_CAP + 1).
    ``db_path`` keys the cache to the store's file and ``committed`` (this process's committed
    rows) drops it as soon as this console records more."""
    store = runtime.get_store()
    assert store is not None
    flt = tracelib.TraceFilter.model_validate_json(filter_json)
    traces = tuple(tracelib.list_traces(store, flt))
    return traces, store.count("requests"), tracelib.count_traces(store, flt, cap=COUNT_CAP)


@st.cache_data(ttl=TRACES_DETAIL_TTL_S, show_spinner=False)
def _cached_trace(db_path: str, trace_id: str | None, request_id: str | None) -> tracelib.TraceDetail:
    store = runtime.get_store()
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
    store = runtime.get_store()
    if store is None:
        return TraceListing(enabled=False)
    try:
        flt = tracelib.parse_filter(fields)
    except tracelib.TraceFilterError as exc:
        return TraceListing(enabled=True, problems=exc.problems)
    try:
        _flush_quietly(store)
        traces, total, matched = _cached_traces(
            str(store.path), flt.model_dump_json(), store.stats.committed_rows
        )
    except sqlite3.Error as exc:
        return TraceListing(enabled=True, problems=(f"The store could not be read: {exc}",))
    return TraceListing(enabled=True, traces=traces, total=total, limit=flt.limit, matched=matched)


def trace_lookup(trace_id: str | None = None, request_id: str | None = None) -> TraceLookup:
    """The trace ``trace_id`` (or the trace of request ``request_id``) with its links; cached for
    TRACES_DETAIL_TTL_S seconds.  A miss first waits for this process's pending telemetry (a
    run that just finished) and reads again; an unknown id, telemetry off or an unreadable store
    come back as ``message``.  Never raises for them."""
    store = runtime.get_store()
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
