"""Runbooks: what to do when an alert fires. Lists the corpus' runbooks and shows one, opened by
name (``/runbooks?name=runbook-error-budget-fast-burn``) from the SLO page's alerts."""

from __future__ import annotations

import streamlit as st

from app import components, runbooks

PICK = "runbooks_pick"


def _picked() -> None:
    """The selectbox's callback: keep the URL a link to the runbook shown."""
    name = st.session_state.get(PICK)
    if name is None:
        st.query_params.pop("name", None)
    else:
        st.query_params["name"] = name
    st.session_state["runbooks_link"] = name


st.title("Runbooks")
st.caption(
    "What to do when an alert fires, step by step. The SLOs page links each alert to its runbook; "
    "the files are `data/corpus/runbook-*.md` (the offline answers quote them too)."
)
items = runbooks.list_runbooks()
if not items:
    st.info(f"No runbooks found in {components.plain(str(runbooks.CORPUS_DIR))}.")
    st.stop()
titles = {info.name: info.title for info in items}

asked = st.query_params.get("name")
known, warnings = runbooks.parse_runbook_link(st.query_params, list(titles))
if asked is not None and asked != st.session_state.get("runbooks_link"):
    st.session_state["runbooks_link"] = asked  # a new link: open what it names
    st.session_state[PICK] = known
components.link_warnings(warnings)

pick = st.selectbox(
    "Runbook",
    list(titles),
    format_func=titles.get,
    index=None,
    placeholder="Choose a runbook",
    key=PICK,
    on_change=_picked,
)
if pick is None:
    st.markdown(
        "\n".join(f"- [{components.plain(info.title)}]({info.url}) — `{info.name}`" for info in items)
    )
    st.stop()

book = runbooks.find_runbook(pick)
if isinstance(book, str):
    st.warning(components.plain(book))
    st.stop()
st.caption(f"`data/corpus/{book.info.name}.md` · shown without images or HTML; links open only when clicked.")
with st.container(border=True):
    components.safe_markdown(book.text)
