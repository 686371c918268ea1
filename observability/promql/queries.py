"""The console's PromQL queries, one named constant each, and how their placeholders are filled.

Every query is a :class:`string.Template` text with ``$window`` and, for the quantile, ``$q``,
so tests can check that each metric it reads is declared in
:data:`observability.metrics.METRIC_NAMES`; :func:`render_query` fills them from checked input.

Counts over a window ("how many requests in the last hour") use an exact form instead of
``increase()``: per series, the value now minus the value one window ago (0 when the series did
not exist yet), falling back to ``increase()`` for series whose counter reset inside the window
(a restarted process). ``increase()`` extrapolates to the window's edges and misses the first
value of a series born inside the window, so it never equals the store's exact count; the
exact form does, as long as Prometheus scraped the series from its start. The rate is
Prometheus' usual ``rate()``; latency quantiles are ``histogram_quantile()`` (interpolated within
buckets) over the same exact growth of each bucket, so a series born inside the window counts.
Evaluated with ``$window`` set to a range query's step, the count queries give the growth over
each step, which sums to the growth over the whole range (the Overview's charts).
"""

from __future__ import annotations

from string import Template

from observability.durations import parse_duration

__all__ = [
    "AGENT_MIX_QUERY",
    "ALL_QUERIES",
    "COST_QUERY",
    "ERROR_COUNT_QUERY",
    "ERROR_RATIO_QUERY",
    "FIRST_SAMPLE_QUERY",
    "ITERATIONS_QUERY",
    "LATENCY_QUANTILE_QUERY",
    "REQUEST_COUNT_QUERY",
    "REQUEST_RATE_QUERY",
    "TOKENS_QUERY",
    "render_query",
    "window_count",
]


def window_count(selector: str) -> str:
    """PromQL for how much each counter series of ``selector`` grew over ``$window``, exactly.

    ``(now - (a window ago, or 0 for series born since)) unless the series reset``, plus
    ``increase()`` for the series left out (reset in the window, or gone by now).
    """
    return (
        f"(\n    ({selector} - ({selector} offset $window or {selector} * 0))\n"
        f"    unless (resets({selector}[$window]) > 0)\n  )\n"
        f"  or increase({selector}[$window])"
    )


#: Requests per second, averaged over the window.
REQUEST_RATE_QUERY = "sum(rate(mcts_requests_total[$window]))"
#: Requests finished in the window (exact count, see the module docstring).
REQUEST_COUNT_QUERY = f"sum(\n  {window_count('mcts_requests_total')}\n)"
#: Share of the window's requests with status="error" (0 when none failed; no data without requests).
_ERRORS = window_count('mcts_requests_total{status="error"}')
ERROR_RATIO_QUERY = f"(\n  sum(\n  {_ERRORS}\n  )\n  or vector(0)\n)\n/\n{REQUEST_COUNT_QUERY}"
#: Failed requests (status="error") in the window (exact count; no data when no request failed yet).
ERROR_COUNT_QUERY = f"sum(\n  {_ERRORS}\n)"
#: The q-quantile of request latency in seconds over the window (from each bucket's exact growth).
LATENCY_QUANTILE_QUERY = (
    "histogram_quantile(\n  $q,\n  sum by (le) (\n  "
    + window_count("mcts_request_duration_seconds_bucket")
    + "\n  )\n)"
)
#: The time (unix s) of the first sample of ``mcts_requests_total`` seen in the window, to within
#: ``$res``: the earliest sample timestamp at subquery steps ``$res`` apart (at multiples of
#: ``$res``, so data younger than the last such step is not seen; no data: no series).
FIRST_SAMPLE_QUERY = "min(min_over_time(timestamp(mcts_requests_total)[$window:$res]))"
#: Agent invocations in the window, by agent.
AGENT_MIX_QUERY = f"sum by (agent) (\n  {window_count('mcts_agent_requests_total')}\n)"
#: LLM tokens in the window, by direction (input, output).
TOKENS_QUERY = f"sum by (direction) (\n  {window_count('mcts_llm_tokens_total')}\n)"
#: Estimated LLM cost in US dollars over the window.
COST_QUERY = f"sum(\n  {window_count('mcts_llm_cost_usd_total')}\n)"
#: MCTS iterations run in the window.
ITERATIONS_QUERY = f"sum(\n  {window_count('mcts_iterations_total')}\n)"

#: Every query the console runs, by name.
ALL_QUERIES: dict[str, str] = {
    "REQUEST_RATE_QUERY": REQUEST_RATE_QUERY,
    "REQUEST_COUNT_QUERY": REQUEST_COUNT_QUERY,
    "ERROR_RATIO_QUERY": ERROR_RATIO_QUERY,
    "ERROR_COUNT_QUERY": ERROR_COUNT_QUERY,
    "FIRST_SAMPLE_QUERY": FIRST_SAMPLE_QUERY,
    "LATENCY_QUANTILE_QUERY": LATENCY_QUANTILE_QUERY,
    "AGENT_MIX_QUERY": AGENT_MIX_QUERY,
    "TOKENS_QUERY": TOKENS_QUERY,
    "COST_QUERY": COST_QUERY,
    "ITERATIONS_QUERY": ITERATIONS_QUERY,
}


def _duration(name: str, value: object) -> str:
    """``value`` if it is a Prometheus duration; ValueError naming ``name`` otherwise."""
    try:
        if not isinstance(value, str):
            raise ValueError
        parse_duration(value)
    except ValueError:
        raise ValueError(
            f"{name} must be a Prometheus duration such as 5m, 1h or 7d, got {value!r}"
        ) from None
    return value


def render_query(query: str, window: str, q: float | None = None, res: str | None = None) -> str:
    """Fill a query constant's ``$window`` (a Prometheus duration such as ``5m`` or ``1h30m``),
    ``$q`` and ``$res`` (a subquery's resolution, a duration too).

    Raises ValueError for a malformed window or resolution or a quantile outside (0, 1), so that
    user input never reaches PromQL unchecked.
    """
    params = {"window": _duration("window", window)}
    if "$res" in query:
        params["res"] = _duration("res", res)
    if "$q" in query:
        if q is None or isinstance(q, bool) or not 0.0 < float(q) < 1.0:
            raise ValueError(f"quantile must be strictly between 0 and 1, got {q!r}")
        params["q"] = repr(float(q))
    return Template(query).substitute(params)
