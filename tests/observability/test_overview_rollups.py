"""The Overview's long windows (over a day) read from the roll-ups: counts per chart bucket equal the
rows' (the oracle: the same functions forced onto the rows), and each latency quantile estimated
from the histogram buckets brackets the exact one (numpy over every latency of the window).

The store is seeded at random over ten days, with rows exactly at the window's start (in: the
Overview's window is ``[now - w, now)``), at ``now`` (out), and at chart-bucket starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from observability.overview import from_store
from observability.overview.from_store import overview_from_store, series_from_store
from observability.overview.models import QUANTILES
from observability.overview.view import tiles
from observability.store import RequestRow, RoutingRow, Store

D = 86_400
BASE = 1_800_000_000.0
NOW = BASE + 10 * D + 0.25
WINDOW, BUCKET = 7 * D, 7200


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("overview_rollups") / "arbor.db"
    rng = np.random.default_rng(7)
    stamps = list(BASE + rng.uniform(0, 10 * D, size=3000))
    since = NOW - WINDOW
    stamps += [since, since, np.nextafter(since, 0), NOW, NOW, since + BUCKET, since + 2 * BUCKET - 1e-6]
    s = Store(path, threaded=False)
    for i, ts in enumerate(stamps):
        status = ("ok", "ok", "ok", "error", "invalid", "cancelled")[int(rng.integers(6))]
        latency = None if rng.random() < 0.05 else float(rng.lognormal(5.0, 1.2))
        s.submit(
            "requests",
            RequestRow(request_id=f"o{i}", ts=float(ts), status=status, latency_ms=latency)._asdict(),
        )
    s.flush()
    yield s
    s.close()


def _served_latencies(store: Store) -> np.ndarray:
    rows = store.reads.query(
        "SELECT latency_ms FROM requests WHERE ts >= ? AND ts < ? AND status IN ('ok', 'error')"
        " AND latency_ms IS NOT NULL",
        [NOW - WINDOW, NOW],
    )
    return np.array([r["latency_ms"] for r in rows])


def test_series_counts_from_rollups_equal_rows(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    got = series_from_store(store, WINDOW, BUCKET, NOW)
    monkeypatch.setattr(from_store, "ROLLUP_AFTER_S", 10**9)  # the oracle: every row fetched
    want = series_from_store(store, WINDOW, BUCKET, NOW)
    assert got.quantiles_from_buckets and not want.quantiles_from_buckets
    assert got.starts == want.starts
    assert got.requests == want.requests and got.errors == want.errors
    assert sum(want.requests) > 1000
    for mine, exact in ((got.p50_ms, want.p50_ms), (got.p95_ms, want.p95_ms), (got.p99_ms, want.p99_ms)):
        assert [p is None for p in mine] == [p is None for p in exact]


def test_quantiles_from_buckets_bracket_the_exact_ones(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = overview_from_store(store, WINDOW, NOW, label="7d")
    exact = np.quantile(_served_latencies(store), QUANTILES)
    assert len(stats.latency_bounds_ms) == 3
    for (lower, upper), x in zip(stats.latency_bounds_ms, exact, strict=True):
        assert lower <= x and (upper is None or x <= upper)
    for (lower, upper), est in zip(
        stats.latency_bounds_ms, (stats.p50_ms, stats.p95_ms, stats.p99_ms), strict=True
    ):
        assert est is not None and lower <= est and (upper is None or est <= upper)
    # the tiles say so on screen
    p95_tile = next(t for t in tiles(stats) if t.label == "Latency p95")
    assert "histogram buckets" in p95_tile.help and "exact value lies in" in p95_tile.help
    # the other figures are unchanged from the rows' path
    monkeypatch.setattr(from_store, "ROLLUP_AFTER_S", 10**9)
    rows = overview_from_store(store, WINDOW, NOW, label="7d")
    assert rows.latency_bounds_ms == ()
    assert (stats.requests, stats.errors, stats.invalid, stats.cancelled) == (
        rows.requests, rows.errors, rows.invalid, rows.cancelled,
    )  # fmt: skip
    assert rows.p95_ms == pytest.approx(float(exact[1]))


def test_a_day_or_less_stays_exact(store: Store) -> None:
    stats = overview_from_store(store, D, NOW, label="24h")
    lat = store.reads.served_latencies_ms(NOW - D, NOW)
    assert stats.latency_bounds_ms == ()
    assert stats.p95_ms == pytest.approx(float(np.quantile(lat, 0.95)))


def test_the_scans_count_as_the_index_does(tmp_path: Path) -> None:
    # status totals and agent mix read by a table scan (long windows) equal the indexed reads,
    # and the hand count: in [100, 200): r1 (ok, 2 steps: hrm, mcts), r2 (error, 1 step: hrm)
    s = Store(tmp_path / "scan.db", threaded=False)
    for rid, ts, status in (
        ("r1", 100.0, "ok"),
        ("r2", 150.0, "error"),
        ("r3", 200.0, "ok"),
        ("r0", 99.0, "ok"),
    ):
        s.submit("requests", RequestRow(request_id=rid, ts=ts, status=status)._asdict())
    for rid, step, agent in (("r1", 0, "hrm"), ("r1", 1, "mcts"), ("r2", 0, "hrm"), ("r3", 0, "trm")):
        s.submit("routing_decisions", RoutingRow(request_id=rid, step=step, agent=agent)._asdict())
    s.flush()
    try:
        assert s.reads.agent_mix(100.0, 200.0, scan=True) == [("hrm", 2), ("mcts", 1)]
        assert s.reads.agent_mix(100.0, 200.0) == [("hrm", 2), ("mcts", 1)]
        scanned = {r["status"]: r["n"] for r in s.reads.status_totals(100.0, 200.0, scan=True)}
        assert scanned == {"ok": 1, "error": 1}
        assert scanned == {r["status"]: r["n"] for r in s.reads.status_totals(100.0, 200.0)}
    finally:
        s.close()


def test_counts_each_equals_one_read_per_window(store: Store) -> None:
    windows = [(NOW - WINDOW + i * BUCKET - 0.5, NOW - WINDOW + (i + 1) * BUCKET - 0.5) for i in range(5)]
    where = {"status": ("ok", "error")}
    each = store.reads.rollups.counts_each(windows, ("status",), where)
    assert each == [store.reads.rollups.counts(a, b, ("status",), where) for a, b in windows]
    assert sum(c.total().n for c in each) > 0
    assert store.reads.rollups.counts_each([]) == []
