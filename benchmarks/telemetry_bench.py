"""The cost of telemetry: offline query latency with telemetry on divided by off.

Two engines in one process, one with the store, tracer and metrics on (a
temporary database) and one with ``ARBOR_TELEMETRY=off``, answer the same
queries interleaved (on, off, on, off, ...) so that machine noise hits both
alike.  Latency is wall time around ``Engine.run``, in ms.  Prints one JSON
object per workload and one for the total, plus the store's insert throughput.

    python benchmarks/telemetry_bench.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from engine import Engine, QueryRequest
from engine.config import load_settings

WORKLOADS = Path(__file__).resolve().parents[1] / "data" / "workloads"


def _queries(name: str, limit: int) -> list[str]:
    lines = (WORKLOADS / name).read_text().splitlines()
    return [json.loads(line)["query"] for line in lines if line.strip()][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    suites = {
        "game24": _queries("game24.jsonl", 200),
        "tictactoe": _queries("tictactoe_tactics.jsonl", 50),
        "connect4": _queries("connect4_tactics.jsonl", 45),
        "freeform": _queries("freeform.jsonl", 22),
    }
    with tempfile.TemporaryDirectory() as tmp:
        on = Engine(load_settings(db_path=Path(tmp) / "arbor.db", metrics_port=0))
        off = Engine(load_settings(telemetry="off", metrics_port=0))
        for engine in (on, off):  # warm both: indexes, providers, caches
            for qs in suites.values():
                engine.run(QueryRequest(query=qs[0], seed=0))
        totals = {"on": 0.0, "off": 0.0}
        for name, queries in suites.items():
            times: dict[str, list[float]] = {"on": [], "off": []}
            for r in range(args.rounds):
                for i, q in enumerate(queries):
                    request = QueryRequest(query=q, seed=i + 1000 * r)
                    for label, engine in (
                        (("on", on), ("off", off)) if (i + r) % 2 == 0 else (("off", off), ("on", on))
                    ):
                        t0 = time.perf_counter()
                        engine.run(request)
                        times[label].append((time.perf_counter() - t0) * 1000)
            for label in times:
                totals[label] += sum(times[label])
            print(
                json.dumps(
                    {
                        "workload": name,
                        "queries": len(times["on"]),
                        "median_ms_on": round(statistics.median(times["on"]), 4),
                        "median_ms_off": round(statistics.median(times["off"]), 4),
                        "mean_ms_on": round(statistics.fmean(times["on"]), 4),
                        "mean_ms_off": round(statistics.fmean(times["off"]), 4),
                        "ratio_of_means": round(
                            statistics.fmean(times["on"]) / statistics.fmean(times["off"]), 4
                        ),
                    }
                ),
                flush=True,
            )
        t0 = time.perf_counter()
        on.telemetry.flush()
        flush_s = time.perf_counter() - t0
        print(
            json.dumps(
                {
                    "workload": "all",
                    "ratio_total_time": round(totals["on"] / totals["off"], 4),
                    "final_flush_ms": round(flush_s * 1000, 2),
                    "requests_stored": on.telemetry.store.count("requests"),
                }
            )
        )
        on.close()
        off.close()


if __name__ == "__main__":
    main()
