"""The store's SLO reads: event counts of an SLO kind over windows ending at ``as_of``, by SQL
aggregation over the ``requests`` rows (exact; nothing is fetched row by row).

Events of each SLO kind (among served requests, :data:`~observability.store.reads.SERVED_SQL`):

* ``availability``: every served request; bad when ``status = 'error'``;
* ``latency``: served requests with a ``latency_ms``; bad when ``latency_ms > threshold_ms``.
  A request exactly at the threshold is good, as in a Prometheus histogram, whose ``le``
  bucket counts observations less than *or equal to* its bound;
* ``quality``: served requests with verdict ``correct`` or ``incorrect``; bad when incorrect.

A window of ``w`` seconds ending at ``as_of`` holds the rows with ``as_of - w < ts <= as_of``.
The attribution dimensions are the request's task, its last agent (the last element of
``agents_used``), provider, router and experiment variant; an empty value counts as none (None),
as in the roll-ups.

Where the roll-ups answer exactly (see :mod:`observability.store.rollup_reads`: whole hours and
minutes from the roll-up tables, the two edge minutes from the rows, over the same
``since < ts <= until`` window), :func:`window_counts` and :func:`bad_by_dimension` read them:
every kind and window whose start is ``>= 0``, and for latency a threshold that is one of the
roll-up bucket bounds (:data:`~observability.store.rollups.BOUNDS_MS`, which holds 500 ms).
Otherwise, or with ``use_rollups=False`` (the reference the tests compare with), they aggregate
the rows. :func:`bucket_counts` / :func:`bucket_counts_many` read whole-minute buckets from the
per-minute SLI roll-up plus the rows of their boundary minutes
(:mod:`observability.store.slo_buckets`), other grids from the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from observability.store import slo_buckets
from observability.store.reads import SERVED_SQL, ReadModel
from observability.store.rollup_reads import GroupCounts, WindowCounts
from observability.store.rollups import BOUNDS_MS
from observability.store.schema import SERVED_STATUSES

__all__ = [
    "ATTRIBUTION_DIMENSIONS",
    "SLO_KINDS",
    "bad_by_dimension",
    "bucket_counts",
    "bucket_counts_many",
    "window_counts",
]

#: The SLO kinds the store can count.
SLO_KINDS: tuple[str, ...] = ("availability", "latency", "quality")

#: Attribution dimension -> SQL expression over a ``requests`` row (NULL when it has no value).
_DIMENSION_SQL: dict[str, str] = {
    "task": "NULLIF(task, '')",
    "agent": (
        "NULLIF(CASE WHEN json_valid(agents_used) AND json_type(agents_used) = 'array'"
        " THEN json_extract(agents_used, '$[#-1]') END, '')"
    ),
    "provider": "NULLIF(provider, '')",
    "router": "NULLIF(router, '')",
    "variant": "NULLIF(variant, '')",
}
#: Attribution dimension -> its roll-up dimension.
_ROLLUP_DIMENSION: dict[str, str] = {
    "task": "task", "agent": "last_agent", "provider": "provider", "router": "router", "variant": "variant",
}  # fmt: skip
#: The attribution dimensions, in report order.
ATTRIBUTION_DIMENSIONS: tuple[str, ...] = tuple(_DIMENSION_SQL)


def _events(kind: str, threshold_ms: float | None) -> tuple[str, str, list[Any]]:
    """(SQL condition selecting the kind's events, SQL condition for a bad one, its parameters)."""
    if kind == "availability":
        return SERVED_SQL, "status = 'error'", []
    if kind == "latency":
        if threshold_ms is None or not threshold_ms > 0:
            raise ValueError(f"a latency SLO needs a positive threshold_ms, got {threshold_ms!r}")
        return f"{SERVED_SQL} AND latency_ms IS NOT NULL", "latency_ms > ?", [float(threshold_ms)]
    if kind == "quality":
        return f"{SERVED_SQL} AND verdict IN ('correct', 'incorrect')", "verdict = 'incorrect'", []
    raise ValueError(f"unknown SLO kind {kind!r}; kinds: {list(SLO_KINDS)}")


def _check_windows(windows_s: Sequence[float]) -> None:
    if not windows_s or any(not (w > 0) for w in windows_s):
        raise ValueError(f"windows must be positive numbers of seconds, got {list(windows_s)!r}")


def _rollup_answers(kind: str, since_ts: float, threshold_ms: float | None) -> bool:
    """Whether the roll-ups count this kind exactly over a window starting at ``since_ts``."""
    if since_ts < 0:
        return False
    return kind != "latency" or (threshold_ms is not None and float(threshold_ms) in BOUNDS_MS)


def _rollup_where(kind: str) -> dict[str, tuple[str, ...]]:
    """The roll-up filter selecting the kind's events (before the bad condition)."""
    where = {"status": tuple(SERVED_STATUSES)}
    if kind == "quality":
        where["verdict"] = ("correct", "incorrect")
    return where


def _rollup_pair(counts: WindowCounts, kind: str, threshold_ms: float | None) -> tuple[int, int]:
    """(total, bad) of the kind from roll-up counts grouped by status (availability) or verdict."""
    if kind == "latency":
        hist = counts.total().histogram
        return hist.count, hist.count - hist.count_le(float(threshold_ms or 0.0))
    bad_key = ("error",) if kind == "availability" else ("incorrect",)
    bad = counts.get(*bad_key)
    return counts.total().n, 0 if bad is None else bad.n


def _bad_in_group(group: GroupCounts, kind: str, threshold_ms: float | None) -> int:
    if kind == "latency":
        return group.histogram.count - group.histogram.count_le(float(threshold_ms or 0.0))
    return group.n


def window_counts(
    reads: ReadModel,
    kind: str,
    as_of: float,
    windows_s: Sequence[float],
    threshold_ms: float | None = None,
    *,
    use_rollups: bool = True,
) -> list[tuple[int, int]]:
    """(total, bad) events of ``kind`` for each window (seconds) ending at ``as_of``, in the
    order given. The longest window is counted alone (two sums over its rows, by the ``ts``
    index) and the others in one more pass over the second longest's rows, so a 28-day period
    with the 5m..3d burn windows reads the period once and the last 3 days once more.

    Raises:
        ValueError: unknown kind, a latency kind without a positive ``threshold_ms``, or a
            window that is not positive.
        sqlite3.Error: the store cannot be read.
    """
    eligible, bad, bad_params = _events(kind, threshold_ms)
    _check_windows(windows_s)
    if use_rollups and _rollup_answers(kind, as_of - max(windows_s), threshold_ms):
        by = () if kind == "latency" else ("status",) if kind == "availability" else ("verdict",)
        where = _rollup_where(kind)
        windows = [reads.rollups.counts(as_of - w, as_of, by, where) for w in windows_s]
        return [_rollup_pair(counts, kind, threshold_ms) for counts in windows]
    longest = max(range(len(windows_s)), key=lambda i: windows_s[i])
    rest = [i for i in range(len(windows_s)) if i != longest]
    counts = {longest: _one_pass(reads, eligible, bad, bad_params, as_of, [windows_s[longest]])[0]}
    if rest:
        others = _one_pass(reads, eligible, bad, bad_params, as_of, [windows_s[i] for i in rest])
        counts.update(zip(rest, others, strict=True))
    return [counts[i] for i in range(len(windows_s))]


def _one_pass(
    reads: ReadModel, eligible: str, bad: str, bad_params: list[Any], as_of: float, windows_s: list[float]
) -> list[tuple[int, int]]:
    """(total, bad) for each window, in one query over the longest window's rows."""
    columns: list[str] = []
    params: list[Any] = []
    for i, window in enumerate(windows_s):
        columns.append(f"COALESCE(SUM(ts > ?), 0) AS t{i}, COALESCE(SUM(ts > ? AND {bad}), 0) AS b{i}")
        params += [as_of - window, as_of - window, *bad_params]
    sql = f"SELECT {', '.join(columns)} FROM requests WHERE ts > ? AND ts <= ? AND {eligible}"
    row = reads.query(sql, [*params, as_of - max(windows_s), as_of])[0]
    return [(int(row[f"t{i}"]), int(row[f"b{i}"])) for i in range(len(windows_s))]


def bad_by_dimension(
    reads: ReadModel,
    kind: str,
    as_of: float,
    window_s: float,
    threshold_ms: float | None = None,
    *,
    use_rollups: bool = True,
) -> dict[str, dict[str | None, int]]:
    """Bad events of ``kind`` in the window ending at ``as_of``, counted by each attribution
    dimension's value (None: the request has none), e.g. ``{"task": {"game24": 3}, ...}``.

    Raises ValueError and sqlite3.Error like :func:`window_counts`.
    """
    eligible, bad, bad_params = _events(kind, threshold_ms)
    _check_windows([window_s])
    out: dict[str, dict[str | None, int]] = {name: {} for name in _DIMENSION_SQL}
    # Whole days come from the daily roll-up (a few thousand groups a day), the rest of the whole
    # minutes from the minute roll-up, the edges from the rows (benchmarks/slo_bench.py: 28 days
    # of 1M requests by every dimension in ~0.1 s, the bad rows alone 0.3-2 s).
    if use_rollups and _rollup_answers(kind, as_of - window_s, threshold_ms):
        where = _rollup_where(kind)
        if kind == "availability":
            where["status"] = ("error",)
        elif kind == "quality":
            where["verdict"] = ("incorrect",)
        by = tuple(_ROLLUP_DIMENSION.values())
        for group in reads.rollups.counts(as_of - window_s, as_of, by, where).groups:
            n = _bad_in_group(group, kind, threshold_ms)
            if n <= 0:
                continue
            for name, value in zip(_ROLLUP_DIMENSION, group.key, strict=True):
                key = None if value is None else str(value)
                out[name][key] = out[name].get(key, 0) + n
        return out
    # One pass: the bad rows grouped by every dimension at once (few groups), summed per dimension.
    columns = ", ".join(f"{expr} AS {name}" for name, expr in _DIMENSION_SQL.items())
    groups = ", ".join(str(i + 1) for i in range(len(_DIMENSION_SQL)))
    sql = (
        f"SELECT {columns}, COUNT(*) AS n FROM requests"
        f" WHERE ts > ? AND ts <= ? AND {eligible} AND {bad} GROUP BY {groups}"
    )
    for row in reads.query(sql, [as_of - window_s, as_of, *bad_params]):
        for name, counts in out.items():
            value = None if row[name] is None else str(row[name])
            counts[value] = counts.get(value, 0) + int(row["n"])
    return out


#: A window holding more than this share of the stored requests is read by one sequential scan of
#: the table rather than through the ``ts`` index (same rows; on 1M requests over 28 days the scan
#: took 4.9 s against 17.4 s through the index on a loaded machine).
_SCAN_SHARE = 0.3


def _scan_hint(reads: ReadModel, since_ts: float, until_ts: float) -> str:
    """``" NOT INDEXED"`` when the window ``since_ts < ts <= until_ts`` holds most of the table
    (counted from the hourly roll-up, a few thousand rows), else ``""``."""
    if since_ts < 0:
        return ""
    inside = reads.rollups.counts(since_ts, until_ts).total().n
    stored = reads.rollups.counts(0.0, max(until_ts, 1e11)).total().n  # every request (to year 5138)
    return " NOT INDEXED" if stored and inside > _SCAN_SHARE * stored else ""


def bucket_counts(
    reads: ReadModel,
    kind: str,
    as_of: float,
    window_s: float,
    bucket_s: float,
    threshold_ms: float | None = None,
    *,
    use_rollups: bool = True,
) -> list[tuple[float, int, int]]:
    """(bucket end, total, bad) for consecutive buckets of ``bucket_s`` seconds covering the
    window ending at ``as_of``, oldest first, empty buckets included; bucket ``k`` holds
    ``end - bucket_s < ts <= end`` with ``end = as_of - window_s + (k + 1) x bucket_s`` (the
    last bucket ends at ``as_of`` and may be cut off at the window's start).

    Raises ValueError (also for a non-positive bucket) and sqlite3.Error like :func:`window_counts`.
    """
    return bucket_counts_many(
        reads, [(kind, threshold_ms)], as_of, window_s, bucket_s, use_rollups=use_rollups
    )[0]


def bucket_counts_many(
    reads: ReadModel,
    events: Sequence[tuple[str, float | None]],
    as_of: float,
    window_s: float,
    bucket_s: float,
    *,
    use_rollups: bool = True,
) -> list[list[tuple[float, int, int]]]:
    """:func:`bucket_counts` of several SLO kinds at once, ``events`` being ``(kind,
    threshold_ms)`` pairs (the alert replay of every SLO), the lists in the order of ``events``.

    With whole-minute buckets (and latency thresholds among the roll-up bounds, a window
    starting at ``>= 0``) the counts come from the per-minute SLI roll-up plus the rows of the
    buckets' boundary minutes (:mod:`observability.store.slo_buckets`); otherwise, or with
    ``use_rollups=False`` (the reference the tests compare with), from one read of the window's
    rows for all of them. Both are exact and equal.

    Raises ValueError and sqlite3.Error like :func:`bucket_counts`.
    """
    _check_windows([window_s, bucket_s])
    if not events:
        return []
    row_events = [_events(kind, threshold_ms) for kind, threshold_ms in events]  # validates the kinds
    if use_rollups:
        with reads.rollups.snapshot() as conn:
            if slo_buckets.answerable(conn, events, as_of, window_s, bucket_s):
                try:
                    return slo_buckets.rollup_bucket_counts(
                        conn, events, row_events, as_of, window_s, bucket_s
                    )
                except slo_buckets.TooManyOffsets:
                    pass  # an odd float grid: the rows below answer it
    columns: list[str] = []
    params: list[Any] = []
    for i, (eligible, bad, bad_params) in enumerate(row_events):
        columns.append(f"({eligible}) AS e{i}, ({eligible} AND {bad}) AS b{i}")
        params += bad_params
    sums = ", ".join(
        f"COALESCE(SUM(e{i}), 0) AS t{i}, COALESCE(SUM(b{i}), 0) AS b{i}" for i in range(len(events))
    )
    count = max(1, int(-(-window_s // bucket_s)))  # ceil
    start = as_of - count * bucket_s
    hint = _scan_hint(reads, as_of - window_s, as_of)  # sequential for a window holding most rows
    # bucket index of a row: ceil(x) - 1 with x = (ts - start) / bucket_s > 0, so a row at a
    # bucket's end is in it (ceil spelled with CAST: SQLite's math functions are optional).
    sql = (
        f"SELECT CAST(x AS INTEGER) + (x > CAST(x AS INTEGER)) - 1 AS k, {sums}"
        f" FROM (SELECT (ts - ?) / ? AS x, {', '.join(columns)}"
        f" FROM requests{hint} WHERE ts > ? AND ts <= ? AND {SERVED_SQL}) GROUP BY k"
    )
    rows = reads.query(sql, [start, bucket_s, *params, as_of - window_s, as_of])
    out = []
    for i in range(len(events)):
        by_index = {int(r["k"]): (int(r[f"t{i}"]), int(r[f"b{i}"])) for r in rows}
        out.append([(start + (k + 1) * bucket_s, *by_index.get(k, (0, 0))) for k in range(count)])
    return out
