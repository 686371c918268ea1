"""The Experiments page in a real browser: run an experiment from the page (a temp spec of two
MCTS budgets), see the run's summary, then the results table, the decision and both charts on a
reload of the page's deep link, and follow a variant's link to its requests on Traces."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.app.test_experiments_page import EXP, _spec_text
from tests.e2e.conftest import running_console

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def experiments_console(tmp_path_factory):
    runtime = tmp_path_factory.mktemp("experiments_runtime")
    specs = runtime / "experiments"
    specs.mkdir()
    (specs / f"{EXP}.yaml").write_text(_spec_text(), encoding="utf-8")
    with running_console(runtime, {"ARBOR_AUTH": "none", "ARBOR_EXPERIMENTS_DIR": str(specs)}) as url:
        yield url


def test_run_then_results_decision_and_variant_link(experiments_console, page):
    url = experiments_console
    page.goto(f"{url}/experiments?experiment={EXP}")
    page.get_by_role("heading", name="Experiments").wait_for(timeout=60_000)
    units = page.get_by_role("spinbutton", name="Units")
    units.fill("6")
    units.press("Enter")
    page.get_by_role("button", name="Run the experiment").click()
    expect(page.get_by_text(re.compile(r"6 of 6 units complete: 12 requests sent"))).to_be_visible(
        timeout=120_000
    )

    page.goto(f"{url}/experiments?experiment={EXP}")
    expect(page.get_by_role("heading", name="Decision")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Relative lift against the baseline (CI)")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Cumulative lift on latency")).to_be_visible()
    expect(page.get_by_role("button", name="Report (Markdown)")).to_be_visible()

    page.get_by_role("link", name="big").click()
    page.wait_for_url(re.compile(rf"/traces\?variant=big&experiment={EXP}$"), timeout=30_000)
    # the link names this experiment: another experiment's "big" is not listed
    expect(page.get_by_text(re.compile(rf"variant big · experiment {EXP}"))).to_be_visible(timeout=60_000)
