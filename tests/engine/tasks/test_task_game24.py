"""Game of 24: parsing, actions, expressions, the solver and verify, against independent checks."""

from __future__ import annotations

import ast
import random
from fractions import Fraction
from itertools import combinations_with_replacement

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.tasks import ParseError, load_task
from engine.tasks import game24 as g24

TASK = load_task("game24")


# --- an independent evaluator (the test's own, not the module's) --------------------------------


def _evaluate(text: str) -> tuple[Fraction, list[int]]:
    """Exact value and integer leaves of an expression with only + - * / and parentheses."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp):
            a, b = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return a / b
        if isinstance(node, ast.Constant) and type(node.value) is int:
            leaves.append(node.value)
            return Fraction(node.value)
        raise AssertionError(f"disallowed node {ast.dump(node)}")

    leaves: list[int] = []
    return walk(ast.parse(text, mode="eval").body), leaves


# --- the solver --------------------------------------------------------------------------------


def test_all_puzzles_are_the_1820_multisets() -> None:
    puzzles = g24.all_puzzles()
    assert len(puzzles) == 1820 == len(set(puzzles))
    assert set(puzzles) == set(combinations_with_replacement(range(1, 14), 4))


def test_published_count_of_solvable_puzzles() -> None:
    assert sum(g24.is_solvable(p) for p in g24.all_puzzles()) == 1362


def test_every_solver_expression_is_verified_independently() -> None:
    for puzzle in g24.all_puzzles():
        expr = g24.solve(puzzle)
        assert (expr is not None) == g24.is_solvable(puzzle)
        if expr is not None:
            value, leaves = _evaluate(expr)
            assert value == 24, (puzzle, expr)
            assert sorted(leaves) == list(puzzle), (puzzle, expr)


def test_known_puzzles() -> None:
    assert g24.is_solvable((4, 7, 8, 8))
    assert not g24.is_solvable((1, 1, 1, 1))
    assert g24.solve((1, 1, 1, 1)) is None
    assert g24.solve((3, 3, 8, 8)) == "8/(3-8/3)"  # the only solution
    assert g24.solve((8, 3, 8, 3)) == "8/(3-8/3)"  # order of the input does not matter
    for puzzle in [(1, 5, 5, 5), (3, 3, 7, 7), (1, 3, 4, 6)]:  # classic fraction-only puzzles
        expr = g24.solve(puzzle)
        assert expr is not None and "/" in expr and _evaluate(expr)[0] == 24
    for puzzle in [(1, 1, 1, 2), (1, 1, 2, 2), (13, 13, 13, 13)]:
        assert not g24.is_solvable(puzzle)


# --- parsing and rendering ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["4 7 8 8", "24: 4 7 8 8", "  24:8,8,7,4 ", "4, 7, 8, 8", "game24: 8 7 8 4"])
def test_parse_accepts_the_documented_forms(text: str) -> None:
    state = TASK.parse(text)
    assert state == ((Fraction(4), "4"), (Fraction(7), "7"), (Fraction(8), "8"), (Fraction(8), "8"))
    assert TASK.render(state) == "4 7 8 8"
    assert TASK.key(state) == (4, 7, 8, 8)
    assert TASK.current_player(state) == 0 and not TASK.is_terminal(state)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("4 7 8", "expected exactly four numbers, got 3"),
        ("4 7 8 8 9", "expected exactly four numbers, got 5"),
        ("", "expected exactly four numbers, got 0"),
        ("4 7 8 14", "14 is out of range"),
        ("0 7 8 8", "0 is out of range"),
        ("4 7 8 x", "'x' is not a number"),
        ("4 7 8 8.5", "'8.5' is not a number"),
        ("4 7 -8 8", "'-8' is not a number"),
        ("4,7,,8", "empty item"),
    ],
)
def test_parse_errors_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ParseError, match=problem):
        TASK.parse(text)


def test_mid_game_positions_render_and_parse_back() -> None:
    state = TASK.parse("24: 3 3 8 8")
    step = TASK.parse_action(state, "8/3")
    assert TASK.action_label(state, step) == "8/3"
    state = TASK.apply(state, step)
    assert TASK.render(state) == "8/3 3 8"  # sorted by value: 8/3 < 3 < 8
    assert TASK.parse(TASK.render(state)) == state
    step = TASK.parse_action(state, "3 - 8/3")
    assert TASK.action_label(state, step) == "3-8/3"
    state = TASK.apply(state, step)
    step = TASK.parse_action(state, "8/(3-8/3)")
    state = TASK.apply(state, step)
    assert TASK.is_terminal(state)
    assert TASK.render(state) == "8/(3-8/3)"
    assert TASK.returns(state) == (1.0,)
    assert TASK.parse(TASK.render(state)) == state


def test_parse_action_errors() -> None:
    state = TASK.parse("24: 4 7 8 8")
    with pytest.raises(ParseError, match="does not combine"):
        TASK.parse_action(state, "5+6")
    with pytest.raises(ParseError, match="not a single"):
        TASK.parse_action(state, "8")
    with pytest.raises(ParseError, match="not a valid step"):
        TASK.parse_action(state, "8 +")
    assert TASK.parse_action(state, "8 - 4") in TASK.legal_actions(state)


# --- expressions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        ("4+8", "*", "8-7", "(4+8)*(8-7)"),
        ("3", "-", "8/3", "3-8/3"),
        ("8", "/", "3-8/3", "8/(3-8/3)"),
        ("1", "-", "2-3", "1-(2-3)"),
        ("1", "-", "2+3", "1-(2+3)"),
        ("1", "+", "2-3", "1+2-3"),
        ("1-2", "-", "3", "1-2-3"),
        ("2", "*", "3/4", "2*3/4"),
        ("2", "/", "3*4", "2/(3*4)"),
        ("2", "/", "3/4", "2/(3/4)"),
        ("2/3", "/", "4", "2/3/4"),
        ("2*3", "+", "4*5", "2*3+4*5"),
        ("(1+2)*3", "-", "4", "(1+2)*3-4"),
    ],
)
def test_minimal_parentheses(left: str, op: str, right: str, expected: str) -> None:
    assert g24.combine_text(left, op, right) == expected


_leaf = st.integers(min_value=1, max_value=13).map(lambda n: (str(n), Fraction(n)))


def _node(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.tuples(children, st.sampled_from("+-*/"), children)


@settings(max_examples=300, deadline=None)
@given(st.recursive(_leaf, _node, max_leaves=6))
def test_rendered_expressions_keep_their_value(tree) -> None:  # type: ignore[no-untyped-def]
    def build(t):  # type: ignore[no-untyped-def]
        if isinstance(t[1], Fraction):
            return t
        (lt, lv), op, (rt, rv) = build(t[0]), t[1], build(t[2])
        if op == "/" and rv == 0:
            return lt, lv
        value = {"+": lv + rv, "-": lv - rv, "*": lv * rv, "/": lv / rv if rv else lv}[op]
        return g24.combine_text(lt, op, rt), value

    text, value = build(tree)
    assert _evaluate(text)[0] == value


# --- actions and rollouts ----------------------------------------------------------------------


def _brute_keys(values: tuple[Fraction, ...]) -> set[tuple[Fraction, ...]]:
    keys = set()
    for i in range(len(values)):
        for j in range(len(values)):
            if i == j:
                continue
            rest = [values[k] for k in range(len(values)) if k not in (i, j)]
            a, b = values[i], values[j]
            results = [a + b, a - b, a * b] + ([a / b] if b else [])
            for v in results:
                keys.add(tuple(sorted([*rest, v])))
    return keys


def test_legal_actions_are_deduplicated_and_complete() -> None:
    # 2 2 2 2: every pair gives 4, 0 or 1 -> exactly three distinct next positions.
    assert len(TASK.legal_actions(TASK.parse("2 2 2 2"))) == 3
    for text in ["1 2 3 4", "4 7 8 8", "1 1 13 13", "24: 1-1 5 6", "24: 3-3 4 13"]:
        state = TASK.parse(text)
        keys = [TASK.key(TASK.apply(state, a)) for a in TASK.legal_actions(state)]
        assert len(keys) == len(set(keys))
        assert set(keys) == _brute_keys(TASK.key(state))


def test_rollout_ends_terminal_and_expression_is_consistent() -> None:
    rng = random.Random(3)
    for puzzle in rng.sample(g24.all_puzzles(), 200):
        state = TASK.parse(" ".join(map(str, puzzle)))
        returns, end = TASK.rollout(state, rng.random)
        assert TASK.is_terminal(end) and len(end) == 1
        assert returns == TASK.returns(end) and returns[0] in (0.0, 1.0)
        value, leaves = _evaluate(end[0][1])
        assert value == end[0][0] and sorted(leaves) == list(puzzle)
        if returns == (1.0,):
            assert g24.is_solvable(puzzle)


def test_rollout_takes_a_winning_last_step() -> None:
    state = TASK.parse("24: 8 3-8/3")  # two numbers left; only 8/(3-8/3) makes 24
    for u in (0.0, 0.3, 0.999):
        returns, end = TASK.rollout(state, lambda u=u: u)
        assert returns == (1.0,) and end[0][1] == "8/(3-8/3)"


# --- verify ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer", ["(4+7-8)*8", "8*(4+7-8)", " 8 * (4 - (8 - 7)) ", "(7-8+4)*8 = 24", "8*(4-(8-7))."]
)
def test_verify_accepts_correct_expressions(answer: str) -> None:
    verdict = TASK.verify(TASK.parse("4 7 8 8"), answer)
    assert verdict is not None and verdict.correct, verdict


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ("8*3", "uses 3 8 instead of 4 7 8 8"),
        ("(4+8)*(8-7)*2", "instead of"),
        ("4+7+8+8", "evaluates to 27, not 24"),
        ("4+7+", "not a valid"),
        ("-(4-7)*8*8", "unary"),
        ("4**2+8", "not allowed"),
        ("(4.0+7-8)*8", "not a whole number"),
        ("x*4+7+8", "not allowed"),
        ("abs(4-7)*8*8", "not allowed"),
        ("4/(8-8)*7", "division by zero"),
        ("4 7 8 8", "not a valid"),
        ("no solution", "solvable"),
    ],
)
def test_verify_rejects_with_a_named_problem(answer: str, problem: str) -> None:
    verdict = TASK.verify(TASK.parse("4 7 8 8"), answer)
    assert verdict is not None and not verdict.correct
    assert problem in verdict.detail, verdict.detail
    assert _evaluate(verdict.expected)[0] == 24


def test_verify_no_solution() -> None:
    verdict = TASK.verify(TASK.parse("1 1 1 1"), "No Solution")
    assert verdict is not None and verdict.correct and verdict.expected == "no solution"
    wrong = TASK.verify(TASK.parse("1 1 1 1"), "(1+1)*(1+1)")
    assert wrong is not None and not wrong.correct and "evaluates to 4" in wrong.detail


def test_verify_judges_the_original_puzzle_mid_game() -> None:
    state = TASK.apply(TASK.parse("3 3 8 8"), TASK.parse_action(TASK.parse("3 3 8 8"), "8/3"))
    verdict = TASK.verify(state, "8/(3-8/3)")
    assert verdict is not None and verdict.correct


def test_answer_of_a_finished_position() -> None:
    state = TASK.parse("8/(3-8/3)")
    assert TASK.answer(state) == "8/(3-8/3)"
    with pytest.raises(ValueError, match="4 numbers are left"):
        TASK.answer(TASK.parse("3 3 8 8"))
