"""Every AppTest test gets its own database (``ARBOR_DB_PATH`` in its tmp_path), no metrics
exporter (``ARBOR_METRICS_PORT=0``) and a fresh console process state: the cached settings,
engine, store and Prometheus source (``st.cache_resource``) and cached reads (``st.cache_data``)
are cleared before and after it, so that each test's ARBOR_* variables take effect.  A test may
set other variables (or another database) with monkeypatch before it starts the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st


@pytest.fixture(autouse=True)
def _fresh_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("ARBOR_DB_PATH", str(tmp_path / "arbor.db"))
    monkeypatch.setenv("ARBOR_METRICS_PORT", "0")
    monkeypatch.setenv("ARBOR_AUTH", "none")  # a test of the sign-in gate sets its own mode
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()
