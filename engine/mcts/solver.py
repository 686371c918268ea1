"""Solver-true reading of a search tree: the proof status and displayed value of a node.

The search's MCTS-Solver (``engine.mcts.search``) records an exact value for every node
it has proven (``Tree.proven``).  Views must show that value, not the rollout mean Q that
the search also keeps: a position proven a draw has value 0 whatever its rollouts said.

Sign convention (the one every view states): a node's value is for the player who made
the move into it, which is the player to move at its parent; the root's value is for the
player to move at the root.  +1 (the top of the task's reward range) is a win for that
player, the bottom a loss, and for two-player games the middle a draw.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["STATUS_LABELS", "ProofStatus", "proof_status", "solver_value"]

ProofStatus = Literal["win", "loss", "draw", "exact", "unproven"]

#: How each status reads on screen.
STATUS_LABELS: dict[ProofStatus, str] = {
    "win": "proven win",
    "loss": "proven loss",
    "draw": "proven draw",
    "exact": "proven",
    "unproven": "unproven",
}


def proof_status(proven: float | None, reward_range: tuple[float, float]) -> ProofStatus:
    """The proof status of a node whose exact value (for its mover) is ``proven``.

    ``reward_range`` is the task's (lowest, highest) return.  None -> ``"unproven"``; the
    highest return -> ``"win"``; the lowest -> ``"loss"``; the midpoint -> ``"draw"`` (a
    two-player zero-sum draw); any other exact value -> ``"exact"`` (a proven score that is
    neither, possible only in tasks with graded rewards).  Raises ValueError for an empty range.
    """
    lo, hi = reward_range
    if not lo < hi:
        raise ValueError(f"reward range must have low < high, got {reward_range!r}")
    if proven is None:
        return "unproven"
    if proven >= hi:
        return "win"
    if proven <= lo:
        return "loss"
    if proven == (lo + hi) / 2:
        return "draw"
    return "exact"


def solver_value(q: float, proven: float | None) -> float:
    """The value to display for a node: its proven value when there is one, else its mean
    return ``q`` (both for the node's mover, in the task's reward units)."""
    return q if proven is None else proven
