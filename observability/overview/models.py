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
  Over windows longer than a day (7d, 28d) the store's quantiles are also estimated from its
  histogram buckets (the roll-ups, see :mod:`~observability.overview.from_store`), and the tiles
  state the range the exact value lies in (``OverviewStats.latency_bounds_ms``).
* the SQLite window is ``now - seconds <= ts < now`` on ``requests.ts`` (request start, unix
  seconds); simulated requests (the load generator's 28-day timeline) sit at their simulated time.
  Prometheus counts every request when it is recorded, simulated ones included.
* **tokens**: the store keeps one total per request; Prometheus splits input and output.  Each
  source shows what it has; a split is never invented.
* **agent mix**: agent invocations (one per routing step: ``routing_decisions`` rows of the window's
  requests; Prometheus ``mcts_agent_requests_total``).
* **MCTS iterations**: the sum of ``mcts_runs.iterations`` with ``ts`` in the window.

This module holds the presets and the typed values; the figures come from
:mod:`~observability.overview.from_store` and :mod:`~observability.overview.from_prometheus`, the
page's view from :mod:`~observability.overview.view`.  Nothing here imports streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from observability.durations import duration_seconds

__all__ = [
    "PRESETS",
    "QUANTILES",
    "SOURCES",
    "OverviewSeries",
    "OverviewStats",
    "OverviewView",
    "Source",
    "Tile",
    "TimeRange",
    "time_range",
]

Source = Literal["sqlite", "prometheus"]
#: The sources a page can choose, by name.
SOURCES: tuple[Source, ...] = ("sqlite", "prometheus")
#: Latency quantiles shown, as fractions.
QUANTILES: tuple[float, float, float] = (0.5, 0.95, 0.99)


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
    ``latency_bounds_ms``: empty when p50/p95/p99 are exact (or from Prometheus); otherwise they
    were estimated from the store's histogram buckets and the exact quantile lies in
    ``[lower, upper]`` (ms; ``upper`` None: beyond the top bucket), one pair per quantile.
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
    latency_bounds_ms: tuple[tuple[float, float | None], ...] = ()


@dataclass(frozen=True, slots=True)
class OverviewSeries:
    """Per-bucket figures from the store for the charts.

    Bucket i covers ``[starts[i], starts[i] + bucket_s)`` (unix seconds); buckets tile the window
    exactly, ending at ``until_ts``.  ``requests`` and ``errors`` count ok+error and error requests
    (0 is a real zero: the store records every request); ``p95_ms`` is None for a bucket without
    latencies.  ``p95_from_buckets``: the p95s were estimated from histogram buckets (long windows).
    """

    bucket_s: int
    until_ts: float
    starts: tuple[float, ...]
    requests: tuple[int, ...]
    errors: tuple[int, ...]
    p95_ms: tuple[float | None, ...]
    p95_from_buckets: bool = False


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
