"""``python -m engine canary``: exit status 0 promoted, 5 rolled back, 2 for a bad spec or an
unknown run; ``list``/``show`` read the recorded timeline; SIGTERM mid-run keeps every recorded
row and marks the run stopped."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.__main__ import main
from engine.cli_canary import EXIT_ROLLED_BACK
from tests.engine.canary.helpers import ROOT, rows, write_spec


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.setenv("ARBOR_DB_PATH", str(path))
    monkeypatch.setenv("ARBOR_METRICS_PORT", "0")
    return path


def test_exit_codes_list_and_show(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faulty = write_spec(tmp_path, "cli-faulty", "faults: {canary: 'error=0.3'}\n")
    assert main(["canary", "run", str(faulty), "--simulated"]) == EXIT_ROLLED_BACK == 5
    out, err = capsys.readouterr()
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "rolled_back" and summary["flushed"] is True and summary["signal"] is None
    assert "rolled back at step 1 (5 %): error_ratio" in err and "Traceback" not in err
    # the healthy one, with a loose p95 margin: on the wall-clock latency of a shared machine the
    # default x1.2 is a real guardrail, not something a test can rely on
    healthy = write_spec(tmp_path, "cli-healthy", guardrails="  p95_latency: {relative: 5.0}\n")
    assert main(["canary", "run", str(healthy), "--simulated", "--seed", "9"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["status"], summary["share_pct"], summary["seed"]) == ("promoted", 100.0, 9)
    recorded = rows(db, "SELECT COUNT(*) FROM requests WHERE experiment = 'cli-healthy'")[0][0]
    assert recorded == sum(summary["sent"].values())  # flushed before the summary line
    assert main(["canary", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 2 and "cli-healthy" in listed[0] and "promoted" in listed[0]
    faulty_id = listed[1].split()[0]
    assert main(["canary", "show", faulty_id]) == 0
    shown = capsys.readouterr().out
    assert "rolled_back at 0 %" in shown and "error_ratio              fail" in shown
    assert main(["canary", "show", faulty_id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"]["status"] == "rolled_back" and data["steps"][-1]["decision"] == "rollback"
    with pytest.raises(SystemExit) as exc:
        main(["canary", "show", "nope"])
    assert exc.value.code == 2 and "no canary run 'nope'" in capsys.readouterr().err


def test_a_bad_spec_is_one_line_per_problem(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\ncandidate: {warp: 1}\nworkload: {file: nope.jsonl}\nsteps: [10, 5]\n")
    with pytest.raises(SystemExit) as exc:
        main(["canary", "run", str(bad)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{bad}:2: candidate.warp: unknown override 'warp'" in err[0]
    assert err[-1] == "python -m engine: error: 1 problem(s) in the canary spec; nothing was run"
    assert not db.exists() or rows(db, "SELECT COUNT(*) FROM requests") == [(0,)]


def test_sigterm_mid_run_keeps_every_recorded_row(tmp_path: Path) -> None:
    # a long step (50 %, 3000 requests per arm before it can be promoted), evaluated every 5
    spec = write_spec(tmp_path, "cli-term").read_text()
    spec = spec.replace("steps: [5, 25, 50, 100]", "steps: [50, 100]").replace(
        "window_requests: 40\nmin_requests: 20", "window_requests: 3000\nmin_requests: 3000"
    )
    path = tmp_path / "term.yaml"
    path.write_text(spec)
    db = tmp_path / "term.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOR_")}
    env.update({"ARBOR_DB_PATH": str(db), "ARBOR_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "canary", "run", str(path), "--simulated"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                n = rows(db, "SELECT COUNT(*) FROM canary_steps")[0][0] if db.exists() else 0
            except sqlite3.OperationalError:  # tables not created yet
                n = 0
            if isinstance(n, int) and n >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["status"] == "stopped" and summary["signal"] == "SIGTERM" and summary["flushed"] is True
    run = rows(db, "SELECT run_id, status, baseline_requests, canary_requests, finished_ts FROM canary_runs")
    assert len(run) == 1
    run_id, status, base_n, canary_n, finished = run[0]
    assert status == "stopped" and finished is not None
    # every request the run counted is in the store, and nothing else under its label
    assert (base_n, canary_n) == (summary["sent"]["baseline"], summary["sent"]["canary"])
    assert rows(db, "SELECT COUNT(*) FROM requests WHERE experiment = 'cli-term'") == [(base_n + canary_n,)]
    steps = rows(db, "SELECT seq, decision FROM canary_steps WHERE run_id = ? ORDER BY seq", (run_id,))
    assert len(steps) >= 4 and [s[0] for s in steps] == list(range(1, len(steps) + 1))
    assert steps[-1][1] == "stop" and {d for _, d in steps[:-1]} == {"continue"}
    assert rows(db, "SELECT COUNT(DISTINCT seq) FROM canary_guardrails WHERE run_id = ?", (run_id,)) == [
        (len(steps),)
    ]
