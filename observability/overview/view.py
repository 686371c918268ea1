"""The Overview page's view: the figures of the chosen source with a fallback to the store that
says why, and the metric tiles formatted with units.  Nothing here imports streamlit.
"""

from __future__ import annotations

import logging

from observability.overview.from_prometheus import overview_from_prometheus, unusable
from observability.overview.from_store import overview_from_store, series_from_store
from observability.overview.models import SOURCES, OverviewStats, OverviewView, Source, Tile, time_range
from observability.promql import PromSource, PromSourceError
from observability.store import Store

__all__ = ["UNKNOWN", "load_overview", "tiles"]

log = logging.getLogger(__name__)

#: A tile's value when the source does not know it.
UNKNOWN = "—"


def _store_facts(store: Store) -> tuple[int, float | None]:
    return store.reads.request_facts()


def load_overview(
    choice: str,
    preset_label: str,
    *,
    store: Store | None,
    prom: PromSource | None,
    now: float,
) -> OverviewView:
    """The Overview for ``choice`` (``"sqlite"`` or ``"prometheus"``) over the preset ``preset_label``.

    When Prometheus is chosen but not configured (``prom`` None), unreachable (``status()`` not ok),
    answers something unusable or fails mid-way (PromSourceError, or any other exception from the
    source, which is logged), the figures come from the store and ``message`` says why, e.g.
    ``"Prometheus at http://127.0.0.1:9 is unreachable: Connection refused — showing SQLite
    figures"`` or ``"Prometheus at ... answered something unusable: ... — showing SQLite figures"``.
    ``store`` None means telemetry is off.  Raises ValueError for an unknown choice or preset;
    sqlite3.Error when the store cannot be read.
    """
    if choice not in SOURCES:
        raise ValueError(f"unknown source {choice!r}; choose one of {list(SOURCES)}")
    preset = time_range(preset_label)
    requested: Source = "sqlite" if choice == "sqlite" else "prometheus"
    store_stats = series = None
    store_requests = latest = None
    if store is not None:
        store_requests, latest = _store_facts(store)
        store_stats = overview_from_store(store, preset.seconds, now, label=preset.label)
        series = series_from_store(store, preset.seconds, preset.bucket_s, now)
    store_word = (
        "SQLite figures" if store is not None else "no figures (telemetry is off, so no SQLite store)"
    )

    def view(source: Source | None, ok: bool, message: str, stats: OverviewStats | None) -> OverviewView:
        return OverviewView(requested, source, ok, message, stats, series, store_requests, latest)

    fallback_source: Source | None = "sqlite" if store is not None else None
    if choice == "sqlite":
        if store is None:
            return view(None, False, "Telemetry is off (ARBOR_TELEMETRY=off): there is no SQLite store", None)
        return view("sqlite", True, f"SQLite store at {store.path}", store_stats)
    if prom is None:
        message = f"Prometheus is not configured (set ARBOR_PROMETHEUS_URL) — showing {store_word}"
        return view(fallback_source, False, message, store_stats)
    try:
        status = prom.status()
        if not status.ok:
            return view(fallback_source, False, f"{status.message} — showing {store_word}", store_stats)
        stats = overview_from_prometheus(prom, preset, now)
    except PromSourceError as exc:
        return view(fallback_source, False, f"{exc} — showing {store_word}", store_stats)
    except Exception as exc:  # an untrusted source must never take the page down; logged for a fix
        log.exception("the Prometheus source failed unexpectedly")
        message = str(unusable(prom, type(exc).__name__))
        return view(fallback_source, False, f"{message} — showing {store_word}", store_stats)
    return view("prometheus", True, status.message[:1].upper() + status.message[1:], stats)


def _ms(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _rate(per_s: float | None) -> str:
    if per_s is None:
        return UNKNOWN
    if per_s == 0 or per_s >= 1:
        return f"{per_s:,.2f} req/s"
    if per_s * 60 >= 1:
        return f"{per_s * 60:,.2f} req/min"
    return f"{per_s * 3600:,.2f} req/h"


def _count(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:,.0f}"


def _cost(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:,.4f}"


def _bounds(lower: float, upper: float | None) -> str:
    """``[250, 500] ms (off by at most 250 ms)``; ``> 10,000 ms`` beyond the top bucket."""
    if upper is None:
        return f"[{lower:,g}, +inf) ms (beyond the top bucket: unbounded error)"
    return f"[{lower:,g}, {upper:,g}] ms (off by at most {upper - lower:,g} ms)"


def tiles(stats: OverviewStats) -> tuple[Tile, ...]:
    """The page's metric tiles for ``stats``, formatted with units; ``"—"`` for what is unknown.

    Order: Requests, Request rate, Error rate, Tokens, Cost, p50, p95, p99 latency, MCTS iterations.
    """
    src = "SQLite store" if stats.source == "sqlite" else "Prometheus"
    no_data = f"{src} has no data for the last {stats.window}"
    if stats.source == "sqlite":
        req_help = (
            f"ok + error requests started in the last {stats.window} ({src}); not counted: "
            f"{stats.invalid or 0:,} invalid, {stats.cancelled or 0:,} cancelled"
        )
    else:
        req_help = f"mcts_requests_total over the last {stats.window} (ok + error)"
    if stats.requests is None:
        req_help = no_data
    err_help = (
        f"error / (ok + error); {stats.errors:,} errors"
        if stats.errors is not None
        else "error / (ok + error)"
    )
    if stats.error_ratio is None:
        err_help = f"no requests in the last {stats.window}: no error rate"
    if stats.tokens_by_direction:
        tok_help = " · ".join(f"{d or 'unlabelled'} {v:,.0f}" for d, v in stats.tokens_by_direction)
    elif stats.tokens_total is not None:
        tok_help = "total tokens (the store keeps no input/output split)"
    else:
        tok_help = f"no token counts recorded in the last {stats.window}"
    lat_help = (
        "linear interpolation over ok + error request latencies"
        if stats.source == "sqlite"
        else "histogram_quantile over mcts_request_duration_seconds"
    )
    lat_helps = [lat_help] * 3
    if stats.latency_bounds_ms:
        lat_helps = [
            f"estimated from the store's latency histogram buckets (as Prometheus' histogram_quantile) "
            f"over {stats.window}; the exact value lies in {_bounds(lower, upper)}"
            for lower, upper in stats.latency_bounds_ms
        ]
    iter_help = (
        f"over {stats.mcts_runs:,} MCTS searches" if stats.mcts_runs is not None else "mcts_iterations_total"
    )
    if stats.mcts_iterations is None:
        iter_help = no_data
    rate_help = (
        no_data
        if stats.rate_per_s is None
        else f"{stats.rate_per_s:.6g} requests per second, averaged over {stats.window}"
    )
    return (
        Tile("Requests", _count(stats.requests), req_help),
        Tile("Request rate", _rate(stats.rate_per_s), rate_help),
        Tile("Error rate", UNKNOWN if stats.error_ratio is None else f"{stats.error_ratio:.2%}", err_help),
        Tile("Tokens", _count(stats.tokens_total), tok_help),
        Tile(
            "Cost",
            _cost(stats.cost_usd),
            "estimated LLM cost in US dollars"
            if stats.cost_usd is not None
            else f"no cost recorded in the last {stats.window}",
        ),
        Tile("Latency p50", _ms(stats.p50_ms), lat_helps[0] if stats.p50_ms is not None else no_data),
        Tile("Latency p95", _ms(stats.p95_ms), lat_helps[1] if stats.p95_ms is not None else no_data),
        Tile("Latency p99", _ms(stats.p99_ms), lat_helps[2] if stats.p99_ms is not None else no_data),
        Tile("MCTS iterations", _count(stats.mcts_iterations), iter_help),
    )
