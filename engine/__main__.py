"""Command line: ``python -m engine <command> ...``.

Bad arguments exit with status 2 and one line on stderr naming the problem.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from engine.mcts import SearchConfig, TerminalStateError, search
from engine.tasks import TASK_NAMES, ParseError, load_task


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _fail(message: str) -> NoReturn:
    print(f"python -m engine: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _search(args: argparse.Namespace) -> int:
    task = load_task(args.task)
    try:
        state = task.parse(args.state)
        config = SearchConfig(
            iterations=args.iterations,
            seed=args.seed,
            c=args.c,
            selection=args.selection,
            widening_k=args.widening_k,
            cache=not args.no_cache,
            solver=not args.no_solver,
        )
        result = search(task, state, config)
    except ParseError as exc:
        _fail(f"bad --state for {args.task}: {exc}")
    except ValidationError as exc:
        err = exc.errors()[0]
        _fail(f"--{'-'.join(str(p) for p in err['loc']).replace('_', '-')}: {err['msg']}")
    except TerminalStateError as exc:
        _fail(str(exc))
    s = result.stats
    if args.json:
        payload = {
            "task": task.name,
            "state": task.render(state),
            "best_action": s.best_action_label,
            "principal_variation": list(result.pv),
            "stats": {
                "iterations": s.iterations,
                "root_visits": s.root_visits,
                "root_value": s.root_value,
                "best_action_visits": s.best_action_visits,
                "best_action_value": s.best_action_value,
                "total_simulations": s.total_simulations,
                "cache_hits": s.cache_hits,
                "cache_misses": s.cache_misses,
                "cache_hit_rate": s.cache_hit_rate,
                "seed": s.seed,
                "termination_reason": s.termination_reason,
                "elapsed_ms": s.elapsed_s * 1000,
                "sims_per_sec": s.sims_per_sec,
                "tree_size": s.tree_size,
                "max_depth": s.max_depth,
            },
            "actions": [
                {
                    "action": a.label,
                    "visits": a.visits,
                    "value": a.value,
                    "prior": a.prior,
                    "proven": a.proven,
                }
                for a in s.action_stats
            ],
        }
        if result.best_terminal is not None:
            payload["best_terminal"] = task.render(result.best_terminal)
            payload["best_terminal_return"] = result.best_terminal_return
        print(json.dumps(payload, indent=2))
        return 0
    print(task.describe(state))
    print(f"\nbest action: {s.best_action_label}  (visits {s.best_action_visits}, "
          f"value {s.best_action_value:+.3f})")
    print(f"principal variation: {' '.join(result.pv)}")
    if result.best_terminal is not None:
        print(
            f"best terminal found: {task.render(result.best_terminal)} (return {result.best_terminal_return})"
        )
    print(
        f"iterations {s.iterations}  root value {s.root_value:+.3f}  "
        f"tree {s.tree_size} nodes, depth {s.max_depth}\n"
        f"cache {s.cache_hits} hits / {s.cache_misses} misses ({s.cache_hit_rate:.1%})  seed {s.seed}  "
        f"stopped: {s.termination_reason}  {s.elapsed_s * 1000:.1f} ms ({s.sims_per_sec:,.0f} sims/s)"
    )
    print("\naction  visits   value   prior  proven")
    for a in s.action_stats:
        proven = "" if a.proven is None else f"{a.proven:+.0f}"
        print(f"{a.label:>6}  {a.visits:>6}  {a.value:+.3f}  {a.prior:.3f}  {proven}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m engine``."""
    parser = _Parser(prog="python -m engine", description="Arbor's embedded engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("search", help="run MCTS on one position and print the best action")
    p.add_argument("--task", required=True, choices=TASK_NAMES)
    p.add_argument("--state", required=True, help='position text, e.g. "X.O/.X./..O", "4453" or "4 7 8 8"')
    p.add_argument("--iterations", type=int, default=1000)
    p.add_argument("--seed", type=int, default=None, help="random seed (0 is a real seed); drawn if omitted")
    p.add_argument("--c", type=float, default=1.414, help="exploration constant")
    p.add_argument("--selection", choices=("ucb1", "puct"), default="ucb1")
    p.add_argument("--widening-k", type=float, default=None, help="progressive widening k (off if omitted)")
    p.add_argument("--no-cache", action="store_true", help="turn the simulation cache off")
    p.add_argument("--no-solver", action="store_true", help="do not propagate proven values")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_search)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
