"""The Overview in a real browser: a query run on the Query console shows up in the tiles and charts."""

from __future__ import annotations

import time

import pytest

from tests.e2e.console import run_query

pytestmark = pytest.mark.e2e


def _requests_tile(page) -> int:
    """The Requests tile's value, 0 while the store is empty (the page then shows "No data yet")."""
    page.get_by_role("heading", name="Overview").wait_for(timeout=60_000)
    tile = page.get_by_test_id("stMetric").filter(has_text="Requests").first
    empty = page.get_by_text("No data yet")
    tile.or_(empty).first.wait_for(timeout=60_000)
    if empty.count():
        return 0
    return int(tile.get_by_test_id("stMetricValue").inner_text().replace(",", ""))


def test_overview_counts_a_new_query_and_draws_charts(console_url, page):
    page.goto(f"{console_url}/overview")
    before = _requests_tile(page)

    run_query(page, console_url, "connect4: 4453", seed=5)

    # the page's figures are cached for a few seconds: reload until the new request is counted
    deadline = time.monotonic() + 60
    while True:
        page.goto(f"{console_url}/overview")
        after = _requests_tile(page)
        if after != before or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert after == before + 1
    labels = page.get_by_test_id("stMetricLabel").all_inner_texts()
    for label in ("Request rate", "Error rate", "Latency p95", "Tokens", "Cost", "MCTS iterations"):
        assert label in labels
    assert page.get_by_text("SQLite store at").count() == 1
    # request rate, error rate, latency p50/p95/p99 (lines), agent mix (bars): four plotly charts
    page.locator(".js-plotly-plot").nth(3).wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == 4
    traffic = page.locator(".js-plotly-plot", has_text="request rate (req/min)").first
    assert traffic.locator("g.scatterlayer g.trace").count() == 2  # requests, errors
    assert traffic.locator("g.barlayer path").count() == 0  # no bars over time
    latency = page.locator(".js-plotly-plot", has_text="latency p50 / p95 / p99").first
    assert latency.locator("g.scatterlayer g.trace").count() == 3
    assert latency.locator("g.scatterlayer path.point").count() >= 3  # the new request's bucket, drawn
    agents = page.locator(".js-plotly-plot", has_text="agent mix").first
    assert agents.locator("g.barlayer path").count() >= 1
