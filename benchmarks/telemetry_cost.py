"""The issue's telemetry-cost protocol: one process per setting, interleaved, median of pairs.

Each child process builds one engine (telemetry ``on`` in the default ``async`` durability mode
with a fresh temporary store, or ``off``), warms it on a few queries that are not counted, then
answers the same 60 short mixed queries (Game of 24 and tic-tac-toe, alternating) one after the
other and reports:

* ``wall_s``: wall time of answering the 60 queries (what a user waits for);
* every child runs with ``PYTHONHASHSEED=0`` (the same set/dict orders, so the same search work);
* the start-up heap is frozen out of the cyclic GC after warm-up (``gc.freeze``) in both;
* ``cpu_s``: process CPU time of answering them AND flushing the store (every row committed:
  the telemetry's whole cost, writer thread included); ``cpu_close_s`` also closes the engine
  (SQLite checkpoints its WAL into the database file then: a once-per-process cost, reported
  apart).

The parent runs ``pairs`` pairs of processes (on/off, the order alternating per pair so drift
hits both alike), and reports the median over pairs of the on/off ratios.

    python benchmarks/telemetry_cost.py [--pairs 5] [--queries 60]

(``benchmarks/telemetry_bench.py`` prints this first, then its in-process figures.)  On a busy
shared machine, run it under ``chrt -f 50`` (root) so other processes do not steal its cores.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKLOADS = ROOT / "data" / "workloads"


def mixed_queries(n: int) -> list[str]:
    """``n`` queries alternating Game of 24 and tic-tac-toe, deterministic."""

    def read(name: str) -> list[str]:
        rows = (WORKLOADS / name).read_text().splitlines()
        return [json.loads(line)["query"] for line in rows if line.strip()]

    g24 = read("game24.jsonl")[::7]  # spread over the file: solvable and unsolvable
    ttt = read("tictactoe_tactics.jsonl")
    out = []
    for i in range(n):
        pool = g24 if i % 2 == 0 else ttt
        out.append(pool[(i // 2) % len(pool)])
    return out


def child(setting: str, n: int) -> dict[str, float]:
    """Run in the child: build one engine, warm it, time ``n`` queries; returns the figures."""
    from engine import Engine, QueryRequest
    from engine.config import load_settings

    queries = mixed_queries(n)
    with tempfile.TemporaryDirectory() as tmp:
        if setting == "on":
            settings = load_settings(db_path=Path(tmp) / "arbor.db", metrics_port=0, durability="async")
        else:
            settings = load_settings(telemetry="off", metrics_port=0)
        engine = Engine(settings)
        for i, q in enumerate(queries[:4]):  # warm-up: indexes, providers, caches, first rows
            engine.run(QueryRequest(query=q, seed=10_000 + i))
        engine.telemetry.flush()
        gc.collect()
        gc.freeze()  # the start-up heap out of the cyclic GC, as a long-running server does
        c0, t0 = time.process_time(), time.perf_counter()
        for i, q in enumerate(queries):
            engine.run(QueryRequest(query=q, seed=i))
        wall = time.perf_counter() - t0
        engine.telemetry.flush()
        cpu = time.process_time() - c0
        engine.close()
        cpu_close = time.process_time() - c0
    return {"setting": setting, "wall_s": wall, "cpu_s": cpu, "cpu_close_s": cpu_close, "queries": n}


def _spawn(setting: str, n: int) -> dict[str, float]:
    # The same string hashing in every child: set and dict orders (and so how long a search takes
    # to find its answer) then do not differ between the two settings' processes by chance.
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}", "PYTHONHASHSEED": "0"}
    out = subprocess.run(
        [sys.executable, __file__, "--child", setting, "--queries", str(n)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--child", choices=("on", "off"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.queries)))
        return
    run_pairs(args.pairs, args.queries)


def run_pairs(n_pairs: int, n_queries: int) -> dict[str, object]:
    """Run ``n_pairs`` pairs of child processes; print each pair and the summary as JSON lines."""
    pairs = []
    for p in range(n_pairs):
        order = ("on", "off") if p % 2 == 0 else ("off", "on")
        runs = {s: _spawn(s, n_queries) for s in order}
        pair = {
            "pair": p,
            "wall_ms_per_query_on": round(1000 * runs["on"]["wall_s"] / n_queries, 3),
            "wall_ms_per_query_off": round(1000 * runs["off"]["wall_s"] / n_queries, 3),
            "latency_ratio": round(runs["on"]["wall_s"] / runs["off"]["wall_s"], 4),
            "cpu_ratio": round(runs["on"]["cpu_s"] / runs["off"]["cpu_s"], 4),
            "cpu_ratio_with_close": round(runs["on"]["cpu_close_s"] / runs["off"]["cpu_close_s"], 4),
        }
        pairs.append(pair)
        print(json.dumps(pair), flush=True)
    summary = {
        "protocol": f"{n_queries} mixed game24/tictactoe queries a process, one process per "
        f"setting, interleaved, median of {n_pairs} pairs; telemetry on = async durability",
        "latency_ratio_median": statistics.median(p["latency_ratio"] for p in pairs),
        "cpu_ratio_median": statistics.median(p["cpu_ratio"] for p in pairs),
        "cpu_ratio_with_close_median": statistics.median(p["cpu_ratio_with_close"] for p in pairs),
        "target": {"latency_ratio": 1.05, "cpu_ratio": 1.3},
    }
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
