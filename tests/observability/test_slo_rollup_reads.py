"""SLO counts and attribution read from the roll-ups equal the ones aggregated from the rows.

The oracle is the row-based SQL (``use_rollups=False``), itself checked against counts worked out
by hand in ``test_slo_sqlite_source.py``.  The store is seeded at random (numpy Generator, fixed
seed) over four days with fractional timestamps, plus rows placed exactly at the windows' starts
and ends, at minute and hour boundaries, at the latency threshold, and with empty values; the
windows end at minute-aligned, hour-aligned and fractional ``as_of``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from observability.store import RequestRow, Store
from observability.store.slo_reads import SLO_KINDS, bad_by_dimension, window_counts

BASE = 1_800_000_000.0  # a multiple of 3600
M, H, D = 60.0, 3600.0, 86400.0
WINDOWS = [30.0, 5 * M, 30 * M, H, 6 * H, D, 3 * D]
AS_OFS = [BASE + 3 * D, BASE + 3 * D + 17 * M, BASE + 3 * D + 17 * M + 23.75, BASE + 2 * D + 0.5]
STATUSES = ["ok", "ok", "ok", "error", "invalid", "cancelled", None]
VERDICTS = ["correct", "correct", "incorrect", "unknown", None]
TASKS = ["game24", "tictactoe", "", None]
AGENTS = [["hrm", "mcts"], ["trm"], [], None, ["mcts", ""]]
PROVIDERS = ["mock", "openai", "", None]
LATENCIES = [500.0, 499.999, 500.001, 0.0, 10_000.0, 20_000.0, None]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("slo_rollups") / "arbor.db"
    rng = np.random.default_rng(20261127)
    stamps = list(BASE + rng.uniform(0.0, 4 * D, size=2500))
    # exactly at each window's start and end, and at minute/hour boundaries around them
    for as_of in AS_OFS:
        for w in WINDOWS:
            stamps += [as_of - w, as_of - w + 1e-3, as_of - w - 1e-3]
        stamps += [as_of, as_of + 0.001, float(int(as_of) // 60 * 60), float(int(as_of) // 3600 * 3600)]
    s = Store(path, threaded=False)
    for i, ts in enumerate(stamps):
        pick = rng.integers
        lat = LATENCIES[pick(len(LATENCIES))] if pick(3) == 0 else float(rng.lognormal(5.5, 1.0))
        row = RequestRow(
            request_id=f"r{i}", ts=float(ts), status=STATUSES[pick(len(STATUSES))] or "ok",
            latency_ms=lat, verdict=VERDICTS[pick(len(VERDICTS))], task=TASKS[pick(len(TASKS))],
            agents_used=AGENTS[pick(len(AGENTS))], provider=PROVIDERS[pick(len(PROVIDERS))],
            router=["rules", "gru", None][pick(3)], variant=["A", "B", "", None][pick(4)],
        )  # fmt: skip
        s.submit("requests", row._asdict())
    s.flush()
    yield s
    s.close()


def _threshold(kind: str) -> float | None:
    return 500.0 if kind == "latency" else None


@pytest.mark.parametrize("as_of", AS_OFS)
@pytest.mark.parametrize("kind", SLO_KINDS)
def test_window_counts_from_rollups_equal_rows(store: Store, kind: str, as_of: float) -> None:
    from_rollups = window_counts(store.reads, kind, as_of, WINDOWS, _threshold(kind))
    from_rows = window_counts(store.reads, kind, as_of, WINDOWS, _threshold(kind), use_rollups=False)
    assert from_rollups == from_rows
    assert from_rows[-1][0] > 100 and from_rows[-1][1] > 10  # the oracle counts something


@pytest.mark.parametrize("window", [5 * M, H, D, 3 * D])
@pytest.mark.parametrize("kind", SLO_KINDS)
def test_attribution_from_rollups_equals_rows(store: Store, kind: str, window: float) -> None:
    as_of = AS_OFS[2]
    from_rollups = bad_by_dimension(store.reads, kind, as_of, window, _threshold(kind))
    from_rows = bad_by_dimension(store.reads, kind, as_of, window, _threshold(kind), use_rollups=False)
    assert from_rollups == from_rows
    assert None in from_rows["task"] or window < H  # empty and missing values are both None


def test_the_long_windows_are_read_from_the_rollups(store: Store) -> None:
    counts = store.reads.rollups.counts(AS_OFS[2] - 3 * D, AS_OFS[2], ("status",))
    assert counts.rollup_span is not None and counts.hourly_span is not None
    total = sum(g.n for g in counts.groups)
    assert counts.edge_rows < total / 10  # most requests came from the roll-ups, not the rows


def test_a_threshold_off_the_bucket_bounds_is_read_from_the_rows(store: Store) -> None:
    # 300 ms is no bucket bound: the rows answer (and agree with themselves by construction);
    # 250 ms is one: the roll-ups answer, and agree with the rows.
    as_of = AS_OFS[0]
    for threshold in (300.0, 250.0):
        got = window_counts(store.reads, "latency", as_of, WINDOWS, threshold)
        assert got == window_counts(store.reads, "latency", as_of, WINDOWS, threshold, use_rollups=False)


def test_a_window_starting_before_the_epoch_is_read_from_the_rows(tmp_path: Path) -> None:
    s = Store(tmp_path / "a.db", threaded=False)
    for i, (ts, status) in enumerate([(10.0, "ok"), (20.0, "error"), (100.0, "error")]):
        s.submit("requests", RequestRow(request_id=f"e{i}", ts=ts, status=status)._asdict())
    s.flush()
    try:
        # as_of 50 and a 1-day window: since < 0, which the roll-up reads refuse; counted by hand
        assert window_counts(s.reads, "availability", 50.0, [D, 35.0]) == [(2, 1), (1, 1)]
        assert bad_by_dimension(s.reads, "availability", 50.0, D)["task"] == {None: 1}
    finally:
        s.close()


# ---------------------------------------------------------------- whole days from the daily roll-up

DAY0 = 1_799_971_200.0  # a multiple of 86400 (2027-01-14 00:00 UTC)
DAY_AS_OF = DAY0 + 3 * D + 1800.0  # a 3-day window: (DAY0 + 1800, DAY0 + 3 D + 1800]
# (request id, ts, status, task, agents, latency ms); worked out by hand below
PLACED = [
    ("e1", DAY0 + 1800.0, "error", "game24", ["hrm"], None),  # exactly at the start: outside
    ("e2", DAY0 + 1800.001, "error", "game24", ["hrm", "mcts"], None),  # edge row: inside
    ("e3", DAY0 + 7200.0, "error", "tictactoe", ["trm"], None),  # a whole minute of day 0
    ("e4", DAY0 + D, "error", "game24", ["hrm"], None),  # first instant of day 1 (a whole day)
    ("e5", DAY0 + 2 * D + 5.0, "error", "connect4", None, None),  # day 2 (whole), no agent
    ("e6", DAY0 + 3 * D + 60.0, "error", "game24", ["hrm"], None),  # a whole minute after the days
    ("e7", DAY_AS_OF, "error", "tictactoe", ["mcts"], None),  # exactly at as_of: inside
    ("e8", DAY_AS_OF + 0.001, "error", "game24", ["hrm"], None),  # after as_of: outside
    ("l1", DAY0 + D + 100.0, "ok", "game24", ["hrm"], 900.0),  # slow: bad for latency
    ("l2", DAY0 + 2 * D + 100.0, "ok", "game24", ["trm"], 500.0),  # at the threshold: good
    ("l3", DAY0 + 3 * D + 120.0, "ok", "tictactoe", ["hrm"], 500.001),  # slow
    ("l4", DAY0 + 2 * D + 200.0, "ok", "connect4", ["mcts"], 20.0),
]


@pytest.fixture
def placed(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "days.db", threaded=False)
    for rid, ts, status, task, agents, lat in PLACED:
        row = RequestRow(request_id=rid, ts=ts, status=status, task=task, agents_used=agents, latency_ms=lat)
        s.submit("requests", row._asdict())
    s.flush()
    yield s
    s.close()


def test_attribution_over_days_worked_by_hand(placed: Store) -> None:
    # availability: e2..e7 are inside (e1 at the start and e8 after as_of are not)
    want_availability = {
        "task": {"game24": 3, "tictactoe": 2, "connect4": 1},  # e2 e4 e6 / e3 e7 / e5
        "agent": {"mcts": 2, "trm": 1, "hrm": 2, None: 1},  # e2 e7 / e3 / e4 e6 / e5
        "provider": {None: 6}, "router": {None: 6}, "variant": {None: 6},
    }  # fmt: skip
    # latency (500 ms): l1 and l3 are slower; l2 is exactly at the threshold, which is good
    want_latency = {
        "task": {"game24": 1, "tictactoe": 1}, "agent": {"hrm": 2},
        "provider": {None: 2}, "router": {None: 2}, "variant": {None: 2},
    }  # fmt: skip
    for kind, threshold, want in (
        ("availability", None, want_availability),
        ("latency", 500.0, want_latency),
    ):
        got = bad_by_dimension(placed.reads, kind, DAY_AS_OF, 3 * D, threshold)
        assert got == want
        assert bad_by_dimension(placed.reads, kind, DAY_AS_OF, 3 * D, threshold, use_rollups=False) == want
    # the two whole days (day 1 and day 2) came from the daily roll-up
    counts = placed.reads.rollups.counts(DAY_AS_OF - 3 * D, DAY_AS_OF, ("task",), {"status": ("error",)})
    assert counts.daily_span == (DAY0 + D, DAY0 + 3 * D) and counts.hourly_span is None


def test_whole_days_come_from_the_daily_rollup(placed: Store, tmp_path: Path) -> None:
    before = bad_by_dimension(placed.reads, "availability", DAY_AS_OF, 3 * D)
    conn = sqlite3.connect(tmp_path / "days.db")  # rows and minute roll-ups of the whole days, gone
    conn.execute("DELETE FROM requests WHERE ts >= ? AND ts < ?", [DAY0 + D, DAY0 + 3 * D])
    conn.execute("DELETE FROM request_rollups WHERE minute >= ? AND minute < ?", [DAY0 + D, DAY0 + 3 * D])
    conn.commit()
    conn.close()
    assert bad_by_dimension(placed.reads, "availability", DAY_AS_OF, 3 * D) == before
    rows_only = bad_by_dimension(placed.reads, "availability", DAY_AS_OF, 3 * D, use_rollups=False)
    assert rows_only["task"] == {"game24": 2, "tictactoe": 2}  # e4 and e5 were in the deleted days


@pytest.mark.parametrize(("window", "bucket"), [(3 * D, 3600.0), (6 * H + 30.0, 60.0), (45.0, 60.0)])
def test_buckets_of_several_kinds_from_one_read_equal_each_alone(
    store: Store, window: float, bucket: float
) -> None:
    from observability.store.slo_reads import bucket_counts, bucket_counts_many

    events = [("availability", None), ("latency", 500.0), ("quality", None), ("latency", 300.0)]
    as_of = AS_OFS[2]
    together = bucket_counts_many(store.reads, events, as_of, window, bucket)
    alone = [bucket_counts(store.reads, kind, as_of, window, bucket, th) for kind, th in events]
    assert together == alone
    assert sum(b for _, _, b in together[0]) > 0 or window < H  # something to compare
    with pytest.raises(ValueError, match="unknown SLO kind"):
        bucket_counts_many(store.reads, [("freshness", None)], as_of, window, bucket)
