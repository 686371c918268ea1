"""The shipped workload files agree with independent checks of their claims."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.tasks import load_task

WORKLOADS = Path(__file__).resolve().parents[3] / "data" / "workloads"
LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
NAMES = ["a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"]


def _rows(name: str) -> list[dict]:
    path = WORKLOADS / name
    if not path.exists():
        pytest.fail(f"{path} is missing; run python -m engine.tasks.make_workloads")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_game24_workload() -> None:
    rows = _rows("game24.jsonl")
    assert len(rows) == 1820
    assert all(set(r) == {"query", "task", "solvable"} and r["task"] == "game24" for r in rows)
    assert sum(r["solvable"] for r in rows) == 1362
    assert len({r["query"] for r in rows}) == 1820
    by_query = {r["query"]: r["solvable"] for r in rows}
    assert by_query["24: 1 1 1 1"] is False and by_query["24: 4 7 8 8"] is True
    assert by_query["24: 3 3 8 8"] is True


def _completing(board: str, mark: str) -> set[int]:
    return {
        i
        for i in range(9)
        if board[i] == "."
        and any(i in line and all(board[j] == mark for j in line if j != i) for line in LINES)
    }


def test_tictactoe_workload() -> None:
    task = load_task("tictactoe")
    rows = _rows("tictactoe_tactics.jsonl")
    assert len(rows) >= 40
    assert {r["kind"] for r in rows} == {"win_in_1", "must_block", "other"}
    for row in rows:
        assert row["task"] == "tictactoe" and row["query"].startswith("tictactoe: ")
        state = task.parse(row["query"])
        board = row["query"].removeprefix("tictactoe: ").replace("/", "")
        me, them = ("X", "O") if board.count("X") == board.count("O") else ("O", "X")
        empties = {NAMES[i] for i in range(9) if board[i] == "."}
        optimal = set(row["optimal"])
        assert not task.is_terminal(state) and optimal < empties  # not every move is optimal
        if row["kind"] == "win_in_1":  # an immediate win is always optimal
            assert {NAMES[i] for i in _completing(board, me)} <= optimal
        if row["kind"] == "must_block":
            assert not _completing(board, me)
            assert optimal == {NAMES[i] for i in _completing(board, them)}
        verdict = task.verify(state, sorted(optimal)[0])
        assert verdict is not None and verdict.correct


def _c4_immediate_wins(moves: str, player: int) -> set[int]:
    """Columns (0-based) where ``player`` would connect four at once, on a plain 7x6 grid."""
    grid: list[list[int]] = [[] for _ in range(7)]
    for i, ch in enumerate(moves):
        grid[int(ch) - 1].append(i % 2)

    def owner(c: int, r: int) -> int | None:
        return grid[c][r] if 0 <= c < 7 and 0 <= r < len(grid[c]) else None

    wins = set()
    for c in range(7):
        if len(grid[c]) == 6:
            continue
        grid[c].append(player)
        r = len(grid[c]) - 1
        for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
            run = 1
            for sign in (1, -1):
                k = 1
                while owner(c + sign * k * dc, r + sign * k * dr) == player:
                    run, k = run + 1, k + 1
            if run >= 4:
                wins.add(c)
        grid[c].pop()
    return wins


def test_connect4_workload() -> None:
    task = load_task("connect4")
    rows = _rows("connect4_tactics.jsonl")
    assert len(rows) >= 40
    kinds = [r["kind"] for r in rows]
    assert all(kinds.count(k) >= 10 for k in ("win_in_1", "must_block", "win_in_3"))
    assert len({r["query"] for r in rows}) == len(rows)
    for row in rows:
        assert row["task"] == "connect4" and row["query"].startswith("connect4: ")
        state = task.parse(row["query"])
        assert not task.is_terminal(state)
        for col in row["optimal"]:
            verdict = task.verify(state, col)
            assert verdict is not None and verdict.correct
        moves = row["query"].removeprefix("connect4: ")
        me = len(moves) % 2
        optimal = {int(c) - 1 for c in row["optimal"]}
        if row["kind"] == "win_in_1":
            assert optimal == _c4_immediate_wins(moves, me)
        if row["kind"] == "must_block":
            assert not _c4_immediate_wins(moves, me) and optimal == _c4_immediate_wins(moves, 1 - me)
        if row["kind"] == "win_in_3":
            assert not _c4_immediate_wins(moves, me) and not _c4_immediate_wins(moves, 1 - me)
