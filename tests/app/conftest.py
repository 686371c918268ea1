"""Every AppTest test gets a fresh console process state: the cached settings, engine, store
and Prometheus source (``st.cache_resource``) and cached reads (``st.cache_data``) are cleared
before and after it, so that each test's ARBOR_* variables (its own database) take effect."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import streamlit as st


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches() -> Iterator[None]:
    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()
