"""The Query console in a real browser: type a query, run it, see the answer and the routing chart."""

from __future__ import annotations

import ast
import operator
from collections import Counter
from fractions import Fraction

import pytest

pytestmark = pytest.mark.e2e

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _evaluate(expression: str) -> tuple[Fraction, list[int]]:
    """Exact value of an arithmetic expression and the numbers it uses (an oracle for the 24 game)."""
    used: list[int] = []

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            used.append(node.value)
            return Fraction(node.value)
        raise ValueError(f"not + - * / over whole numbers: {expression!r}")

    return ev(ast.parse(expression, mode="eval").body), used


def test_query_shows_the_answer_and_the_routing_chart(console_url, page):
    page.goto(console_url)
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    query = page.get_by_role("textbox", name="Query")
    query.fill("24: 4 7 8 8")
    page.get_by_role("spinbutton", name="Seed").fill("3")
    page.get_by_role("button", name="Run query").click()

    page.get_by_role("heading", name="Answer").wait_for(timeout=60_000)
    answer = page.get_by_test_id("stCode").first.inner_text().strip()
    value, used = _evaluate(answer)
    assert value == 24 and Counter(used) == Counter([4, 7, 8, 8]), answer
    # the verdict badge (icon name + label): 4 7 8 8 has solutions, and the answer above is one
    assert page.locator("span.stMarkdownBadge").first.inner_text().split()[-1] == "correct"

    # the router's probabilities: a plotly bar chart with a bar per agent and step
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    assert chart.locator("g.barlayer path").count() >= 3
    assert chart.locator("text", has_text="chosen").count() >= 1
    # the run is linkable: the URL now carries its seed
    assert "seed=3" in page.url
