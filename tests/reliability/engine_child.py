"""An engine process for the durability tests (run as a script, not collected by pytest).

    python tests/reliability/engine_child.py DB [--threads 4] [--seconds S]

Builds an ``Engine`` from the ``ARBOR_*`` environment (``ARBOR_DURABILITY``,
``ARBOR_STORE_MAX_BACKLOG``; the store at DB, no metrics exporter) and runs
``--threads`` threads flat out (no pause between requests) over the game24,
tic-tac-toe and connect-four lines of ``data/workloads/mixed.jsonl``.  Each thread
prints ``id <request_id> <trace_id>`` on stdout as soon as ``Engine.run`` has
returned, so every printed id is one the engine acknowledged.  About every 0.2 s the
main thread prints ``stats <json>`` (the store's backlog counters).  Runs until
killed, or for ``--seconds`` and then closes the engine and prints ``closed``.

Any exception goes to stderr with a traceback and exit status 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine import Engine, QueryRequest  # noqa: E402
from engine.config import load_settings  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=None)
    args = parser.parse_args()
    lines = (ROOT / "data" / "workloads" / "mixed.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    queries = [r for r in rows if r.get("task") in ("game24", "tictactoe", "connect4")]
    engine = Engine(load_settings(db_path=Path(args.db), metrics_port=0))
    store = engine.telemetry.store
    assert store is not None, "telemetry must be on"
    out = threading.Lock()
    stop = threading.Event()
    failures: list[BaseException] = []

    def say(line: str) -> None:
        with out:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    def worker(k: int) -> None:
        i = 0
        try:
            while not stop.is_set():
                row = queries[(k * 7919 + i) % len(queries)]
                request = QueryRequest(query=row["query"], task=row["task"], seed=k * 1_000_000 + i)
                result = engine.run(request)
                say(f"id {result.request_id} {result.trace_id}")
                i += 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            stop.set()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(args.threads)]
    for t in threads:
        t.start()
    until = None if args.seconds is None else time.monotonic() + args.seconds
    while not stop.is_set() and (until is None or time.monotonic() < until):
        say("stats " + json.dumps(dataclasses.asdict(store.stats)))
        stop.wait(0.2)
    stop.set()
    for t in threads:
        t.join()
    if failures:
        raise failures[0]
    engine.close()
    say("closed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
