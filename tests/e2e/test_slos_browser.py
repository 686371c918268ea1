"""The SLO page in a real browser: open a deep link on a store with data, see the tiles, click
"Download review (Markdown)" and read the downloaded file, which is the review of that store;
download the HTML review and open it in Chromium with the network blocked: the charts render and
no request is attempted."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from engine.slo_report import build_report, render_markdown, report_json
from observability.slo.models import load_slos
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import ReadModel
from tests.app.test_slo_page import AS_OF, _fill
from tests.e2e.conftest import running_console

pytestmark = pytest.mark.e2e


def test_slo_page_downloads_the_review(tmp_path: Path, page) -> None:
    _fill(tmp_path / "arbor.db")  # 1000 served requests before AS_OF (see tests/app/test_slo_page.py)
    with running_console(tmp_path, {"ARBOR_AUTH": "none"}) as url:
        page.goto(f"{url}/slos?slo=latency&range=28d&as_of={int(AS_OF)}")
        button = page.get_by_role("button", name="Download review (Markdown)")
        button.wait_for(timeout=90_000)
        # the deep link chose the latency SLO: its section heading is on the page
        page.get_by_role("heading", name="Latency under 500 ms").wait_for(timeout=30_000)
        assert page.get_by_text("-400.00 %").count() >= 1  # the quality tile, in red
        with page.expect_download(timeout=30_000) as info:
            button.click()
        download = info.value
        text = Path(download.path()).read_text(encoding="utf-8")
    assert download.suggested_filename == "slo-review-20270115T0800.md"
    assert text.startswith("# SLO review")
    period = timedelta(days=28)
    expected = build_report(load_slos(), SqliteSLOSource(ReadModel(tmp_path / "arbor.db")), AS_OF, period)
    assert text == render_markdown(expected)


def test_slo_page_downloads_the_html_review_that_opens_offline(tmp_path: Path, page, browser) -> None:
    _fill(tmp_path / "arbor.db")
    with running_console(tmp_path, {"ARBOR_AUTH": "none"}) as url:
        page.goto(f"{url}/slos?slo=availability&range=28d&as_of={int(AS_OF)}")
        button = page.get_by_role("button", name="Download review (HTML)")
        button.wait_for(timeout=90_000)
        with page.expect_download(timeout=60_000) as info:
            button.click()
        download = info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
    assert download.suggested_filename == "slo-review-20270115T0800.html"
    text = saved.read_text(encoding="utf-8")
    embedded = text.split('<script type="application/json" id="review-data">', 1)[1].split("</script>", 1)[0]
    expected = build_report(
        load_slos(), SqliteSLOSource(ReadModel(tmp_path / "arbor.db")), AS_OF, timedelta(days=28)
    )
    assert json.loads(embedded) == report_json(expected)
    # open the downloaded file with every network request refused, and record any attempt
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    attempted: list[str] = []
    context.route("http://**", lambda route: (attempted.append(route.request.url), route.abort()))
    context.route("https://**", lambda route: (attempted.append(route.request.url), route.abort()))
    requests: list[str] = []
    offline = context.new_page()
    offline.on("request", lambda r: requests.append(r.url))
    try:
        offline.goto(saved.as_uri())
        offline.locator("#budget-availability svg.main-svg").first.wait_for(timeout=30_000)
        # every SLO with traffic has its two charts drawn as SVG by the inlined plotly.js
        for div in ("budget-availability", "burn-availability", "budget-latency", "burn-latency",
                    "budget-quality", "burn-quality"):  # fmt: skip
            assert offline.locator(f"#{div} svg.main-svg").count() >= 1, div
        assert offline.locator("#budget-availability .scatterlayer .trace").count() == 2  # real + ideal
        for name in ("Availability", "Latency under 500 ms", "Correct answers on verifiable tasks"):
            assert offline.get_by_role("heading", name=name).count() == 1
        assert offline.locator("table.episodes-summary").count() >= 1  # the page's replayed alerts
    finally:
        context.close()
    assert attempted == []
    assert [u for u in requests if not u.startswith("file://")] == []
