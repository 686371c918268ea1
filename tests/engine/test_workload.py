"""The load generator: exact counts in the store, seeded faults, simulated timeline."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from engine import Engine
from engine.config import load_settings
from engine.faults import FaultPlan
from engine.workload import DAY_S, LoadConfig, default_incidents, plan, read_workload, run_load

ROWS = [
    {"query": "24: 4 7 8 8"},
    {"query": "tictactoe: X.O/.X./..O"},
    {"query": "connect4: 4453"},
    {"query": "24: 1 1 1 1"},
]


@pytest.fixture
def engine(tmp_path):
    e = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0))
    yield e
    e.close()


def _count(db, sql):
    with sqlite3.connect(db) as con:
        return con.execute(sql).fetchall()


def test_wall_clock_run_records_every_request_and_the_planned_faults(engine, tmp_path):
    cfg = LoadConfig(rate=100, duration_s=0.4, concurrency=4, faults=FaultPlan(error=0.3), seed=5)
    expected_errors = sum(p.faults.error for p in plan(ROWS, cfg))
    report = run_load(engine, ROWS, cfg)
    engine.telemetry.flush()
    assert report.issued == 40 and report.errors == expected_errors and report.ok == 40 - expected_errors
    by_status = dict(_count(tmp_path / "arbor.db", "select status, count(*) from requests group by status"))
    assert by_status == {
        "ok": 40 - expected_errors,
        **({"error": expected_errors} if expected_errors else {}),
    }
    assert 0 < expected_errors < 40  # 30% of 40, by the seed
    # one correlation id ties the run's requests (all 40, failures included) together
    assert report.correlation_id.startswith("load-5-")
    assert _count(tmp_path / "arbor.db", "select correlation_id, count(*) from requests group by 1") == [
        (report.correlation_id, 40)
    ]


def test_a_given_correlation_id_is_used_and_a_bad_one_refused(engine, tmp_path):
    report = run_load(engine, ROWS[:1], LoadConfig(rate=10, duration_s=0.2, correlation_id="nightly-42"))
    engine.telemetry.flush()
    assert report.correlation_id == "nightly-42"
    assert _count(tmp_path / "arbor.db", "select distinct correlation_id from spans") == [("nightly-42",)]
    with pytest.raises(ValueError, match="correlation id"):
        LoadConfig(correlation_id="has space")


def test_the_plan_is_reproducible_and_paced():
    cfg = LoadConfig(rate=50, duration_s=1, faults=FaultPlan.parse("latency_ms=100@0.5"), seed=3)
    a, b = plan(ROWS, cfg), plan(ROWS, cfg)
    assert a == b and len(a) == 50
    assert [p.offset_s for p in a] == pytest.approx([i / 50 for i in range(50)])


@pytest.mark.slow
def test_simulated_timeline_is_stamped_marked_and_has_incidents(engine, tmp_path):
    cfg = LoadConfig(clock="simulated", days=28, requests=1200, concurrency=2, seed=2)
    before = time.time()
    report = run_load(engine, ROWS, cfg, store=engine.telemetry.store)
    engine.telemetry.flush()
    rows = _count(tmp_path / "arbor.db", "select ts, status, simulated from requests")
    assert len(rows) == 1200 and all(sim == 1 for _, _, sim in rows)
    ts = sorted(t for t, _, _ in rows)
    assert before - 28 * DAY_S - 5 <= ts[0] and ts[-1] <= time.time()
    assert ts[-1] - ts[0] > 27 * DAY_S
    assert report.incidents == tuple(x.name for x in default_incidents(28))
    planned = plan(ROWS, cfg, report.start_ts)
    assert [s for _, s, _ in sorted(rows)].count("error") == sum(p.faults.error for p in planned) > 0
    # the base plan injects nothing, so every error lies inside an incident window
    windows = [x.window(report.start_ts, 28 * DAY_S) for x in default_incidents(28)]
    for t, status, _ in rows:
        if status == "error":
            assert any(lo <= t < hi for lo, hi in windows), t
    # ... and those windows are what the store recorded
    stored = _count(tmp_path / "arbor.db", "select start_ts, end_ts, simulated from incidents order by 1")
    assert stored == [(lo, hi, 1) for lo, hi in sorted(windows)] and report.incidents_recorded == 4


def test_bad_workload_lines_are_named(tmp_path):
    bad = tmp_path / "w.jsonl"
    bad.write_text(json.dumps({"query": "24: 1 2 3 4"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"w.jsonl:2: not JSON"):
        read_workload(bad)
    with pytest.raises(ValueError, match=r"rate 0 is out of range: it must be in \(0, 1000\]"):
        LoadConfig(rate=0)
