"""The MCTS explorer in a real browser: run a search, see the tree chart."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e
TALL = {"width": 1400, "height": 3000}


def test_search_draws_the_tree_and_judges_the_answer(console_url, page):
    page.set_viewport_size(TALL)  # charts below the fold are mounted only when scrolled to
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


def test_a_solved_draw_reads_as_proven_and_the_scrubber_moves_every_chart(console_url, page):
    page.set_viewport_size(TALL)
    # X.O/.X./..O: X must block c2, then the game is a draw (tic-tac-toe minimax: value 0); with seed 7
    # the solver proves it at iteration 51 although the rollouts average +0.27 there.
    page.goto(f"{console_url}/mcts?task=tictactoe&position=X.O/.X./..O&seed=7&iterations=1000")
    page.get_by_role("heading", name="MCTS explorer").wait_for(timeout=60_000)
    expect(page.get_by_role("textbox", name="Position")).to_have_value("X.O/.X./..O", timeout=30_000)
    every = page.get_by_role("spinbutton", name="Snapshot every")
    every.fill("10")
    every.press("Tab")
    page.get_by_role("button", name="Run search").click()
    page.get_by_role("heading", name="Nodes at iteration 51").wait_for(timeout=60_000)
    root_value = page.get_by_test_id("stMetric").filter(has_text="Root value")
    expect(root_value).to_contain_text("+0.000", timeout=30_000)
    expect(root_value).to_contain_text("proven draw")
    expect(page.get_by_text("The search stopped early at iteration 51 of 1,000")).to_be_visible()
    actions = page.locator(".js-plotly-plot").filter(has_text="root actions by visits")
    expect(actions).to_contain_text("iteration 51")
    expect(actions).to_contain_text("proven loss")  # b3 and the other non-blocks lose
    # scrub to the first snapshot with the keyboard: the slider, the table and the charts follow
    page.get_by_role("slider").first.focus()
    page.keyboard.press("Home")
    page.get_by_role("heading", name="Nodes at iteration 10").wait_for(timeout=30_000)
    expect(actions).to_contain_text("iteration 10")
    expect(page.locator(".js-plotly-plot").filter(has_text="root value over iterations")).to_contain_text(
        "up to iteration 10"
    )
