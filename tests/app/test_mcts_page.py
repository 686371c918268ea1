"""AppTest tests of the MCTS explorer page, through the console's router."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
PAGE = "../pages/mcts.py"  # relative to app/main.py; the Query console is the default page


@pytest.fixture
def app(monkeypatch, tmp_path) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _run(at: AppTest, task: str, position: str, iterations: int = 600, seed: int = 7) -> AppTest:
    at.selectbox(key="mcts_task").set_value(task).run()
    at.text_input(key="mcts_position").set_value(position)
    at.number_input(key="mcts_iterations").set_value(iterations)
    at.number_input(key="mcts_seed").set_value(seed)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _metric(at: AppTest, label: str) -> str:
    return next(shown(m.value) for m in at.metric if m.label == label)


def test_page_renders_with_instructions(app):
    assert app.title[0].value == "MCTS explorer"
    assert any("Run search" in i.value for i in app.info)
    assert app.selectbox(key="mcts_task").value == "tictactoe"


def test_must_block_is_found_and_judged_correct(app):
    # O holds c1 and c3: X must take c2 (worked out by hand)
    at = _run(app, "tictactoe", "X.O/.X./..O")
    assert _metric(at, "Best action") == "c2"
    assert any("c2" in shown(s.value) and "correct" in s.value for s in at.success)
    outcome = at.session_state["mcts_outcome"]
    assert outcome.result.stats.seed == 7
    assert len(at.get("plotly_chart")) >= 3


def test_game24_answer_is_verified(app):
    at = _run(app, "game24", "3 3 8 8", iterations=2000)
    # 8/(3-8/3) is the only way to make 24 from 3 3 8 8
    assert any("8/(3-8/3)" in shown(s.value) and "correct" in s.value for s in at.success)


def test_unsolvable_24_says_no_solution(app):
    at = _run(app, "game24", "1 1 1 1", iterations=2000)
    assert any("no solution" in shown(s.value) for s in at.success)


def test_bad_position_is_a_clear_error_not_a_traceback(app):
    at = _run(app, "tictactoe", "XXXX/../O")
    assert not at.exception
    assert any("Invalid tictactoe position" in shown(e.value) for e in at.error)


def test_finished_game_is_refused(app):
    at = _run(app, "connect4", "1212121")
    assert any("already over" in shown(e.value) for e in at.error)


def test_scrubber_shows_an_earlier_snapshot(app):
    at = _run(app, "connect4", "4453", iterations=400)
    slider = at.select_slider(key="mcts_scrub")
    assert slider.value == 400
    slider.set_value(100).run()
    assert any(h.value == "Nodes at iteration 100" for h in at.subheader)
    table = next(d.value for d in at.dataframe if "node" in d.value.columns)
    assert table.loc[table["node"] == 0, "visits"].item() == 100


def test_same_seed_reproduces_the_run(app):
    first = _run(app, "connect4", "", iterations=300, seed=11).session_state["mcts_outcome"].result
    second = _run(app, "connect4", "", iterations=300, seed=11).session_state["mcts_outcome"].result
    assert first.tree.N == second.tree.N and first.pv == second.pv


def test_deep_link_prefills_the_form(monkeypatch, tmp_path):
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.query_params.update({"task": "game24", "position": "4 7 8 8", "seed": "5", "iterations": "300"})
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.selectbox(key="mcts_task").value == "game24"
    assert at.text_input(key="mcts_position").value == "4 7 8 8"
    assert at.number_input(key="mcts_seed").value == 5


def test_a_huge_number_shows_an_error_not_an_exception(app):
    at = _run(app, "game24", "24: " + "9" * 5000 + " 1 2 3", iterations=50)
    assert any("5000 digits is too long" in e.value for e in at.error), [e.value for e in at.error]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("mcts_iterations", 999_999, "Iterations\\: Input should be less than or equal to 100000"),
        ("mcts_c", -1.0, "Exploration c\\: Input should be greater than or equal to 0"),
        ("mcts_every", 0, "Snapshot every\\: Input should be greater than or equal to 1"),
    ],
)
def test_an_out_of_range_value_is_refused_not_replaced(app, key, value, message):
    # no browser-side bounds (they would drop the typed value and search with the previous one):
    # ExploreRequest refuses it with a message, and no search runs
    at = app
    at.selectbox(key="mcts_task").set_value("tictactoe").run()
    at.text_input(key="mcts_position").set_value("X.O/.X./..O")
    at.number_input(key=key).set_value(value)
    at.button[0].click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert message in errors, errors
    assert "mcts_outcome" not in at.session_state and not at.get("plotly_chart")
