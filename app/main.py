"""Arbor's entry point: a pure router over the pages in ../pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import components, services
from engine.config import ConfigError

PAGES = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="Arbor", page_icon="🌳", layout="wide")

try:
    settings = services.get_settings()
except ConfigError as exc:
    st.error(f"Arbor cannot start: the configuration is invalid.\n\n{exc}")
    st.stop()

page = st.navigation(
    {
        "Explore": [
            st.Page(
                PAGES / "mcts.py",
                title="MCTS explorer",
                icon=":material/account_tree:",
                url_path="mcts",
                default=True,
            ),
        ],
    }
)
components.settings_sidebar(settings)
page.run()
