"""SLO counts and attribution from the SQLite store, against counts worked out by hand.

The store holds the rows of ``ROWS`` below (ts relative to ``AS_OF``); the comments of each
test list which rows each window holds.  Windows end at AS_OF: ``AS_OF - w < ts <= AS_OF``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from observability.slo.math import budget_remaining, burn_rate
from observability.slo.models import SLO, load_slos
from observability.slo.sqlite_source import SqliteSLOSource, threshold_ms
from observability.store import RequestRow, Store
from observability.store.slo_reads import window_counts

AS_OF = 1_800_000_000.0
M, H, D = 60.0, 3600.0, 86400.0
WINDOWS = {"5m": 5 * M, "30m": 30 * M, "1h": H, "6h": 6 * H, "1d": D, "3d": 3 * D, "28d": 28 * D}

# (name, ts: offset from AS_OF, or a window name meaning exactly AS_OF - that window,
#  status, latency_ms, verdict, task, agents_used, provider, router, variant)
ROWS: list[tuple[Any, ...]] = [
    ("r1", 0.0, "ok", 500.0, "correct", "game24", ["hrm", "mcts"], "mock", "rules", "A"),  # at as_of: in
    ("r2", -M, "error", 800.0, None, "tictactoe", ["hrm"], "mock", "gru", None),
    ("r3", "5m", "ok", 501.0, "incorrect", "game24", ["trm"], "openai", "rules", "B"),  # 5m edge: out of 5m
    ("r4", -1000.0, "invalid", 5000.0, None, "game24", [], None, "rules", None),  # not served
    ("r5", -2000.0, "cancelled", 5000.0, None, "game24", [], None, "rules", None),  # not served
    ("r6", -3 * H, "error", 200.0, "unknown", "connect4", [], None, "rules", "A"),
    ("r12", "6h", "ok", 100.0, None, "game24", ["mcts"], "mock", "rules", None),  # 6h edge
    ("r7", -2 * D, "ok", 499.999, "correct", "game24", ["mcts"], "mock", "rules", "A"),
    ("r8", "3d", "error", 900.0, "incorrect", "tictactoe", ["hrm", "trm"], "mock", "gru", None),  # 3d edge
    ("r11", -10 * D, "ok", 100.0, "correct", "game24", ["mcts"], "mock", "rules", "A"),
    ("r10", "28d", "error", 100.0, "correct", "game24", ["mcts"], "mock", "rules", "A"),  # 28d edge: out
    ("r9", 1.0, "error", 900.0, "incorrect", "game24", ["mcts"], "mock", "rules", "A"),  # after as_of: out
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path: Path = tmp_path_factory.mktemp("slo") / "arbor.db"
    s = Store(path, threaded=False)
    for rid, offset, status, latency, verdict, task, agents, provider, router, variant in ROWS:
        # An edge row's ts is computed exactly as the reads compute the window's start.
        ts = AS_OF - WINDOWS[offset] if isinstance(offset, str) else AS_OF + offset
        row = RequestRow(
            request_id=rid, ts=ts, status=status, latency_ms=latency, verdict=verdict, task=task,
            agents_used=agents, provider=provider, router=router, variant=variant,
        )  # fmt: skip
        s.submit("requests", row._asdict())
    s.flush()
    yield s
    s.close()


@pytest.fixture(scope="module")
def slos() -> dict[str, SLO]:
    # data/slos.yaml: availability 99 %, latency 95 % under 0.5 s, quality 98 %; all 28d.
    return {slo.name: slo for slo in load_slos()}


def _counts(store: Store, slo: SLO) -> dict[str, tuple[int, int]]:
    got = SqliteSLOSource(store.reads).counts(slo, AS_OF, list(WINDOWS.values()))
    assert [c.window_s for c in got] == list(WINDOWS.values())
    return {name: (c.total, c.bad) for name, c in zip(WINDOWS, got, strict=True)}


def test_availability_counts_by_hand(store: Store, slos: dict[str, SLO]) -> None:
    # Served rows (ok|error) per window; bad = error.
    # 5m: r1, r2 (r3 sits exactly at as_of - 5m: out)        -> 2 total, 1 bad (r2)
    # 30m, 1h: + r3 (r4 invalid, r5 cancelled never count)   -> 3, 1
    # 6h: + r6 (r12 exactly at as_of - 6h: out)              -> 4, 2
    # 1d: + r12                                              -> 5, 2
    # 3d: + r7 (r8 exactly at as_of - 3d: out)               -> 6, 2
    # 28d: + r8, r11 (r10 exactly at as_of - 28d, r9 after as_of: out) -> 8, 3
    assert _counts(store, slos["availability"]) == {
        "5m": (2, 1), "30m": (3, 1), "1h": (3, 1), "6h": (4, 2), "1d": (5, 2), "3d": (6, 2), "28d": (8, 3),
    }  # fmt: skip


def test_latency_counts_by_hand(store: Store, slos: dict[str, SLO]) -> None:
    # Threshold 0.5 s = 500 ms; bad = latency > 500 ms (r1 at exactly 500 is good, as in le="0.5").
    # 5m: r1 good, r2 800 bad -> 2, 1; 30m/1h: + r3 501 bad -> 3, 2; 6h: + r6 200 -> 4, 2;
    # 1d: + r12 100 -> 5, 2; 3d: + r7 499.999 -> 6, 2; 28d: + r8 900 bad, r11 -> 8, 3.
    assert threshold_ms(slos["latency"]) == 500.0
    assert _counts(store, slos["latency"]) == {
        "5m": (2, 1), "30m": (3, 2), "1h": (3, 2), "6h": (4, 2), "1d": (5, 2), "3d": (6, 2), "28d": (8, 3),
    }  # fmt: skip


def test_quality_counts_by_hand(store: Store, slos: dict[str, SLO]) -> None:
    # Served with verdict correct|incorrect; bad = incorrect (r2 no verdict, r6 unknown: not counted).
    # 5m: r1 -> 1, 0; 30m..1d: + r3 incorrect -> 2, 1; 3d: + r7 -> 3, 1; 28d: + r8 incorrect, r11 -> 5, 2.
    assert _counts(store, slos["quality"]) == {
        "5m": (1, 0), "30m": (2, 1), "1h": (2, 1), "6h": (2, 1), "1d": (2, 1), "3d": (3, 1), "28d": (5, 2),
    }  # fmt: skip


def test_figures_from_the_counts(store: Store, slos: dict[str, SLO]) -> None:
    availability = _counts(store, slos["availability"])
    # 5m: 1 bad of 2 at 99 %: burn 0.5 / 0.01 = 50; 28d: 3 of 8: burn 0.375 / 0.01 = 37.5,
    # remaining 1 - 37.5 = -36.5.
    assert burn_rate(*reversed(availability["5m"]), 0.99) == pytest.approx(50.0)
    assert burn_rate(*reversed(availability["28d"]), 0.99) == pytest.approx(37.5)
    assert budget_remaining(*reversed(availability["28d"]), 0.99) == pytest.approx(-36.5)


def test_attribution_by_hand(store: Store, slos: dict[str, SLO]) -> None:
    source = SqliteSLOSource(store.reads)
    # Availability over 28d: bad r2, r6, r8 (3 events).
    # task: tictactoe r2, r8 -> 2/3; connect4 r6 -> 1/3.  agent (last of agents_used): r2 hrm,
    # r6 [] -> (none), r8 trm.  provider: mock r2, r8; (none) r6.  router: gru r2, r8; rules r6.
    # variant: (none) r2, r8; A r6.
    got = source.attribution(slos["availability"], AS_OF, 28 * D)
    third = pytest.approx(1 / 3)
    assert got == {
        "task": {"tictactoe": pytest.approx(2 / 3), "connect4": third},
        "agent": {"(none)": third, "hrm": third, "trm": third},
        "provider": {"mock": pytest.approx(2 / 3), "(none)": third},
        "router": {"gru": pytest.approx(2 / 3), "rules": third},
        "variant": {"(none)": pytest.approx(2 / 3), "A": third},
    }
    for shares in got.values():
        assert sum(shares.values()) == pytest.approx(1.0)
    # Latency over 1h: bad r2 (800 ms) and r3 (501 ms): last agents hrm and trm, 1/2 each.
    latency = source.attribution(slos["latency"], AS_OF, H)
    assert latency["agent"] == {"hrm": 0.5, "trm": 0.5}
    assert latency["task"] == {"game24": 0.5, "tictactoe": 0.5}
    # Quality over 5m: no bad event -> every dimension empty.
    assert source.attribution(slos["quality"], AS_OF, 5 * M) == {
        d: {} for d in ("task", "agent", "provider", "router", "variant")
    }


def test_buckets_by_hand(store: Store, slos: dict[str, SLO]) -> None:
    # Availability over 1d in 6h buckets ending at as_of-18h, -12h, -6h, as_of; a bucket holds
    # end - 6h < ts <= end: r12 (exactly as_of - 6h) is in the third, r1 r2 r3 r6 in the last.
    got = SqliteSLOSource(store.reads).buckets(slos["availability"], AS_OF, D, 6 * H)
    assert [(b.end_ts - AS_OF, b.total, b.bad) for b in got] == [
        (-18 * H, 0, 0), (-12 * H, 0, 0), (-6 * H, 1, 0), (0.0, 4, 2),
    ]  # fmt: skip


def test_window_longer_than_the_data(tmp_path: Path, slos: dict[str, SLO]) -> None:
    # One hour of data (two rows, one bad): the 3d and 28d windows hold just those two rows.
    with Store(tmp_path / "short.db", threaded=False) as s:
        for i, status in enumerate(("ok", "error")):
            s.submit("requests", {"request_id": f"q{i}", "ts": AS_OF - 10 * M * (i + 1), "status": status})
        s.flush()
        got = SqliteSLOSource(s.reads).counts(slos["availability"], AS_OF, [H, 3 * D, 28 * D])
        assert [(c.total, c.bad) for c in got] == [(2, 1), (2, 1), (2, 1)]
        # No traffic at all before the data: zero counts, which the math reads as unknown.
        empty = SqliteSLOSource(s.reads).counts(slos["availability"], AS_OF - D, [H, 3 * D])
        assert [(c.total, c.bad) for c in empty] == [(0, 0), (0, 0)]
        assert burn_rate(0, 0, 0.99) is None


def test_bad_arguments(store: Store) -> None:
    with pytest.raises(ValueError, match="kind"):
        window_counts(store.reads, "speed", AS_OF, [H])
    with pytest.raises(ValueError, match="threshold"):
        window_counts(store.reads, "latency", AS_OF, [H])
    with pytest.raises(ValueError, match="windows"):
        window_counts(store.reads, "availability", AS_OF, [0.0])
