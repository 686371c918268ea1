"""The Game of 24 with exact fractions and an exhaustive solver.

State: a tuple of ``(value, expression)`` pairs sorted ascending (``value`` a
``Fraction``, ``expression`` the text that produced it).  ``key(state)`` is the
tuple of values alone, so states reached by different expressions transpose.

Action: ``(i, j, op)`` with ``i < j`` indices into the state and ``op`` one of
``"+" "-" "*" "/"`` (item i op item j) or ``"r-" "r/"`` (reversed: item j
minus / divided by item i).  ``legal_actions`` drops division by zero and keeps
one action per distinct resulting key.  Intermediate values may be negative
or fractional.

Position text: ``"4 7 8 8"`` (parse also accepts a ``24:`` or ``game24:`` prefix
and commas).  A position in the middle of a game renders its expressions, e.g.
``"8/3 3 8"``; parse accepts such items too, as long as they use exactly four
numbers 1..13 in all.
"""

from __future__ import annotations

import ast
import re
from fractions import Fraction
from functools import cache, lru_cache
from itertools import combinations_with_replacement
from typing import Any

from engine.tasks.base import BaseTask, Example, ParseError, Returns, Uniform, Verdict, bounded_int, excerpt

__all__ = [
    "LOSS",
    "MAX_ANSWER_CHARS",
    "OPS",
    "TARGET",
    "WIN",
    "Action",
    "Game24",
    "Item",
    "State",
    "all_puzzles",
    "combine_text",
    "evaluate",
    "is_solvable",
    "puzzle_numbers",
    "solve",
    "value_of",
]

Item = tuple[Fraction, str]
State = tuple[Item, ...]
Action = tuple[int, int, str]
TARGET = Fraction(24)
OPS = ("+", "-", "*", "/", "r-", "r/")
WIN: Returns = (1.0,)
LOSS: Returns = (0.0,)
MAX_ANSWER_CHARS = 200
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_INT = re.compile(r"[0-9]+")
_EXPR_CHARS = re.compile(r"[0-9\s+\-*/()]+")


@cache
def _precedence(expr: str) -> int:
    """Precedence of the top-level operator of ``expr``: 1 additive, 2 multiplicative, 3 atom."""
    depth, prec = 0, 3
    for ch in expr:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0:
            if ch in "+-":
                return 1
            if ch in "*/":
                prec = 2
    return prec


def combine_text(left: str, op: str, right: str) -> str:
    """``left op right`` with the minimal parentheses (``op`` one of ``+ - * /``).

    The left operand is wrapped when it binds looser than ``op``; the right
    operand also when it binds equally and ``op`` is ``-`` or ``/``.
    """
    p = _PREC[op]
    if _precedence(left) < p:
        left = f"({left})"
    rp = _precedence(right)
    if rp < p or (rp == p and op in "-/"):
        right = f"({right})"
    return f"{left}{op}{right}"


def _combine(a: Item, b: Item, op: str) -> Item | None:
    """Apply ``op`` (including the reversed ones) to items a, b; None for division by zero."""
    if op[0] == "r":
        a, b, op = b, a, op[1]
    x, y = a[0], b[0]
    if op == "+":
        v = x + y
    elif op == "-":
        v = x - y
    elif op == "*":
        v = x * y
    elif not y:
        return None
    else:
        v = x / y
    return (v, combine_text(a[1], op, b[1]))


def _values_after(values: tuple[Fraction, ...], i: int, j: int, v: Fraction) -> tuple[Fraction, ...]:
    rest = [values[k] for k in range(len(values)) if k != i and k != j]
    rest.append(v)
    return tuple(sorted(rest))


def value_of(x: Any, y: Any, op: str) -> Any:
    """``x op y`` for op in ``+ - r- * / r/`` (``r`` reverses the operands), for
    Fractions or floats; None on division by zero."""
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "r-":
        return y - x
    if op == "*":
        return x * y
    if op == "/":
        return x / y if y else None
    return y / x if x else None


@lru_cache(maxsize=1 << 16)
def _legal(values: tuple[Fraction, ...]) -> tuple[Action, ...]:
    """Legal actions for a sorted value tuple, one per distinct resulting key."""
    if len(values) < 2:
        return ()
    seen: set[tuple[Fraction, ...]] = set()
    actions: list[Action] = []
    n = len(values)
    for i in range(n - 1):
        for j in range(i + 1, n):
            for op in OPS:
                v = value_of(values[i], values[j], op)
                if v is None:
                    continue
                k = _values_after(values, i, j, v)
                if k not in seen:
                    seen.add(k)
                    actions.append((i, j, op))
    return tuple(actions)


@cache
def _solvable(values: tuple[Fraction, ...]) -> bool:
    """Whether the sorted values can be combined into exactly 24."""
    if len(values) == 1:
        return values[0] == TARGET
    n = len(values)
    for i in range(n - 1):
        for j in range(i + 1, n):
            x, y = values[i], values[j]
            if n == 2:
                if x + y == TARGET or x * y == TARGET or abs(x - y) == TARGET:
                    return True
                if (y and x / y == TARGET) or (x and y / x == TARGET):
                    return True
                continue
            for op in OPS:
                v = value_of(x, y, op)
                if v is not None and _solvable(_values_after(values, i, j, v)):
                    return True
    return False


def _find(items: State) -> str | None:
    """An expression reaching 24 from the sorted items, or None."""
    if len(items) == 1:
        return items[0][1] if items[0][0] == TARGET else None
    values = tuple(v for v, _ in items)
    if not _solvable(values):
        return None
    n = len(items)
    for i in range(n - 1):
        for j in range(i + 1, n):
            for op in OPS:
                made = _combine(items[i], items[j], op)
                if made is None:
                    continue
                rest = [items[k] for k in range(n) if k != i and k != j]
                rest.append(made)
                found = _find(tuple(sorted(rest)))
                if found is not None:
                    return found
    return None  # pragma: no cover - _solvable said there is a way


def _initial(numbers: tuple[int, ...] | list[int]) -> State:
    return tuple(sorted((Fraction(n), str(n)) for n in numbers))


def solve(numbers: tuple[int, ...] | list[int]) -> str | None:
    """An expression that makes exactly 24 from ``numbers`` (each used once), or None.

    Exhaustive over pairs and the six operations, with exact fractions and
    memoisation over sorted value tuples.  Raises ValueError for no numbers.
    """
    if not numbers:
        raise ValueError("no numbers given")
    return _find(_initial(numbers))


def is_solvable(numbers: tuple[int, ...] | list[int]) -> bool:
    """Whether ``numbers`` can make exactly 24.  Raises ValueError for no numbers."""
    if not numbers:
        raise ValueError("no numbers given")
    return _solvable(tuple(sorted(Fraction(n) for n in numbers)))


def all_puzzles() -> list[tuple[int, int, int, int]]:
    """The 1820 multisets of four numbers 1..13, as sorted tuples in lexicographic order."""
    return list(combinations_with_replacement(range(1, 14), 4))


def _eval_node(node: ast.AST, leaves: list[int]) -> tuple[Fraction, str]:
    """Evaluate an allowed expression node exactly; collects integer leaves.

    Raises ParseError for anything but + - * / on non-negative integers, and
    ZeroDivisionError for division by zero.
    """
    if isinstance(node, ast.BinOp):
        op = _AST_OPS.get(type(node.op))
        if op is None:
            raise ParseError(f"operator {type(node.op).__name__} is not allowed (only + - * /)")
        left, ltext = _eval_node(node.left, leaves)
        right, rtext = _eval_node(node.right, leaves)
        text = combine_text(ltext, op, rtext)
        if op == "+":
            return left + right, text
        if op == "-":
            return left - right, text
        if op == "*":
            return left * right, text
        return left / right, text  # ZeroDivisionError propagates
    if isinstance(node, ast.Constant) and type(node.value) is int:
        leaves.append(node.value)
        return Fraction(node.value), str(node.value)
    if isinstance(node, ast.UnaryOp):
        raise ParseError("unary operators (such as a leading minus) are not allowed")
    if isinstance(node, ast.Constant):
        raise ParseError(f"{node.value!r} is not a whole number")
    raise ParseError(f"{type(node).__name__} is not allowed (only numbers, + - * / and parentheses)")


def evaluate(text: str) -> tuple[Fraction, str, list[int]]:
    """Evaluate an arithmetic expression exactly.

    Returns (value, canonical text with minimal parentheses, the integers used
    in order).  Raises ParseError for invalid syntax, disallowed constructs
    (unary minus, other operators, names, non-integers) or division by zero.
    """
    if len(text) > MAX_ANSWER_CHARS:
        raise ParseError(f"expression longer than {MAX_ANSWER_CHARS} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        raise ParseError(f"{excerpt(text.strip())} is not a valid arithmetic expression") from None
    leaves: list[int] = []
    try:
        value, canon = _eval_node(tree.body, leaves)
    except ZeroDivisionError:
        raise ParseError("division by zero") from None
    return value, canon, leaves


def puzzle_numbers(state: State) -> tuple[int, ...]:
    """The original four numbers of a position (the integers in its expressions), sorted."""
    return tuple(sorted(int(tok) for _, expr in state for tok in _INT.findall(expr)))


class Game24(BaseTask):
    """The Game of 24; see the module docstring for states, actions and text."""

    name = "game24"
    num_players = 1
    reward_range = (0.0, 1.0)
    examples: tuple[Example, ...] = (
        Example("Classic (4 7 8 8)", "24: 4 7 8 8"),
        Example("Needs fractions (3 3 8 8)", "24: 3 3 8 8"),
        Example("Needs fractions (1 5 5 5)", "24: 1 5 5 5"),
        Example("No solution (1 1 1 1)", "24: 1 1 1 1"),
    )

    def parse(self, text: str) -> State:
        """Parse ``"24: 4 7 8 8"`` (prefix optional, separated by spaces or commas).

        Items may also be expressions (``"24: 3 8 8/3"``, a position mid-game).
        Raises ParseError naming the problem: an item that is not a number, the
        count (exactly four numbers in all) or a number outside 1..13.
        """
        body = text.strip()
        for prefix in ("game24:", "24:"):
            if body.lower().startswith(prefix):
                body = body[len(prefix) :]
                break
        parts = body.split(",") if "," in body else body.split()
        parts = [p.strip() for p in parts]
        items: list[Item] = []
        leaves: list[int] = []
        for part in parts:
            if not part:
                raise ParseError("empty item (two separators in a row?)")
            if _INT.fullmatch(part):
                n = bounded_int(part)
                leaves.append(n)
                items.append((Fraction(n), str(n)))
                continue
            if not _EXPR_CHARS.fullmatch(part) or not _INT.search(part):
                raise ParseError(f"{excerpt(part)} is not a number")
            try:
                value, canon, used = evaluate(part)
            except ParseError as exc:
                raise ParseError(f"{excerpt(part)} is not a number or expression: {exc}") from None
            leaves.extend(used)
            items.append((value, canon))
        if len(leaves) != 4:
            raise ParseError(f"expected exactly four numbers, got {len(leaves)}")
        for n in leaves:
            if not 1 <= n <= 13:
                raise ParseError(f"{n} is out of range (numbers must be 1..13)")
        return tuple(sorted(items))

    def render(self, state: State) -> str:
        """The items' expressions separated by spaces, e.g. ``"4 7 8 8"`` or ``"8/3 3 8"`` (no prefix)."""
        return " ".join(expr for _, expr in state)

    def answer(self, state: State) -> str:
        """The answer text a finished position stands for: its single expression.

        Raises ValueError if more than one number is left.
        """
        if len(state) != 1:
            raise ValueError(f"{len(state)} numbers are left; an answer needs exactly one")
        return state[0][1]

    def describe(self, state: State) -> str:
        """The numbers left and, mid-game, the puzzle they came from."""
        left = ", ".join(expr for _, expr in state)
        puzzle = " ".join(map(str, puzzle_numbers(state)))
        if len(state) == 4 and all(_INT.fullmatch(expr) for _, expr in state):
            return f"Make 24 from {puzzle}"
        return f"Puzzle {puzzle}; left: {left}"

    def key(self, state: State) -> tuple[Fraction, ...]:
        """The sorted values (expressions dropped) for transpositions."""
        return tuple(v for v, _ in state)

    def current_player(self, state: State) -> int:
        """Always 0 (a one-player puzzle)."""
        return 0

    def legal_actions(self, state: State) -> tuple[Action, ...]:
        """``(i, j, op)`` actions, one per distinct resulting key, no division by zero."""
        return _legal(tuple(v for v, _ in state))

    def apply(self, state: State, action: Action) -> State:
        """Replace items i and j by their combination.  Raises ValueError on division by zero."""
        i, j, op = action
        made = _combine(state[i], state[j], op)
        if made is None:
            raise ValueError("division by zero")
        rest = [state[k] for k in range(len(state)) if k != i and k != j]
        rest.append(made)
        return tuple(sorted(rest))

    def is_terminal(self, state: State) -> bool:
        """True when one number is left."""
        return len(state) <= 1

    def returns(self, state: State) -> Returns:
        """(1.0,) if the last number is exactly 24, else (0.0,)."""
        return WIN if len(state) == 1 and state[0][0] == TARGET else LOSS

    def action_label(self, state: State, action: Action) -> str:
        """The step as an expression over the operands' expressions, e.g. ``"3-8/3"``."""
        i, j, op = action
        made = _combine(state[i], state[j], op)
        return made[1] if made else "division by zero"

    def parse_action(self, state: State, text: str) -> Action:
        """Parse a step such as ``"8/3"`` or ``"3 - 8/3"`` into a legal ``(i, j, op)``.

        The text's top-level operation must combine two of the items (matched
        by expression text, else by value).  The result is the member of
        ``legal_actions`` that leads to the same key.  Raises ParseError otherwise.
        """
        if self.is_terminal(state):
            raise ParseError("the puzzle is finished")
        action = self._match_label(state, "".join(text.split())) or self._match_values(state, text.strip())
        values = tuple(v for v, _ in state)
        made = _combine(state[action[0]], state[action[1]], action[2])
        if made is None:
            raise ParseError("division by zero")
        target = _values_after(values, action[0], action[1], made[0])
        for i, j, op in _legal(values):
            v = value_of(values[i], values[j], op)
            if v is not None and _values_after(values, i, j, v) == target:
                return (i, j, op)
        raise ParseError("not a legal step")  # pragma: no cover - every key has a legal action

    @staticmethod
    def _match_label(state: State, wanted: str) -> Action | None:
        n = len(state)
        for i in range(n - 1):
            for j in range(i + 1, n):
                for op in OPS:
                    made = _combine(state[i], state[j], op)
                    if made is not None and made[1] == wanted:
                        return (i, j, op)
        return None

    @staticmethod
    def _match_values(state: State, text: str) -> Action:
        """Match ``left op right`` by the values of its operands; raises ParseError."""
        if len(text) > MAX_ANSWER_CHARS:
            raise ParseError(f"step longer than {MAX_ANSWER_CHARS} characters")
        try:
            tree = ast.parse(text, mode="eval").body
        except SyntaxError:
            raise ParseError(f"{text!r} is not a valid step") from None
        if not isinstance(tree, ast.BinOp) or type(tree.op) not in _AST_OPS:
            raise ParseError(f"{text!r} is not a single + - * / step")
        try:
            left = _eval_node(tree.left, [])[0]
            right = _eval_node(tree.right, [])[0]
        except ZeroDivisionError:
            raise ParseError("division by zero") from None
        sym = _AST_OPS[type(tree.op)]
        n = len(state)
        for i in range(n):
            for j in range(n):
                if i != j and state[i][0] == left and state[j][0] == right:
                    op = sym if i < j or sym in "+*" else "r" + sym
                    return (min(i, j), max(i, j), op)
        raise ParseError(f"{text!r} does not combine two of the numbers left")

    def rollout(self, state: State, rand: Uniform) -> tuple[Returns, State]:
        """Random legal steps with a one-step lookahead at the end.

        While more than two numbers are left a uniformly random legal action is
        taken; with two left, a step that makes 24 is taken if one exists,
        otherwise a random one.  Returns (returns, terminal state); the terminal
        state's single item carries the full expression.
        """
        while len(state) > 2:
            actions = _legal(tuple(v for v, _ in state))
            state = self.apply(state, actions[int(rand() * len(actions))])
        if len(state) == 2:
            a, b = state
            for op in OPS:
                made = _combine(a, b, op)
                if made is not None and made[0] == TARGET:
                    return WIN, (made,)
            actions = _legal((a[0], b[0]))
            state = self.apply(state, actions[int(rand() * len(actions))])
        return self.returns(state), state

    def verify(self, state: State, answer: str) -> Verdict:
        """Judge an answer to the position's puzzle (its four original numbers).

        The answer is an expression using exactly those numbers (as a multiset)
        with + - * / and parentheses, equal to exactly 24, optionally followed
        by ``= 24``; or ``no solution``, correct iff the solver finds none.  A
        malformed answer is an incorrect Verdict naming the problem.
        """
        numbers = puzzle_numbers(state)
        solution = solve(numbers)
        expected = solution if solution is not None else "no solution"
        text = answer.strip().rstrip(".").strip()
        if text.lower() in ("no solution", "no solutions"):
            if solution is None:
                return Verdict(True, expected, "the puzzle has no solution")
            return Verdict(False, expected, f"the puzzle is solvable, e.g. {solution}")
        text = re.sub(r"=\s*24\s*$", "", text)
        try:
            value, _, used = evaluate(text)
        except ParseError as exc:
            return Verdict(False, expected, str(exc))
        if sorted(used) != list(numbers):
            got = " ".join(map(str, sorted(used))) or "no numbers"
            want = " ".join(map(str, numbers))
            return Verdict(False, expected, f"uses {got} instead of {want}")
        if value != TARGET:
            return Verdict(False, expected, f"evaluates to {value}, not 24")
        return Verdict(True, expected, "uses each number once and makes 24")
