"""The Overview page's figures: request rate, latency quantiles, errors, tokens, cost, agent mix
and MCTS iterations over a time range, from the SQLite store (exact) or from Prometheus.

* :mod:`~observability.overview.models`: the definitions both sources follow, the time-range
  presets and the typed values (:class:`OverviewStats`, :class:`OverviewSeries`,
  :class:`OverviewView`, :class:`Tile`).
* :mod:`~observability.overview.from_store`: exact figures and chart series from the store.
* :mod:`~observability.overview.from_prometheus`: the same figures from Prometheus, rechecked.
* :mod:`~observability.overview.view`: :func:`load_overview` (the chosen source, falling back to
  the store and saying why) and :func:`tiles` (formatted with units).
"""

from observability.overview.from_prometheus import overview_from_prometheus
from observability.overview.from_store import overview_from_store, quantile, series_from_store
from observability.overview.models import (
    PRESETS,
    SOURCES,
    OverviewSeries,
    OverviewStats,
    OverviewView,
    Tile,
    TimeRange,
    time_range,
)
from observability.overview.view import load_overview, tiles

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
