"""MCTS against independent oracles: minimax, negamax, the exhaustive 24 solver."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.mcts import SearchConfig, search
from engine.tasks import load_task
from engine.tasks.connect4 import best_moves
from engine.tasks.game24 import all_puzzles, is_solvable
from engine.tasks.tictactoe import optimal_moves

WORKLOADS = Path(__file__).resolve().parents[3] / "data" / "workloads"


def _suite(name: str) -> list[dict]:
    return [json.loads(line) for line in (WORKLOADS / name).read_text().splitlines() if line.strip()]


def _position(query: str) -> str:
    return query.split(":", 1)[1]


def test_tictactoe_tactics_are_optimal_at_1000_iterations():
    task = load_task("tictactoe")
    suite = _suite("tictactoe_tactics.jsonl")
    kinds = {row["kind"] for row in suite}
    assert len(suite) >= 30 and {"must_block", "win_in_1"} <= kinds
    for i, row in enumerate(suite):
        state = task.parse(_position(row["query"]))
        best = search(task, state, SearchConfig(iterations=1000, seed=i)).best_action
        assert best in optimal_moves(state), row


def _play(task, engines, rng) -> tuple[float, ...]:
    state = task.parse(".../.../...")
    ply = 0
    while not task.is_terminal(state):
        mover = task.current_player(state)
        state = task.apply(state, engines[mover](state, ply, rng))
        ply += 1
    return task.returns(state)


def test_tictactoe_never_loses_to_a_random_player():
    task = load_task("tictactoe")

    def mcts(state, ply, rng):
        return search(task, state, SearchConfig(iterations=1000, seed=int(rng.integers(2**31)))).best_action

    def uniform(state, ply, rng):
        actions = list(task.legal_actions(state))
        return actions[int(rng.integers(len(actions)))]

    rng = np.random.default_rng(2026)
    wins = 0
    for game in range(50):
        side = game % 2
        engines = (mcts, uniform) if side == 0 else (uniform, mcts)
        result = _play(task, engines, rng)
        assert result[side] >= 0, f"game {game}: MCTS lost as {'XO'[side]}"
        wins += result[side] > 0
    assert wins >= 35  # a random player blunders often; an optimal one wins most games


def test_tictactoe_self_play_is_always_a_draw():
    task = load_task("tictactoe")

    def mcts(state, ply, rng):
        return search(task, state, SearchConfig(iterations=1000, seed=int(rng.integers(2**31)))).best_action

    rng = np.random.default_rng(7)
    for _ in range(10):
        assert _play(task, (mcts, mcts), rng) == (0.0, 0.0)


@pytest.mark.parametrize("kind", ["win_in_1", "must_block"])
def test_connect4_tactics_are_found(kind):
    task = load_task("connect4")
    rows = [r for r in _suite("connect4_tactics.jsonl") if r["kind"] == kind]
    assert len(rows) >= 10
    for i, row in enumerate(rows):
        state = task.parse(_position(row["query"]))
        best = search(task, state, SearchConfig(iterations=2000, seed=i)).best_action
        assert best in best_moves(state), row


def test_game24_sample_solved_and_never_a_false_claim():
    task = load_task("game24")
    puzzles = all_puzzles()
    rng = np.random.default_rng(24)
    sample = [puzzles[i] for i in rng.choice(len(puzzles), size=100, replace=False)]
    solvable = 0
    for i, numbers in enumerate(sample):
        state = task.parse(" ".join(map(str, numbers)))
        result = search(task, state, SearchConfig(iterations=2000, seed=i))
        found = result.best_terminal_return == 1.0
        if is_solvable(numbers):
            solvable += 1
            assert found, numbers
            verdict = task.verify(state, task.answer(result.best_terminal))
            assert verdict is not None and verdict.correct, (numbers, verdict)
        else:
            assert not found, numbers
            assert result.tree.proven(0) in (None, 0.0)
    assert solvable >= 60  # about three in four puzzles have a solution
