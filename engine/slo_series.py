"""The SLO charts' series, shared by the SLO page (app/slo.py) and the HTML review
(engine/slo_review_html.py): budget remaining per bucket against the ideal line, and the burn
rate over a sliding window, from an SLO source's per-bucket counts and
:mod:`observability.slo.math`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from observability.durations import format_duration
from observability.slo.math import BucketCount, BudgetPoint, BurnPoint, budget_over_time, burn_rate_over_time
from observability.slo.models import SLO

__all__ = ["BucketSource", "SLOSeries", "bucket_plan", "slo_series"]

_BUCKETS_S = (60, 300, 900, 1800, 3600, 4 * 3600, 86400)
_MAX_BUCKETS = 800


class BucketSource(Protocol):
    """An SLO source that counts events per time bucket (the SQLite source does)."""

    def buckets(self, slo: SLO, as_of: float, window_s: float, bucket_s: float) -> Sequence[BucketCount]:
        """Events per bucket of ``bucket_s`` s over the window ending at ``as_of``, oldest first."""
        ...


def bucket_plan(period_s: float) -> tuple[float, float]:
    """(bucket width, burn-rate window) in seconds for charts over ``period_s``: the smallest
    bucket giving at most 800 points; the burn window is 5 minutes for periods up to an hour,
    1 hour up to 7 days, else 6 hours (as the page alerts' long windows), and never shorter than
    a bucket."""
    bucket = next((b for b in _BUCKETS_S if period_s / b <= _MAX_BUCKETS), _BUCKETS_S[-1])
    window = 300.0 if period_s <= 3600 else 3600.0 if period_s <= 7 * 86400 else 6 * 3600.0
    window = max(window, float(bucket))
    return float(bucket), window


@dataclass(frozen=True)
class SLOSeries:
    """One SLO's chart series over the period ``(start_ts, start_ts + period_s]``: budget
    remaining per ``bucket_s`` bucket (with the ideal line) and the burn rate over
    ``burn_window`` (e.g. ``"1h"``) at each bucket end."""

    start_ts: float
    period_s: float
    bucket_s: float
    budget: tuple[BudgetPoint, ...]
    burn: tuple[BurnPoint, ...]
    burn_window: str


def slo_series(slo: SLO, source: BucketSource, as_of: float, period_s: float) -> SLOSeries:
    """The series of ``slo`` over the ``period_s`` seconds ending at ``as_of`` (buckets and burn
    window from :func:`bucket_plan`).

    Raises:
        ValueError: a period that is not positive.
        sqlite3.Error (or the source's own error): the source cannot be read.
    """
    if not period_s > 0:
        raise ValueError(f"the period must be a positive number of seconds, got {period_s!r}")
    bucket_s, window_s = bucket_plan(period_s)
    start = as_of - period_s
    wide = source.buckets(slo, as_of, period_s + window_s, bucket_s)
    count = round(period_s / bucket_s)
    if count * bucket_s == period_s and count <= len(wide):
        period_buckets = wide[-count:]  # the same grid, ending at as_of: one read of the rows, not two
    else:
        period_buckets = source.buckets(slo, as_of, period_s, bucket_s)
    budget = budget_over_time(period_buckets, slo.objective, start, period_s)
    burn = [p for p in burn_rate_over_time(wide, slo.objective, window_s) if p.ts > start]
    return SLOSeries(
        start, period_s, bucket_s, tuple(budget), tuple(burn), format_duration(timedelta(seconds=window_s))
    )
