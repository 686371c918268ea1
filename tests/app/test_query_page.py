"""AppTest tests of the Query console (the console's default page), through the router."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import runtime
from engine import Engine
from engine.routing import GRURouter, RouterUnavailable
from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
FAST_BURN = "What should I do when the error budget fast-burn alert fires?"


@pytest.fixture
def app(monkeypatch, tmp_path) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception
    return at


def _run(
    at: AppTest, query: str, *, seed: int | None = 7, router: str = "rules", iterations: int = 600
) -> AppTest:
    at.text_area(key="query_text").set_value(query)
    at.number_input(key="query_seed").set_value(seed)
    at.number_input(key="query_iterations").set_value(iterations)
    at.selectbox(key="query_router").set_value(router)
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(shown(m.value) for m in at.metric if m.label == label)


def _markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_console_is_the_default_page(app):
    assert app.title[0].value == "Query console"
    assert any("Run query" in i.value for i in app.info)
    assert app.selectbox(key="query_task").value == "auto"


def test_game24_fractions_answer_is_verified(app):
    at = _run(app, "24: 3 3 8 8")
    # by hand: 8/3 = 2 2/3, 3 - 8/3 = 1/3, 8 / (1/3) = 24; no other expression makes 24 from 3 3 8 8
    assert [c.value for c in at.code] == ["8/(3-8/3)"]
    assert any("green-badge" in m and "correct" in m for m in _markdown(at))
    result = at.session_state["query_result"]
    assert (result.answer, result.verdict, result.seed) == ("8/(3-8/3)", "correct", 7)
    assert _metric(at, "Confidence") == "1.00"
    assert _metric(at, "Quality") == "1.00"
    # the routing chart: one bar per agent for every step, the chosen one labelled
    bars = _charts(at)[0]["data"]
    assert [b["name"] for b in bars] == ["hrm", "trm", "mcts"]
    chosen = {b["name"] for b in bars for t in b["text"] if t == "chosen"}
    assert chosen == {result.steps[0].agent}
    # the run is linkable with the seed it used
    assert at.query_params["seed"] == "7" and at.query_params["q"] == "24: 3 3 8 8"


def test_tictactoe_must_block(app):
    # X.O/.X./..O: O holds c1 and c3, so X must take c2 (X's own diagonal a1-b2-c3 is blocked)
    at = _run(app, "tictactoe: X.O/.X./..O")
    assert [c.value for c in at.code] == ["c2"]
    result = at.session_state["query_result"]
    assert (result.answer, result.verdict, result.answer_kind) == ("c2", "correct", "move")
    assert any("Move" in m for m in _markdown(at))


def test_malformed_position_is_a_message_not_a_traceback(app):
    at = _run(app, "tictactoe: XXXX/../O")
    assert not at.exception
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 1 and "invalid tictactoe position" in errors[0]
    assert at.session_state["query_errors"] == errors
    assert "query_result" not in at.session_state


def test_invalid_fields_get_one_error_each(app):
    at = _run(app, "   ")
    assert not at.exception
    assert [shown(e.value) for e in at.error] == ["Query: String should have at least 1 character"]


def test_rerun_with_the_same_seed_reproduces_the_run(app):
    # connect4 from 4453 runs several agents including an MCTS search, with a drawn seed
    at = _run(app, "connect4: 4453", seed=None, iterations=400)
    first = at.session_state["query_result"]
    assert len(first.steps) >= 2 and "mcts" in first.agents_used
    at.button(key="query_rerun").click().run()
    assert not at.exception
    second = at.session_state["query_result"]
    assert second.request_id != first.request_id  # it really ran again
    assert second.seed == first.seed
    assert second.answer == first.answer
    assert [s.agent for s in second.steps] == [s.agent for s in first.steps]
    assert [s.probabilities for s in second.steps] == [s.probabilities for s in first.steps]
    assert [s.features for s in second.steps] == [s.features for s in first.steps]
    assert second.mcts["root_value"] == first.mcts["root_value"]


def test_result_survives_reruns_from_other_widgets(app):
    at = _run(app, "24: 4 7 8 8")
    request_id = at.session_state["query_result"].request_id
    at.selectbox(key="query_task").set_value("connect4").run()
    assert at.session_state["query_result"].request_id == request_id
    assert at.code[0].value == at.session_state["query_result"].answer


def test_form_and_result_are_kept_across_pages(app):
    at = _run(app, "tictactoe: X.O/.X./..O", seed=11, router="rules")
    at.switch_page("../pages/routing.py").run()
    at.switch_page("../pages/query.py").run()
    assert not at.exception
    assert at.text_area(key="query_text").value == "tictactoe: X.O/.X./..O"
    assert at.number_input(key="query_seed").value == 11
    assert at.code[0].value == "c2"


def test_freeform_answer_is_labelled_extractive_with_unknown_quality(app):
    at = _run(app, FAST_BURN)
    result = at.session_state["query_result"]
    assert result.task == "freeform" and result.answer_kind == "extractive"
    assert any("Extractive answer quoted from the corpus" in m for m in _markdown(at))
    assert _metric(at, "Quality") == "unknown"
    labels = [m.label for m in at.metric]
    assert "Confidence (corpus support)" in labels and "Support" not in labels
    assert any("gray-badge" in m and "unknown" in m for m in _markdown(at))
    assert result.passages and any(e.label.startswith("Retrieved passages") for e in at.expander)


def test_unavailable_router_is_a_message(app, monkeypatch):
    def no_weights(cls, path=None):
        raise RouterUnavailable("no trained GRU weights at /nowhere/router_gru.npz")

    monkeypatch.setattr(GRURouter, "load", classmethod(no_weights))
    engine = Engine(runtime.get_settings())
    monkeypatch.setattr(runtime, "get_engine", lambda: engine)
    at = _run(app, "24: 4 7 8 8", router="gru")
    assert not at.exception
    assert [shown(e.value) for e in at.error] == [
        "The gru router is unavailable: no trained GRU weights at /nowhere/router_gru.npz"
    ]


def test_example_picker_fills_the_query(app):
    app.selectbox(key="query_task").set_value("tictactoe").run()
    example = app.selectbox(key="query_example")
    assert "O must block (c3)" in example.options
    example.set_value("O must block (c3)").run()
    assert app.text_area(key="query_text").value == "tictactoe: X.O/.X./..."
    app.selectbox(key="query_task").set_value("freeform").run()
    app.selectbox(key="query_example").set_value("UCB1").run()
    assert app.text_area(key="query_text").value == "How does UCB1 balance exploration and exploitation?"


def test_deep_link_prefills_the_form(monkeypatch, tmp_path):
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params.update({"q": "24: 4 7 8 8", "task": "game24", "seed": "5"})
    at.run()
    assert not at.exception
    assert at.text_area(key="query_text").value == "24: 4 7 8 8"
    assert at.selectbox(key="query_task").value == "game24"
    assert at.number_input(key="query_seed").value == 5
