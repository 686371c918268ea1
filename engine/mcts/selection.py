"""Selection rules: pick the child of a node to descend into.

A rule is ``rule(kids, N, W, P, parent_visits, c) -> child id`` over the
tree's parallel lists; every child in ``kids`` has at least one visit (UCB1
expands untried actions first; PUCT asks ``puct_expand_first`` whether the
best untried action beats every visited child).  Scores are from the
perspective of the player to move at the parent, which is the mover of every
child, so no sign flips are needed here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from math import log, sqrt

__all__ = ["RULES", "SelectRule", "explore_term", "puct", "puct_expand_first", "ucb1"]

SelectRule = Callable[[Sequence[int], list[int], list[float], list[float], int, float], int]


def ucb1(kids: Sequence[int], N: list[int], W: list[float], P: list[float], n: int, c: float) -> int:
    """UCB1: argmax of Q + c * sqrt(ln n / N_child)."""
    cl = c * sqrt(log(n)) if n > 1 else 0.0
    best = -1e300
    pick = kids[0]
    for k in kids:
        nk = N[k]
        s = W[k] / nk + cl / sqrt(nk)
        if s > best:
            best = s
            pick = k
    return pick


def puct(kids: Sequence[int], N: list[int], W: list[float], P: list[float], n: int, c: float) -> int:
    """PUCT (AlphaZero): argmax of Q + c * P * sqrt(n) / (1 + N_child)."""
    cs = c * sqrt(n)
    best = -1e300
    pick = kids[0]
    for k in kids:
        nk = N[k]
        s = W[k] / nk + cs * P[k] / (1 + nk)
        if s > best:
            best = s
            pick = k
    return pick


def puct_expand_first(
    kids: Sequence[int],
    N: list[int],
    W: list[float],
    P: list[float],
    n: int,
    c: float,
    prior: float,
    fpu: float,
) -> bool:
    """Whether an unvisited action with ``prior`` (valued at ``fpu``, the first-play
    urgency) scores at least as high under PUCT as the best visited child."""
    cs = c * sqrt(n)
    new = fpu + cs * prior
    return all(W[k] / N[k] + cs * P[k] / (1 + N[k]) <= new for k in kids)


def explore_term(rule: str, c: float, parent_visits: int, visits: int, prior: float) -> float:
    """The exploration term of ``rule`` for one child (for snapshots and tables)."""
    if visits <= 0:
        return float("inf")
    if rule == "puct":
        return c * prior * sqrt(parent_visits) / (1 + visits)
    return c * sqrt(log(parent_visits) / visits) if parent_visits > 1 else 0.0


RULES: dict[str, SelectRule] = {"ucb1": ucb1, "puct": puct}
