"""Exact shallow lookahead for two-player zero-sum tasks, over the Task protocol.

Values are from the perspective of the player to move, in the task's reward
range: 1 a win, -1 a loss, 0 a draw or "not decided within the depth".
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from engine.tasks import Task

__all__ = ["forces_win_in_3", "gives_forced_win", "immediate_wins", "loses_at_once", "move_values", "negamax"]


def _value_for_mover(task: Task, state: Any, mover: int) -> float:
    return task.returns(state)[mover]


def immediate_wins(task: Task, state: Any) -> list[Any]:
    """Moves that win at once for the player to move."""
    me = task.current_player(state)
    hi = task.reward_range[1]
    wins = []
    for a in task.legal_actions(state):
        s = task.apply(state, a)
        if task.is_terminal(s) and _value_for_mover(task, s, me) >= hi:
            wins.append(a)
    return wins


def loses_at_once(task: Task, state: Any, action: Any) -> bool:
    """Whether ``action`` lets the opponent win with their very next move."""
    s = task.apply(state, action)
    return not task.is_terminal(s) and bool(immediate_wins(task, s))


def forces_win_in_3(task: Task, state: Any, action: Any) -> bool:
    """Whether ``action`` wins by force by the mover's next move (3 plies).

    True when ``action`` wins at once, or every reply leaves an immediate win.
    """
    me = task.current_player(state)
    s = task.apply(state, action)
    if task.is_terminal(s):
        return _value_for_mover(task, s, me) >= task.reward_range[1]
    for reply in task.legal_actions(s):
        t = task.apply(s, reply)
        if task.is_terminal(t) or not immediate_wins(task, t):
            return False
    return True


def gives_forced_win(task: Task, state: Any, action: Any) -> bool:
    """Whether after ``action`` the opponent has a move that forces a win within 3 plies."""
    s = task.apply(state, action)
    if task.is_terminal(s):
        return False
    return any(forces_win_in_3(task, s, reply) for reply in task.legal_actions(s))


def negamax(
    task: Task,
    state: Any,
    depth: int,
    memo: dict[Hashable, tuple[float, bool]],
    alpha: float = -2.0,
    beta: float = 2.0,
) -> tuple[float, bool]:
    """(value for the player to move, exact) with alpha-beta to ``depth`` plies.

    ``exact`` is False when some line was cut at the depth limit (valued 0).
    Values are scaled so that faster wins score higher (1 - 0.01 * plies).
    """
    if task.is_terminal(state):
        return _value_for_mover(task, state, task.current_player(state)), True
    if depth == 0:
        return 0.0, False
    key = (task.key(state), depth)
    hit = memo.get(key)
    if hit is not None:
        return hit
    best, exact = -2.0, True
    a0 = alpha
    for a in task.legal_actions(state):
        v, ex = negamax(task, task.apply(state, a), depth - 1, memo, -beta, -alpha)
        v = -v * 0.99 if v else -v
        exact = exact and ex
        if v > best:
            best = v
        alpha = max(alpha, v)
        if alpha >= beta:
            break  # a bound is enough for the parent; the explored lines decide exactness
    if a0 < best < beta:
        memo[key] = (best, exact)
    return best, exact


def move_values(task: Task, state: Any, depth: int) -> tuple[dict[Any, float], bool]:
    """Each legal move's negamax value (for the player to move) at ``depth`` plies
    after it, and whether every value is exact."""
    memo: dict[Hashable, tuple[float, bool]] = {}
    values, exact = {}, True
    for a in task.legal_actions(state):
        v, ex = negamax(task, task.apply(state, a), depth, memo)
        values[a] = -v * 0.99 if v else -v
        exact = exact and ex
    return values, exact
