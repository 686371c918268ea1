"""The Overview page's figures: request rate, latency quantiles, errors, tokens, cost, agent mix
and MCTS iterations over a time range, from the SQLite store (exact) or from Prometheus.

* :mod:`~observability.overview.models`: the definitions both sources follow, the time-range
  presets and the typed values (:class:`OverviewStats`, :class:`OverviewSeries`,
  :class:`OverviewView`, :class:`Tile`).
* :mod:`~observability.overview.from_store`: exact figures and chart series from the store.
* :mod:`~observability.overview.from_prometheus`: the same figures and series from Prometheus
  (instant and range queries), rechecked.
* :mod:`~observability.overview.view`: :func:`load_overview` (the chosen source, falling back to
  the store and saying why) and :func:`tiles` (formatted with units).
"""

from observability.overview.from_prometheus import overview_from_prometheus, prometheus_grid
from observability.overview.from_store import overview_from_store, quantile, series_from_store
from observability.overview.models import (
    MAX_CHART_POINTS,
    PRESETS,
    SOURCES,
    OverviewSeries,
    OverviewStats,
    OverviewView,
    Tile,
    TimeRange,
    chart_step,
    time_range,
)
from observability.overview.view import (
    RATE_UNIT,
    load_overview,
    per_minute,
    rate_over_data,
    span_label,
    tiles,
)

__all__ = [
    "MAX_CHART_POINTS",
    "PRESETS",
    "RATE_UNIT",
    "SOURCES",
    "OverviewSeries",
    "OverviewStats",
    "OverviewView",
    "Tile",
    "TimeRange",
    "chart_step",
    "load_overview",
    "overview_from_prometheus",
    "overview_from_store",
    "per_minute",
    "prometheus_grid",
    "quantile",
    "rate_over_data",
    "series_from_store",
    "span_label",
    "tiles",
    "time_range",
]
