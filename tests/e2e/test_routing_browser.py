"""The Routing page's workload comparison in a real browser: run every router over a one-position-
per-task workload, read the table and the Pareto chart, see the saved result after a reload, and
stop a large comparison part-way."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import running_console

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def routing_console(tmp_path_factory):
    runtime = tmp_path_factory.mktemp("routing_runtime")
    with running_console(runtime, {"ARBOR_AUTH": "none"}) as url:
        yield url, runtime


def _fill(page, name: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=name, exact=True).last
    box.wait_for(timeout=120_000)  # widgets render after the page's text on a busy machine
    box.fill(str(value))
    box.press("Enter")


def test_compare_routers_then_reload_then_stop(routing_console, page):
    url, runtime = routing_console
    page.set_viewport_size({"width": 1400, "height": 4000})
    page.goto(f"{url}/routing")
    page.get_by_role("heading", name="Compare routers over a workload").wait_for(timeout=60_000)
    expect(page.get_by_text("No comparison yet")).to_be_visible()
    _fill(page, "Positions per task", 1)
    _fill(page, "MCTS iterations", 50)
    page.get_by_role("button", name="Run the comparison").click()
    expect(page.get_by_text(re.compile(r"Result of this run: 3 positions"))).to_be_visible(timeout=180_000)
    expect(page.get_by_text("Correctness vs p95 latency · all tasks")).to_be_visible()
    expect(
        page.get_by_text(re.compile(r"The default router \(\S+\) is (on|not on) the Pareto front"))
    ).to_be_visible()

    saved = json.loads((runtime / "router_evaluation.json").read_text())
    routers = [r["router"] for r in saved["evaluation"]["overall"]]
    assert routers == ["rules", "gru", "hybrid", "fixed:hrm", "fixed:trm", "fixed:mcts"]
    assert all(r["n"] == 3 for r in saved["evaluation"]["overall"])

    page.reload()
    expect(page.get_by_text(re.compile(r"Result of the last saved comparison: 3 positions"))).to_be_visible(
        timeout=60_000
    )

    _fill(page, "Positions per task", 50)
    _fill(page, "MCTS iterations", 5000)
    page.get_by_role("button", name="Run the comparison").click()
    stop = page.get_by_role("button", name="Stop")
    stop.wait_for(timeout=60_000)
    expect(page.get_by_text(re.compile(r"\d+ of 900 runs"))).to_be_visible(timeout=30_000)
    stop.click()
    expect(page.get_by_text(re.compile(r"Stopped early"))).to_be_visible(timeout=180_000)
    expect(page.get_by_text(re.compile(r"Result of this run: \d+ positions"))).to_be_visible()
