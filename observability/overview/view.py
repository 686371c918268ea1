"""The Overview page's view: the figures of the chosen source (tiles and charts alike) with a
fallback to the store that says why, the request rate over the part of the range with data, and
the metric tiles formatted with units.  Nothing here imports streamlit.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from observability.overview.from_prometheus import overview_from_prometheus, unusable
from observability.overview.from_store import overview_from_store, series_from_store
from observability.overview.models import (
    SOURCES,
    OverviewSeries,
    OverviewStats,
    OverviewView,
    Source,
    Tile,
    time_range,
)
from observability.promql import PromSource, PromSourceError
from observability.store import Store

__all__ = [
    "MIN_RATE_SPAN_S",
    "RATE_UNIT",
    "UNKNOWN",
    "load_overview",
    "per_minute",
    "rate_note",
    "rate_over_data",
    "span_label",
    "tiles",
]

log = logging.getLogger(__name__)

#: A tile's value when the source does not know it.
UNKNOWN = "—"


def _store_facts(store: Store) -> tuple[int, float | None]:
    return store.reads.request_facts()


#: The shortest span a rate is averaged over (s): a rate in req/min over seconds is noise.
MIN_RATE_SPAN_S = 60


def rate_over_data(stats: OverviewStats) -> OverviewStats:
    """``stats`` with its request rate averaged over the part of the window that has data: from
    ``stats.data_since_ts`` to the window's end, :data:`MIN_RATE_SPAN_S` at least
    (``rate_span_s``).  No data at all (no first data, or no request count) leaves the rate
    unknown (None)."""
    if stats.requests is None or stats.data_since_ts is None:
        return replace(stats, rate_per_s=None, rate_span_s=None)
    span = max(stats.until_ts - stats.data_since_ts, min(MIN_RATE_SPAN_S, stats.window_s))
    return replace(stats, rate_per_s=stats.requests / span, rate_span_s=span)


def rate_note(stats: OverviewStats, bucket_s: int) -> str | None:
    """A sentence for the page when the source's data misses more than one chart bucket
    (``bucket_s``) of the range: over which span the rate is, from when (and how precisely);
    None otherwise."""
    since = stats.data_since_ts
    if stats.rate_span_s is None or since is None or stats.rate_span_s >= stats.window_s - bucket_s:
        return None
    src = "SQLite" if stats.source == "sqlite" else "Prometheus"
    within = f", to within {span_label(stats.data_since_res_s)}" if stats.data_since_res_s else ""
    return (
        f"{src} has data for the last {span_label(stats.rate_span_s)} of this range only "
        f"(from {_at(since)}{within}): the request rate is over that span."
    )


def load_overview(
    choice: str,
    preset_label: str,
    *,
    store: Store | None,
    prom: PromSource | None,
    now: float,
) -> OverviewView:
    """The Overview for ``choice`` (``"sqlite"`` or ``"prometheus"``) over the preset ``preset_label``.

    Tiles and charts come from one source: with Prometheus, its instant queries at ``now`` and
    range queries on the chart's grid; after a fallback, both from the store.  The request rate is
    over the part of the range with data (:func:`rate_over_data`).

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
    store_requests = latest = None
    if store is not None:
        store_requests, latest = _store_facts(store)
    store_word = (
        "SQLite figures" if store is not None else "no figures (telemetry is off, so no SQLite store)"
    )

    def view(
        source: Source | None,
        ok: bool,
        message: str,
        figures: tuple[OverviewStats, OverviewSeries] | None,
    ) -> OverviewView:
        stats, series = (None, None) if figures is None else (rate_over_data(figures[0]), figures[1])
        note = None if stats is None else rate_note(stats, preset.bucket_s)
        return OverviewView(requested, source, ok, message, stats, series, store_requests, latest, note)

    def from_store(message: str, ok: bool = False) -> OverviewView:
        """The store's figures (read only here: nothing but its facts when Prometheus answers)."""
        if store is None:
            return view(None, False, message, None)
        stats = overview_from_store(store, preset.seconds, now, label=preset.label)
        series = series_from_store(store, preset.seconds, preset.bucket_s, now)
        return view("sqlite", ok, message, (stats, series))

    if choice == "sqlite":
        if store is None:
            return view(None, False, "Telemetry is off (ARBOR_TELEMETRY=off): there is no SQLite store", None)
        return from_store(f"SQLite store at {store.path}", ok=True)
    if prom is None:
        return from_store(f"Prometheus is not configured (set ARBOR_PROMETHEUS_URL) — showing {store_word}")
    try:
        status = prom.status()
        if not status.ok:
            return from_store(f"{status.message} — showing {store_word}")
        figures = overview_from_prometheus(prom, preset, now)
    except PromSourceError as exc:
        return from_store(f"{exc} — showing {store_word}")
    except Exception as exc:  # an untrusted source must never take the page down; logged for a fix
        log.exception("the Prometheus source failed unexpectedly")
        return from_store(f"{unusable(prom, type(exc).__name__)} — showing {store_word}")
    return view("prometheus", True, status.message[:1].upper() + status.message[1:], figures)


def _ms(value: float | None) -> str:
    if value is None:
        return UNKNOWN
    if value >= 10_000:
        return f"{value / 1000:,.1f} s"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


#: The one unit of request rates on the Overview (tiles and chart axes, every range).
RATE_UNIT = "req/min"


def per_minute(per_s: float | None) -> str:
    """A request rate (per second) in :data:`RATE_UNIT`, e.g. ``"0.05 req/min"``, ``"1,234 req/min"``;
    three significant figures below 1, ``"—"`` when unknown."""
    if per_s is None:
        return UNKNOWN
    v = per_s * 60
    if v == 0:
        text = "0"
    elif v >= 100:
        text = f"{v:,.0f}"
    elif v >= 1:
        text = f"{v:.2f}"
    else:
        text = f"{v:.3g}"
    return f"{text} {RATE_UNIT}"


def span_label(seconds: float) -> str:
    """A span in its two largest units, rounded to the minute: ``"2 d 3 h"``, ``"45 min"``,
    ``"1 h"``; under a minute in seconds (``"30 s"``)."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    parts = [(minutes // 1440, "d"), (minutes % 1440 // 60, "h"), (minutes % 60, "min")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown)


def _at(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _rate_help(stats: OverviewStats, src: str) -> str:
    """Which span the rate is over: the whole range, or the part of it with data (and from when)."""
    if stats.rate_per_s is None or stats.rate_span_s is None:
        return f"{src} has no data for the last {stats.window}: no rate"
    head = f"{stats.requests or 0:,.0f} requests / "
    if stats.rate_span_s >= stats.window_s:
        return head + f"the whole {stats.window} (in {RATE_UNIT} for every range)"
    since = _at(
        stats.data_since_ts if stats.data_since_ts is not None else stats.until_ts - stats.rate_span_s
    )
    within = f", to within {span_label(stats.data_since_res_s)}" if stats.data_since_res_s else ""
    return head + (
        f"the last {span_label(stats.rate_span_s)}, the part of the {stats.window} range with data in "
        f"{src} (from {since}{within}); in {RATE_UNIT} for every range"
    )


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
        req_help = f"mcts_requests_total over the last {stats.window} (ok + error), exact growth"
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
        else "histogram_quantile over mcts_request_duration_seconds (interpolated within its buckets)"
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
    rate_help = _rate_help(stats, src)
    return (
        Tile("Requests", _count(stats.requests), req_help),
        Tile("Request rate", per_minute(stats.rate_per_s), rate_help),
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
