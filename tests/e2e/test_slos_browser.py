"""The SLO page in a real browser: open a deep link on a store with data, see the tiles, click
"Download review (Markdown)" and read the downloaded file, which is the review of that store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.slo_report import build_report, render_markdown
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
