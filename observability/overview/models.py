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
* **request rate** is over the part of the range that has data, in requests per minute (one unit
  for every range, on the tile and the chart's axis): the requests divided by the time from the
  source's first data in the range (:attr:`OverviewStats.data_since_ts`; a minute at least) to
  the range's end.  A 28-day range over two days of data is a rate over two days, and
  the tile says so.  The store's first data is its earliest request (exact); Prometheus' the
  first sample of ``mcts_requests_total`` in the range, to within a tenth of a chart bucket.
  A chart bucket has data when the source knew anything by its end: for the store, when it holds
  a request at or before the bucket's end; for Prometheus, when ``mcts_requests_total`` has a
  series at the bucket's evaluation time.
* **charts** (both sources, one set of builders): per chart bucket of :func:`chart_step` seconds,
  requests and errors (as req/min), the error ratio and latency p50/p95/p99; a bucket before the
  source's first data is None (no data), not 0.

This module holds the presets and the typed values; the figures come from
:mod:`~observability.overview.from_store` and :mod:`~observability.overview.from_prometheus`, the
page's view from :mod:`~observability.overview.view`.  Nothing here imports streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from observability.durations import duration_seconds

__all__ = [
    "MAX_CHART_POINTS",
    "PRESETS",
    "QUANTILES",
    "SOURCES",
    "STEPS_S",
    "OverviewSeries",
    "OverviewStats",
    "OverviewView",
    "Source",
    "Tile",
    "TimeRange",
    "chart_step",
    "time_range",
]

Source = Literal["sqlite", "prometheus"]
#: The sources a page can choose, by name.
SOURCES: tuple[Source, ...] = ("sqlite", "prometheus")
#: Latency quantiles shown, as fractions.
QUANTILES: tuple[float, float, float] = (0.5, 0.95, 0.99)


#: The most points a chart (and a range query) has.
MAX_CHART_POINTS = 300
#: Chart steps (s) to choose from, 30 s at least: a step holds several scrapes (``make prometheus``
#: scrapes every 5 s; Prometheus' default is 15 s), so each bucket's growth is not one scrape's jump.
STEPS_S: tuple[int, ...] = tuple(
    int(duration_seconds(d))
    for d in ("30s", "1m", "2m", "5m", "10m", "15m", "30m", "1h", "2h", "3h", "6h", "12h", "1d")
)


def chart_step(range_s: float, max_points: int = MAX_CHART_POINTS) -> int:
    """The chart bucket (and range-query step) for a range of ``range_s`` seconds: the shortest of
    :data:`STEPS_S` that divides the range into at most ``max_points`` buckets (the longest step
    for a range too long for any).

    Raises ValueError for a range that is not positive or a ``max_points`` below 1.
    """
    if not range_s > 0 or max_points < 1:
        raise ValueError(f"need range_s > 0 and max_points >= 1, got {range_s!r}, {max_points!r}")
    for step in STEPS_S:
        if range_s / step <= max_points:
            return step
    return STEPS_S[-1]


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A time-range preset: its label, length in seconds, Prometheus duration and chart bucket (s)."""

    label: str
    seconds: int
    prom_window: str
    bucket_s: int


#: The page's presets, shortest first; each has a whole number of chart buckets of
#: :func:`chart_step` seconds (15m and 1h: 30 s, 6h: 2 min, 24h: 5 min, 7d: 1 h, 28d: 3 h).
PRESETS: tuple[TimeRange, ...] = tuple(
    TimeRange(window, int(duration_seconds(window)), window, chart_step(duration_seconds(window)))
    for window in ("15m", "1h", "6h", "24h", "7d", "28d")
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
    ``data_since_ts``: the source's first data in the window (unix s, at least the window's start;
    None: no data), and ``data_since_res_s`` how precise it is (0: exact).  ``rate_span_s``: the
    seconds ``rate_per_s`` is averaged over, from ``data_since_ts`` to the end (``window_s`` when
    all of the window has data; None without data).
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
    data_since_ts: float | None = None
    data_since_res_s: float = 0.0
    rate_span_s: float | None = None


@dataclass(frozen=True, slots=True)
class OverviewSeries:
    """Per-bucket figures for the charts, from one source.

    Bucket i covers ``[starts[i], starts[i] + bucket_s)`` (unix seconds; Prometheus evaluates it
    at its end); buckets tile the window exactly, ending at ``until_ts``.  ``requests`` and
    ``errors`` count ok+error and error requests, None for a bucket before the source's first data
    (after it, 0 is a real zero); ``p50_ms``/``p95_ms``/``p99_ms`` are None for a bucket without
    latencies.  ``quantiles_from_buckets``: the quantiles were estimated from histogram buckets
    (Prometheus; the store over long windows).  ``data_from_ts`` is the start of the first bucket
    with data (None: no bucket has any).
    """

    source: Source
    bucket_s: int
    until_ts: float
    starts: tuple[float, ...]
    requests: tuple[float | None, ...]
    errors: tuple[float | None, ...]
    p50_ms: tuple[float | None, ...]
    p95_ms: tuple[float | None, ...]
    p99_ms: tuple[float | None, ...]
    quantiles_from_buckets: bool = False

    @property
    def data_from_ts(self) -> float | None:
        """The start of the first bucket with data (unix s), None when there is none."""
        return next((s for s, n in zip(self.starts, self.requests, strict=True) if n is not None), None)

    @property
    def per_minute(self) -> tuple[tuple[float | None, ...], tuple[float | None, ...]]:
        """Requests and errors of each bucket as rates in requests per minute (None stays None)."""
        minutes = self.bucket_s / 60
        return (
            tuple(None if n is None else n / minutes for n in self.requests),
            tuple(None if n is None else n / minutes for n in self.errors),
        )

    @property
    def error_ratios(self) -> tuple[float | None, ...]:
        """errors / requests per bucket; None for a bucket without requests (or without data)."""
        return tuple(
            None if not n or e is None else e / n for n, e in zip(self.requests, self.errors, strict=True)
        )


@dataclass(frozen=True, slots=True)
class OverviewView:
    """Everything the Overview page shows for one choice of source and time range.

    ``stats`` and ``series`` come from ``source`` (the one actually used: ``"sqlite"`` after a
    fallback, whole: tiles and charts never mix sources) and are None only when neither source
    can answer (telemetry off and Prometheus not chosen or failing).  ``status_ok`` False means
    the page shows ``message`` as a warning.  ``store_requests`` is the store's total row count
    in ``requests`` (None without a store) and ``latest_ts`` the newest request's ``ts``.
    ``rate_note`` says, when the source's data misses more than one chart bucket of the range,
    over which part of it the rate is (None otherwise).
    """

    requested: Source
    source: Source | None
    status_ok: bool
    message: str
    stats: OverviewStats | None
    series: OverviewSeries | None
    store_requests: int | None
    latest_ts: float | None
    rate_note: str | None = None


@dataclass(frozen=True, slots=True)
class Tile:
    """One metric tile: label, formatted value (``"—"`` when unknown) and help text."""

    label: str
    value: str
    help: str
