"""The cost of telemetry: offline query latency with telemetry on divided by off, and the store's throughput.

**The headline figure** (issue 16's protocol, :mod:`telemetry_cost`): 60 short mixed queries
(Game of 24 and tic-tac-toe) a process, one process per setting (telemetry ``on`` in the default
``async`` durability mode, or ``off``), interleaved, the median over 5 pairs of the on/off
wall-time ratio (target <= 1.05) and CPU ratio (target <= 1.3; the writer thread and the final
flush included).  Printed first; ``--pairs 0`` skips it.  ``--instructions`` adds callgrind's
instruction counts of the same protocol (main thread: the hot path; all threads: CPU), which do
not move with the machine's load, as this shared machine's wall times do (see ``telemetry_cost``).

The in-process figures below it:

Two engines in one process, one with the store, tracer and metrics on (a temporary
database) and one with ``ARBOR_TELEMETRY=off``, answer the same queries interleaved
(on, off, off, on, ...) so that machine noise hits both alike.

* **Latency** is wall time around ``Engine.run`` in ms, with ``--think-ms`` of idle time
  after each query: requests arrive one at a time with a gap, as from console users or
  a paced load, so the store's writer thread does its batching in the gaps — which is
  what "off the hot path" means.  ``ratio_of_means`` is the target figure.
* **CPU** (``cpu_ratio``) is the process CPU time of answering every query back to back
  and then flushing the store, on divided by off: the telemetry's whole cost, writer
  thread included.  It is reported so the price is visible, not hidden by the gaps.
* **GC.**  After warm-up the start-up heap is frozen out of the cyclic GC (``gc.freeze``), as a
  long-running server does: otherwise one full collection (~30 ms over ~90k start-up objects)
  lands in one engine's query and moves the ratio by several percent either way.
* **Durability** (``ARBOR_DURABILITY``): a third engine in ``commit`` mode (each request waits
  for its rows' commit) answers the same queries in the same rotation; ``commit_vs_async``
  is its mean latency over the ``async`` engine's, ``commit_extra_ms_*`` the difference in ms.
  Its CPU is not part of ``cpu_ratio`` (that stays async vs off).
* **Store throughput** is ``benchmarks/store_bench.py``'s measure (spans per second
  through submit, the writer thread and commit), one call per trace of 20 spans.

Prints one JSON object per workload, one for the total and one for the store.

    python benchmarks/telemetry_bench.py [--rounds 3] [--think-ms 2]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import tempfile
import time
from pathlib import Path

from store_bench import make_spans, run_once  # benchmarks/ is the script's directory
from telemetry_cost import instruction_counts, run_pairs

from engine import Engine, QueryRequest
from engine.config import load_settings

WORKLOADS = Path(__file__).resolve().parents[1] / "data" / "workloads"
SUITES = {
    "game24": ("game24.jsonl", 200),
    "tictactoe": ("tictactoe_tactics.jsonl", 50),
    "connect4": ("connect4_tactics.jsonl", 45),
    "freeform": ("freeform.jsonl", 22),
}


def _queries(name: str, limit: int) -> list[str]:
    lines = (WORKLOADS / name).read_text().splitlines()
    return [json.loads(line)["query"] for line in lines if line.strip()][:limit]


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def _latency(engines: dict[str, Engine], queries: list[str], rounds: int, think_s: float) -> dict[str, float]:
    """Per-query wall times (ms) of each engine (``on``, ``off`` and optionally ``commit``),
    interleaved in a rotating order, with ``think_s`` idle after each query."""
    times: dict[str, list[float]] = {label: [] for label in engines}
    order = list(engines.items())
    for r in range(rounds):
        for i, q in enumerate(queries):
            request = QueryRequest(query=q, seed=i + 1000 * r)
            k = (i + r) % len(order)
            for label, engine in order[k:] + order[:k]:
                t0 = time.perf_counter()
                engine.run(request)
                times[label].append((time.perf_counter() - t0) * 1000)
                time.sleep(think_s)
    commit = {}
    if "commit" in times:
        c, a = times["commit"], times["on"]
        commit = {
            "median_ms_commit": round(statistics.median(c), 4),
            "p95_ms_commit": round(_p95(c), 4),
            "mean_ms_commit": round(statistics.fmean(c), 4),
            "commit_vs_async": round(statistics.fmean(c) / statistics.fmean(a), 4),
            "commit_extra_ms_median": round(statistics.median(c) - statistics.median(a), 4),
            "commit_extra_ms_mean": round(statistics.fmean(c) - statistics.fmean(a), 4),
            "_sum_commit": sum(c),
        }
    return {
        "queries": len(times["on"]),
        "median_ms_on": round(statistics.median(times["on"]), 4),
        "median_ms_off": round(statistics.median(times["off"]), 4),
        "p95_ms_on": round(_p95(times["on"]), 4),
        "p95_ms_off": round(_p95(times["off"]), 4),
        "mean_ms_on": round(statistics.fmean(times["on"]), 4),
        "mean_ms_off": round(statistics.fmean(times["off"]), 4),
        "ratio_of_means": round(statistics.fmean(times["on"]) / statistics.fmean(times["off"]), 4),
        "_sum_on": sum(times["on"]),
        "_sum_off": sum(times["off"]),
        **commit,
    }


def _cpu(engine: Engine, queries: list[str], seed0: int) -> float:
    """Process CPU seconds to answer ``queries`` back to back and flush the store."""
    t0 = time.process_time()
    for i, q in enumerate(queries):
        engine.run(QueryRequest(query=q, seed=seed0 + i))
    engine.telemetry.flush()
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over each workload")
    parser.add_argument("--think-ms", type=float, default=2.0, help="idle time after each query, ms")
    parser.add_argument("--no-commit", action="store_true", help="skip the durability=commit engine")
    parser.add_argument("--pairs", type=int, default=5, help="process pairs of the headline figure (0: skip)")
    parser.add_argument("--instructions", action="store_true", help="add callgrind's instruction counts")
    args = parser.parse_args()
    if args.pairs:
        run_pairs(args.pairs, 60)
    if args.instructions:
        print(json.dumps(instruction_counts(60)), flush=True)
    suites = {name: _queries(file, limit) for name, (file, limit) in SUITES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        on = Engine(load_settings(db_path=Path(tmp) / "arbor.db", metrics_port=0, durability="async"))
        off = Engine(load_settings(telemetry="off", metrics_port=0))
        engines = {"on": on, "off": off}
        if not args.no_commit:
            engines["commit"] = Engine(
                load_settings(db_path=Path(tmp) / "commit.db", metrics_port=0, durability="commit")
            )
        for engine in engines.values():  # warm them all: indexes, providers, caches
            for qs in suites.values():
                engine.run(QueryRequest(query=qs[0], seed=0))
            engine.telemetry.flush()
        # GC: see the module docstring.  Objects made from here on, the telemetry's included, are
        # still collected, so the collections telemetry causes are still counted.
        gc.collect()
        gc.freeze()
        sums = {"on": 0.0, "off": 0.0, "commit": 0.0}
        cpu = {"on": 0.0, "off": 0.0}
        for name, queries in suites.items():
            row = _latency(engines, queries, args.rounds, args.think_ms / 1000)
            sums["on"] += row.pop("_sum_on")
            sums["off"] += row.pop("_sum_off")
            sums["commit"] += row.pop("_sum_commit", 0.0)
            for r in range(args.rounds):  # CPU, saturated: alternate which engine goes first
                for label, engine in (("on", on), ("off", off))[:: 1 if r % 2 == 0 else -1]:
                    cpu[label] += _cpu(engine, queries, 10_000 * (r + 1))
            print(json.dumps({"workload": name, **row}), flush=True)
        stored = on.telemetry.store.count("requests") if on.telemetry.store is not None else 0
        for engine in engines.values():
            engine.close()
    total = {
        "workload": "all",
        "ratio_total_latency": round(sums["on"] / sums["off"], 4),
        "think_ms": args.think_ms,
        "cpu_ratio": round(cpu["on"] / cpu["off"], 4),
        "requests_stored": stored,
    }
    if "commit" in engines:
        total["commit_vs_async_total_latency"] = round(sums["commit"] / sums["on"], 4)
    print(json.dumps(total), flush=True)
    spans = make_spans(100_000, 20)
    runs = [run_once(spans, 20) for _ in range(3)]
    print(
        json.dumps(
            {
                "store": "spans through submit, writer thread and commit (20 per call)",
                "spans_per_s": round(statistics.median(len(spans) / r["total_s"] for r in runs)),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
