"""The Query console and the Traces page say when a fallback LLM provider answered, and a provider
without its API key is a configuration error on the page (no fallback, no traceback).

The OpenAI provider points at a local server answering HTTP 500 with a markdown-looking error
message: the page must show it as plain text (``st.text``), never render it as markdown.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import runtime
from tests.app.shown import shown_all
from tests.engine.llm.helpers import SECRET, Reply, ScriptedServer

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
TRACES = "../pages/traces.py"
QUERY = "What should I do when the error budget fast-burn alert fires?"
HOSTILE = "**bold** [click](http://evil.test) <b>x</b>"


@pytest.fixture
def server():
    srv = ScriptedServer()
    srv.default = Reply(500, {"error": {"message": HOSTILE}})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fresh(monkeypatch):
    for name in ("ARBOR_OPENAI_API_KEY", "ARBOR_LLM_PROVIDER", "ARBOR_OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runtime.get_settings.clear()
    runtime.get_engine.clear()
    yield
    runtime.get_settings.clear()
    runtime.get_engine.clear()


def _run_openai(at: AppTest) -> AppTest:
    at.text_area(key="query_text").set_value(QUERY)
    at.number_input(key="query_seed").set_value(3)
    at.selectbox(key="query_router").set_value("rules")
    at.selectbox(key="query_provider").set_value("openai")
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.exception, at.exception
    return at


def _plain_texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def test_fallback_answer_is_explained_on_the_console_and_the_trace(server, fresh, monkeypatch):
    monkeypatch.setenv("ARBOR_OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("ARBOR_OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("ARBOR_LLM_MAX_ATTEMPTS", "1")
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    _run_openai(at)
    result = at.session_state["query_result"]
    assert (result.provider, result.fallback_from) == ("offline", "openai")
    expected_start = (
        "Answered by the offline fallback after openai failed: ProviderUnavailable: openai: HTTP 500"
    )
    (note,) = [t for t in _plain_texts(at) if t.startswith("Answered by")]
    assert note.startswith(expected_start) and note.endswith(HOSTILE)  # verbatim, as plain text
    assert any("fallback provider answered" in w.value for w in at.warning)
    assert not any("evil.test" in m.value for m in at.markdown)
    assert SECRET not in note

    runtime.get_store().flush()
    at.query_params.clear()
    at.query_params["trace"] = result.trace_id
    at.switch_page(TRACES).run()
    assert not at.exception, at.exception
    (note,) = [t for t in _plain_texts(at) if t.startswith("Answered by")]
    assert note.startswith(expected_start) and HOSTILE in note
    assert any("fallback provider answered" in w.value for w in at.warning)


def test_provider_without_key_is_a_configuration_error_on_the_page(fresh):
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    _run_openai(at)
    errors = shown_all(at.error)
    assert len(errors) == 1 and "Configuration error" in errors[0] and "ARBOR_OPENAI_API_KEY" in errors[0]
    assert "query_result" not in at.session_state or at.session_state["query_result"] is None
