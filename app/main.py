"""Arbor's entry point: a pure router over the pages in ../pages."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import alerts, auth, components, links, runtime
from app.runtime import ConfigError

PAGES = Path(__file__).resolve().parent.parent / "pages"

st.set_page_config(page_title="Arbor", page_icon="🌳", layout="wide")

try:
    settings = runtime.get_settings()
except ConfigError as exc:
    st.error(f"Arbor cannot start: the configuration is invalid.\n\n{components.md_escape(str(exc))}")
    st.stop()

# Nobody signed in: the sign-in page, then the run stops right after st.navigation (called so that
# a deep link such as /traces?trace=... survives signing in) without showing the page list.
access = auth.gate(settings)

page = st.navigation(
    {
        "Run": [
            st.Page(
                PAGES / "query.py",
                title="Query console",
                icon=":material/play_circle:",
                default=True,  # served at "/" (a default page has no url_path of its own)
            ),
        ],
        "Monitor": [
            st.Page(
                PAGES / "overview.py", title="Overview", icon=":material/monitoring:", url_path="overview"
            ),
            st.Page(PAGES / "traces.py", title="Traces", icon=":material/timeline:", url_path="traces"),
            st.Page(PAGES / "slos.py", title="SLOs", icon=":material/speed:", url_path="slos"),
            st.Page(
                PAGES / "golden.py", title="Golden traces", icon=":material/verified:", url_path="golden"
            ),
            st.Page(
                PAGES / "runbooks.py", title="Runbooks", icon=":material/menu_book:", url_path="runbooks"
            ),
        ],
        "Explore": [
            st.Page(
                PAGES / "mcts.py", title="MCTS explorer", icon=":material/account_tree:", url_path="mcts"
            ),
            st.Page(PAGES / "routing.py", title="Routing", icon=":material/alt_route:", url_path="routing"),
            st.Page(
                PAGES / "experiments.py",
                title="Experiments",
                icon=":material/science:",
                url_path="experiments",
            ),
        ],
    },
    position="sidebar" if access.signed_in else "hidden",
)
if not access.signed_in:
    st.stop()
components.exposure_banner(settings)
components.settings_sidebar(settings)
components.prometheus_sidebar(runtime.prometheus_status())
alerts.alert_sidebar()
# a link's parameters the page does not read, said once here for every page (app.links.PAGE_PARAMS);
# only for the page a session opens on (the link), not for parameters left over while navigating
if not st.session_state.get("link_params_checked"):
    st.session_state["link_params_checked"] = True
    components.link_warnings(links.unknown_params(page.url_path, st.query_params.to_dict()))
page.run()
