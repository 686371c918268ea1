"""MCTS throughput: one JSON object per case on stdout.

Each case searches from the initial position with random rollouts and the
default configuration (UCB1, c=1.414, cache and solver on), 5 runs with seeds
0..4; the figures are medians.  ``us_per_sim`` is wall time per iteration
(select + expand + rollout + back-up).

    python benchmarks/mcts_bench.py [--runs 5] [--tasks tictactoe,connect4] [--iterations 1000,10000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

from engine.mcts import SearchConfig, search
from engine.tasks import load_task

INITIAL = {"tictactoe": ".../.../...", "connect4": ""}


def run_case(task_name: str, iterations: int, runs: int) -> dict[str, object]:
    """Median figures of ``runs`` searches of ``iterations`` from the initial position."""
    task = load_task(task_name)
    state = task.parse(INITIAL[task_name])
    per_sim, reasons = [], set()
    for seed in range(runs):
        result = search(task, state, SearchConfig(iterations=iterations, seed=seed))
        s = result.stats
        per_sim.append(s.elapsed_s / s.iterations)
        reasons.add(s.termination_reason)
    us = statistics.median(per_sim) * 1e6
    return {
        "task": task_name,
        "iterations": iterations,
        "sims_per_sec": round(1e6 / us),
        "us_per_sim": round(us, 2),
        "runs": runs,
        "termination": sorted(reasons),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tasks", default="tictactoe,connect4")
    parser.add_argument("--iterations", default="1000,10000")
    args = parser.parse_args()
    for name in args.tasks.split(","):
        for n in (int(x) for x in args.iterations.split(",")):
            print(json.dumps(run_case(name, n, args.runs)), flush=True)


if __name__ == "__main__":
    main()
