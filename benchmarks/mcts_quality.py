"""MCTS move quality against ground truth: one JSON object per suite.

- tictactoe_all: every reachable tic-tac-toe position where not every legal
  move is optimal (3191 of them), judged by full minimax.
- connect4_tactics / game24_sample: the shipped suites, judged by bounded
  negamax and the exhaustive 24 solver.

    python benchmarks/mcts_quality.py [--iterations 1000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from engine.mcts import SearchConfig, search
from engine.tasks import load_task
from engine.tasks.connect4 import best_moves
from engine.tasks.game24 import all_puzzles, is_solvable
from engine.tasks.tictactoe import optimal_moves, reachable_states


def _tictactoe(iterations: int) -> dict[str, object]:
    task = load_task("tictactoe")
    states = [
        s
        for s in reachable_states()
        if not task.is_terminal(s) and len(optimal_moves(s)) < len(task.legal_actions(s))
    ]
    good = sum(
        search(task, s, SearchConfig(iterations=iterations, seed=i)).best_action in optimal_moves(s)
        for i, s in enumerate(states)
    )
    return {"suite": "tictactoe_all", "positions": len(states), "optimal": good}


def _connect4(iterations: int) -> dict[str, object]:
    task = load_task("connect4")
    rows = [
        json.loads(line) for line in Path("data/workloads/connect4_tactics.jsonl").read_text().splitlines()
    ]
    good = 0
    for i, row in enumerate(rows):
        state = task.parse(row["query"])
        good += search(task, state, SearchConfig(iterations=iterations, seed=i)).best_action in best_moves(
            state
        )
    return {"suite": "connect4_tactics", "positions": len(rows), "optimal": good}


def _game24(iterations: int) -> dict[str, object]:
    task = load_task("game24")
    solved = solvable = false_claims = 0
    for i, numbers in enumerate(all_puzzles()):
        result = search(
            task, task.parse(" ".join(map(str, numbers))), SearchConfig(iterations=iterations, seed=i)
        )
        found = result.best_terminal_return == 1.0
        if is_solvable(numbers):
            solvable += 1
            solved += found
        else:
            false_claims += found
    return {"suite": "game24_all", "solvable": solvable, "solved": solved, "false_claims": false_claims}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args()
    for run in (_tictactoe, _connect4, _game24):
        t0 = time.perf_counter()
        row = run(args.iterations)
        row.update(iterations=args.iterations, seconds=round(time.perf_counter() - t0, 1))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
