"""The Query console's trace link in a real browser: run a query, follow "Open trace", see the
waterfall of that run on the Traces page."""

from __future__ import annotations

import re

import pytest

from tests.e2e.console import run_query

pytestmark = pytest.mark.e2e


def test_query_console_run_links_to_its_trace_waterfall(console_url, page):
    run_query(page, console_url, "connect4: 4453", seed=3)
    caption = page.get_by_text(re.compile(r"request [0-9a-f]{32} · trace [0-9a-f]{32}")).inner_text()
    trace_id = re.search(r"trace ([0-9a-f]{32})", caption).group(1)

    page.get_by_role("link", name="Open trace").click()
    page.get_by_role("heading", name=f"Trace {trace_id}").wait_for(timeout=60_000)
    assert f"trace={trace_id}" in page.url and "/traces" in page.url
    # the waterfall: one horizontal bar per span, labelled query ... synthesise in tree order
    chart = page.locator(".js-plotly-plot").first
    chart.wait_for(timeout=30_000)
    labels = [t.strip() for t in chart.locator("g.annotation-text-g text").all_text_contents()]
    assert labels[0] == "query" and labels[-1] == "synthesise", labels
    assert any(label.startswith("agent.") for label in labels)
    assert chart.locator("g.barlayer path").count() == len(labels)
    # the rest of the trace is there too
    page.get_by_role("heading", name="Span tree").wait_for(timeout=10_000)
    page.get_by_role("heading", name="Routing decisions").wait_for(timeout=10_000)
