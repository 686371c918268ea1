"""Reads of request counts and latency histograms over a window, from the per-minute roll-ups.

A window is ``(since_ts, until_ts]`` (unix s): it holds the requests with
``since_ts < ts <= until_ts``, as an SLO window ending at ``as_of``.  Its counts are exact: the
whole hours inside the window come from ``request_rollups_hourly`` when the grouping and the
filter only use its dimensions (status, verdict, simulated: the SLIs), otherwise the whole days
from ``request_rollups_daily`` (every dimension: the attribution), the other whole minutes
from ``request_rollups`` (see :mod:`observability.store.rollups`), and the two partial minutes
at its edges from the ``requests`` rows (at most two minutes of rows, read through the ``ts``
index).  A window shorter than a minute, or one with no whole minute, is read from the rows only.

Latency quantiles come from the cumulative buckets as Prometheus' ``histogram_quantile`` computes
them (linear interpolation inside the bucket holding the rank ``q * count``; the top bucket's
bound when the rank falls beyond it).  :class:`QuantileEstimate` states the error: the exact
quantile (any of the usual definitions: the order statistics around rank ``q * (count - 1)``
and values between them) lies in ``[lower_ms, upper_ms]``, so the estimate is off by at most
``upper_ms - lower_ms``; ``upper_ms`` is None when the quantile is beyond the top bound (10 s).

This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from observability.store.rollups import (
    BOUNDS_MS,
    DAY,
    DIMENSIONS,
    HOUR,
    LE_COLUMNS,
    MINUTE,
    TEXT_DIMENSIONS,
    row_aggregates_sql,
    row_dimension_sql,
)
from observability.store.transactions import connect

__all__ = [
    "GroupCounts",
    "Histogram",
    "QuantileEstimate",
    "RollupReads",
    "WindowCounts",
    "whole_minutes",
    "window_counts",
]

_COUNT_COLUMNS = ("n", "lat_n", "lat_sum_ms", *LE_COLUMNS)


@dataclass(frozen=True)
class QuantileEstimate:
    """A latency quantile estimated from histogram buckets (ms).

    ``value_ms`` is Prometheus' ``histogram_quantile`` of the buckets; the exact quantile of the
    latencies lies in ``[lower_ms, upper_ms]`` (``upper_ms`` None: beyond the top bound, and
    ``value_ms`` is that bound, as in Prometheus).
    """

    q: float
    value_ms: float
    lower_ms: float
    upper_ms: float | None

    @property
    def max_error_ms(self) -> float | None:
        """Largest possible distance (ms) between ``value_ms`` and the exact quantile (None: unbounded)."""
        return None if self.upper_ms is None else self.upper_ms - self.lower_ms


@dataclass(frozen=True)
class Histogram:
    """Cumulative latency buckets: ``cumulative[i]`` requests with ``latency_ms <= bounds_ms[i]``,
    ``count`` with a latency at all (the ``+Inf`` bucket), ``sum_ms`` their latencies summed."""

    bounds_ms: tuple[float, ...] = BOUNDS_MS
    cumulative: tuple[int, ...] = (0,) * len(BOUNDS_MS)
    count: int = 0
    sum_ms: float = 0.0

    def count_le(self, threshold_ms: float) -> int:
        """Requests with ``latency_ms <= threshold_ms`` (exact: ``threshold_ms`` must be a bound).

        Raises:
            ValueError: ``threshold_ms`` is not one of the bucket bounds.
        """
        for bound, n in zip(self.bounds_ms, self.cumulative, strict=True):
            if bound == threshold_ms:
                return n
        raise ValueError(f"{threshold_ms} ms is not a roll-up bucket bound; bounds (ms): {self.bounds_ms}")

    def quantile(self, q: float) -> QuantileEstimate | None:
        """The ``q`` quantile (0 < q < 1) of the latencies, with its error bound; None without latencies.

        Raises:
            ValueError: ``q`` is not strictly between 0 and 1.
        """
        if not (0.0 < q < 1.0):
            raise ValueError(f"quantile q must be strictly between 0 and 1, got {q}")
        if self.count <= 0:
            return None
        cum = (*self.cumulative, self.count)  # the last entry is the +Inf bucket
        rank = q * self.count
        b = next(i for i, c in enumerate(cum) if c >= rank)
        if b == len(self.bounds_ms):
            value = self.bounds_ms[-1]
        else:
            start = 0.0 if b == 0 else self.bounds_ms[b - 1]
            prev = 0 if b == 0 else cum[b - 1]
            value = start + (self.bounds_ms[b] - start) * (rank - prev) / (cum[b] - prev)
        h = q * (self.count - 1)  # 0-based rank of the exact quantile between two order statistics
        b_lo = next(i for i, c in enumerate(cum) if c > math.floor(h))
        b_hi = next(i for i, c in enumerate(cum) if c > math.ceil(h))
        lower = 0.0 if b_lo == 0 else self.bounds_ms[b_lo - 1]
        upper = None if b_hi == len(self.bounds_ms) else self.bounds_ms[b_hi]
        return QuantileEstimate(q=q, value_ms=value, lower_ms=lower, upper_ms=upper)

    def __add__(self, other: Histogram) -> Histogram:
        if self.bounds_ms != other.bounds_ms:
            raise ValueError("histograms with different bounds cannot be added")
        return Histogram(
            self.bounds_ms,
            tuple(a + b for a, b in zip(self.cumulative, other.cumulative, strict=True)),
            self.count + other.count,
            self.sum_ms + other.sum_ms,
        )


@dataclass(frozen=True)
class GroupCounts:
    """Requests of one group in a window: ``key`` (the values of the grouping dimensions, in the
    order asked; None for NULL), ``n`` requests and their latency ``histogram``."""

    key: tuple[Any, ...]
    n: int
    histogram: Histogram


@dataclass(frozen=True)
class WindowCounts:
    """Counts over ``since_ts < ts <= until_ts`` grouped by ``by``.

    ``rollup_span`` is ``(start, end)`` of the whole minutes read from the roll-ups (None: the
    window was read from the rows only), ``hourly_span`` the part of it read from the hourly
    table (None: none), ``daily_span`` the part read from the daily table (None: none);
    ``edge_rows`` the request rows read at the edges.
    """

    since_ts: float
    until_ts: float
    by: tuple[str, ...]
    groups: tuple[GroupCounts, ...]
    rollup_span: tuple[int, int] | None
    edge_rows: int = 0
    hourly_span: tuple[int, int] | None = None
    daily_span: tuple[int, int] | None = None
    _index: dict[tuple[Any, ...], GroupCounts] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({g.key: g for g in self.groups})

    def get(self, *key: Any) -> GroupCounts | None:
        """The group with this key (values of ``by`` in order), or None when it has no request."""
        return self._index.get(tuple(key))

    def total(self) -> GroupCounts:
        """All groups summed (key ``()``)."""
        hist = Histogram()
        for g in self.groups:
            hist = hist + g.histogram
        return GroupCounts((), sum(g.n for g in self.groups), hist)


def whole_minutes(since_ts: float, until_ts: float, period_s: int = 60) -> tuple[int, int] | None:
    """``(start, end)``: the periods ``start <= p < end`` (multiples of ``period_s``, a minute by
    default) lying wholly in ``(since_ts, until_ts]``, or None when there is none."""
    start = (math.floor(since_ts) // period_s + 1) * period_s  # the first period starting after since_ts
    end = (math.floor(until_ts) // period_s) * period_s  # periods before this one end by until_ts
    return (int(start), int(end)) if start < end else None


def _check(since_ts: float, until_ts: float, by: Sequence[str], where: Mapping[str, Collection[Any]]) -> None:
    if not (math.isfinite(since_ts) and math.isfinite(until_ts)) or since_ts < 0 or since_ts > until_ts:
        raise ValueError(f"a window needs finite 0 <= since_ts <= until_ts, got ({since_ts}, {until_ts}]")
    for dim in (*by, *where):
        if dim not in DIMENSIONS:
            raise ValueError(f"unknown roll-up dimension {dim!r}; dimensions: {', '.join(DIMENSIONS)}")


def _stored(dim: str, value: Any) -> Any:
    """A dimension value as the roll-up stores it (NULL text is '')."""
    return "" if value is None and dim in TEXT_DIMENSIONS else value


def _read(dim: str, value: Any) -> Any:
    """A stored dimension value as readers get it ('' text is None)."""
    return None if value == "" and dim in TEXT_DIMENSIONS else value


def _filter_sql(where: Mapping[str, Collection[Any]], column: Any) -> tuple[str, list[Any]]:
    clauses, params = [], []
    for dim, values in where.items():
        vals = [_stored(dim, v) for v in values]
        clauses.append(f"{column(dim)} IN ({', '.join('?' * len(vals))})" if vals else "0")
        params.extend(vals)
    return "".join(f" AND {c}" for c in clauses), params


def window_counts(
    conn: sqlite3.Connection,
    since_ts: float,
    until_ts: float,
    by: Sequence[str] = (),
    where: Mapping[str, Collection[Any]] | None = None,
    *,
    use_rollups: bool = True,
) -> WindowCounts:
    """Requests with ``since_ts < ts <= until_ts`` grouped by the dimensions ``by`` (of
    :data:`~observability.store.rollups.DIMENSIONS`), restricted to the dimension values in
    ``where`` (e.g. ``{"status": ("ok", "error")}``; None matches NULL).

    Whole hours come from the hourly roll-up when ``by`` and ``where`` only name its dimensions
    (status, verdict, simulated), else whole days from the daily roll-up; the other whole
    minutes from the minute roll-up, the edges
    from the rows (``use_rollups=False``: every request from the rows, the reference the
    benchmark compares with).

    Raises:
        ValueError: an unknown dimension, or not ``0 <= since_ts <= until_ts`` (finite).
        sqlite3.Error: the file cannot be read (or has no roll-ups: schema older than v6).
    """
    where = dict(where or {})
    by = tuple(by)
    _check(since_ts, until_ts, by, where)
    span = whole_minutes(since_ts, until_ts) if use_rollups else None
    hours = days = None
    if span is not None and set(by) | set(where) <= set(HOUR.dimensions):
        hours = whole_minutes(since_ts, until_ts, HOUR.period_s)
    elif span is not None:
        days = whole_minutes(since_ts, until_ts, DAY.period_s)
    acc: dict[tuple[Any, ...], list[float]] = {}
    width = len(by)

    def merge(rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            if row[width] is None:  # an aggregate without GROUP BY over no row
                continue
            key = tuple(_read(d, v) for d, v in zip(by, row[:width], strict=True))
            sums = acc.setdefault(key, [0] * len(_COUNT_COLUMNS))
            for i, v in enumerate(row[width:]):
                sums[i] += v or 0

    group_sql = f" GROUP BY {', '.join(str(i + 1) for i in range(width))}" if by else ""
    edge_rows = 0
    ranges: list[tuple[str, list[float]]]
    if span is None:
        ranges = [("r.ts > ? AND r.ts <= ?", [since_ts, until_ts])]
    else:
        ranges = [
            ("r.ts > ? AND r.ts < ?", [since_ts, span[0]]),
            ("r.ts >= ? AND r.ts <= ?", [span[1], until_ts]),
        ]
        # whole hours from the hourly table, the rest of the whole minutes from the minute table
        parts = [(MINUTE, span[0], span[1])]
        if hours is not None:
            parts = [(MINUTE, span[0], hours[0]), (HOUR, hours[0], hours[1]), (MINUTE, hours[1], span[1])]
        elif days is not None:
            parts = [(MINUTE, span[0], days[0]), (DAY, days[0], days[1]), (MINUTE, days[1], span[1])]
        filt, fparams = _filter_sql(where, lambda d: d)
        cols = ", ".join((*by, *(f"SUM({c})" for c in _COUNT_COLUMNS)))
        for level, lo, hi in parts:
            if lo < hi:
                col = level.time_column
                sql = f"SELECT {cols} FROM {level.table} WHERE {col} >= ? AND {col} < ?{filt}{group_sql}"
                merge(conn.execute(sql, [lo, hi, *fparams]).fetchall())
    filt, fparams = _filter_sql(where, row_dimension_sql)
    dims = "".join(f"{row_dimension_sql(d)}, " for d in by)
    for cond, params in ranges:
        sql = f"SELECT {dims}{row_aggregates_sql('r')} FROM requests r WHERE {cond}{filt}{group_sql}"
        rows = conn.execute(sql, [*params, *fparams]).fetchall()
        edge_rows += sum(int(r[width] or 0) for r in rows)
        merge(rows)
    groups = []
    for key in sorted(acc, key=lambda k: tuple((v is not None, v) for v in k)):
        sums = acc[key]
        hist = Histogram(BOUNDS_MS, tuple(int(v) for v in sums[3:]), int(sums[1]), float(sums[2]))
        groups.append(GroupCounts(key, int(sums[0]), hist))
    return WindowCounts(since_ts, until_ts, by, tuple(groups), span, edge_rows, hours, days)


class RollupReads:
    """Windowed counts over the store file at ``path`` (each call on its own ``query_only`` connection)."""

    def __init__(self, path: Path, busy_timeout_ms: int = 5000) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = busy_timeout_ms

    @contextmanager
    def _reader(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.path, self._busy_timeout_ms)
        try:
            conn.execute("PRAGMA query_only = ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A ``query_only`` connection inside one read transaction (one snapshot for several reads).

        Raises:
            sqlite3.Error: the file cannot be opened.
        """
        with self._reader() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")

    def counts(
        self,
        since_ts: float,
        until_ts: float,
        by: Sequence[str] = (),
        where: Mapping[str, Collection[Any]] | None = None,
        *,
        use_rollups: bool = True,
    ) -> WindowCounts:
        """:func:`window_counts` over ``since_ts < ts <= until_ts`` (both reads in one read transaction).

        Raises:
            ValueError, sqlite3.Error: as :func:`window_counts`.
        """
        with self._reader() as conn:
            conn.execute("BEGIN")  # one snapshot for the roll-ups and the edge rows
            try:
                return window_counts(conn, since_ts, until_ts, by, where, use_rollups=use_rollups)
            finally:
                conn.execute("ROLLBACK")

    def counts_each(
        self,
        windows: Sequence[tuple[float, float]],
        by: Sequence[str] = (),
        where: Mapping[str, Collection[Any]] | None = None,
    ) -> list[WindowCounts]:
        """:func:`window_counts` of each ``(since_ts, until_ts]`` in ``windows``, in order, all on
        one connection in one read transaction (one snapshot: a chart's buckets, say).

        Raises:
            ValueError, sqlite3.Error: as :func:`window_counts`.
        """
        with self._reader() as conn:
            conn.execute("BEGIN")
            try:
                return [window_counts(conn, a, b, by, where) for a, b in windows]
            finally:
                conn.execute("ROLLBACK")
