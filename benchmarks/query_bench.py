"""Query latency and answer quality over the shipped workloads, offline.

Prints one JSON object per task: requests, p50/p95/max latency (ms, from
``QueryResult.latency_ms``), and the verdict counts; for Game of 24 also
solved/solvable and false claims.  Default settings, seed = line number.

    python benchmarks/query_bench.py [--tasks game24,tictactoe,connect4,freeform] [--limit N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from engine import Engine, QueryRequest
from engine.config import load_settings

WORKLOADS = Path(__file__).resolve().parents[1] / "data" / "workloads"
FILES = {
    "game24": "game24.jsonl",
    "tictactoe": "tictactoe_tactics.jsonl",
    "connect4": "connect4_tactics.jsonl",
    "freeform": "freeform.jsonl",
}


def bench(engine: Engine, task: str, limit: int | None) -> dict[str, object]:
    """Run one workload file and summarise it."""
    rows = [json.loads(line) for line in (WORKLOADS / FILES[task]).read_text().splitlines() if line.strip()]
    rows = rows[:limit] if limit else rows
    latencies, verdicts = [], {"correct": 0, "incorrect": 0, "unknown": 0}
    solvable = solved = false_claims = 0
    for i, row in enumerate(rows):
        result = engine.run(QueryRequest(query=row["query"], seed=i))
        latencies.append(result.latency_ms)
        verdicts[result.verdict] += 1
        if task == "game24":
            claims = result.answer_kind == "expression"
            if row["solvable"]:
                solvable += 1
                solved += claims and result.verdict == "correct"
            else:
                false_claims += claims
    lat = np.array(latencies)
    out: dict[str, object] = {
        "task": task,
        "requests": len(rows),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p95_ms": round(float(np.percentile(lat, 95)), 2),
        "max_ms": round(float(lat.max()), 2),
        **verdicts,
    }
    if task == "game24":
        out.update(solvable=solvable, solved=solved, false_claims=false_claims)
    elif task != "freeform":
        out["optimal_share"] = round(verdicts["correct"] / len(rows), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(FILES))
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    engine = Engine(load_settings(telemetry="off", metrics_port=0))
    try:
        for task in args.tasks.split(","):
            print(json.dumps(bench(engine, task, args.limit)), flush=True)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
