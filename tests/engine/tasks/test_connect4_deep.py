"""Deeper connect-four tactics (win in 5 plies) against the plain grid oracle (no bitboards, no
pruning) of test_task_connect4, and the shipped data/workloads/connect4_deep.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.tasks import connect4 as c4
from engine.tasks import load_task
from engine.tasks.make_workloads import connect4_deep_rows
from tests.engine.tasks.test_task_connect4 import _grid, _oracle_scores

TASK = load_task("connect4")
DEEP = Path(__file__).resolve().parents[3] / "data" / "workloads" / "connect4_deep.jsonl"


def _check_win_in_5(moves: str, optimal: set[int]) -> None:
    """The oracle at depth 5: the best score is 1 (a win at the mover's 5th ply, i.e. its third
    move), nothing quicker (no score 3 or 5), and ``optimal`` are exactly the moves scoring 1."""
    scores = _oracle_scores(_grid(moves), len(moves) % 2, 5)
    assert max(scores.values()) == 1, (moves, scores)
    assert {c for c, s in scores.items() if s == 1} == optimal, (moves, scores)
    assert min(scores.values()) < 1  # not every move wins: the tactic has wrong answers


def test_generated_deep_tactics_are_forced_wins_in_five_plies() -> None:
    tactics = c4.generate_deep_tactics(seed=7, n=6)
    assert len(tactics) == 6 and len({t.moves for t in tactics}) == 6
    assert tactics == c4.generate_deep_tactics(seed=7, n=6)
    for t in tactics:
        assert t.kind == "win_in_5"
        _check_win_in_5(t.moves, {int(c) - 1 for c in t.optimal})
        state = TASK.parse(t.moves)
        assert c4.classify_deep(state) == "win_in_5" and c4.classify(state) is None
        verdict = TASK.verify(state, t.optimal[0])
        assert verdict is not None and verdict.correct


def test_classify_deep_keeps_the_shallower_kinds() -> None:
    for moves, kind in (("121212", "win_in_1"), ("17273467", "must_block"), ("4455", "win_in_3")):
        assert c4.classify_deep(TASK.parse(moves)) == kind
    with pytest.raises(ValueError, match="depth >= 5"):
        c4.classify_deep(TASK.parse("4455"), depth=3)


@pytest.mark.slow
def test_shipped_deep_workload_is_verified_by_the_oracle() -> None:
    rows = [json.loads(line) for line in DEEP.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert rows == connect4_deep_rows()  # the file is what make_workloads writes
    assert len(rows) == 30 and len({r["query"] for r in rows}) == 30
    for row in rows:
        assert row["task"] == "connect4" and row["kind"] == "win_in_5"
        _check_win_in_5(row["query"].removeprefix("connect4: "), {int(c) - 1 for c in row["optimal"]})
