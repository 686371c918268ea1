"""HRM and TRM for two-player games (tic-tac-toe, connect four).

HRM decomposes the move choice into sub-goals checked by exact lookahead, in
order: win now; do not allow an immediate loss (block); force a win within
three plies (fork); do not allow the opponent such a fork; then a positional
plan (centre first).  Its confidence is 1 when a sub-goal proves the move
(a win, or the only move that survives), else 1/|moves that survive the
checks|: the chance that a survivor picked blindly is right.

TRM refines the current candidate by deepening negamax (1, 2, 3, ... plies)
and switching to a strictly better move when one appears, until a round
brings no improvement.  Its confidence is 1 when the search was exact (every
line reached the end of the game), else the share of alternatives it refuted
(scored strictly below the candidate).
"""

from __future__ import annotations

from typing import Any

from engine.agents import lookahead
from engine.agents.base import AgentContext, AgentOutput

__all__ = ["hrm", "trm"]

_TTT_PLAN = {4: 3, 0: 2, 2: 2, 6: 2, 8: 2, 1: 1, 3: 1, 5: 1, 7: 1}  # centre, corners, edges
_C4_PLAN = {0: 1, 1: 2, 2: 3, 3: 4, 4: 3, 5: 2, 6: 1}  # central columns first


def _plan_score(task_name: str, action: Any) -> int:
    table = _TTT_PLAN if task_name == "tictactoe" else _C4_PLAN if task_name == "connect4" else {}
    return table.get(action, 0)


def _pick(ctx: AgentContext, moves: list[Any]) -> Any:
    task = ctx.task
    assert task is not None
    return max(
        moves,
        key=lambda a: (_plan_score(task.name, a), -list(task.legal_actions(ctx.state)).index(a)),
    )


def hrm(ctx: AgentContext) -> AgentOutput:
    """Hierarchical sub-goals: win, block, fork, stop forks, positional plan."""
    task, state = ctx.task, ctx.state
    assert task is not None
    label = task.action_label
    legal = list(task.legal_actions(state))
    wins = lookahead.immediate_wins(task, state)
    if wins:
        move = _pick(ctx, wins)
        return AgentOutput(
            label(state, move), 1.0, f"sub-goal win: {label(state, move)} wins at once", "move", True
        )
    safe = [a for a in legal if not lookahead.loses_at_once(task, state, a)]
    if not safe:
        move = _pick(ctx, legal)
        return AgentOutput(
            label(state, move),
            1.0 / len(legal),
            f"every move allows an immediate loss; plan picks {label(state, move)}",
            "move",
        )
    if len(safe) == 1:
        move = safe[0]
        return AgentOutput(
            label(state, move),
            1.0,
            f"sub-goal block: {label(state, move)} is the only move that avoids an immediate loss",
            "move",
            True,
        )
    forks = [a for a in safe if lookahead.forces_win_in_3(task, state, a)]
    if forks:
        move = _pick(ctx, forks)
        return AgentOutput(
            label(state, move),
            1.0,
            f"sub-goal fork: {label(state, move)} forces a win within 3 plies",
            "move",
            True,
        )
    calm = [a for a in safe if not lookahead.gives_forced_win(task, state, a)]
    survivors = calm or safe
    move = _pick(ctx, survivors)
    why = "stop the opponent's forks" if calm and len(calm) < len(safe) else "no immediate tactics"
    return AgentOutput(
        label(state, move),
        1.0 / len(survivors),
        f"{why}; {len(survivors)} of {len(legal)} moves survive the sub-goal checks; "
        f"plan picks {label(state, move)}",
        "move",
        len(survivors) == 1,
    )


def trm(ctx: AgentContext, max_depth: int = 4) -> AgentOutput:
    """Recursive refinement of the candidate move by deepening lookahead."""
    task, state = ctx.task, ctx.state
    assert task is not None
    legal = list(task.legal_actions(state))
    current = None
    if ctx.candidate is not None:
        try:
            current = task.parse_action(state, ctx.candidate)
        except ValueError:
            current = None
    given = ctx.candidate if current is not None else None  # the candidate it refines, if usable
    if current is None:
        current = _pick(ctx, legal)
    history = []
    values: dict[Any, float] = {}
    exact = False
    for depth in range(1, max_depth + 1):
        values, exact = lookahead.move_values(task, state, depth - 1)
        best = max(legal, key=lambda a: (values[a], a == current))
        improved = values[best] > values[current]
        if improved:
            history.append(f"d{depth}: {task.action_label(state, current)}→{task.action_label(state, best)}")
            current = best
        if exact or (not improved and depth >= 2):
            break
    label = task.action_label(state, current)
    if exact:
        return AgentOutput(
            label,
            1.0,
            f"exact lookahead to the end of the game; {label} is best"
            + (f" (refined {', '.join(history)})" if history else ""),
            "move",
            True,
            refined_from=given,
        )
    worse = sum(values[a] < values[current] for a in legal if a != current)
    share = worse / (len(legal) - 1) if len(legal) > 1 else 1.0
    return AgentOutput(
        label,
        share,
        f"refined to depth {depth}: {label} beats {worse} of {len(legal) - 1} alternatives"
        + (f" (changes: {', '.join(history)})" if history else " (no change)"),
        "move",
        refined_from=given,
    )
