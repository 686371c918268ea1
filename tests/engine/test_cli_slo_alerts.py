"""``python -m engine slo alerts``: the replay persisted into the alerts table, idempotently,
and clear errors for a bad store or SLO file (store built as in tests/observability/test_slo_replay.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.observability.test_slo_replay import AS_OF, _build

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARBOR_METRICS_PORT": "0"}
    return subprocess.run(
        [sys.executable, "-m", "engine", "slo", "alerts", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


def test_cli_alerts_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    _build(db).close()
    args = ("--db", str(db), "--as-of", str(AS_OF), "--period", "1d")
    first = _cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    # availability page 1h/5m: hand-worked in test_slo_replay (AS_OF - 35400 .. AS_OF - 32100)
    assert (
        f"availability page 1h/5m factor 13.44: from {AS_OF - 35400:.0f}, resolved {AS_OF - 32100:.0f}"
        in (first.stdout)
    )
    from observability.store import ReadModel

    rows = ReadModel(db).query("SELECT alert_id, slo, severity, state FROM alerts ORDER BY alert_id")
    assert rows and all(r["state"] == "resolved" for r in rows)
    second = _cli(*args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert ReadModel(db).query("SELECT alert_id, slo, severity, state FROM alerts ORDER BY alert_id") == rows


def test_cli_alerts_errors(tmp_path: Path) -> None:
    missing = _cli("--db", str(tmp_path / "none.db"), cwd=tmp_path)
    assert missing.returncode == 4 and "no telemetry store" in missing.stderr
    assert "Traceback" not in missing.stderr
    bad = tmp_path / "slos.yaml"
    bad.write_text("apiVersion: nope\n")
    db = tmp_path / "arbor.db"
    _build(db).close()
    out = _cli("--db", str(db), "--slos", str(bad), cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.strip()
