"""AppTest: the Query console's router selector offers the fixed single-agent baselines."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.console import open_console, run_query
from tests.app.shown import shown


@pytest.fixture
def app() -> AppTest:
    return open_console()


def _run(at: AppTest, query: str, router: str) -> AppTest:
    return run_query(at, query, seed=3, router=router)


def test_selector_lists_the_baselines(app):
    options = app.selectbox(key="query_router").options
    assert {"fixed:hrm (baseline)", "fixed:trm (baseline)", "fixed:mcts (baseline)"} <= set(options)


def test_fixed_trm_runs_one_step_and_shows_its_wrong_answer(app):
    # connect4 4455: X wins by force with column 3 or 6 (worked out by hand: c1 or f1 makes an open
    # three on row 1); TRM's depth-limited refinement stays on the centre column 4.
    at = _run(app, "connect4: 4455", "fixed:trm")
    result = at.session_state["query_result"]
    assert [s.agent for s in result.steps] == ["trm"] and result.router == "fixed:trm"
    assert [c.value for c in at.code] == ["4"]
    assert result.verdict == "incorrect"


def test_fixed_mcts_on_freeform_is_a_message(app):
    at = _run(app, "how do canaries work?", "fixed:mcts")
    errors = [shown(e.value) for e in at.error]
    assert len(errors) == 1 and "mcts cannot work on freeform" in errors[0]
    assert "query_result" not in at.session_state
