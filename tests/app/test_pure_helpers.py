"""The console's pure helpers: importable without Streamlit, and what they say (hand-written)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.messages import ENGINE_ERRORS, error_message, fallback_note, validation_problems
from app.names import CONSOLE_TASKS, EXPLORER_TASKS, PROVIDERS, ROUTER_LABELS, ROUTERS, SELECTIONS
from app.query import examples
from engine import QueryError, QueryRequest
from engine.llm import LLMError, ProviderNotConfigured, ProviderUnavailable
from engine.routing import RouterUnavailable

ROOT = Path(__file__).resolve().parents[2]
PURE = ("app.names", "app.links", "app.model_card", "app.messages", "app.safe_text")


def test_pure_modules_do_not_import_streamlit():
    loaded = "sorted(m for m in sys.modules if m.split('.')[0] == 'streamlit')"
    code = f"import sys; import {', '.join(PURE)}; print({loaded})"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_console_names_match_the_engine():
    assert ROUTERS == ("rules", "gru", "hybrid", "fixed:hrm", "fixed:trm", "fixed:mcts")
    assert PROVIDERS == ("offline", "openai", "anthropic", "lmstudio")
    assert ROUTER_LABELS == {
        "rules": "rules",
        "gru": "gru (trained)",
        "hybrid": "hybrid (rules + gru)",
        "fixed:hrm": "fixed:hrm (baseline)",
        "fixed:trm": "fixed:trm (baseline)",
        "fixed:mcts": "fixed:mcts (baseline)",
    }
    assert EXPLORER_TASKS == ("tictactoe", "connect4", "game24")
    assert SELECTIONS == ("ucb1", "puct")
    assert list(CONSOLE_TASKS) == ["auto", "game24", "tictactoe", "connect4", "freeform"]
    for router in ROUTERS:  # every name offered is one the engine accepts
        for provider in PROVIDERS:
            QueryRequest(query="24: 4 7 8 8", router=router, provider=provider)
    for task in CONSOLE_TASKS:
        QueryRequest(query="24: 4 7 8 8", task=task)


def test_fallback_note_is_a_sentence():
    assert fallback_note("offline", None, None) is None
    assert fallback_note("offline", "", "boom") is None
    assert (
        fallback_note("offline", "openai", "HTTP 500")
        == "Answered by the offline fallback after openai failed: HTTP 500"
    )
    assert fallback_note(None, "openai,anthropic", None) == (
        "Answered by the no provider fallback after openai,anthropic failed"
    )


@pytest.mark.parametrize(
    ("exc", "router", "expected"),
    [
        (RouterUnavailable("no trained weights"), "gru", "The gru router is unavailable: no trained weights"),
        (
            RouterUnavailable("no trained weights"),
            None,
            "The requested router is unavailable: no trained weights",
        ),
        (QueryError("malformed position"), "rules", "The query cannot be answered: malformed position"),
        (
            ProviderNotConfigured("openai needs an API key", setting="ARBOR_OPENAI_API_KEY"),
            "rules",
            "Configuration error, the request was not run: openai needs an API key. Set ARBOR_OPENAI_API_KEY "
            "in the environment or .env and restart the console, or pick another LLM provider.",
        ),
        (ProviderUnavailable("HTTP 503"), "rules", "The LLM provider failed: HTTP 503"),
    ],
)
def test_error_messages(exc, router, expected):
    assert isinstance(exc, ENGINE_ERRORS)
    request = None if router is None else QueryRequest(query="24: 4 7 8 8", router=router)
    assert error_message(exc, request) == expected


def test_engine_errors_are_the_three_families():
    assert set(ENGINE_ERRORS) == {QueryError, RouterUnavailable, LLMError}


def test_validation_problems_name_the_field_by_its_label():
    with pytest.raises(ValidationError) as info:
        QueryRequest(query="24: 4 7 8 8", mcts_iterations=0, router="neural")
    problems = validation_problems(info.value, {"mcts_iterations": "MCTS iterations"})
    assert [p.split(": ")[0] for p in problems] == ["MCTS iterations", "router"]
    assert problems[0] == "MCTS iterations: Input should be greater than or equal to 1"


def test_query_examples_per_task_and_all_of_them_for_auto():
    assert examples("game24")[0] == ("Classic (4 7 8 8)", "24: 4 7 8 8")
    assert examples("freeform")[1] == ("UCB1", "How does UCB1 balance exploration and exploitation?")
    every = examples("auto")
    assert every[0] == ("Game of 24 · Classic (4 7 8 8)", "24: 4 7 8 8")
    assert every[4] == ("Tic-tac-toe · Empty board", "tictactoe: .../.../...")
    assert every[-1][0] == "Freeform question · Sample ratio mismatch"
    assert len(every) == 4 + 4 + 4 + 5
    with pytest.raises(ValueError):
        examples("chess")
