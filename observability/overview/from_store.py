"""The Overview's figures from the SQLite store: exact counts, latency quantiles by linear
interpolation (numpy's default), and per-bucket series for the charts (p50/p95/p99 per bucket).

The window is ``now - seconds <= ts < now`` on ``requests.ts``; see
:mod:`observability.overview.models` for the definitions shared with Prometheus.

Windows longer than :data:`ROLLUP_AFTER_S` (one day: the 7d and 28d presets) read the latency
quantiles and the charts' per-bucket figures from the roll-ups
(:mod:`observability.store.rollup_reads`: exact counts, the edge minutes from the rows) instead of
fetching every request: requests and errors per bucket stay exact, and p50/p95/p99 (and the
chart's quantiles) are estimated from the histogram buckets as Prometheus' ``histogram_quantile`` does,
with the range the exact quantile lies in (:attr:`OverviewStats.latency_bounds_ms`).  The
roll-up windows are ``(since, until]``; ``[since, until)`` is the same set of float timestamps as
``(nextafter(since, -inf), nextafter(until, -inf)]``.  Windows of a day or less stay exact from
the rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from observability.overview.models import QUANTILES, OverviewSeries, OverviewStats
from observability.store import SERVED_STATUSES, Store

__all__ = ["ROLLUP_AFTER_S", "overview_from_store", "quantile", "series_from_store"]

#: Windows longer than this (seconds) read latencies and chart buckets from the roll-ups.
ROLLUP_AFTER_S = 86_400


def _half_open(since: float, until: float) -> tuple[float, float]:
    """``(a, b]`` holding the same float timestamps as ``[since, until)``."""
    return math.nextafter(since, -math.inf), math.nextafter(until, -math.inf)


def _use_rollups(window_s: float, since: float) -> bool:
    return window_s > ROLLUP_AFTER_S and math.nextafter(since, -math.inf) >= 0


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
    long_window = window_s > ROLLUP_AFTER_S  # most of the table: read it in order, not by the ts index
    by_status = reads.status_totals(since, until, scan=long_window)
    counts = {r["status"]: int(r["n"]) for r in by_status}
    token_sums = [r["tokens"] for r in by_status if r["tokens"] is not None]
    cost_sums = [r["cost"] for r in by_status if r["cost"] is not None]
    errors = counts.get("error", 0)
    served = sum(counts.get(status, 0) for status in SERVED_STATUSES)
    bounds: tuple[tuple[float, float | None], ...] = ()
    if _use_rollups(window_s, since):
        a, b = _half_open(since, until)
        hist = reads.rollups.counts(a, b, (), {"status": SERVED_STATUSES}).total().histogram
        estimates = [hist.quantile(q) for q in QUANTILES]
        p50, p95, p99 = (None if e is None else e.value_ms for e in estimates)
        bounds = tuple((e.lower_ms, e.upper_ms) for e in estimates if e is not None)
    else:
        latencies = reads.served_latencies_ms(since, until)
        p50, p95, p99 = (quantile(latencies, q) for q in QUANTILES)
    mix = reads.agent_mix(since, until, scan=long_window)
    n_runs, iterations_sum = reads.mcts_totals(since, until)
    # The engine records every search: with requests and no run in the window, 0 iterations is known.
    iterations: float | None = iterations_sum if n_runs or sum(counts.values()) else None
    first = _first_ts(store)
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
        latency_bounds_ms=bounds,
        data_since_ts=None if first is None or first >= until else max(first, since),
    )


def _first_ts(store: Store) -> float | None:
    """The store's earliest request ``ts`` (any status; None when it holds none)."""
    row = store.reads.query("SELECT MIN(ts) AS first FROM requests")[0]
    return None if row["first"] is None else float(row["first"])


def _before_data(starts: tuple[float, ...], bucket_s: int, first: float | None) -> list[bool]:
    """For each bucket, whether it ends before the store's first request (so it has no data)."""
    return [first is None or first >= start + bucket_s for start in starts]


def series_from_store(store: Store, window_s: int, bucket_s: int, now: float) -> OverviewSeries:
    """Requests, errors and latency p50/p95/p99 (ms) per bucket of ``bucket_s`` seconds over the window.

    Buckets tile ``[now - window_s, now)`` from its start.  A bucket that ends before the store's
    first request is None (no data), not 0.  Raises ValueError when ``window_s`` is not a
    positive multiple of ``bucket_s``; sqlite3.Error when the store cannot be read.
    """
    since, until = _window(window_s, now)
    if bucket_s <= 0 or window_s % bucket_s:
        raise ValueError(f"window_s ({window_s}) must be a positive multiple of bucket_s ({bucket_s})")
    n = window_s // bucket_s
    starts = tuple(since + i * bucket_s for i in range(n))
    empty = _before_data(starts, bucket_s, _first_ts(store))
    if _use_rollups(window_s, since):
        series = _series_from_rollups(store, bucket_s, until, starts)
    else:
        requests = [0] * n
        errors = [0] * n
        latencies: list[list[float]] = [[] for _ in range(n)]
        for row in store.reads.served_requests(since, until):
            i = min(int((float(row["ts"]) - since) // bucket_s), n - 1)
            requests[i] += 1
            errors[i] += row["status"] == "error"
            if row["latency_ms"] is not None:
                latencies[i].append(float(row["latency_ms"]))
        p50, p95, p99 = ([quantile(values, q) for values in latencies] for q in QUANTILES)
        series = OverviewSeries(
            "sqlite",
            bucket_s,
            until,
            starts,
            tuple(requests),
            tuple(errors),
            tuple(p50),
            tuple(p95),
            tuple(p99),
        )
    if not any(empty):
        return series

    def blank(values: tuple[float | None, ...]) -> tuple[float | None, ...]:
        return tuple(None if e else v for v, e in zip(values, empty, strict=True))

    return replace(
        series,
        requests=blank(series.requests),
        errors=blank(series.errors),
        p50_ms=blank(series.p50_ms),
        p95_ms=blank(series.p95_ms),
        p99_ms=blank(series.p99_ms),
    )


def _series_from_rollups(
    store: Store, bucket_s: int, until: float, starts: tuple[float, ...]
) -> OverviewSeries:
    """The series of :func:`series_from_store` with each bucket read from the roll-ups (exact
    counts; quantiles estimated from the histogram buckets)."""
    requests, errors = [], []
    quantiles: list[list[float | None]] = [[] for _ in QUANTILES]
    ends = (*starts[1:], until)
    windows = [_half_open(start, end) for start, end in zip(starts, ends, strict=True)]
    for counts in store.reads.rollups.counts_each(windows, ("status",), {"status": SERVED_STATUSES}):
        err = counts.get("error")
        total = counts.total()
        requests.append(total.n)
        errors.append(0 if err is None else err.n)
        for values, q in zip(quantiles, QUANTILES, strict=True):
            estimate = total.histogram.quantile(q)
            values.append(None if estimate is None else estimate.value_ms)
    p50, p95, p99 = (tuple(v) for v in quantiles)
    return OverviewSeries(
        "sqlite", bucket_s, until, starts, tuple(requests), tuple(errors), p50, p95, p99,
        quantiles_from_buckets=True,
    )  # fmt: skip
