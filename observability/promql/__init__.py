"""The console's Prometheus queries, over Prometheus' HTTP API, treating every reply as untrusted.

* :mod:`~observability.promql.queries`: every PromQL query as a named template, and
  :func:`render_query` (checked ``$window`` and ``$q``).
* :mod:`~observability.promql.client`: the HTTP exchange, with a total deadline per query and a
  bounded reply.
* :mod:`~observability.promql.reply`: the reply's pydantic models, its validation and
  :class:`PromSourceError`.
* :mod:`~observability.promql.matrix`: range queries: the grid of evaluation times and the
  ``matrix`` reply, validated.
* :mod:`~observability.promql.source`: :class:`PromSource`, the figures the pages show, each
  checked against what it means, and :class:`SourceStatus`.
"""

from observability.promql.client import MAX_REPLY_BYTES
from observability.promql.matrix import RangeGrid, RangeSeries, parse_matrix
from observability.promql.queries import (
    AGENT_MIX_QUERY,
    ALL_QUERIES,
    COST_QUERY,
    ERROR_COUNT_QUERY,
    ERROR_RATIO_QUERY,
    FIRST_SAMPLE_QUERY,
    ITERATIONS_QUERY,
    LATENCY_QUANTILE_QUERY,
    REQUEST_COUNT_QUERY,
    REQUEST_RATE_QUERY,
    TOKENS_QUERY,
    render_query,
    window_count,
)
from observability.promql.reply import PromSourceError
from observability.promql.source import PromSource, SourceStatus

__all__ = [
    "AGENT_MIX_QUERY",
    "ALL_QUERIES",
    "COST_QUERY",
    "ERROR_COUNT_QUERY",
    "ERROR_RATIO_QUERY",
    "FIRST_SAMPLE_QUERY",
    "ITERATIONS_QUERY",
    "LATENCY_QUANTILE_QUERY",
    "MAX_REPLY_BYTES",
    "REQUEST_COUNT_QUERY",
    "REQUEST_RATE_QUERY",
    "TOKENS_QUERY",
    "PromSource",
    "PromSourceError",
    "RangeGrid",
    "RangeSeries",
    "SourceStatus",
    "parse_matrix",
    "render_query",
    "window_count",
]
