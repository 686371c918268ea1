"""``kill -9`` of a writing process leaves the roll-ups consistent with the request rows (issue 12,
item 8): they are written by a trigger in the rows' own transaction, so no commit holds one
without the other.  The writer is tests/reliability/store_writer.py in ``ack`` mode."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from observability.store.rollups import rebuild

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("store_writer.py")


def test_kill_9_keeps_rows_and_rollups_consistent(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(path), "ack", "--prefix", "k"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(line.strip())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while len(acked) < 50 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    reader.join(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 50, proc.stderr.read() if proc.stderr else ""

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {r[0] for r in conn.execute("SELECT request_id FROM requests")}
        assert set(acked) <= stored
        by_minute_rows = conn.execute(
            "SELECT (CAST(ts AS INTEGER) / 60) * 60, count(*), SUM(latency_ms <= 5.0) FROM requests"
            " GROUP BY 1 ORDER BY 1"
        ).fetchall()
        by_minute_rollup = conn.execute(
            "SELECT minute, SUM(n), SUM(le_5) FROM request_rollups GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert by_minute_rollup == by_minute_rows
        before = conn.execute("SELECT * FROM request_rollups ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9").fetchall()
        rebuild(conn)
        after = conn.execute("SELECT * FROM request_rollups ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9").fetchall()
        assert after == before
    finally:
        conn.close()
