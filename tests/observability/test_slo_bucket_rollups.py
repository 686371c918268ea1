"""SLO buckets read from the per-minute SLI roll-up (plus the boundary minutes' rows) equal the
buckets aggregated from the rows, and a small grid worked out by hand.

The oracle is the row-based SQL (``use_rollups=False``).  The store is seeded at random (numpy
Generator, fixed seed) over two days with fractional timestamps, plus rows placed exactly on the
buckets' boundaries, a millisecond either side, at the start and the last instant of the
boundary minutes, at the latency threshold and with empty values; the grids end at a
minute-aligned ``as_of``, one early in its minute (the rows up to the boundary are read) and one
late (the rows after it are subtracted).  The per-minute SLI roll-up itself is checked against a
GROUP BY of the rows, after the trigger and after ``rebuild``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from observability.store import RequestRow, Store, slo_buckets
from observability.store.rollups import LE_COLUMNS, MINUTE_SLI_TABLE, rebuild
from observability.store.slo_reads import bucket_counts, bucket_counts_many

BASE = 1_800_000_000.0  # a multiple of 3600
M, H, D = 60.0, 3600.0, 86400.0
AS_OFS = [BASE + 2 * D, BASE + 2 * D - 3 * H + 17 * M + 12.25, BASE + 2 * D - 5 * H + 44.5]
#: (window, bucket) grids: the replay's minutes over 1d + its 3-day look-back cut to the data,
#: 5-minute buckets, hour buckets, a window that is not a multiple of its bucket, one under a minute
GRIDS = [(D + 6 * H, 60.0), (D, 300.0), (2 * D, H), (6 * H + 30.0, 60.0), (45.0, 60.0)]
EVENTS: list[tuple[str, float | None]] = [("availability", None), ("latency", 500.0), ("quality", None)]
STATUSES = ["ok", "ok", "ok", "error", "invalid", "cancelled"]
VERDICTS = ["correct", "correct", "incorrect", "unknown", None]
LATENCIES = [500.0, 499.999, 500.001, 0.0, 10_000.0, None]


def _stamps(rng: np.random.Generator) -> list[float]:
    stamps = list(BASE + rng.uniform(0.0, 2 * D, size=3000))
    for as_of in AS_OFS:
        for window, bucket in GRIDS:
            count = int(-(-window // bucket))
            start = as_of - count * bucket
            ends = [*[start + (k + 1) * bucket for k in range(count)][-40:], as_of - window]
            for t in ends:
                m = float(int(t) // 60 * 60)
                stamps += [t, t + 1e-3, t - 1e-3, m, m + 59.999]
    return stamps


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("slo_buckets") / "arbor.db"
    rng = np.random.default_rng(20261127)
    s = Store(path, threaded=False)
    for i, ts in enumerate(_stamps(rng)):
        pick = rng.integers
        lat = LATENCIES[pick(len(LATENCIES))] if pick(3) == 0 else float(rng.lognormal(5.5, 1.0))
        row = RequestRow(
            request_id=f"r{i}", ts=float(ts), status=STATUSES[pick(len(STATUSES))], latency_ms=lat,
            verdict=VERDICTS[pick(len(VERDICTS))], task=["game24", None][pick(2)],
        )  # fmt: skip
        s.submit("requests", row._asdict())
    s.flush()
    yield s
    s.close()


@pytest.mark.parametrize(("window", "bucket"), GRIDS)
@pytest.mark.parametrize("as_of", AS_OFS)
def test_buckets_from_the_minute_rollup_equal_the_rows(
    store: Store, as_of: float, window: float, bucket: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = slo_buckets.rollup_bucket_counts
    monkeypatch.setattr(slo_buckets, "rollup_bucket_counts", lambda *a: calls.append(1) or real(*a))
    fast = bucket_counts_many(store.reads, EVENTS, as_of, window, bucket)
    slow = bucket_counts_many(store.reads, EVENTS, as_of, window, bucket, use_rollups=False)
    assert calls == [1]  # the roll-up path answered
    assert fast == slow
    for i in range(len(EVENTS)):
        assert fast[i] == bucket_counts(store.reads, EVENTS[i][0], as_of, window, bucket, EVENTS[i][1])
    assert sum(t for _, t, _ in slow[0]) > 10 or window < M  # the oracle counts something
    assert sum(b for _, _, b in slow[1]) > 0 or window < M


def test_grids_the_rollup_cannot_answer_are_read_from_the_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = slo_buckets.rollup_bucket_counts
    monkeypatch.setattr(slo_buckets, "rollup_bucket_counts", lambda *a: calls.append(1) or real(*a))
    as_of = AS_OFS[1]
    for events, bucket, at in [
        (EVENTS, 45.0, as_of),  # not whole minutes
        ([("latency", 300.0)], 60.0, as_of),  # not a bucket bound
        (EVENTS, 60.0, as_of + 17.75),  # minutes ending 30 s into theirs: half the rows are boundary rows
    ]:
        fast = bucket_counts_many(store.reads, events, at, 6 * H, bucket)
        assert fast == bucket_counts_many(store.reads, events, at, 6 * H, bucket, use_rollups=False)
    assert calls == []


def test_a_small_grid_worked_by_hand(tmp_path: Path) -> None:
    # as_of 50.5 s into its minute; 3 buckets of a minute over a 150 s window:
    # start = as_of - 180, buckets (as_of-150, as_of-120], (as_of-120, as_of-60], (as_of-60, as_of]
    as_of = BASE + 600 + 50.5
    placed = {
        "out-before": as_of - 150,  # on the window's start: excluded
        "b0-start": as_of - 150 + 1e-3,
        "b0-end": as_of - 120,  # on a boundary: in the bucket it ends
        "b1-first": as_of - 120 + 1e-3,
        "b1-minute": BASE + 540.0,  # start of a boundary minute, before its boundary
        "b1-end": as_of - 60,
        "b2-late": as_of - 60 + 9.0,  # after the boundary, in the boundary minute
        "b2-end": as_of,
        "out-after": as_of + 1e-3,
    }
    with Store(tmp_path / "hand.db", threaded=False) as s:
        for name, ts in placed.items():
            status = "error" if name in ("b1-minute", "b2-late") else "ok"
            s.submit(
                "requests", RequestRow(request_id=name, ts=ts, status=status, latency_ms=600.0)._asdict()
            )
        s.flush()
        got = bucket_counts_many(s.reads, [("availability", None), ("latency", 500.0)], as_of, 150.0, 60.0)
    ends = [as_of - 120, as_of - 60, as_of]
    assert got[0] == [(ends[0], 2, 0), (ends[1], 3, 1), (ends[2], 2, 1)]
    assert got[1] == [(ends[0], 2, 2), (ends[1], 3, 3), (ends[2], 2, 2)]  # 600 ms > 500 ms: all bad


def _sli_rollup(conn: sqlite3.Connection) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    cols = ", ".join(("n", "lat_n", *LE_COLUMNS))
    rows = conn.execute(
        f"SELECT minute, status, verdict, simulated, {cols} FROM {MINUTE_SLI_TABLE}"
    ).fetchall()
    return {tuple(r[:4]): tuple(r[4:]) for r in rows}


def _sli_from_rows(conn: sqlite3.Connection) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    les = ", ".join(f"SUM(COALESCE(latency_ms <= {b}, 0))" for b in (1, 2.5, 5, 10, 25, 50, 100, 250, 500))
    les += ", " + ", ".join(f"SUM(COALESCE(latency_ms <= {b}, 0))" for b in (1000, 2500, 5000, 10000))
    sql = (
        "SELECT CAST(ts AS INTEGER) / 60 * 60, COALESCE(status, ''), COALESCE(verdict, ''),"
        f" COALESCE(simulated, 0), COUNT(*), COUNT(latency_ms), {les} FROM requests GROUP BY 1, 2, 3, 4"
    )
    return {tuple(r[:4]): tuple(r[4:]) for r in conn.execute(sql).fetchall()}


def test_the_minute_sli_rollup_is_a_group_by_of_the_rows_and_rebuild_repairs_it(store: Store) -> None:
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        expected = _sli_from_rows(conn)
        assert len(expected) > 1000
        assert _sli_rollup(conn) == expected  # kept by the trigger
        conn.execute(f"UPDATE {MINUTE_SLI_TABLE} SET n = n + 3 WHERE minute % 120 = 0")
        conn.execute(f"DELETE FROM {MINUTE_SLI_TABLE} WHERE minute % 180 = 0")
        assert _sli_rollup(conn) != expected
        rebuild(conn)
        assert _sli_rollup(conn) == expected
    finally:
        conn.close()
