"""The Canaries tab in a real browser: a canary recorded by the real runner (errors injected on
its canary arm) is opened from the tab, its timeline (chart and table) shows the rollback, and the
canary arm's link opens Traces filtered to that arm and the run's time range."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import running_console
from tests.engine.canary.helpers import simulate, write_spec

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def canary_console(tmp_path_factory):
    runtime = tmp_path_factory.mktemp("canary_runtime")
    spec_file = write_spec(runtime, "browser-faulty", "faults: {canary: 'error=0.3'}\n")
    report = simulate(runtime / "arbor.db", spec_file)  # the console's store (start_console's ARBOR_DB_PATH)
    assert report.status == "rolled_back"
    with running_console(runtime, {"ARBOR_AUTH": "none", "ARBOR_PROMETHEUS_URL": ""}) as url:
        yield url, report.run_id


def test_open_the_tab_see_the_timeline_follow_the_traces_link(canary_console, page):
    url, run_id = canary_console
    page.goto(f"{url}/experiments")
    page.get_by_role("heading", name="Experiments").first.wait_for(timeout=60_000)
    # the page sets its deep-link parameters (history.replaceState) while it renders: do not wait
    # for "navigations" after the click, wait for the tab's content instead
    expect(page.get_by_role("heading", name="Canary releases", include_hidden=True)).to_be_attached(
        timeout=60_000
    )
    page.get_by_role("tab", name="Canaries").click(no_wait_after=True, timeout=90_000)
    expect(page.get_by_role("heading", name="Canary releases")).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(rf"browser-faulty · run {run_id}: rolled_back at 0 %"))).to_be_visible(
        timeout=30_000
    )
    expect(page.get_by_text("Canary timeline (dashed red: threshold)")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Injected faults (a drill): canary: error=0.3")).to_be_visible()
    page.get_by_role("link", name="Canary requests").click(no_wait_after=True, timeout=90_000)
    page.wait_for_url(re.compile(r"/traces\?.*variant=canary"), timeout=60_000)
    assert f"correlation=canary-{run_id}" in page.url
    expect(page.get_by_text(re.compile(rf"correlation id canary-{run_id}"))).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name="Traces").first).to_be_visible(timeout=60_000)
