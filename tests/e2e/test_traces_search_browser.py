"""The Traces page in a real browser: search the list by query text, open the one match by
selecting its row, and read its waterfall with self times and untraced rows."""

from __future__ import annotations

import re

import pytest

from tests.e2e.console import run_query

pytestmark = pytest.mark.e2e

QUERY = "24: 3 3 8 8"  # a Game of 24 no other browser test asks


def test_search_open_and_read_self_time_and_untraced_rows(console_url, page):
    run_query(page, console_url, QUERY, seed=11)
    caption = page.get_by_text(re.compile(r"request [0-9a-f]{32} · trace [0-9a-f]{32}")).inner_text()
    trace_id = re.search(r"trace ([0-9a-f]{32})", caption).group(1)

    page.goto(f"{console_url}/traces")
    page.get_by_role("heading", name="Traces", exact=True).wait_for(timeout=60_000)
    search = page.get_by_role("textbox", name="Query text")
    search.fill("3 3 8")
    search.press("Enter")
    page.get_by_text(re.compile(r"^1 matching trace\(s\), all shown")).wait_for(timeout=30_000)

    # select the only row: click its selection cell at the left of the grid's first data row
    grid = page.locator('[data-testid="stDataFrame"]:visible').first
    grid.wait_for(timeout=30_000)
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 17)
    page.get_by_role("heading", name=f"Trace {trace_id}").wait_for(timeout=60_000)

    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    labels = [t.strip() for t in chart.locator("g.annotation-text-g text").all_text_contents()]
    assert labels[0] == "query", labels
    assert "route · step 1" in labels and any(x.startswith("agent.") and x.endswith("step 1") for x in labels)
    assert chart.locator("g.barlayer path").count() == len(labels)  # gap rows are bars too
    bar_texts = chart.locator("g.barlayer text").all_text_contents()
    assert any(re.search(r"ms · self [\d.,]+", t) for t in bar_texts), bar_texts  # the root's self time
    page.get_by_text(re.compile("Untraced rows")).first.wait_for(timeout=10_000)
    # the span tree has the self time and untraced columns
    page.get_by_role("heading", name="Span tree").wait_for(timeout=10_000)
