"""``kill -9`` of a writing process leaves the roll-ups consistent with the request rows (issue 12,
item 8): they are written by a trigger in the rows' own transaction, so no commit holds one
without the other.  The writer is tests/reliability/store_writer.py in ``ack`` mode."""

from __future__ import annotations

import signal
import sqlite3
import time
from pathlib import Path

from observability.store.rollups import rebuild
from tests.reliability.acked_writer import AckedWriter


def test_kill_9_keeps_rows_and_rollups_consistent(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    writer = AckedWriter(path)
    proc, acked = writer.proc, writer.acked
    deadline = time.monotonic() + 60
    while len(acked) < 50 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    writer.kill()
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 50, writer.stderr()

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
