"""The store under concurrency and a hard kill (issue 4, section 7).

* 8 writer threads, and 8 writer processes each with its own Store on one new file:
  exactly the issued number of requests is stored and no "database is locked" anywhere.
  The process run lasts ``ARBOR_RELIABILITY_SECONDS`` (default 20).
* ``kill -9`` of a writing process: ``PRAGMA integrity_check`` is ok and every request
  acknowledged (printed after ``flush()`` returned) is in the store.

Counts are read with plain ``sqlite3`` connections, not through the store.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from observability.store import SCHEMA_VERSION, Store
from tests.reliability.acked_writer import AckedWriter

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("store_writer.py")
SECONDS = float(os.environ.get("ARBOR_RELIABILITY_SECONDS", "20"))
THREAD_SECONDS = max(1.0, SECONDS / 8)


def scalar(path: Path, sql: str) -> object:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


@pytest.mark.parametrize("layout", ["one shared store", "a store per thread"])
def test_eight_writer_threads_store_exactly_what_they_issue(
    tmp_path: Path, layout: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "threads.db"
    shared = Store(path) if layout == "one shared store" else None
    issued = [0] * 8
    errors: list[BaseException] = []
    stores: list[Store] = []
    start = threading.Barrier(8)

    def writer(k: int) -> None:
        try:
            store = shared or Store(path)
            if shared is None:
                stores.append(store)
            start.wait()
            deadline = time.monotonic() + THREAD_SECONDS
            while time.monotonic() < deadline:
                rid = f"t{k}-{issued[k]}"
                store.submit_bundle(
                    {
                        "requests": {"request_id": rid, "task": "game24", "agents_used": ["hrm"]},
                        "spans": [{"span_id": f"{rid}-{j}", "trace_id": rid, "name": "s"} for j in range(3)],
                    }
                )
                if issued[k] % 5 == 0:
                    store.record_request({"request_id": rid})  # resubmitted: must still count once
                issued[k] += 1
                if issued[k] % 50 == 0:
                    store.flush()
            if shared is None:
                store.close()
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    with caplog.at_level(logging.WARNING, logger="observability.store"):
        threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(THREAD_SECONDS + 60)
        if shared is not None:
            shared.close()

    assert errors == []
    assert not any("locked" in r.getMessage().lower() for r in caplog.records), caplog.text
    assert caplog.records == []
    assert all(n > 0 for n in issued)
    assert scalar(path, "SELECT count(*) FROM requests") == sum(issued)
    assert scalar(path, "SELECT count(*) FROM spans") == 3 * sum(issued)
    for k in range(8):
        assert scalar(path, f"SELECT count(*) FROM requests WHERE request_id LIKE 't{k}-%'") == issued[k]
    retries = [s.stats.lock_retries for s in ([shared] if shared else stores)]
    assert retries == [0] * len(retries)
    assert scalar(path, "PRAGMA integrity_check") == "ok"


@pytest.mark.slow
def test_eight_writer_processes_store_exactly_what_they_issue(tmp_path: Path) -> None:
    path = tmp_path / "procs.db"  # new: the 8 processes also race to create and migrate it
    until = time.time() + SECONDS  # one deadline for all, start-up included
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), str(path), "burst", "--prefix", f"p{k}", "--until", repr(until)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(8)
    ]
    reports = []
    for k, proc in enumerate(procs):
        out, err = proc.communicate(timeout=SECONDS + 120)
        assert "locked" not in (out + err).lower(), err
        assert proc.returncode == 0, err
        assert err == "", err
        report = json.loads(out.strip().splitlines()[-1])
        assert report["lock_retries"] == 0 and report["failed_rows"] == 0, report
        assert report["issued"] > 0
        reports.append((k, report["issued"]))

    assert scalar(path, "PRAGMA user_version") == SCHEMA_VERSION
    assert scalar(path, "SELECT count(*) FROM schema_meta") == SCHEMA_VERSION  # migrated exactly once
    total = sum(n for _, n in reports)
    assert scalar(path, "SELECT count(*) FROM requests") == total
    assert scalar(path, "SELECT count(*) FROM spans") == 3 * total
    assert scalar(path, "SELECT count(*) FROM routing_decisions") == 2 * total
    for k, n in reports:
        assert scalar(path, f"SELECT count(*) FROM requests WHERE request_id LIKE 'p{k}-%'") == n
    assert scalar(path, "PRAGMA integrity_check") == "ok"


def test_kill_9_keeps_the_file_sound_and_every_acknowledged_request(tmp_path: Path) -> None:
    path = tmp_path / "killed.db"
    writer = AckedWriter(path)
    proc, acked = writer.proc, writer.acked
    deadline = time.monotonic() + 30
    while not acked and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)  # wait until the writer is up and acknowledging
    assert acked, writer.stderr() if proc.poll() is not None else "no acknowledgement in 30 s"
    time.sleep(2.0)
    writer.kill()
    assert proc.returncode == -signal.SIGKILL
    err = writer.stderr()
    assert "locked" not in err.lower() and "Traceback" not in err, err
    assert len(acked) > 10

    # Our own connection: recovery of the WAL, then the checks.
    assert scalar(path, "PRAGMA integrity_check") == "ok"
    conn = sqlite3.connect(path)
    stored = {r[0] for r in conn.execute("SELECT request_id FROM requests")}
    spans = conn.execute("SELECT count(*) FROM spans WHERE trace_id != 'bg'").fetchone()[0]
    conn.close()
    missing = [rid for rid in acked if rid not in stored]
    assert missing == []
    assert spans >= 3 * len(acked)  # each acknowledged bundle was committed whole

    # The file is usable again: a new store opens it and writes.
    with Store(path) as store:
        store.record_request({"request_id": "after-the-kill"})
        store.flush()
        assert store.request("after-the-kill") is not None
        assert store.integrity_check() == "ok"
