"""Stopping a load run early (a signal in the CLI): exactly the requests it counts are recorded."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from engine import Engine
from engine.config import load_settings
from engine.faults import FaultPlan
from engine.workload import LoadConfig, run_load

ROWS = [{"query": "24: 4 7 8 8"}, {"query": "tictactoe: X.O/.X./..O"}, {"query": "connect4: 4453"}]


def test_a_stopped_run_sends_no_more_and_every_request_it_counts_is_in_the_store(tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    flag = threading.Event()

    def progress(done: int, total: int, ok: int, errors: int) -> None:
        if done >= 10:
            flag.set()

    cfg = LoadConfig(
        rate=1000,
        duration_s=60,
        concurrency=4,
        faults=FaultPlan(error=0.2),
        seed=3,
        correlation_id="stop-test",
    )
    try:
        report = run_load(engine, ROWS, cfg, progress=progress, stop=flag.is_set)
    finally:
        engine.close()
    assert report.stopped and report.issued == 60_000
    assert 10 <= report.sent < report.issued
    assert report.sent == report.ok + report.errors + report.invalid and report.errors > 0
    with sqlite3.connect(db) as conn:
        rows = dict(
            conn.execute(
                "SELECT status, count(*) FROM requests WHERE correlation_id = 'stop-test' GROUP BY status"
            ).fetchall()
        )
    assert rows == {"ok": report.ok, "error": report.errors}


def test_a_run_that_is_never_stopped_sends_the_whole_plan(tmp_path: Path) -> None:
    engine = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0))
    try:
        report = run_load(engine, ROWS, LoadConfig(rate=200, duration_s=0.1), stop=lambda: False)
    finally:
        engine.close()
    assert (report.issued, report.sent, report.stopped) == (20, 20, False)
