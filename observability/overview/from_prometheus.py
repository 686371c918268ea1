"""The Overview's figures from Prometheus: the tiles from nine instant queries at the range's end,
the charts from five range queries on the chart's grid (requests, errors, p50/p95/p99 per
bucket), all run at once; every figure checked again here whatever the source returns (a real,
finite, non-negative number; an error ratio at most 1; one value per bucket).

The grid: the range ``(until - seconds, until]`` with ``until`` = ``now`` to the millisecond (the
resolution of Prometheus' timestamps) is cut into buckets of ``preset.bucket_s``; bucket ``i``
is evaluated at its end, so a count query with ``$window`` = the step gives the bucket's exact
growth, and the buckets sum to the tile's count over the whole range (no counter reset inside).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from observability.overview.models import QUANTILES, OverviewSeries, OverviewStats, TimeRange
from observability.promql import (
    ERROR_COUNT_QUERY,
    LATENCY_QUANTILE_QUERY,
    REQUEST_COUNT_QUERY,
    PromSource,
    PromSourceError,
    RangeGrid,
    render_query,
)

__all__ = ["first_sample_res", "overview_from_prometheus", "prometheus_grid", "unusable"]


def unusable(source: PromSource, what: str) -> PromSourceError:
    """The error for ``source`` answering something unusable, ``what`` saying what it was."""
    return PromSourceError(f"Prometheus at {getattr(source, 'url', '?')} answered something unusable: {what}")


def _figure(source: PromSource, value: object, what: str, upper: float | None = None) -> float | None:
    """``value`` as a float figure (None stays None); PromSourceError for anything else: not a
    real number, not finite, negative or above ``upper``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise unusable(source, f"{what} of type {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (upper is not None and number > upper):
        raise unusable(source, f"{what} of {number!r}")
    return number


def _figures(source: PromSource, values: object, what: str) -> tuple[tuple[str, float], ...]:
    """A label -> figure mapping as sorted (label, figure) pairs (None figures left out)."""
    if not isinstance(values, Mapping):
        raise unusable(source, f"{what} of type {type(values).__name__}")
    pairs = ((str(k), _figure(source, v, what)) for k, v in values.items())
    return tuple(sorted((k, v) for k, v in pairs if v is not None))


def _series(source: PromSource, values: object, what: str, points: int) -> tuple[float | None, ...]:
    """A range query's values as figures, one per bucket; PromSourceError for anything else."""
    if not isinstance(values, tuple) or len(values) != points:
        raise unusable(source, f"{what} that is not one value per bucket")
    return tuple(_figure(source, v, what) for v in values)


def prometheus_grid(preset: TimeRange, now: float) -> tuple[float, RangeGrid]:
    """``(until, grid)`` for ``preset`` ending at ``now``: ``until`` is ``now`` to the millisecond
    and the grid evaluates bucket ``i`` (of ``preset.bucket_s`` seconds) at its end,
    ``until - seconds + (i + 1) * bucket_s``."""
    until = round(now, 3)
    points = preset.seconds // preset.bucket_s
    return until, RangeGrid(
        start=until - preset.seconds + preset.bucket_s, step_s=preset.bucket_s, points=points
    )


def _call(method: str, *args: object, **kwargs: object) -> Callable[[PromSource], object]:
    # The method is looked up when the query runs, so a source that lacks it fails that query
    # (reported in order), not the building of the calls.
    return lambda source: getattr(source, method)(*args, **kwargs)


def first_sample_res(step_s: int) -> int:
    """The resolution (s) at which Prometheus' first sample in a range is looked for: a tenth of
    the chart step, 5 s at least (so at most ten subquery steps per chart point)."""
    return max(step_s // 10, 5)


def overview_from_prometheus(
    source: PromSource, preset: TimeRange, now: float
) -> tuple[OverviewStats, OverviewSeries]:
    """Tiles and chart series from Prometheus over ``preset`` ending at ``now`` (unix s).

    The fifteen queries run concurrently (one thread each, each within the source's deadline),
    so a slow Prometheus holds the page for about one query's deadline, not fifteen.  Latencies
    come back from Prometheus in seconds and are converted to milliseconds.  The stats' rate is
    left as the count over the whole window (see :func:`observability.overview.view.load_overview`
    for the rate over the data that exists).  Raises PromSourceError when Prometheus cannot answer
    one of the queries or answers something unusable (the first failing query in the order below
    is reported).
    """
    window = preset.prom_window
    until, grid = prometheus_grid(preset, now)
    step = f"{grid.step_s}s"
    res = first_sample_res(grid.step_s)
    calls: dict[str, Callable[[PromSource], object]] = {
        "count": _call("request_count", window, at=until),
        "first": _call("first_sample", window, f"{res}s", at=until),
        **{f"p{q}": _call("latency_quantile", q, window, at=until) for q in QUANTILES},
        "tokens": _call("tokens", window, at=until),
        "errors": _call("error_ratio", window, at=until),
        "cost": _call("cost_usd", window, at=until),
        "agents": _call("agent_mix", window, at=until),
        "iterations": _call("iterations", window, at=until),
        "chart requests": _call(
            "range_values", render_query(REQUEST_COUNT_QUERY, step), grid, "a request count"
        ),
        "chart errors": _call("range_values", render_query(ERROR_COUNT_QUERY, step), grid, "an error count"),
        **{
            f"chart p{q}": _call(
                "range_values", render_query(LATENCY_QUANTILE_QUERY, step, q=q), grid, "a latency quantile"
            )
            for q in QUANTILES
        },
    }
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="promql") as pool:
        futures = {name: pool.submit(call, source) for name, call in calls.items()}
    got = {name: future.result() for name, future in futures.items()}  # re-raises a query's error
    count = _figure(source, got["count"], "a request count")
    first = _figure(source, got["first"], "a first-sample time")
    if first is None and count is not None:
        # Subquery steps sit at multiples of ``res``: data younger than the last one is not seen.
        first = until - res
    since = until - preset.seconds
    latency = [_figure(source, got[f"p{q}"], f"a p{q * 100:g} latency") for q in QUANTILES]
    tokens = _figures(source, got["tokens"], "a token count")
    stats = OverviewStats(
        source="prometheus",
        window=preset.label,
        window_s=preset.seconds,
        until_ts=until,
        requests=count,
        rate_per_s=None if count is None else count / preset.seconds,
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
        data_since_ts=None if first is None else max(first, since),
        data_since_res_s=float(res),
    )
    requests = _series(source, got["chart requests"], "a request count", grid.points)
    failed = _series(source, got["chart errors"], "an error count", grid.points)
    # No error series (no request failed yet) while requests were counted: 0 errors, known.
    errors = tuple(e if e is not None or n is None else 0.0 for n, e in zip(requests, failed, strict=True))
    p50, p95, p99 = (
        tuple(
            None if v is None else v * 1000
            for v in _series(source, got[f"chart p{q}"], "a latency quantile", grid.points)
        )
        for q in QUANTILES
    )
    series = OverviewSeries(
        source="prometheus",
        bucket_s=grid.step_s,
        until_ts=until,
        starts=tuple(t - grid.step_s for t in grid.times),
        requests=requests,
        errors=errors,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        quantiles_from_buckets=True,
    )
    return stats, series
