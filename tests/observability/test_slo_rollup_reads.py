"""SLO counts and attribution read from the roll-ups equal the ones aggregated from the rows.

The oracle is the row-based SQL (``use_rollups=False``), itself checked against counts worked out
by hand in ``test_slo_sqlite_source.py``.  The store is seeded at random (numpy Generator, fixed
seed) over four days with fractional timestamps, plus rows placed exactly at the windows' starts
and ends, at minute and hour boundaries, at the latency threshold, and with empty values; the
windows end at minute-aligned, hour-aligned and fractional ``as_of``.
"""

from __future__ import annotations

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
