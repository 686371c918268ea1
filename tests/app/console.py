"""Opening a console page in AppTest the way a reader does: the console's router (app/main.py)
first, then a page by its path, with query parameters, on fresh cached state."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def open_page(page: str, params: Mapping[str, str] | None = None) -> AppTest:
    """The console after switching to ``page`` (a path relative to app/, ``../pages/slos.py``)
    with the query parameters ``params``; the caches are cleared first, so that the store and
    settings of the calling test are read.  Fails the test when the page raised."""
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def open_console() -> AppTest:
    """The Query console (the router's first page) after its first run.  Fails the test when it raised."""
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def run_query(
    at: AppTest, query: str, *, seed: int | None, router: str = "rules", iterations: int | None = None
) -> AppTest:
    """Fill the Query console's form (``iterations`` None: the form's value) and press Run query.
    Fails the test when the page raised."""
    at.text_area(key="query_text").set_value(query)
    at.number_input(key="query_seed").set_value(seed)
    if iterations is not None:
        at.number_input(key="query_iterations").set_value(iterations)
    at.selectbox(key="query_router").set_value(router)
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.exception, at.exception
    return at
