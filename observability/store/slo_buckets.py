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

__all__ = ["MAX_OFFSETS", "TooManyOffsets", "answerable", "rollup_bucket_counts"]

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
    store that has the per-minute SLI roll-up (schema v8 or later)."""
    if as_of - window_s < 0 or bucket_s % 60 or not math.isfinite(as_of):
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


def _minute_of(t: float) -> int:
    return math.floor(t) // 60 * 60


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
    m0, m1 = _minute_of(bounds[0]), _minute_of(as_of)
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
    # the boundary minutes' rows, grouped by offset within the minute
    by_offset: dict[float, list[int]] = {}
    for t in bounds:
        m = _minute_of(t)
        by_offset.setdefault(t - m, []).append(m)
    if len(by_offset) > MAX_OFFSETS:
        raise ValueError(
            f"{len(by_offset)} distinct boundary offsets; at most {MAX_OFFSETS} are read from rows"
        )
    row_cols: list[str] = []
    row_params: list[Any] = []
    for eligible, bad, bad_params in row_events:
        row_cols.append(f"COALESCE(SUM({eligible}), 0), COALESCE(SUM({eligible} AND {bad}), 0)")
        row_params += bad_params
    partial: dict[tuple[float, int], np.ndarray] = {}
    for offset, minutes in by_offset.items():
        lower = offset <= 30.0
        cond = "r.ts - j.value <= ?" if lower else "r.ts - j.value > ?"
        sql = (
            f"SELECT j.value, {', '.join(row_cols)} FROM json_each(?) j"
            f" JOIN requests r ON r.ts >= j.value AND r.ts < j.value + 60"
            f" WHERE {cond} GROUP BY j.value"
        )
        got = {
            int(r[0]): np.asarray(r[1:], dtype=np.int64)
            for r in conn.execute(sql, [*row_params, json.dumps(sorted(set(minutes))), offset])
        }
        for m in minutes:
            partial[(offset, m)] = got.get(m, np.zeros(2 * width, dtype=np.int64))

    def cumulative(t: float) -> np.ndarray:
        m = _minute_of(t)
        offset, i = t - m, (m - m0) // 60
        if offset <= 30.0:
            return cum[i] + partial[(offset, m)]
        return cum[i + 1] - partial[(offset, m)]

    at = [cumulative(t) for t in bounds]
    ends = [start + (k + 1) * bucket_s for k in range(count)]
    out: list[list[tuple[float, int, int]]] = []
    for e in range(width):
        out.append(
            [
                (ends[k], int(at[k + 1][2 * e] - at[k][2 * e]), int(at[k + 1][2 * e + 1] - at[k][2 * e + 1]))
                for k in range(count)
            ]
        )
    return out
