"""HRM and TRM for the Game of 24.

HRM decomposes the puzzle by "which pair first": each sub-goal combines two
numbers, leaving a smaller puzzle, recursively (best-first: results that
divide 24 or are close to it first).  The search runs in floating point with
a tolerance and every hit is re-checked exactly by the task's own rules, so a
returned expression is verified (confidence 1).  When the decomposition is
exhausted within its budget without a hit it answers "no solution", which is
then a proof (confidence 1); out of budget it answers nothing.

TRM refines an expression by local edits (change one operator, swap the
operands of - or /) while each edit brings its value strictly closer to 24;
it stops when no edit improves.  It answers only if it reaches 24 exactly.
"""

from __future__ import annotations

from fractions import Fraction
from itertools import combinations
from typing import Any

from engine.agents.base import AgentContext, AgentOutput
from engine.tasks import ParseError
from engine.tasks.game24 import combine_text, evaluate, puzzle_numbers, value_of

__all__ = ["extract_answer", "hrm", "trm"]

_EPS = 1e-6
_OPS = ("+", "-", "r-", "*", "/", "r/")


def _text(op: str, a: str, b: str) -> str:
    return combine_text(b, op[1], a) if op[0] == "r" else combine_text(a, op, b)


def _priority(v: float) -> float:
    """Smaller is tried first: values that divide 24 or sit near it."""
    if abs(v) > _EPS and abs(24 / v - round(24 / v)) < _EPS:
        return 0.0
    return min(abs(24 - v), 24.0)


class _Budget(Exception):
    pass


def _solve(items: list[tuple[float, str]], seen: set[tuple[float, ...]], budget: list[int]) -> str | None:
    if len(items) == 1:
        v, expr = items[0]
        if abs(v - 24) < _EPS:
            value, _, _ = evaluate(expr)
            if value == 24:
                return expr
        return None
    key = tuple(sorted(round(v, 9) for v, _ in items))
    if key in seen:
        return None
    seen.add(key)
    budget[0] -= 1
    if budget[0] < 0:
        raise _Budget
    steps = []
    for i, j in combinations(range(len(items)), 2):
        (x, ex), (y, ey) = items[i], items[j]
        rest = [items[k] for k in range(len(items)) if k not in (i, j)]
        for op in _OPS:
            v = value_of(x, y, op)
            if v is not None:
                steps.append((_priority(v), v, _text(op, ex, ey), rest))
    steps.sort(key=lambda s: s[0])
    for _, v, expr, rest in steps:
        found = _solve([*rest, (v, expr)], seen, budget)
        if found:
            return found
    return None


def hrm(ctx: AgentContext, budget: int = 2000) -> AgentOutput:
    """Decompose by which pair to combine first; verify any hit exactly."""
    items = [(float(v), expr) for v, expr in ctx.state]
    seen: set[tuple[float, ...]] = set()
    left = [budget]
    try:
        found = _solve(items, seen, left)
    except _Budget:
        return AgentOutput(None, 0.0, f"no expression within {budget} sub-goals (budget spent)", "none")
    used = budget - left[0]
    if found:
        return AgentOutput(
            found, 1.0, f"{found} = 24, checked exactly; {used} sub-goals explored", "expression", True
        )
    return AgentOutput(
        "no solution",
        1.0,
        f"all {used} sub-goals exhausted without reaching 24: no expression exists",
        "no_solution",
        True,
    )


def _tree_edits(expr: str) -> list[str]:
    """Expressions one edit away: one operator changed, or - and / operands swapped."""
    out = []
    for i, ch in enumerate(expr):
        if ch in "+-*/":
            for new in "+-*/":
                if new != ch:
                    out.append(expr[:i] + new + expr[i + 1 :])
    return out


def _greedy(ctx: AgentContext) -> str:
    items = [(v, expr) for v, expr in ctx.state]
    while len(items) > 1:
        best = None
        for i, j in combinations(range(len(items)), 2):
            (x, ex), (y, ey) = items[i], items[j]
            for op in _OPS:
                v = value_of(float(x), float(y), op)
                if v is not None and (best is None or abs(24 - v) < best[0]):
                    best = (abs(24 - v), i, j, v, _text(op, ex, ey))
        assert best is not None
        _, i, j, v, expr = best
        items = [items[k] for k in range(len(items)) if k not in (i, j)] + [
            (Fraction(v).limit_denominator(10**6), expr)
        ]
    return items[0][1]


def trm(ctx: AgentContext, max_rounds: int = 20) -> AgentOutput:
    """Hill-climb an expression towards 24 by single edits until no edit improves."""
    numbers = sorted(puzzle_numbers(ctx.state))
    start = ctx.candidate if ctx.candidate and ctx.candidate != "no solution" else _greedy(ctx)

    def distance(expr: str) -> float | None:
        try:
            value, _, used = evaluate(expr)
        except ParseError:
            return None
        return abs(float(value) - 24) if sorted(used) == numbers else None

    current, d = start, distance(start)
    given = start if start == ctx.candidate else None  # the candidate it refines, if usable
    if d is None:
        current, d = _greedy(ctx), distance(_greedy(ctx))
        given = None
    assert d is not None
    rounds = 0
    while d > 0 and rounds < max_rounds:
        rounds += 1
        scored = [(dist, e) for e in _tree_edits(current) if (dist := distance(e)) is not None]
        if not scored:
            break
        best_d, best = min(scored)
        if best_d >= d:
            break
        current, d = best, best_d
    if d == 0:
        _, canon, _ = evaluate(current)
        return AgentOutput(
            canon,
            1.0,
            f"refined in {rounds} edits to {canon} = 24, checked exactly",
            "expression",
            True,
            refined_from=given,
        )
    return AgentOutput(
        None, 0.0, f"closest after {rounds} edits: {current} (off by {d:.3g}); no answer", "none"
    )


def extract_answer(task: Any, result: Any) -> tuple[str | None, bool]:
    """The MCTS result's answer for a single-player puzzle: (answer, exact)."""
    lo, hi = task.reward_range
    if result.best_terminal is not None and (result.best_terminal_return or 0) >= hi:
        return task.answer(result.best_terminal), True
    proven = result.tree.proven(0)
    if proven is not None and proven <= lo:
        return "no solution", True
    return None, False
