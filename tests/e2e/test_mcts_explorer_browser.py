"""The MCTS explorer in a real browser: run a search, see the tree chart."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_search_draws_the_tree_and_judges_the_answer(console_url, page):
    page.goto(f"{console_url}/mcts?task=tictactoe&position=X.O/.X./..O&seed=3&iterations=800")
    page.get_by_role("heading", name="MCTS explorer").wait_for(timeout=60_000)
    position = page.get_by_role("textbox", name="Position")
    expect(position).to_have_value("X.O/.X./..O", timeout=30_000)  # the link's value, once rendered
    page.get_by_role("button", name="Run search").click()
    page.get_by_role("heading", name="Tree").wait_for(timeout=60_000)
    # the tree chart is a plotly graph with node markers drawn as SVG points
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    assert chart.locator("path.point").count() > 5
    # c2 is the only move that stops O's c-column (worked out by hand)
    page.get_by_text("is correct by ground truth").wait_for(timeout=10_000)
    assert "c2" in page.get_by_test_id("stMetricValue").first.inner_text()
    # the run is linkable: the URL now carries the seed used
    assert "seed=3" in page.url
