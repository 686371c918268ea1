"""Tic-tac-toe: parsing, rules, minimax ground truth against an independent string-board oracle."""

from __future__ import annotations

import random

import pytest

from engine.tasks import ParseError, load_task
from engine.tasks import tictactoe as ttt
from engine.tasks.base import BaseTask

TASK = load_task("tictactoe")
LINES = [(0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6)]
NAMES = ["a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3"]


# --- an independent oracle on 9-character strings ("X", "O", ".") -----------------------------


def _winner(board: str) -> str | None:
    for a, b, c in LINES:
        if board[a] != "." and board[a] == board[b] == board[c]:
            return board[a]
    return None


def _oracle_value(board: str, memo: dict[str, int]) -> int:
    """Plain negamax: 1 if the player to move wins, 0 draw, -1 loss."""
    if board in memo:
        return memo[board]
    if _winner(board):
        result = -1
    elif "." not in board:
        result = 0
    else:
        me = "X" if board.count("X") == board.count("O") else "O"
        result = max(
            -_oracle_value(board[:i] + me + board[i + 1 :], memo) for i in range(9) if board[i] == "."
        )
    memo[board] = result
    return result


def _oracle_optimal(board: str, memo: dict[str, int]) -> set[int]:
    me = "X" if board.count("X") == board.count("O") else "O"
    target = _oracle_value(board, memo)
    return {
        i
        for i in range(9)
        if board[i] == "." and -_oracle_value(board[:i] + me + board[i + 1 :], memo) == target
    }


def _oracle_reachable() -> set[str]:
    seen, stack = {"........."}, ["........."]
    while stack:
        board = stack.pop()
        if _winner(board) or "." not in board:
            continue
        me = "X" if board.count("X") == board.count("O") else "O"
        for i in range(9):
            if board[i] == ".":
                child = board[:i] + me + board[i + 1 :]
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
    return seen


def _text(board: str) -> str:
    return "/".join(board[r * 3 : r * 3 + 3] for r in range(3))


def _labels(cells: frozenset[int] | set[int]) -> set[str]:
    return {NAMES[c] for c in cells}


# --- hand-worked positions ---------------------------------------------------------------------


def test_empty_board_is_a_draw_and_every_move_is_optimal() -> None:
    state = TASK.parse(".../.../...")
    assert ttt.minimax_value(state) == 0
    assert ttt.optimal_moves(state) == frozenset(range(9))
    assert TASK.current_player(state) == 0


def test_win_in_one_only_the_winning_cell_is_optimal() -> None:
    # X: a1 a2, O: b1 b2; X to move.  a3 wins; anything else lets O win at b3.
    state = TASK.parse("XO./XO./...")
    assert ttt.minimax_value(state) == 1
    assert _labels(ttt.optimal_moves(state)) == {"a3"}
    assert ttt.classify(state) == "win_in_1"


def test_must_block() -> None:
    # X: a1 b2 threatens c3; O (to move) has no line to complete, so c3 is forced and holds the draw.
    state = TASK.parse("X.O/.X./...")
    assert TASK.current_player(state) == 1
    assert ttt.minimax_value(state) == 0
    assert _labels(ttt.optimal_moves(state)) == {"c3"}
    assert ttt.classify(state) == "must_block"


def test_fork() -> None:
    # X: a1 b2, O: b1 c3.  a2 threatens a3 and c2, a3 threatens a2 and c1: both forks win.
    state = TASK.parse("XO./.X./..O")
    assert ttt.minimax_value(state) == 1
    assert _labels(ttt.optimal_moves(state)) == {"a2", "a3"}


def test_lost_position_every_move_is_optimal() -> None:
    # O to move must block a1, after which X a3 makes two threats (b3 and c1): every move loses.
    state = TASK.parse(".../OX./..X")
    assert ttt.minimax_value(state) == -1
    assert len(ttt.optimal_moves(state)) == 6
    assert ttt.classify(state) is None


def test_minimax_matches_independent_oracle_on_every_reachable_position() -> None:
    memo: dict[str, int] = {}
    reachable = _oracle_reachable()
    assert len(reachable) == 5478  # the well-known count of reachable tic-tac-toe positions
    assert len(ttt.reachable_states()) == 5478
    for board in reachable:
        state = TASK.parse(_text(board))
        assert ttt.minimax_value(state) == _oracle_value(board, memo), board
        if _winner(board) or "." not in board:
            assert TASK.is_terminal(state)
            assert ttt.optimal_moves(state) == frozenset()
        else:
            assert set(ttt.optimal_moves(state)) == _oracle_optimal(board, memo), board


# --- rules -------------------------------------------------------------------------------------


def test_labels_and_parse_action() -> None:
    state = TASK.parse(".../.../...")
    assert TASK.action_label(state, 4) == "b2"
    assert TASK.action_label(state, 2) == "c1"
    assert TASK.action_label(state, 6) == "a3"
    assert TASK.parse_action(state, "b2") == 4
    assert TASK.parse_action(state, " C1 ") == 2
    occupied = TASK.parse(".../.X./...")
    with pytest.raises(ParseError, match="occupied"):
        TASK.parse_action(occupied, "b2")
    with pytest.raises(ParseError, match="not a cell"):
        TASK.parse_action(state, "d4")


def test_apply_legal_actions_returns() -> None:
    state = TASK.parse(".../.../...")
    assert TASK.legal_actions(state) == tuple(range(9))
    for cell in (4, 0, 8, 2, 6):  # X b2, O a1, X c3, O c1, X a3
        state = TASK.apply(state, cell)
    assert TASK.render(state) == "O.O/.X./X.X"
    assert not TASK.is_terminal(state)
    state = TASK.apply(state, 1)  # O b1 completes the top row
    assert TASK.is_terminal(state)
    assert TASK.returns(state) == (-1, 1)
    assert TASK.legal_actions(state) == ()
    x_win = TASK.parse("XXX/OO./...")
    assert TASK.returns(x_win) == (1, -1)
    draw = TASK.parse("XOX/XOO/OXX")
    assert TASK.is_terminal(draw) and TASK.returns(draw) == (0, 0)
    assert TASK.num_players == 2 and TASK.reward_range == (-1, 1)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("X.O/.X.", "3 rows"),
        ("X.O/.X./..O/...", "3 rows"),
        ("X.O/.X/..O", "row 2 has 2 cells"),
        ("X.O/.X../..O", "row 2 has 4 cells"),
        ("X.O/.Z./..O", "bad character 'Z'"),
        ("XXX/.../...", "illegal piece counts"),
        ("OO./.../...", "illegal piece counts"),
        ("XXX/OOO/...", "both players have a line"),
        ("XXX/OO./..O", "X has a line but O moved after"),
        ("OOO/XX./X.X", "O has a line but X moved after"),
    ],
)
def test_parse_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        TASK.parse(text)


def test_parse_accepts_prefix_lowercase_and_whitespace() -> None:
    canonical = TASK.parse("X.O/.X./..O")
    assert TASK.parse("  tictactoe: x.o/.x./..o  ") == canonical
    assert TASK.parse("TicTacToe:X.O / .X. / ..O") == canonical
    assert TASK.render(canonical) == "X.O/.X./..O"
    assert TASK.describe(canonical).splitlines() == ["  a b c", "1 X . O", "2 . X .", "3 . . O"]


def test_verify() -> None:
    state = TASK.parse("XO./XO./...")
    good = TASK.verify(state, "a3")
    assert good is not None and good.correct and good.expected == "a3"
    bad = TASK.verify(state, "c3")
    assert bad is not None and not bad.correct and bad.label == "incorrect"
    occupied = TASK.verify(state, "a1")
    assert occupied is not None and not occupied.correct and "occupied" in occupied.detail
    nonsense = TASK.verify(state, "take the middle")
    assert nonsense is not None and not nonsense.correct and "not a cell" in nonsense.detail
    assert TASK.verify(TASK.parse("XXX/OO./..."), "c3") is None


def test_rollout_matches_generic_rollout_and_ends_terminal() -> None:
    for seed in range(300):
        start = TASK.parse([".../.../...", "X../.O./...", "XO./.X./..O", "X../.../..."][seed % 4])
        fast = TASK.rollout(start, random.Random(seed).random)
        slow = BaseTask.rollout(TASK, start, random.Random(seed).random)  # type: ignore[arg-type]
        assert fast == slow
        returns, end = fast
        assert TASK.is_terminal(end)
        assert returns == TASK.returns(end)
        assert all(-1 <= r <= 1 for r in returns)
    done = TASK.parse("XXX/OO./...")
    assert TASK.rollout(done, random.Random(0).random) == ((1, -1), done)
