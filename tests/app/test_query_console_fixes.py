"""The Query console's fixes (issue 16, item 5): a rejected query clears the previous answer; a
freeform answer is rendered with its ``[n]`` citations listed as doc § section (plain text) and
nothing in it can load or open anything; "agents used" and the step timeline are never cut short.

Oracles: the engine's own QueryResult (its passages, numbered from 1 as the prompt numbers them;
its steps' routing reasons) and hostile text written here by hand.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.console import open_console, run_query
from tests.app.shown import shown

FAST_BURN = "What should I do when the error budget fast-burn alert fires?"
HOSTILE = (
    "Fix it ![beacon](http://127.0.0.1:9/x.png) now <img src=http://127.0.0.1:9/y.png> then "
    "[click](javascript:alert(1)), ![r] and [ref link][r] or www.example.org [1] [9]\n\n[r]: http://127.0.0.1:9/r.png"
)


@pytest.fixture
def app() -> AppTest:
    return open_console()


def _run(at: AppTest, query: str, *, seed: int | None = 7, iterations: int = 200) -> AppTest:
    return run_query(at, query, seed=seed, iterations=iterations)


def _has_answer(at: AppTest) -> bool:
    return any(s.value == "Answer" for s in at.subheader)


def test_a_rejected_query_clears_the_previous_answer(app):
    at = _run(app, "24: 3 3 8 8")
    assert _has_answer(at) and at.session_state["query_result"].answer == "8/(3-8/3)"
    # rejected by validation (only whitespace): the error shows, the old answer is gone
    at = _run(at, "   ")
    assert [shown(e.value) for e in at.error] == ["Query: String should have at least 1 character"]
    assert not _has_answer(at) and "query_result" not in at.session_state
    assert [c.value for c in at.code] == []  # the old "8/(3-8/3)" is not shown
    # answered again, then rejected by the engine (X has already won): the same
    at = _run(at, "24: 3 3 8 8")
    assert _has_answer(at)
    at = _run(at, "tictactoe: XXX/OO./...")
    assert any("already over" in shown(e.value) for e in at.error)
    assert not _has_answer(at) and "query_result" not in at.session_state


def _sources(at: AppTest) -> list[str]:
    (block,) = [shown(m.value) for m in at.markdown if m.value.startswith("**Sources**")]
    return [line.removeprefix("- ") for line in block.splitlines()[2:]]


def test_freeform_citations_are_listed_as_doc_and_section(app):
    at = _run(app, FAST_BURN)
    result = at.session_state["query_result"]
    assert result.answer_kind == "extractive" and result.passages
    cited = list(dict.fromkeys(int(n) for n in re.findall(r"\[(\d+)\]", result.answer)))
    assert cited, result.answer
    expected = []
    for n in cited:
        p = result.passages[n - 1]  # the prompt numbers the retrieved passages from 1
        expected.append(f"**[{n}]** {p.doc} § {p.section} · {p.title}")
    assert _sources(at) == expected
    assert any("burn-rate-alerting §" in line for line in _sources(at))
    # the answer keeps its citations as text
    (answer,) = [m.value for m in at.markdown if f"[{cited[0]}]" in m.value and "Sources" not in m.value]
    assert f"[{cited[0]}]" in answer


def test_hostile_answer_text_is_rendered_inert(app):
    at = _run(app, FAST_BURN)
    result = at.session_state["query_result"]
    at.session_state["query_result"] = dataclasses.replace(result, answer=HOSTILE)
    at.run()
    assert not at.exception
    (answer,) = [m.value for m in at.markdown if "Fix it" in m.value]
    assert not re.search(r"(?<!\\)!\[", answer)  # no image can be parsed
    assert "<img" not in answer and "<" not in answer.replace("\\<", "")
    assert not re.search(r"(?<!\\)\]\(", answer)  # no inline link
    assert not re.search(r"(?<!\\)\]\[", answer)  # no reference link
    assert "http://" not in answer and "www." not in answer  # no address GFM would link by itself
    text = shown(answer)
    assert "[image removed: beacon]" in text and "click (javascript:alert(1))" in text
    assert "ref link" in text and "www.example.org" in text
    assert _sources(at) == [
        f"**[1]** {result.passages[0].doc} § {result.passages[0].section} · {result.passages[0].title}",
        f"**[9]** not one of the {len(result.passages)} retrieved passages",
    ]


def test_agents_used_and_the_timeline_are_shown_whole(app):
    at = _run(app, "connect4: 4453", iterations=300)
    result = at.session_state["query_result"]
    assert len(result.agents_used) >= 2, result.agents_used
    assert "Agents used" not in [m.label for m in at.metric]  # a metric would cut it with "…"
    assert f"**{' → '.join(result.agents_used)}**" in [shown(m.value) for m in at.markdown]
    (table,) = at.table
    frame = table.value
    assert [shown(r) for r in frame["routing"]] == [s.reason for s in result.steps]
    assert [shown(a) for a in frame["agent"]] == [s.agent for s in result.steps]
    assert [float(shown(c)) for c in frame["confidence"]] == [round(s.confidence, 2) for s in result.steps]


def _live_connect4_script() -> None:
    """A live connect-four search drawn by the console's LiveRun (the view is not cleared)."""
    import streamlit as st

    from app import components
    from engine import Engine, QueryRequest
    from engine.config import load_settings

    engine = Engine(load_settings(telemetry="off", metrics_port=0))
    request = QueryRequest(query="connect4: 4453", seed=3, mcts_iterations=200, router="fixed:mcts")
    live = components.LiveRun(200, (-1.0, 1.0), task="connect4", min_interval_s=0.0)
    for event in engine.stream(request, live=True):
        live(event)
    st.session_state["labels"] = sorted(
        {n.label for snap in live.snapshots.values() for n in snap.nodes if n.parent >= 0}
    )
    engine.close()


def test_the_live_connect_four_tree_names_its_columns() -> None:
    import json

    at = AppTest.from_function(_live_connect4_script, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    moves = at.session_state["labels"]  # the engine's bare column numbers
    assert moves and all(m.isdigit() for m in moves)
    shown_labels = set()
    for chart in at.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec)["data"]:
            shown_labels |= {t for t in trace.get("text") or () if isinstance(t, str) and t}
    # every move the live tree labels reads as a connect-four column (c1..c7), as on the explorer
    tree_labels = {t for t in shown_labels if t == "root" or t[1:].isdigit()}
    assert "root" in tree_labels and tree_labels - {"root"}
    assert all(t.startswith("c") for t in tree_labels - {"root"}), tree_labels
    assert {t[1:] for t in tree_labels - {"root"}} <= set(moves)


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("query_iterations", 999_999, "MCTS iterations\\: Input should be less than or equal to 10000"),
        ("query_max_steps", 0, "Max steps\\: Input should be greater than or equal to 1"),
    ],
)
def test_an_out_of_range_form_value_is_refused_by_name_not_replaced(app, key, value, field):
    # The form's inputs have no browser-side bounds, which would keep the typed value out of the
    # form and run the query with the previous one: the request model refuses it by name.
    at = _run(app, "24: 4 7 8 8")
    assert _has_answer(at)
    at.number_input(key=key).set_value(value)
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert field in errors and not _has_answer(at), errors
