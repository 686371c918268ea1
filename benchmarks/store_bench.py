"""Store insert throughput: one JSON object on stdout.

Spans go through the real write path (``Store.record_spans`` -> validation in
the caller -> queue -> writer thread -> ``BEGIN IMMEDIATE`` batches) into a
fresh WAL file in a temporary directory; the clock runs from the first submit
until ``flush()`` returns, so every span is committed when it stops.  Two
submission shapes: one span per call (worst case) and one call per trace of
``--per-trace`` spans (what a finished request does).  Each figure is the
median of ``--runs`` runs.  ``submit_us_per_span`` is the caller's share (time
spent inside the submit calls), the part a query pays on its hot path.

    python benchmarks/store_bench.py [--spans 100000] [--per-trace 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from observability.store import Store


def make_spans(n: int, per_trace: int) -> list[dict[str, object]]:
    """``n`` spans shaped like the tracer's rows (ids, times, status, a few attributes)."""
    t0 = 1_700_000_000.0
    return [
        {
            "span_id": f"{i:016x}",
            "trace_id": f"{i // per_trace:032x}",
            "parent_id": None if i % per_trace == 0 else f"{i - i % per_trace:016x}",
            "name": ("query", "route", "agent.hrm", "agent.mcts", "mcts.search")[i % 5],
            "start_ts": t0 + i * 1e-3,
            "end_ts": t0 + i * 1e-3 + 5e-4,
            "duration_ms": 0.5,
            "status": "ok",
            "attributes": {"task": "game24", "iteration": i % 100, "agent": "hrm"},
            "correlation_id": f"req-{i // per_trace}",
        }
        for i in range(n)
    ]


def run_once(spans: list[dict[str, object]], per_call: int) -> dict[str, float]:
    """Seconds to submit+flush ``spans`` ``per_call`` at a time; the caller's submit seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = Store(path)
        submit_s = 0.0
        start = time.perf_counter()
        for i in range(0, len(spans), per_call):
            t = time.perf_counter()
            store.record_spans(spans[i : i + per_call])
            submit_s += time.perf_counter() - t
        store.flush(timeout_s=300)
        total_s = time.perf_counter() - start
        store.close()
        stored = sqlite3.connect(path).execute("SELECT count(*) FROM spans").fetchone()[0]
        if stored != len(spans):
            raise SystemExit(f"only {stored} of {len(spans)} spans stored")
    return {"total_s": total_s, "submit_s": submit_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--per-trace", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    spans = make_spans(args.spans, args.per_trace)
    result: dict[str, object] = {
        "benchmark": "store_insert",
        "spans": args.spans,
        "runs": args.runs,
        "target_spans_per_sec": 20_000,
    }
    for label, per_call in (("per_trace", args.per_trace), ("one_per_call", 1)):
        runs = [run_once(spans, per_call) for _ in range(args.runs)]
        total = statistics.median(r["total_s"] for r in runs)
        submit = statistics.median(r["submit_s"] for r in runs)
        result[label] = {
            "spans_per_call": per_call,
            "spans_per_sec": round(args.spans / total),
            "submit_us_per_span": round(submit / args.spans * 1e6, 2),
            "seconds": round(total, 3),
        }
    result["python"] = platform.python_version()
    result["sqlite"] = sqlite3.sqlite_version
    print(json.dumps(result))


if __name__ == "__main__":
    main()
