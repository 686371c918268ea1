"""The Golden traces page in a real browser: run the suite from the page (a temp suite of three
goldens, one with a tampered answer), see the run's counts, the regression named with its first
divergence, and the diff's deep link in the URL; a reload of that link shows the same diff."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import ROOT, running_console

pytestmark = pytest.mark.e2e

SHIPPED = ROOT / "data" / "golden"


@pytest.fixture(scope="module")
def golden_console(tmp_path_factory) -> tuple[str, str]:
    """A console whose suite (ARBOR_GOLDEN_DIR) holds two shipped goldens and a copy of a third
    whose answer was changed by hand; yields (URL, the first divergence that copy must report)."""
    runtime = tmp_path_factory.mktemp("golden_runtime")
    suite = runtime / "golden"
    suite.mkdir()
    for name in ("game24-solvable-rules", "tictactoe-win-rules"):
        shutil.copy(SHIPPED / f"{name}.json", suite)
    data = json.loads((SHIPPED / "connect4-win-rules.json").read_text(encoding="utf-8"))
    real = data["answer"]
    data["answer"] = "1" if real != "1" else "2"
    Path(suite / "tampered-connect4.json").write_text(json.dumps(data), encoding="utf-8")
    expected = f"answer: expected {data['answer']}, got {real}"
    with running_console(runtime, {"ARBOR_AUTH": "none", "ARBOR_GOLDEN_DIR": str(suite)}) as url:
        yield url, expected


def test_run_the_suite_from_the_page_and_open_the_regression(golden_console, page):
    url, expected = golden_console
    page.goto(f"{url}/golden")
    page.get_by_role("heading", name="Golden traces").wait_for(timeout=60_000)
    expect(page.get_by_text("No suite run is recorded yet")).to_be_visible(timeout=30_000)

    run = page.get_by_role("button", name="Run the suite")
    run.wait_for(timeout=60_000)
    run.click()
    summary = page.get_by_text(re.compile(r"2 passed, 1 regression\(s\), 0 error\(s\) in [0-9.]+ s"))
    expect(summary).to_be_visible(timeout=120_000)

    # the diff opens on the regression, names its first divergence and keeps it in the URL
    expect(page.get_by_role("heading", name="tampered-connect4")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(f"First divergence: {expected}")).to_be_visible()
    page.wait_for_url(re.compile(r"/golden\?trace=tampered-connect4$"), timeout=30_000)
    expect(page.get_by_text("No suite run is recorded yet")).to_have_count(0)

    # the deep link, reloaded, shows the recorded run's diff
    page.goto(f"{url}/golden?trace=game24-solvable-rules")
    expect(page.get_by_role("heading", name="game24-solvable-rules")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("The replay matched its golden")).to_be_visible(timeout=30_000)
    page.get_by_role("link", name="Open the replay's trace").click()
    page.wait_for_url(re.compile(r"/traces\?trace=[0-9a-f]{32}"), timeout=60_000)
    expect(page.get_by_role("heading", name="Span tree")).to_be_visible(timeout=60_000)
