"""The Query console in a real browser: pick a fixed single-agent router and see one step."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_fixed_router_runs_one_agent_once(console_url, page):
    page.goto(console_url)
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    # connect4 4455: X wins by force with column 3 or 6 (c1 or f1 makes an open three on row 1)
    page.get_by_role("textbox", name="Query").fill("connect4: 4455")
    page.get_by_role("spinbutton", name="Seed").fill("3")
    page.get_by_test_id("stSelectbox").filter(has_text="Router").click()
    page.get_by_role("option", name="fixed:mcts (baseline)").click()
    page.get_by_role("button", name="Run query").click()
    page.get_by_role("heading", name="Answer").wait_for(timeout=60_000)
    assert page.get_by_test_id("stCode").first.inner_text().strip() in {"3", "6"}
    body = page.locator("body").inner_text()
    assert "router fixed:mcts" in body
    assert "Step 1 · mcts" in body and "Step 2" not in body  # one step, that agent
