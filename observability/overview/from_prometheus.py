"""The Overview's figures from Prometheus: ten instant queries run concurrently, every figure
checked again here whatever the source returns (a real, finite, non-negative number; an error
ratio at most 1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from observability.overview.models import QUANTILES, OverviewStats, TimeRange
from observability.promql import PromSource, PromSourceError

__all__ = ["overview_from_prometheus", "unusable"]


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


def _quantile_call(source: PromSource, q: float, window: str) -> Callable[[], object]:
    # A closure, not functools.partial: the method is looked up when the query runs, so a source
    # that lacks it fails that query (reported in order), not the building of the calls.
    return lambda: source.latency_quantile(q, window)


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
    calls: dict[str, Callable[[], object]] = {
        "count": lambda: source.request_count(window),
        **{f"p{q}": _quantile_call(source, q, window) for q in QUANTILES},
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
