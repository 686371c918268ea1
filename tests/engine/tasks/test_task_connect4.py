"""Connect four: parsing, rules, rollouts and negamax ground truth against a plain grid oracle."""

from __future__ import annotations

import random

import pytest

from engine.tasks import ParseError, load_task
from engine.tasks import connect4 as c4
from engine.tasks.base import BaseTask

TASK = load_task("connect4")
W, H = 7, 6

# --- an independent oracle on a list-of-columns grid (no bitboards, no pruning) ----------------

Grid = list[list[int]]  # grid[c] = players (0/1) from the bottom up


def _grid(moves: str) -> Grid:
    grid: Grid = [[] for _ in range(W)]
    for i, ch in enumerate(moves):
        grid[int(ch) - 1].append(i % 2)
    return grid


def _at(grid: Grid, c: int, r: int) -> int | None:
    if 0 <= c < W and 0 <= r < len(grid[c]):
        return grid[c][r]
    return None


def _wins_after(grid: Grid, c: int) -> bool:
    """Does the stone just dropped on top of column c make four?"""
    r = len(grid[c]) - 1
    p = grid[c][r]
    for dc, dr in ((1, 0), (0, 1), (1, 1), (1, -1)):
        run = 1
        for sign in (1, -1):
            k = 1
            while _at(grid, c + sign * k * dc, r + sign * k * dr) == p:
                run += 1
                k += 1
        if run >= 4:
            return True
    return False


def _oracle_scores(grid: Grid, player: int, depth: int) -> dict[int, int]:
    """Spec scoring: win at our ply k -> depth+1-k, loss at ply k -> -(depth+1-k), else 0."""
    scores = {}
    for c in range(W):
        if len(grid[c]) == H:
            continue
        grid[c].append(player)
        if _wins_after(grid, c):
            scores[c] = depth
        elif depth == 1 or all(len(col) == H for col in grid):
            scores[c] = 0
        else:
            scores[c] = -max(_oracle_scores(grid, 1 - player, depth - 1).values())
        grid[c].pop()
    return scores


def _immediate_wins(grid: Grid, player: int) -> set[int]:
    wins = set()
    for c in range(W):
        if len(grid[c]) < H:
            grid[c].append(player)
            if _wins_after(grid, c):
                wins.add(c)
            grid[c].pop()
    return wins


def _random_positions(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        moves = ""
        grid = _grid("")
        for _ in range(rng.randrange(0, 30)):
            c = rng.choice([c for c in range(W) if len(grid[c]) < H])
            grid[c].append(len(moves) % 2)
            moves += str(c + 1)
            if _wins_after(grid, c):
                break
        else:
            out.append(moves)
    return out


def _oracle_drawn_game() -> str:
    """A full board without four in a row, found by seeded random play on the oracle grid."""
    rng = random.Random(0)
    while True:
        grid, moves = _grid(""), ""
        while len(moves) < W * H:
            c = rng.choice([c for c in range(W) if len(grid[c]) < H])
            grid[c].append(len(moves) % 2)
            moves += str(c + 1)
            if _wins_after(grid, c):
                break
        else:
            return moves


# --- hand-built positions ----------------------------------------------------------------------


def test_win_in_one_vertical() -> None:
    # X has three in column 1, O three in column 2; X to move wins at column 1.
    state = TASK.parse("121212")
    assert c4.best_moves(state) == frozenset({0})
    assert c4.classify(state) == "win_in_1"
    assert c4.move_scores(state)[0] == 5
    assert c4.move_scores(state)[1] == 0  # blocks O's column; no forced result within the horizon
    assert all(c4.move_scores(state)[c] == -4 for c in range(2, 7))  # O wins at its next ply (ply 2)


def test_must_block_horizontal() -> None:
    # X on the bottom of columns 1-3, O twice in column 7; O to move must take column 4.
    state = TASK.parse("17273")
    assert TASK.current_player(state) == 1
    assert c4.best_moves(state) == frozenset({3})
    assert c4.classify(state) == "must_block"


def test_must_block_vertical() -> None:
    # After 1 7 2 7 3 4 6 7, O has three in column 7: X must block there.
    state = TASK.parse("17273467")
    assert TASK.current_player(state) == 0
    assert c4.best_moves(state) == frozenset({6})
    assert c4.classify(state) == "must_block"


def test_win_in_three_open_three() -> None:
    # X on 4 and 5 (bottom), O on top of them.  X at 3 or 6 makes an open three on the
    # bottom row with both ends playable: O blocks one end, X wins at the other (ply 3).
    state = TASK.parse("4455")
    assert c4.best_moves(state) == frozenset({2, 5})
    assert c4.classify(state) == "win_in_3"
    assert c4.move_scores(state)[2] == 3  # depth 5: 5 + 1 - 3


def test_two_threats_cannot_be_blocked() -> None:
    # X: 2 3 4 on the bottom with 1 and 5 open, O to move: every move loses by ply 2.
    state = TASK.parse("26364")
    assert set(c4.move_scores(state).values()) == {-4}
    assert c4.classify(state) is None
    assert TASK.verify(state, "1") is None


def test_empty_board_has_no_ground_truth() -> None:
    state = TASK.parse("")
    assert c4.move_scores(state) == {c: 0 for c in range(7)}
    assert c4.classify(state) is None
    assert TASK.verify(state, "4") is None


def test_move_scores_match_brute_force_oracle() -> None:
    for moves in _random_positions(seed=11, count=40):
        state = TASK.parse(moves)
        grid = _grid(moves)
        for depth in (1, 2, 3, 4):
            assert c4.move_scores(state, depth) == _oracle_scores(grid, len(moves) % 2, depth), (moves, depth)
    for moves in _random_positions(seed=12, count=3):
        assert c4.move_scores(TASK.parse(moves), 5) == _oracle_scores(_grid(moves), len(moves) % 2, 5)


def test_classify_matches_oracle_definitions() -> None:
    for moves in _random_positions(seed=13, count=60):
        state = TASK.parse(moves)
        grid = _grid(moves)
        me = len(moves) % 2
        kind = c4.classify(state)
        mine, theirs = _immediate_wins(grid, me), _immediate_wins(grid, 1 - me)
        if mine:
            assert kind == "win_in_1", moves
            assert c4.best_moves(state) == frozenset(mine)
        elif kind == "must_block":
            assert theirs and c4.best_moves(state) == frozenset(theirs)
        elif kind == "win_in_3":
            scores = _oracle_scores(grid, me, 3)
            assert max(scores.values()) == 1  # a forced win at our second move
            assert c4.best_moves(state) == frozenset(c for c, s in scores.items() if s == 1)


# --- rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("12a4", "'a' at move 3 is not a column 1-7"),
        ("48", "'8' at move 2 is not a column 1-7"),
        ("40", "'0' at move 2 is not a column 1-7"),
        ("4444444", "column 4 is full at move 7"),
        ("12121213", "the game was already won at move 7"),
    ],
)
def test_parse_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        TASK.parse(text)


def test_parse_render_and_describe() -> None:
    assert TASK.render(TASK.parse("")) == ""
    assert TASK.render(TASK.parse(" connect4: 4 4 5 3 ")) == "4453"
    assert TASK.parse("connect4:4453") == TASK.parse("4453")
    state = TASK.parse("4453")
    assert TASK.describe(state).splitlines() == [
        ". . . . . . .",
        ". . . . . . .",
        ". . . . . . .",
        ". . . . . . .",
        ". . . O . . .",
        ". . O X X . .",
        "1 2 3 4 5 6 7",
    ]
    # transpositions: same key, different move orders
    assert TASK.key(TASK.parse("4453")) == TASK.key(TASK.parse("5344"))
    assert TASK.key(TASK.parse("4453")) != TASK.key(TASK.parse("4435"))


def test_actions_apply_and_returns() -> None:
    state = TASK.parse("")
    assert TASK.legal_actions(state) == tuple(range(7))
    assert TASK.action_label(state, 3) == "4"
    assert TASK.parse_action(state, "4") == 3
    full = TASK.parse("444444")
    assert 3 not in TASK.legal_actions(full)
    with pytest.raises(ParseError, match="full"):
        TASK.parse_action(full, "4")
    with pytest.raises(ParseError, match="not a column"):
        TASK.parse_action(state, "9")
    won = TASK.apply(TASK.parse("121212"), 0)
    assert TASK.is_terminal(won) and TASK.returns(won) == (1, -1) and TASK.legal_actions(won) == ()
    o_won = TASK.parse("12123252")  # O stacks four in column 2
    assert TASK.is_terminal(o_won) and TASK.returns(o_won) == (-1, 1)
    draw = TASK.parse(_oracle_drawn_game())
    assert TASK.is_terminal(draw) and TASK.returns(draw) == (0, 0) and TASK.legal_actions(draw) == ()
    assert TASK.num_players == 2 and TASK.reward_range == (-1, 1)


def test_verify() -> None:
    state = TASK.parse("121212")
    good = TASK.verify(state, "1")
    assert good is not None and good.correct and good.expected == "1"
    bad = TASK.verify(state, "2")
    assert bad is not None and not bad.correct
    junk = TASK.verify(state, "column one")
    assert junk is not None and not junk.correct and "not a column" in junk.detail
    full = TASK.parse("111111232323")  # column 1 full, X to move wins at column 2
    assert c4.best_moves(full) == frozenset({1})
    full_answer = TASK.verify(full, "1")
    assert full_answer is not None and not full_answer.correct and "full" in full_answer.detail
    assert TASK.verify(TASK.apply(state, 0), "1") is None


def test_rollout_matches_generic_rollout_and_is_consistent() -> None:
    starts = ["", "4453", "121212", "17273467", "111111232323"]
    for seed in range(200):
        start = TASK.parse(starts[seed % len(starts)])
        fast = TASK.rollout(start, random.Random(seed).random)
        slow = BaseTask.rollout(TASK, start, random.Random(seed).random)  # type: ignore[arg-type]
        assert fast == slow
        returns, end = fast
        assert TASK.is_terminal(end)
        assert TASK.parse(TASK.render(end)) == end  # the lean loop produced a consistent state
        assert returns == TASK.returns(end) and all(-1 <= r <= 1 for r in returns)
        grid = _grid(TASK.render(end))
        last = int(TASK.render(end)[-1]) - 1
        assert _wins_after(grid, last) == (returns != (0, 0))


def test_generate_tactics_is_deterministic_and_balanced() -> None:
    first = c4.generate_tactics(5, 12)
    assert first == c4.generate_tactics(5, 12)
    assert len(first) == 12
    assert {t.kind for t in first} == {"win_in_1", "must_block", "win_in_3"}
    for tactic in first:
        grid = _grid(tactic.moves)
        me = len(tactic.moves) % 2
        optimal = {int(c) - 1 for c in tactic.optimal}
        if tactic.kind == "win_in_1":
            assert optimal == _immediate_wins(grid, me)
        elif tactic.kind == "must_block":
            assert not _immediate_wins(grid, me) and optimal == _immediate_wins(grid, 1 - me)
        else:
            scores = _oracle_scores(grid, me, 3)
            assert optimal == {c for c, s in scores.items() if s == 1}
