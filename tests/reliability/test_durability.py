"""Durability with a stated bound (issue 9, item 1), against real processes.

* ``kill -9`` of an engine process running 4 threads flat out
  (``tests/reliability/engine_child.py`` prints each request id once ``Engine.run``
  has returned):

  - ``ARBOR_DURABILITY=commit``: every printed id is in the store with its spans and
    routing decisions (0 missing);
  - ``async`` with ``ARBOR_STORE_MAX_BACKLOG=25``: at most 25 printed ids are missing
    (the bound counts the batch being committed too).  An unbounded writer backlog
    lost thousands here (issue 9: 52 % of the returned requests).

* SIGTERM / SIGINT of ``python -m engine load --rate 1000 --concurrency 4`` (flat out):
  no traceback, status 128 + signal, one JSON summary line on stdout, and exactly the
  ``sent`` requests it counts (``ok`` of them ok) are in the store.

After each run ``PRAGMA integrity_check`` is ok.  Rows are counted with plain
``sqlite3`` connections, not through the store.  The runs last
``ARBOR_DURABILITY_SECONDS`` (default 3) after the first acknowledged request.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("engine_child.py")
SECONDS = float(os.environ.get("ARBOR_DURABILITY_SECONDS", "3"))
BACKLOG = 25


def _env(db: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOR_")}
    env.update({"ARBOR_DB_PATH": str(db), "ARBOR_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)})
    env.update({f"ARBOR_{k.upper()}": v for k, v in settings.items()})
    return env


class _Lines:
    """A child's stdout, read line by line in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._proc = proc
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate: object, what: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate() and self._proc.poll() is None and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.02)
        if not predicate():  # type: ignore[operator]
            err = self._proc.stderr.read() if self._proc.poll() is not None and self._proc.stderr else ""
            pytest.fail(f"no {what} within {timeout_s}s: {err}")

    def join(self) -> None:
        self._thread.join(timeout=30)


def _query(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _kill_9_run(db: Path, durability: str) -> tuple[list[tuple[str, str]], dict[str, object]]:
    """Run the engine child flat out, kill -9 it; the (request_id, trace_id) it acknowledged and
    its last store stats."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), "--threads", "4"],
        cwd=ROOT,
        env=_env(db, durability=durability, store_max_backlog=str(BACKLOG)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out = _Lines(proc)
    try:
        out.wait_for(lambda: any(x.startswith("id ") for x in out.lines), "acknowledged request")
        time.sleep(SECONDS)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        out.join()
    assert proc.returncode == -signal.SIGKILL
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    acked = [tuple(x.split()[1:3]) for x in out.lines if x.startswith("id ") and len(x.split()) == 3]
    stats = [json.loads(x[6:]) for x in out.lines if x.startswith("stats {") and x.endswith("}")]
    return acked, (stats[-1] if stats else {})  # type: ignore[return-value]


def test_commit_mode_kill_9_loses_no_returned_request(tmp_path: Path) -> None:
    db = tmp_path / "commit.db"
    acked, _ = _kill_9_run(db, "commit")
    assert len(acked) > 20
    assert _query(db, "PRAGMA integrity_check") == [("ok",)]
    stored = {r[0] for r in _query(db, "SELECT request_id FROM requests")}
    missing = [rid for rid, _ in acked if rid not in stored]
    assert missing == []
    # The request's other rows were committed with it: its spans (the query span at least) and
    # routing decisions (at least one step).
    spans = dict(_query(db, "SELECT trace_id, count(*) FROM spans GROUP BY trace_id"))  # type: ignore[arg-type]
    routing = dict(_query(db, "SELECT request_id, count(*) FROM routing_decisions GROUP BY request_id"))  # type: ignore[arg-type]
    assert [rid for rid, tid in acked if spans.get(tid, 0) < 1 or routing.get(rid, 0) < 1] == []
    # Requests that ran a search (an agent.mcts span) have their MCTS run.
    searched = {
        rid
        for rid, tid in acked
        if _query(db, "SELECT 1 FROM spans WHERE trace_id = ? AND name = 'agent.mcts'", (tid,))
    }
    runs = {r[0] for r in _query(db, "SELECT request_id FROM mcts_runs")}
    assert searched and searched <= runs


def test_async_mode_kill_9_loses_at_most_the_backlog(tmp_path: Path) -> None:
    db = tmp_path / "async.db"
    acked, stats = _kill_9_run(db, "async")
    assert len(acked) > 20
    assert _query(db, "PRAGMA integrity_check") == [("ok",)]
    stored = {r[0] for r in _query(db, "SELECT request_id FROM requests")}
    missing = [rid for rid, _ in acked if rid not in stored]
    assert len(missing) <= BACKLOG, (len(missing), len(acked), stats)
    assert 0 <= int(stats.get("backlog", 0)) <= BACKLOG  # type: ignore[call-overload]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_load_stopped_by_a_signal_flushes_every_request_it_counts(tmp_path: Path, sig: int) -> None:
    db = tmp_path / "load.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "load", "--rate", "1000", "--concurrency", "4", "--duration", "60",
         "--correlation-id", "durability-test"],
        cwd=ROOT,
        env=_env(db),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if db.exists() and _committed(db) > 0:
                break
            time.sleep(0.05)
        time.sleep(SECONDS)
    finally:
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert proc.returncode == 128 + sig, err
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    summary = json.loads(lines[0])
    assert summary["signal"] == signal.Signals(sig).name and summary["stopped"] and summary["flushed"]
    assert 0 < summary["sent"] < summary["issued"]
    assert summary["sent"] == summary["ok"] + summary["errors"] + summary["invalid"]
    assert _query(db, "PRAGMA integrity_check") == [("ok",)]
    sql = "SELECT status, count(*) FROM requests WHERE correlation_id = 'durability-test' GROUP BY status"
    rows = _query(db, sql)
    by_status = dict(rows)  # type: ignore[arg-type]
    assert sum(by_status.values()) == summary["sent"]  # type: ignore[arg-type]
    assert by_status.get("ok", 0) == summary["ok"]


def _committed(db: Path) -> int:
    try:
        return int(_query(db, "SELECT count(*) FROM requests")[0][0])  # type: ignore[call-overload]
    except sqlite3.Error:  # not created yet
        return 0
