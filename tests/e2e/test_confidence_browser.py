"""The confidence rule in a real browser: a connect-four run whose TRM step repeats MCTS's move
shows a final figure equal to the rule on its steps, the arithmetic, and the rule itself."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.e2e


def test_query_shows_how_the_confidence_follows_from_the_steps(console_url, page):
    # a deep link fills the form: empty connect-four board, seed 2, rules router, 1000 iterations
    page.goto(f"{console_url}/?q=connect4%3A%20&task=connect4&seed=2&router=rules&iterations=1000")
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    page.get_by_role("button", name="Run query").click()
    page.get_by_role("heading", name="Answer").wait_for(timeout=120_000)

    captions = page.get_by_test_id("stCaptionContainer")
    text = ""
    for _ in range(120):  # the page may still re-render after the run: poll its captions
        text = next((t for t in captions.all_inner_texts() if "follows from the steps:" in t), "")
        if text:
            break
        page.wait_for_timeout(1000)
    # "How X follows from the steps: X = agreement A × combined C; ... not counted ...: trm (step 3)"
    m = re.search(
        r"How (\d\.\d\d) follows from the steps: (\d\.\d\d) = agreement (\d\.\d\d) × combined (\d\.\d\d)",
        text,
    )
    assert m, text
    shown, again, a, c = m.groups()
    assert shown == again
    assert abs(float(a) * float(c) - float(shown)) <= 0.01  # the product of the rounded terms
    assert "not counted" in text and "trm (step 3)" in text
    metric = page.get_by_test_id("stMetric").filter(has_text="Confidence").first
    assert metric.get_by_test_id("stMetricValue").inner_text().strip() == shown

    page.get_by_text("The confidence rule").click()
    page.get_by_text(re.compile(r"Verified \(rules-checked or proven\) answer: 1\.0")).wait_for(
        timeout=10_000
    )
