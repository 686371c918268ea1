"""SLO event counts per bucket from the per-minute SLI roll-up, exact to the row.

Buckets of ``bucket_s`` seconds (a whole number of minutes) cover the window
``as_of - window_s < ts <= as_of``: bucket ``k`` of ``count`` ends at ``start + (k + 1) x
bucket_s`` with ``start = as_of - count x bucket_s`` (the last one at ``as_of``), the first is cut
off at the window's start.  With ``C(t)`` the events with ``ts <= t``, a bucket ``(a, b]`` holds
``C(b) - C(a)``, and for a boundary ``t`` in the minute ``m <= t < m + 60``::

    C(t) = (events of the minutes before m)      + (rows with m <= ts <= t)
         = (events of the minutes up to m, incl.) - (rows with t < ts < m + 60)

The minute sums come from ``request_rollups_minute_sli`` (one grouped read of the window's
minutes, a few rows each), the rows from ``requests`` through the ``ts`` index, one query for
all the boundaries sharing an offset ``t - m`` (every boundary of a whole-minute grid shares
the offset of ``as_of``; the window's start may add one more).  The lower form is used for an
offset up to 30 s, the upper one beyond, so at most half a minute of rows is read per boundary.
``ts - m`` is exact in floating point for ``m <= ts < m + 60`` (Sterbenz), so the comparison
with the offset is the comparison with ``t``.

The kinds and their bad events are those of :mod:`observability.store.slo_reads` (latency: the
threshold must be a roll-up bound, :data:`~observability.store.rollups.BOUNDS_MS`, and bad is
``latency_ms > threshold``, i.e. ``lat_n - le_<threshold>`` in the roll-up).  Never imports
``engine`` or streamlit.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np

from observability.store.rollups import BOUNDS_MS, MINUTE_SLI, bucket_column
from observability.store.schema import SERVED_STATUSES

__all__ = ["MAX_OFFSETS", "MAX_ROW_SHARE", "TooManyOffsets", "answerable", "rollup_bucket_counts"]

#: Largest share of the window's rows the boundary minutes may hold (``min(offset, 60 - offset) /
#: bucket_s``) for the roll-up to answer: beyond it (minute buckets ending mid-minute) the rows
#: are read once instead, which is as fast there (benchmarks/slo_bench.py ``buckets_by_grid``).
MAX_ROW_SHARE = 0.3
#: Distinct boundary offsets within their minute read from the rows, at most (a whole-minute grid
#: has one or two; beyond this the caller reads the rows instead).
MAX_OFFSETS = 4


class TooManyOffsets(ValueError):
    """The boundaries fall at more than :data:`MAX_OFFSETS` distinct offsets within their minute."""


_SERVED = "status IN ({})".format(", ".join(repr(s) for s in SERVED_STATUSES))


def answerable(
    conn: sqlite3.Connection,
    events: Sequence[tuple[str, float | None]],
    as_of: float,
    window_s: float,
    bucket_s: float,
) -> bool:
    """Whether :func:`rollup_bucket_counts` answers these events and grid exactly: whole-minute
    buckets, a window starting at ``>= 0``, latency thresholds among the roll-up bounds, and a
    store that has the per-minute SLI roll-up (migrated); and boundary minutes holding
    at most :data:`MAX_ROW_SHARE` of the rows (else the rows are as fast to read)."""
    if as_of - window_s < 0 or bucket_s % 60 or not math.isfinite(as_of):
        return False
    offset = as_of - math.floor(as_of) // 60 * 60
    if min(offset, 60.0 - offset) / bucket_s > MAX_ROW_SHARE:
        return False
    if any(kind == "latency" and (th is None or float(th) not in BOUNDS_MS) for kind, th in events):
        return False
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [MINUTE_SLI.table])
    return found.fetchone() is not None


def _rollup_sums(kind: str, threshold_ms: float | None) -> tuple[str, str]:
    """(SQL sum of the kind's events, SQL sum of its bad events) over minute SLI roll-up rows."""
    if kind == "availability":
        return f"CASE WHEN {_SERVED} THEN n ELSE 0 END", "CASE WHEN status = 'error' THEN n ELSE 0 END"
    if kind == "latency":
        le = bucket_column(float(threshold_ms or 0.0))
        return (
            f"CASE WHEN {_SERVED} THEN lat_n ELSE 0 END",
            f"CASE WHEN {_SERVED} THEN lat_n - {le} ELSE 0 END",
        )
    if kind == "quality":
        quality = f"{_SERVED} AND verdict IN ('correct', 'incorrect')"
        return (
            f"CASE WHEN {quality} THEN n ELSE 0 END",
            f"CASE WHEN {_SERVED} AND verdict = 'incorrect' THEN n ELSE 0 END",
        )
    raise ValueError(f"unknown SLO kind {kind!r}")


def rollup_bucket_counts(
    conn: sqlite3.Connection,
    events: Sequence[tuple[str, float | None]],
    row_events: Sequence[tuple[str, str, list[Any]]],
    as_of: float,
    window_s: float,
    bucket_s: float,
) -> list[list[tuple[float, int, int]]]:
    """(bucket end, total, bad) per bucket for each of ``events`` (``(kind, threshold_ms)``), from
    the minute SLI roll-up and the boundary minutes' rows; ``row_events`` are the same events
    as SQL over a ``requests`` row (``(eligible, bad, bad params)``, as ``slo_reads`` defines
    them).  Call inside one read transaction, after :func:`answerable`.

    Raises:
        TooManyOffsets: more distinct boundary offsets than :data:`MAX_OFFSETS`.
        sqlite3.Error: the store cannot be read.
    """
    count = max(1, int(-(-window_s // bucket_s)))
    start = as_of - count * bucket_s
    bounds = [as_of - window_s, *(start + (k + 1) * bucket_s for k in range(count - 1)), as_of]
    m0, m1 = math.floor(bounds[0]) // 60 * 60, math.floor(as_of) // 60 * 60
    n_min = (m1 - m0) // 60 + 1
    width = len(events)
    # events and bad events per minute of [m0, m1], from the roll-up
    cols = ", ".join(f"SUM({t}), SUM({b})" for t, b in (_rollup_sums(k, th) for k, th in events))
    per_minute = np.zeros((n_min, 2 * width), dtype=np.int64)
    sql = f"SELECT minute, {cols} FROM {MINUTE_SLI.table} WHERE minute >= ? AND minute <= ? GROUP BY minute"
    rows = conn.execute(sql, [m0, m1]).fetchall()
    if rows:
        found = np.asarray(rows, dtype=np.float64)
        per_minute[((found[:, 0] - m0) // 60).astype(np.int64)] = np.rint(found[:, 1:]).astype(np.int64)
    cum = np.vstack([np.zeros((1, 2 * width), dtype=np.int64), np.cumsum(per_minute, axis=0)])
    # the boundary minutes' rows, grouped by offset within the minute (exact: see the module doc)
    b_ts = np.asarray(bounds, dtype=np.float64)
    b_min = np.floor(b_ts).astype(np.int64) // 60 * 60
    b_off = b_ts - b_min
    offsets = np.unique(b_off)
    if len(offsets) > MAX_OFFSETS:
        raise TooManyOffsets(
            f"{len(offsets)} distinct boundary offsets; at most {MAX_OFFSETS} are read from rows"
        )
    row_cols: list[str] = []
    row_params: list[Any] = []
    for eligible, bad, bad_params in row_events:
        row_cols.append(f"COALESCE(SUM({eligible}), 0), COALESCE(SUM({eligible} AND {bad}), 0)")
        row_params += bad_params
    partial = np.zeros((len(bounds), 2 * width), dtype=np.int64)
    for offset in offsets.tolist():
        lower = offset <= 30.0
        cond = "r.ts - j.value <= ?" if lower else "r.ts - j.value > ?"
        sql = (
            f"SELECT j.value, {', '.join(row_cols)} FROM json_each(?) j"
            f" JOIN requests r ON r.ts >= j.value AND r.ts < j.value + 60"
            f" WHERE {cond} GROUP BY j.value"
        )
        at = b_off == offset
        minutes = json.dumps(np.unique(b_min[at]).tolist())
        got = conn.execute(sql, [*row_params, minutes, offset]).fetchall()
        if got:
            found = np.asarray(got, dtype=np.int64)
            found = found[np.argsort(found[:, 0])]
            pos = np.searchsorted(found[:, 0], b_min[at])
            hit = (pos < len(found)) & (found[np.minimum(pos, len(found) - 1), 0] == b_min[at])
            rows_at = np.zeros((int(at.sum()), 2 * width), dtype=np.int64)
            rows_at[hit] = found[pos[hit], 1:]
            partial[at] = rows_at
    # C(t) for every boundary: minutes before its own plus the rows up to t (offset <= 30 s), or
    # minutes up to its own minus the rows after t
    idx = (b_min - m0) // 60
    lower_form = (b_off <= 30.0)[:, None]
    at_bounds = np.where(lower_form, cum[idx] + partial, cum[idx + 1] - partial)
    counts = np.diff(at_bounds, axis=0)
    ends = [start + (k + 1) * bucket_s for k in range(count)]
    return [
        list(zip(ends, counts[:, 2 * e].tolist(), counts[:, 2 * e + 1].tolist(), strict=True))
        for e in range(width)
    ]
