"""SLO event counts from the SQLite store (exact): the SQLite side of the SLO sources.

What an event is for each SLO kind, and which rows a window holds (``as_of - window < ts <=
as_of``), is defined once in :mod:`observability.store.slo_reads` (the store package keeps
every read query); this module turns an :class:`~observability.slo.models.SLO` into those reads
and returns typed counts. It reads the ``requests`` rows themselves (no roll-up tables).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from observability.slo.math import BucketCount, attribution_shares
from observability.slo.models import SLO
from observability.store.reads import ReadModel
from observability.store.slo_reads import (
    ATTRIBUTION_DIMENSIONS,
    bad_by_dimension,
    bucket_counts,
    bucket_counts_many,
    window_counts,
)

__all__ = ["ATTRIBUTION_DIMENSIONS", "Counts", "SqliteSLOSource", "threshold_ms"]


@dataclass(frozen=True)
class Counts:
    """Events of one SLO in the window of ``window_s`` seconds ending at ``as_of`` (unix s)."""

    as_of: float
    window_s: float
    total: int
    bad: int


def threshold_ms(slo: SLO) -> float | None:
    """A latency SLO's threshold in milliseconds (exact decimal scaling: 0.3 s -> 300.0); None
    for other kinds."""
    if slo.threshold_seconds is None:
        return None
    return float(Decimal(str(slo.threshold_seconds)) * 1000)


class SqliteSLOSource:
    """SLO counts, budget buckets and attribution from the store's read model ``reads``.

    Every method raises ``sqlite3.Error`` when the store cannot be read and ValueError for a
    window that is not positive.
    """

    name = "sqlite"

    def __init__(self, reads: ReadModel) -> None:
        self.reads = reads

    def counts(self, slo: SLO, as_of: float, windows_s: Sequence[float]) -> list[Counts]:
        """The SLO's (total, bad) events for each window ending at ``as_of``, in one query."""
        pairs = window_counts(self.reads, slo.kind, as_of, list(windows_s), threshold_ms(slo))
        return [Counts(as_of, float(w), total, bad) for w, (total, bad) in zip(windows_s, pairs, strict=True)]

    def attribution(self, slo: SLO, as_of: float, window_s: float) -> dict[str, dict[str, float]]:
        """Shares of the SLO's bad events in the window by task, agent (a request's last agent),
        provider, router and variant: ``{"task": {"game24": 0.75, ...}, ...}``; each
        dimension's shares sum to 1, and each is empty when there are no bad events. A request
        without a value for a dimension counts under ``"(none)"``."""
        counts = bad_by_dimension(self.reads, slo.kind, as_of, window_s, threshold_ms(slo))
        return {dim: attribution_shares(counts[dim]) for dim in ATTRIBUTION_DIMENSIONS}

    def buckets(self, slo: SLO, as_of: float, window_s: float, bucket_s: float) -> list[BucketCount]:
        """Events per bucket of ``bucket_s`` seconds over the window ending at ``as_of``, oldest
        first (for :func:`observability.slo.math.budget_over_time`)."""
        rows = bucket_counts(self.reads, slo.kind, as_of, window_s, bucket_s, threshold_ms(slo))
        return [BucketCount(end, total, bad) for end, total, bad in rows]

    def buckets_many(
        self, slos: Sequence[SLO], as_of: float, window_s: float, bucket_s: float
    ) -> list[list[BucketCount]]:
        """:meth:`buckets` of several SLOs over the same window, from one read of its rows."""
        events = [(slo.kind, threshold_ms(slo)) for slo in slos]
        found = bucket_counts_many(self.reads, events, as_of, window_s, bucket_s)
        return [[BucketCount(end, total, bad) for end, total, bad in rows] for rows in found]
