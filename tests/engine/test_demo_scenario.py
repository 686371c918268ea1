"""``make demo``'s generator on a shorter timeline, through the real engine: the replayed SLO
alerts fire where the scheduled incidents are, and nowhere else.

Oracle: the incidents' windows (placed by day and hour, independently of any alert math) and
the SLO file's rules as the replay applies them.  Eight days of 8,000 requests (~40 an hour, as
the 28-day demo's 30,000) keep the run short while the slow burn still spans 48 hours.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine import Engine
from engine.config import load_settings
from engine.faults import FaultPlan
from engine.workload import DAY_S, DEMO_FAULTS, LoadConfig, default_incidents, read_workload, run_load
from observability.slo.alert_store import replay_store
from observability.slo.models import load_slos
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import ReadModel

ROOT = Path(__file__).resolve().parents[2]
DAYS = 8
END = datetime(2026, 3, 14, 9, 17, tzinfo=UTC).timestamp()  # a Saturday morning, mid-hour


def test_the_makefile_runs_the_demo_with_the_same_faults() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r'^DEMO_FAULTS\s*\?=\s*"?' + re.escape(DEMO_FAULTS) + r'"?\s*$', makefile, re.M)


@pytest.mark.slow
def test_replayed_alerts_start_inside_the_incidents(tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    try:
        cfg = LoadConfig(
            clock="simulated", days=DAYS, requests=8000, concurrency=2, seed=12,
            faults=FaultPlan.parse(DEMO_FAULTS),
        )  # fmt: skip
        rows = read_workload(ROOT / "data" / "workloads" / "demo.jsonl")
        store = engine.telemetry.store
        assert store is not None
        report = run_load(engine, rows, cfg, wall=lambda: END, store=store)
        store.flush(timeout_s=240)  # a generous deadline: the machine is shared
    finally:
        engine.close()
    assert report.sent == 8000 and report.start_ts == END - DAYS * DAY_S
    spike, outage, slow, latency = default_incidents(DAYS)
    windows = {x.kind: x.window(report.start_ts, DAYS * DAY_S) for x in (spike, outage, slow, latency)}
    reads = ReadModel(db)
    stored = {i.kind: (i.start_ts, i.end_ts) for i in reads.incidents(report.start_ts, END)}
    assert stored == windows and all(i.simulated for i in reads.incidents(0, END))

    # replayed from 6h after the first request, as make demo's replay starts a day in: before
    # that the windows hold only minutes of data, where one slow request burns over any factor
    episodes = replay_store(load_slos(), SqliteSLOSource(reads), END, timedelta(days=DAYS, hours=-6))

    def inside(ts: float, *kinds: str) -> bool:
        return any(windows[k][0] <= ts < windows[k][1] for k in kinds or windows)

    starts = [(e.slo, e.severity, e.start_ts) for e in episodes]
    # the fast burn pages on availability, from inside its two hours
    assert any(
        (slo, sev) == ("availability", "page") and inside(t, "error_spike") for slo, sev, t in starts
    ), starts
    # the slow burn opens an availability ticket, the regression a latency ticket, each from inside
    assert any(
        (slo, sev) == ("availability", "ticket") and inside(t, "slow_burn") for slo, sev, t in starts
    ), starts
    assert any(
        (slo, sev) == ("latency", "ticket") and inside(t, "latency_regression") for slo, sev, t in starts
    ), starts
    # No page outside the incidents.  No availability or latency ticket either, except one that
    # re-fires while its short window (6h) still holds the end of an incident (the replay has no
    # hysteresis: a burn falling through the factor may flap).  Quality is not injected: its
    # verdicts are the engine's own.
    for slo, severity, t in starts:
        if severity == "page":
            assert inside(t), (slo, severity, datetime.fromtimestamp(t, UTC))
        elif slo in ("availability", "latency"):
            assert any(lo <= t < hi + 6 * 3600 for lo, hi in windows.values()), (slo, severity, t)
    # the slow burn never pages
    assert not any(
        (slo, sev) == ("availability", "page") and inside(t, "slow_burn") for slo, sev, t in starts
    ), starts


def test_empty_store_refuses_a_store_that_holds_requests(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ARBOR_METRICS_PORT": "0",
        "ARBOR_DB_PATH": str(tmp_path / "a.db"),
    }
    args = [sys.executable, "-m", "engine", "load", "--clock", "simulated", "--days", "1", "--requests", "3",
            "--workload", str(ROOT / "data" / "workloads" / "demo.jsonl"), "--empty-store"]  # fmt: skip
    first = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.splitlines()[-1])
    assert summary["sent"] == 3
    second = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert "already holds 3 requests" in second.stderr and "ARBOR_DB_PATH" in second.stderr
    assert ReadModel(tmp_path / "a.db").count("requests") == 3  # nothing added, nothing lost
