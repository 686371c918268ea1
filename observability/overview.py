"""The Overview page's figures: request rate, latency quantiles, errors, tokens, cost, agent mix
and MCTS iterations over a time range, from the SQLite store (exact) or from Prometheus.

Definitions (both sources):

* **requests** are the requests the service answered or failed: ``status`` ``ok`` or ``error``
  (Prometheus' ``mcts_requests_total`` counts exactly these).  ``invalid`` (rejected input) and
  ``cancelled`` (the caller went away) are not failures of the service: they are counted
  separately (SQLite only) and left out of the rate, the error ratio and the latency.
* **error ratio** = error / (ok + error); None when there was no request.
* **latency quantiles** (SQLite) are computed over the ``latency_ms`` of the window's ok and error
  requests with linear interpolation between order statistics (Hyndman & Fan type 7, numpy's
  default ``method="linear"``): for n sorted values x and quantile q, h = (n - 1)q and the
  quantile is x[floor(h)] + (h - floor(h)) (x[floor(h) + 1] - x[floor(h)]).  Prometheus gives
  ``histogram_quantile`` (interpolated within histogram buckets), so the two differ slightly.
* the SQLite window is ``now - seconds <= ts < now`` on ``requests.ts`` (request start, unix
  seconds); simulated requests (the load generator's 28-day timeline) sit at their simulated time.
  Prometheus counts every request when it is recorded, simulated ones included.
* **tokens**: the store keeps one total per request; Prometheus splits input and output.  Each
  source shows what it has; a split is never invented.
* **agent mix**: agent invocations (one per routing step: ``routing_decisions`` rows of the window's
  requests; Prometheus ``mcts_agent_requests_total``).
* **MCTS iterations**: the sum of ``mcts_runs.iterations`` with ``ts`` in the window.

Nothing here imports streamlit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np

from observability.durations import duration_seconds
from observability.promql import PromSource, PromSourceError
from observability.store import SERVED_STATUSES, Store

__all__ = [
    "PRESETS",
    "SOURCES",
    "OverviewSeries",
    "OverviewStats",
    "OverviewView",
    "Tile",
    "TimeRange",
    "load_overview",
    "overview_from_prometheus",
    "overview_from_store",
    "quantile",
    "series_from_store",
    "tiles",
    "time_range",
]

log = logging.getLogger(__name__)

Source = Literal["sqlite", "prometheus"]
#: The sources a page can choose, by name.
SOURCES: tuple[Source, ...] = ("sqlite", "prometheus")
#: Latency quantiles shown, as fractions.
QUANTILES: tuple[float, float, float] = (0.5, 0.95, 0.99)
UNKNOWN = "—"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A time-range preset: its label, length in seconds, Prometheus duration and chart bucket (s)."""

    label: str
    seconds: int
    prom_window: str
    bucket_s: int


#: The page's presets, shortest first; each has a whole number of chart buckets.
PRESETS: tuple[TimeRange, ...] = tuple(
    TimeRange(window, int(duration_seconds(window)), window, int(duration_seconds(bucket)))
    for window, bucket in (
        ("15m", "30s"),
        ("1h", "1m"),
        ("6h", "5m"),
        ("24h", "15m"),
        ("7d", "2h"),
        ("28d", "6h"),
    )
)


def time_range(label: str) -> TimeRange:
    """The preset called ``label`` (e.g. ``"1h"``).  Raises ValueError for an unknown label."""
    for preset in PRESETS:
        if preset.label == label:
            return preset
    raise ValueError(f"unknown time range {label!r}; choose one of {[p.label for p in PRESETS]}")


@dataclass(frozen=True, slots=True)
class OverviewStats:
    """Headline figures over one window from one source; None means the source does not know.

    Units: ``rate_per_s`` requests per second, latencies in milliseconds, ``cost_usd`` US dollars,
    timestamps unix seconds.  ``tokens_by_direction`` is empty when the source has no split (the
    store); ``agent_mix`` is (agent, invocations) pairs sorted by agent.  ``errors``, ``invalid``,
    ``cancelled``, ``simulated`` and ``mcts_runs`` are counted by the store only (None from
    Prometheus).  ``simulated`` counts the window's rows (any status) from the simulated timeline.
    """

    source: Source
    window: str
    window_s: int
    until_ts: float
    requests: float | None
    rate_per_s: float | None
    errors: int | None
    error_ratio: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    tokens_total: float | None
    tokens_by_direction: tuple[tuple[str, float], ...]
    cost_usd: float | None
    agent_mix: tuple[tuple[str, float], ...]
    mcts_iterations: float | None
    mcts_runs: int | None
    invalid: int | None
    cancelled: int | None
    simulated: int | None


@dataclass(frozen=True, slots=True)
class OverviewSeries:
    """Per-bucket figures from the store for the charts.

    Bucket i covers ``[starts[i], starts[i] + bucket_s)`` (unix seconds); buckets tile the window
    exactly, ending at ``until_ts``.  ``requests`` and ``errors`` count ok+error and error requests
    (0 is a real zero: the store records every request); ``p95_ms`` is None for a bucket without
    latencies.
    """

    bucket_s: int
    until_ts: float
    starts: tuple[float, ...]
    requests: tuple[int, ...]
    errors: tuple[int, ...]
    p95_ms: tuple[float | None, ...]


@dataclass(frozen=True, slots=True)
class OverviewView:
    """Everything the Overview page shows for one choice of source and time range.

    ``stats`` comes from ``source`` (the one actually used: ``"sqlite"`` after a fallback) and is
    None only when neither source can answer.  ``series`` always comes from the store (None when
    telemetry is off).  ``status_ok`` False means the page shows ``message`` as a warning.
    ``store_requests`` is the store's total row count in ``requests`` (None without a store) and
    ``latest_ts`` the newest request's ``ts``.
    """

    requested: Source
    source: Source | None
    status_ok: bool
    message: str
    stats: OverviewStats | None
    series: OverviewSeries | None
    store_requests: int | None
    latest_ts: float | None


@dataclass(frozen=True, slots=True)
class Tile:
    """One metric tile: label, formatted value (``"—"`` when unknown) and help text."""

    label: str
    value: str
    help: str


# -- SQLite -----------------------------------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile of ``values`` by linear interpolation (``numpy.quantile``'s default method).

    None for an empty sequence.  Raises ValueError when q is outside [0, 1].
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"q must be in [0, 1], got {q!r}")
    return float(np.quantile(values, q)) if len(values) else None


def _window(window_s: float, now: float) -> tuple[float, float]:
    if not window_s > 0:
        raise ValueError(f"window_s must be positive, got {window_s!r}")
    return now - window_s, now


def overview_from_store(
    store: Store, window_s: int, now: float, *, label: str | None = None
) -> OverviewStats:
    """Exact figures from the store for ``now - window_s <= ts < now`` (see the module docstring).

    ``window_s`` in seconds, ``now`` unix seconds; ``label`` names the window (default ``"<n>s"``).
    Raises ValueError for a non-positive window and sqlite3.Error when the store cannot be read.
    """
    since, until = _window(window_s, now)
    reads = store.reads
    by_status = reads.status_totals(since, until)
    counts = {r["status"]: int(r["n"]) for r in by_status}
    token_sums = [r["tokens"] for r in by_status if r["tokens"] is not None]
    cost_sums = [r["cost"] for r in by_status if r["cost"] is not None]
    errors = counts.get("error", 0)
    served = sum(counts.get(status, 0) for status in SERVED_STATUSES)
    latencies = reads.served_latencies_ms(since, until)
    p50, p95, p99 = (quantile(latencies, q) for q in QUANTILES)
    mix = reads.agent_mix(since, until)
    n_runs, iterations_sum = reads.mcts_totals(since, until)
    # The engine records every search: with requests and no run in the window, 0 iterations is known.
    iterations: float | None = iterations_sum if n_runs or sum(counts.values()) else None
    return OverviewStats(
        source="sqlite",
        window=label or f"{window_s:g}s",
        window_s=int(window_s),
        until_ts=until,
        requests=served,
        rate_per_s=served / window_s,
        errors=errors,
        error_ratio=errors / served if served else None,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        tokens_total=float(sum(token_sums)) if token_sums else None,
        tokens_by_direction=(),
        cost_usd=float(sum(cost_sums)) if cost_sums else None,
        agent_mix=tuple((agent, float(n)) for agent, n in mix),
        mcts_iterations=iterations,
        mcts_runs=n_runs,
        invalid=counts.get("invalid", 0),
        cancelled=counts.get("cancelled", 0),
        simulated=int(sum(r["sim"] or 0 for r in by_status)),
    )


def series_from_store(store: Store, window_s: int, bucket_s: int, now: float) -> OverviewSeries:
    """Requests, errors and p95 latency (ms) per bucket of ``bucket_s`` seconds over the window.

    Buckets tile ``[now - window_s, now)`` from its start.  Raises ValueError when ``window_s`` is
    not a positive multiple of ``bucket_s``.
    """
    since, until = _window(window_s, now)
    if bucket_s <= 0 or window_s % bucket_s:
        raise ValueError(f"window_s ({window_s}) must be a positive multiple of bucket_s ({bucket_s})")
    n = window_s // bucket_s
    requests = [0] * n
    errors = [0] * n
    latencies: list[list[float]] = [[] for _ in range(n)]
    for row in store.reads.served_requests(since, until):
        i = min(int((float(row["ts"]) - since) // bucket_s), n - 1)
        requests[i] += 1
        errors[i] += row["status"] == "error"
        if row["latency_ms"] is not None:
            latencies[i].append(float(row["latency_ms"]))
    return OverviewSeries(
        bucket_s=bucket_s,
        until_ts=until,
        starts=tuple(since + i * bucket_s for i in range(n)),
        requests=tuple(requests),
        errors=tuple(errors),
        p95_ms=tuple(quantile(values, 0.95) for values in latencies),
    )


# -- Prometheus -------------------------------------------------------------------------------------


def _unusable(source: PromSource, what: str) -> PromSourceError:
    return PromSourceError(f"Prometheus at {getattr(source, 'url', '?')} answered something unusable: {what}")


def _figure(source: PromSource, value: object, what: str, upper: float | None = None) -> float | None:
    """``value`` as a float figure (None stays None); PromSourceError for anything else: not a
    real number, not finite, negative or above ``upper``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unusable(source, f"{what} of type {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (upper is not None and number > upper):
        raise _unusable(source, f"{what} of {number!r}")
    return number


def _figures(source: PromSource, values: object, what: str) -> tuple[tuple[str, float], ...]:
    """A label -> figure mapping as sorted (label, figure) pairs (None figures left out)."""
    if not isinstance(values, Mapping):
        raise _unusable(source, f"{what} of type {type(values).__name__}")
    pairs = ((str(k), _figure(source, v, what)) for k, v in values.items())
    return tuple(sorted((k, v) for k, v in pairs if v is not None))


def overview_from_prometheus(source: PromSource, preset: TimeRange, now: float) -> OverviewStats:
    """Instant figures from Prometheus over ``preset.prom_window`` ending now (``now`` labels them).

    The ten queries run concurrently (one thread each), so a slow Prometheus holds the page for
    about one query's deadline, not ten.  Latencies come back from Prometheus in seconds and are
    converted to milliseconds.  Every figure is checked again here (a real, finite,
    non-negative number; an error ratio at most 1), whatever the source returns.  Raises
    PromSourceError when Prometheus cannot answer one of the queries or answers something
    unusable (the first failing query in the order below is reported).
    """
    window = preset.prom_window

    def quantile_call(q: float) -> Callable[[], object]:  # bound late: the source is asked in its thread
        return lambda: source.latency_quantile(q, window)

    calls: dict[str, Callable[[], object]] = {
        "count": lambda: source.request_count(window),
        **{f"p{q}": quantile_call(q) for q in QUANTILES},
        "tokens": lambda: source.tokens(window),
        "rate": lambda: source.request_rate(window),
        "errors": lambda: source.error_ratio(window),
        "cost": lambda: source.cost_usd(window),
        "agents": lambda: source.agent_mix(window),
        "iterations": lambda: source.iterations(window),
    }
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="promql") as pool:
        futures = {name: pool.submit(call) for name, call in calls.items()}
    got = {name: future.result() for name, future in futures.items()}  # re-raises a query's error
    count = _figure(source, got["count"], "a request count")
    latency = [_figure(source, got[f"p{q}"], f"a p{q * 100:g} latency") for q in QUANTILES]
    tokens = _figures(source, got["tokens"], "a token count")
    return OverviewStats(
        source="prometheus",
        window=preset.label,
        window_s=preset.seconds,
        until_ts=now,
        requests=count,
        rate_per_s=_figure(source, got["rate"], "a request rate"),
        errors=None,
        error_ratio=_figure(source, got["errors"], "an error ratio", upper=1.0),
        p50_ms=None if latency[0] is None else latency[0] * 1000,
        p95_ms=None if latency[1] is None else latency[1] * 1000,
        p99_ms=None if latency[2] is None else latency[2] * 1000,
        tokens_total=float(sum(v for _, v in tokens)) if tokens else None,
        tokens_by_direction=tokens,
        cost_usd=_figure(source, got["cost"], "a cost"),
        agent_mix=_figures(source, got["agents"], "an agent invocation count"),
        mcts_iterations=_figure(source, got["iterations"], "an iteration count"),
        mcts_runs=None,
        invalid=None,
        cancelled=None,
        simulated=None,
    )


# -- the page's loader ------------------------------------------------------------------------------


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
        message = str(_unusable(prom, type(exc).__name__))
        return view(fallback_source, False, f"{message} — showing {store_word}", store_stats)
    return view("prometheus", True, status.message[:1].upper() + status.message[1:], stats)


# -- formatting -------------------------------------------------------------------------------------


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
        Tile("Latency p50", _ms(stats.p50_ms), lat_help if stats.p50_ms is not None else no_data),
        Tile("Latency p95", _ms(stats.p95_ms), lat_help if stats.p95_ms is not None else no_data),
        Tile("Latency p99", _ms(stats.p99_ms), lat_help if stats.p99_ms is not None else no_data),
        Tile("MCTS iterations", _count(stats.mcts_iterations), iter_help),
    )
