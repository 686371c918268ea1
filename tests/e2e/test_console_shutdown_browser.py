"""The console's shutdown path (issue 9, item 1): SIGTERM (what ``docker stop`` sends) stops the
console without a traceback and every request it answered is in the store.

A console of its own (it is stopped by the test) in the default ``async`` mode answers
queries typed into the Query console by a real browser; then the server gets SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from tests.e2e.conftest import start_console
from tests.e2e.console import run_query

pytestmark = pytest.mark.e2e


def test_sigterm_stops_the_console_cleanly_with_every_answer_stored(browser, tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOR_")}
    log_path = tmp_path / "console.log"
    proc, url = start_console(tmp_path, {"ARBOR_DURABILITY": "async"}, base_env=env)
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 1800})
        page = context.new_page()
        try:
            for seed, query in enumerate(["24: 4 7 8 8", "tictactoe: X.O/.X./..O"], start=1):
                run_query(page, url, query, seed)
        finally:
            context.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    text = log_path.read_text()
    assert "Traceback" not in text, text
    assert proc.returncode == 0, text
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = conn.execute("SELECT query, seed, status FROM requests ORDER BY seed").fetchall()
    finally:
        conn.close()
    assert rows == [("24: 4 7 8 8", 1, "ok"), ("tictactoe: X.O/.X./..O", 2, "ok")]
