"""Durability under a flat-out load: requests lost on ``kill -9`` and SIGTERM, and memory growth.

Each measurement runs real engine processes on a fresh temporary database (4 threads,
no pause between requests) and prints one JSON object:

* ``kill9``: ``tests/reliability/engine_child.py`` (prints each request id once
  ``Engine.run`` has returned) is killed with SIGKILL ``--kill-after`` seconds after its
  first request returned, ``--repeats`` times per durability mode; ``lost`` counts printed
  ids without a ``requests`` row.  The bound in ``async`` mode is ``ARBOR_STORE_MAX_BACKLOG``
  (``--backlog``, default 2000) submissions.
* ``sigterm``: ``python -m engine load --rate 1000 --concurrency 4`` stopped by SIGTERM
  ``--kill-after`` seconds after its first committed request; ``lost`` is the summary's
  ``sent`` minus its rows.
* ``rss``: the engine child in ``async`` mode for ``--rss-seconds`` (default 60); VmRSS of
  the process when the first request returned, at its peak and at the end, sampled every
  0.5 s from /proc.

The machine is shared and small: counts and memory are what they are, request rates vary.

    python benchmarks/durability_bench.py [--repeats 3] [--kill-after 8] [--rss-seconds 60]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHILD = ROOT / "tests" / "reliability" / "engine_child.py"


def _env(db: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOR_")}
    env.update({"ARBOR_DB_PATH": str(db), "ARBOR_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)})
    env.update({f"ARBOR_{k.upper()}": v for k, v in settings.items()})
    return env


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _stored(db: Path, sql: str = "SELECT request_id FROM requests") -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {r[0] for r in conn.execute(sql)}
    finally:
        conn.close()


def _has_rows(db: Path) -> bool:
    try:
        return bool(_stored(db))
    except sqlite3.Error:  # not created yet
        return False


def _integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


def _child(db: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str], threading.Thread]:
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(db), "--threads", "4"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any(x.startswith("id ") for x in lines) and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("engine child exited before its first request")
        time.sleep(0.02)
    return proc, lines, reader


def kill9(mode: str, backlog: int, after_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "arbor.db"
        proc, lines, reader = _child(db, _env(db, durability=mode, store_max_backlog=str(backlog)))
        time.sleep(after_s)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(timeout=30)
        acked = [x.split()[1] for x in lines if x.startswith("id ") and len(x.split()) == 3]
        stats = [json.loads(x[6:]) for x in lines if x.startswith("stats {") and x.endswith("}")]
        stored = _stored(db)
        return {
            "returned": len(acked),
            "lost": sum(1 for rid in acked if rid not in stored),
            "max_backlog_seen": max((s["backlog"] for s in stats), default=None),
            "backlog_waits": stats[-1]["backlog_waits"] if stats else None,
            "integrity": _integrity(db),
        }


def sigterm(after_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "arbor.db"
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "load", "--rate", "1000", "--concurrency", "4",
             "--duration", "100", "--correlation-id", "bench"],
            cwd=ROOT, env=_env(db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not _has_rows(db):
            time.sleep(0.05)  # start-up: the clock starts with the first committed request
        time.sleep(after_s)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
        stop_s = time.monotonic() - t0
        summary = json.loads(out.strip().splitlines()[-1])
        stored = len(_stored(db, "SELECT request_id FROM requests WHERE correlation_id = 'bench'"))
        return {
            "sent": summary["sent"],
            "stored": stored,
            "lost": summary["sent"] - stored,
            "exit_status": proc.returncode,
            "traceback": "Traceback" in err,
            "stop_to_exit_s": round(stop_s, 2),
            "integrity": _integrity(db),
        }


def rss(seconds: float, backlog: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "arbor.db"
        proc, lines, reader = _child(db, _env(db, durability="async", store_max_backlog=str(backlog)))
        start = _rss_mb(proc.pid) or 0.0
        peak = start
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            now = _rss_mb(proc.pid)
            if now is not None:
                peak = max(peak, now)
            time.sleep(0.5)
        end = _rss_mb(proc.pid) or 0.0
        acked = sum(1 for x in lines if x.startswith("id "))
        stats = [json.loads(x[6:]) for x in lines if x.startswith("stats {") and x.endswith("}")]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        reader.join(timeout=30)
        return {
            "seconds": seconds,
            "requests": acked,
            "requests_per_s": round(acked / seconds, 1),
            "rss_start_mb": round(start, 1),
            "rss_peak_mb": round(peak, 1),
            "rss_end_mb": round(end, 1),
            "rss_growth_mb": round(peak - start, 1),
            "max_backlog_seen": max((s["backlog"] for s in stats), default=None),
            "backlog_waits": stats[-1]["backlog_waits"] if stats else None,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kill-after", type=float, default=8.0, help="seconds of load before the signal")
    parser.add_argument("--backlog", type=int, default=2000, help="ARBOR_STORE_MAX_BACKLOG")
    parser.add_argument("--rss-seconds", type=float, default=60.0)
    parser.add_argument("--skip", nargs="*", default=(), choices=("kill9", "sigterm", "rss"))
    args = parser.parse_args()
    if "kill9" not in args.skip:
        for mode in ("async", "commit"):
            runs = [kill9(mode, args.backlog, args.kill_after) for _ in range(args.repeats)]
            print(json.dumps({"measure": "kill9", "durability": mode, "backlog": args.backlog, "runs": runs}))
    if "sigterm" not in args.skip:
        runs = [sigterm(args.kill_after) for _ in range(args.repeats)]
        print(json.dumps({"measure": "sigterm", "durability": "async", "runs": runs}), flush=True)
    if "rss" not in args.skip:
        print(json.dumps({"measure": "rss", "durability": "async", **rss(args.rss_seconds, args.backlog)}))


if __name__ == "__main__":
    main()
