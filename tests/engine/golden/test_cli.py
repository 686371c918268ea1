"""``python -m engine golden ...`` as a user runs it (subprocesses on a temp store and suite)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.golden.conftest import SHIPPED

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow
NAMES = ("game24-solvable-rules", "tictactoe-block-hybrid", "freeform-no-rag")


def _golden(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ARBOR_DB_PATH": str(tmp_path / "arbor.db"),
        "ARBOR_METRICS_PORT": "0",
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        [sys.executable, "-m", "engine", "golden", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=240,
        check=False,
    )


def _suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in NAMES:
        shutil.copy(SHIPPED / f"{name}.json", suite)
    return suite


def test_run_json_exit_codes_and_history(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    ok = _golden(tmp_path, "run", "--suite", str(suite), "--json", "--no-latency-gate", "--repeat", "2")
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    assert (doc["passed"], doc["failed"], doc["errors"]) == (3, 0, 0)
    assert {"p_value", "median_change", "tolerance", "regression", "gated"} <= set(doc["latency"])
    assert doc["latency"]["gated"] is False and doc["repeat"] == 2
    assert [r["name"] for r in doc["results"]] == sorted(NAMES)
    assert all(r["status"] == "pass" and r["first_divergence"] is None for r in doc["results"])
    assert all(len(r["latency_samples_ms"]) == 2 for r in doc["results"])
    assert "3/3" in ok.stderr  # the progress bar

    data = json.loads((suite / "tictactoe-block-hybrid.json").read_text(encoding="utf-8"))
    data["verdict"] = "incorrect"
    (suite / "tictactoe-block-hybrid.json").write_text(json.dumps(data), encoding="utf-8")
    (suite / "zz-bad.json").write_text("[]", encoding="utf-8")
    bad = _golden(tmp_path, "run", "--suite", str(suite), "--no-latency-gate")
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert "REGRESSION  tictactoe-block-hybrid: verdict: expected incorrect, got correct" in lines
    assert any(
        line.startswith("ERROR       zz-bad: ") and "a JSON object, not list" in line for line in lines
    )
    assert "2 passed, 1 regressions, 1 errors" in bad.stdout

    history = _golden(tmp_path, "history", "--json")
    runs = json.loads(history.stdout)
    assert [(r["passed"], r["failed"], r["errors"]) for r in runs] == [(2, 1, 1), (3, 0, 0)]


def test_bad_arguments_and_refusals_are_one_line_with_status_2(tmp_path: Path) -> None:
    missing = _golden(tmp_path, "run", "--suite", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "the golden suite directory does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    no_reason = _golden(tmp_path, "capture", "--update", "x")
    assert no_reason.returncode == 2 and "--update needs --reason TEXT" in no_reason.stderr
    refused = _golden(tmp_path, "capture", "abc", "--name", "x", "--suite", str(tmp_path / "s"))
    assert refused.returncode == 2 and "capture refused: no telemetry store" in refused.stderr
    request = tmp_path / "req.json"
    request.write_text(
        json.dumps({"query": "24: 4 7 8 8", "seed": 5, "mcts_iterations": 100}), encoding="utf-8"
    )
    made = _golden(
        tmp_path, "capture", "--request", str(request), "--name", "g1", "--suite", str(tmp_path / "s")
    )
    assert made.returncode == 0, made.stderr
    assert "captured g1" in made.stdout and (tmp_path / "s" / "g1.json").is_file()
