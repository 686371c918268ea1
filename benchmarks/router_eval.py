"""Every router end to end on held-out positions with ground truth: one JSON object.

Runs the meta-controller's routers (rules, gru, hybrid) and the single-agent baselines
(fixed:hrm, fixed:trm, fixed:mcts) through the real engine on the same seeded requests, judges
each final answer with the task's own verifier, and prints per router (overall, per task and per
position kind): correct share, mean steps, p50/p95 latency, regret against the best router per
query, the correctness/latency Pareto front, and whether the default router is on it.  See
``engine.routing.evaluation`` for the definitions and the README ("How to read the router
evaluation").

    python benchmarks/router_eval.py [--per-task 200] [--seed 0] [--iterations 1000]
                                     [--routers rules,gru,...] [--tasks game24,tictactoe,connect4]

Telemetry is off (``ARBOR_TELEMETRY=off``): the figures measure the routing, not the store.
The default run (600 positions x 6 routers) takes about a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from typing import Any

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.names import FIXED_ROUTERS, GAME_TASKS, ROUTERS
from engine.routing.evaluation import RouterEvaluation, evaluate_routers, evaluation_workload, pareto_front


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    bad = [n for n in names if n not in allowed]
    if not names or bad:
        raise SystemExit(f"router_eval: --{what} takes a comma-separated list of {', '.join(allowed)}")
    return names


def by_kind(ev: RouterEvaluation) -> dict[str, dict[str, dict[str, Any]]]:
    """Correct share per (task:kind) and router: where the agents differ."""
    counts: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for o in ev.outcomes:
        p = ev.positions[o.position]
        cell = counts[f"{p.task}:{p.kind}"][o.router]
        cell[0] += int(o.correct)
        cell[1] += 1
    return {
        kind: {r: {"correct": c, "n": n, "correct_share": round(c / n, 4)} for r, (c, n) in rows.items()}
        for kind, rows in sorted(counts.items())
    }


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and print its JSON; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-task", type=int, default=200, help="held-out positions per task (default 200)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--iterations", type=int, default=1000, help="MCTS iterations per request")
    ap.add_argument("--routers", default=",".join(ROUTERS))
    ap.add_argument("--tasks", default=",".join(GAME_TASKS))
    args = ap.parse_args(argv)
    if args.per_task < 1 or not 1 <= args.iterations <= 10_000:
        raise SystemExit("router_eval: --per-task must be >= 1 and --iterations in 1..10000")
    routers = _names(args.routers, ROUTERS, "routers")
    tasks = _names(args.tasks, GAME_TASKS, "tasks")
    default = QueryRequest.model_fields["router"].default
    t0 = time.perf_counter()
    positions = evaluation_workload(seed=args.seed, per_task=args.per_task, tasks=tasks)
    with Engine(load_settings(telemetry="off", metrics_port=0)) as engine:
        ev = evaluate_routers(engine, positions, routers, seed=args.seed, mcts_iterations=args.iterations)
    front = ev.pareto()
    # The test: the default against the single-agent baselines (the other meta-routers,
    # gru and hybrid, are alternatives to it, reported on the all-router front above).
    versus = [r for r in ev.rows if r.task == "all" and (r.router == default or r.router in FIXED_ROUTERS)]
    baseline_front = pareto_front(versus)
    out = {
        "benchmark": "router_eval",
        "per_task": args.per_task,
        "mcts_iterations": args.iterations,
        **ev.to_json(),
        "by_kind": by_kind(ev),
        "default_router": default,
        "default_on_pareto_front": default in front if default in routers else None,
        "pareto_default_vs_baselines": list(baseline_front),
        "default_on_front_vs_baselines": default in baseline_front if default in routers else None,
        "elapsed_s": round(time.perf_counter() - t0, 2),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
