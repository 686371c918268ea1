"""A store writer process for the reliability tests (run as a script, not collected by pytest).

    python tests/reliability/store_writer.py DB burst --prefix p3 --until 1767225600.0
        Writes request bundles (1 request, 3 spans, 2 routing rows; every 7th request
        submitted twice) until the unix time ``--until`` (at least one bundle; a shared
        deadline, so start-up time does not stretch the run), flushing every 25 bundles, then closes and
        prints one JSON line: {"issued": <distinct request ids>, "lock_retries": n, ...}.

    python tests/reliability/store_writer.py DB ack --prefix k
        Until killed: a background thread streams spans without flushing (so the writer
        is nearly always inside a transaction); the main loop submits a request bundle,
        waits for ``flush()`` and only then prints the request id (acknowledged).

Any exception goes to stderr with a traceback and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from observability.store import Store


def bundle(prefix: str, i: int) -> dict[str, object]:
    rid = f"{prefix}-{i}"
    return {
        "requests": {
            "request_id": rid, "trace_id": f"t-{rid}", "task": "game24", "query": "24: 4 7 8 8",
            "answer": "(7-8/8)*4", "verdict": "correct", "quality": 1.0, "confidence": 0.9,
            "agents_used": ["hrm", "mcts"], "latency_ms": 3.0, "seed": i, "status": "ok",
        },
        "spans": [
            {"span_id": f"{rid}-s{j}", "trace_id": f"t-{rid}", "name": f"step{j}", "start_ts": float(j),
             "attributes": {"j": j}}
            for j in range(3)
        ],
        "routing_decisions": [
            {"request_id": rid, "step": j, "agent": "hrm", "probabilities": {"hrm": 0.5, "mcts": 0.5}}
            for j in range(2)
        ],
    }  # fmt: skip


def burst(store: Store, prefix: str, until: float) -> dict[str, object]:
    issued = 0
    while issued == 0 or time.time() < until:
        b = bundle(prefix, issued)
        store.submit_bundle(b)
        if issued % 7 == 0:
            store.record_request(b["requests"])  # type: ignore[arg-type]  # a resubmission: stored once
        issued += 1
        if issued % 25 == 0:
            store.flush(timeout_s=60)
    store.close()
    stats = store.stats
    return {"issued": issued, "lock_retries": stats.lock_retries, "failed_rows": stats.failed_rows}


def ack(store: Store, prefix: str) -> None:
    def stream() -> None:
        n = 0
        while True:
            store.record_spans(
                [{"span_id": f"{prefix}-bg{n + j}", "trace_id": "bg", "name": "bg"} for j in range(50)]
            )
            n += 50
            time.sleep(0.001)

    threading.Thread(target=stream, daemon=True).start()
    i = 0
    while True:
        store.submit_bundle(bundle(prefix, i))
        store.flush(timeout_s=60)
        print(f"{prefix}-{i}", flush=True)
        i += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("mode", choices=["burst", "ack"])
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--until", type=float, default=0.0, help="burst: stop at this unix time")
    args = parser.parse_args()
    store = Store(args.db)
    if args.mode == "burst":
        print(json.dumps(burst(store, args.prefix, args.until)), flush=True)
    else:
        ack(store, args.prefix)


if __name__ == "__main__":
    main()
