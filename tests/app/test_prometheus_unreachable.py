"""Prometheus configured but unreachable: every page still renders, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.shown import shown
from tests.observability.conftest import free_port

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
PAGES = sorted(p.name for p in (Path(__file__).resolve().parents[2] / "pages").glob("*.py"))


@pytest.fixture
def dead_url(monkeypatch, tmp_path) -> str:
    url = f"http://127.0.0.1:{free_port()}"  # bound a moment ago, then closed: nothing listens
    monkeypatch.setenv("ARBOR_PROMETHEUS_URL", url)
    yield url


def test_the_pages_are_the_ones_in_the_navigation():
    text = Path(MAIN).read_text()
    assert all(f'"{name}"' in text for name in PAGES), PAGES


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_a_warning(dead_url, page):
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page(f"../pages/{page}").run()
    assert not at.exception, at.exception
    warnings = [shown(w.value) for w in at.sidebar.warning]
    assert any(dead_url in w and "unreachable" in w for w in warnings), warnings
    assert at.title, "the page drew nothing"


def test_no_prometheus_configured_is_said_plainly(monkeypatch, tmp_path):
    monkeypatch.delenv("ARBOR_PROMETHEUS_URL", raising=False)
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert not at.sidebar.warning
    assert any("not configured" in c.value for c in at.sidebar.caption)
