"""Deep links never change a value silently: on every page that reads query parameters, a value
that is out of range is clamped and one that cannot be used is ignored, each with a warning that
names the parameter, the value given and the value used instead; a parameter the page does not
read is a warning too.  Table-driven over every page, through the console's router.

Oracle: the ranges and choices written out by hand here (the Query console's MCTS iterations are
1..10,000, the explorer's 1..100,000 and its c 0..100, seeds 0..2^53-1, ...), not read from the
code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from app.links import LinkWarning, link_number, parse_explorer_link, parse_query_link, unknown_params
from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def _open(page: str, params: dict[str, str]) -> AppTest:
    """A session opened on a link to ``page`` (its URL path; "" is the Query console): the
    parameters are set and the page chosen before the session's first run, as a browser does."""
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(MAIN, default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    if page:
        at.switch_page(f"../pages/{page}.py")
    at.run()
    assert not at.exception, at.exception
    return at


# (page, params, the parameter warned about, text the warning must hold: the value used,
#  the widget key and the value it must then hold, or None)
CASES = [
    ("", {"iterations": "999999"}, "iterations", "clamped, using 10,000 ", ("query_iterations", 10_000)),
    ("", {"iterations": "0"}, "iterations", "clamped, using 1 instead", ("query_iterations", 1)),
    ("", {"iterations": "lots"}, "iterations", "ignored, using 1,000 instead", ("query_iterations", 1000)),
    ("", {"seed": "-5"}, "seed", "ignored, using a random seed instead", ("query_seed", None)),
    ("", {"seed": str(2**53)}, "seed", "ignored, using a random seed instead", ("query_seed", None)),
    ("", {"router": "bogus"}, "router", "ignored, using rules instead", ("query_router", "rules")),
    ("", {"task": "chess"}, "task", "ignored, using Auto-detect instead", ("query_task", "auto")),
    ("", {"q": "x" * 10_001}, "q", "longer than 10,000 characters: ignored", None),
    ("", {"colour": "red"}, "colour", "is not read by this page", None),
    ("mcts", {"c": "-1"}, "c", "clamped, using 0 instead", ("mcts_c", 0.0)),
    ("mcts", {"c": "250"}, "c", "clamped, using 100 instead", ("mcts_c", 100.0)),
    ("mcts", {"iterations": "0"}, "iterations", "clamped, using 1 instead", ("mcts_iterations", 1)),
    ("mcts", {"iterations": "1e9"}, "iterations", "ignored, using 1,000 instead", ("mcts_iterations", 1000)),
    ("mcts", {"seed": "-1"}, "seed", "ignored, using a random seed instead", ("mcts_seed", None)),
    ("mcts", {"selection": "greedy"}, "selection", "ignored, using ucb1 instead", ("mcts_selection", "ucb1")),
    ("mcts", {"task": "chess"}, "task", "ignored, using tictactoe instead", ("mcts_task", "tictactoe")),
    ("traces", {"over_ms": "-3"}, "over_ms", "clamped, using 0 instead", None),
    ("traces", {"agent": "gpt"}, "agent", "ignored, using any agent instead", None),
    ("traces", {"since": "yesterday"}, "since", "ignored, using no start to the time range instead", None),
    ("slos", {"range": "2y"}, "range", "ignored, using each SLO's window instead", None),
    ("slos", {"as_of": "-1"}, "as_of", "ignored, using the page's default time instead", None),
    ("golden", {"trace": "no-such-golden"}, "trace", "ignored, using the first golden that", None),
    ("experiments", {"experiment": "nope"}, "experiment", "ignored, using 'mcts-iterations' instead", None),
    ("runbooks", {"name": "runbook-nope"}, "name", "ignored, using none (the list of", None),
    ("routing", {"router": "gru"}, "router", "not read by this page (it reads no parameters)", None),
    ("overview", {"window": "1h"}, "window", "not read by this page (it reads no parameters)", None),
]  # fmt: skip


@pytest.mark.parametrize(("page", "params", "param", "used", "widget"), CASES)
def test_every_rejected_link_value_is_a_warning_naming_it_and_the_value_used(
    page, params, param, used, widget
):
    at = _open(page, params)
    value = params[param]
    shown_value = repr(value if len(value) <= 80 else value[:79] + "…")
    warnings = [shown(w.value) for w in at.warning if f"Link parameter {param}=" in shown(w.value)]
    assert len(warnings) == 1, [shown(w.value) for w in at.warning]
    assert warnings[0].startswith(f"Link parameter {param}={shown_value} ")
    assert used in warnings[0]
    if widget is not None:
        key, expected = widget
        assert at.session_state[key] == expected


def test_a_link_with_good_values_is_applied_without_a_warning():
    at = _open(
        "", {"q": "24: 3 3 8 8", "task": "game24", "seed": "7", "router": "hybrid", "iterations": "250"}
    )
    assert [w.value for w in at.warning] == []
    assert at.text_area(key="query_text").value == "24: 3 3 8 8"
    assert (at.session_state["query_seed"], at.session_state["query_iterations"]) == (7, 250)
    assert at.session_state["query_router"] == "hybrid"
    mcts = _open("mcts", {"task": "connect4", "position": "4453", "c": "2.5", "seed": "3"})
    assert [w.value for w in mcts.warning] == []
    assert (mcts.session_state["mcts_c"], mcts.session_state["mcts_seed"]) == (2.5, 3)


# -- the parsing itself ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clamp", "value", "action", "used"),
    [
        ("5", True, 5, None, None),
        ("10", True, 10, None, None),  # the bounds are inclusive
        ("11", True, 10, "clamped", "10"),
        ("-4", True, 1, "clamped", "1"),
        ("11", False, None, "ignored", "the default"),
        ("2.5", True, None, "ignored", "the default"),  # not a whole number
        ("nan", True, None, "ignored", "the default"),
    ],
)
def test_link_number_clamps_amounts_and_ignores_the_rest(raw, clamp, value, action, used):
    warnings: list[LinkWarning] = []
    got = link_number(
        {"n": raw}, "n", warnings, whole=True, low=1, high=10, default="the default", clamp=clamp
    )
    assert got == value
    assert [(w.action, w.used) for w in warnings] == ([] if action is None else [(action, used)])


def test_real_numbers_reject_infinity_and_name_the_bound():
    warnings: list[LinkWarning] = []
    assert (
        link_number({"c": "inf"}, "c", warnings, whole=False, low=0, high=100, default="1.414", clamp=True)
        is None
    )
    assert (
        link_number({"c": "-0.5"}, "c", warnings, whole=False, low=0, high=100, default="1.414", clamp=True)
        == 0.0
    )
    assert [w.text for w in warnings] == [
        "Link parameter c='inf' is not a number: ignored, using 1.414 instead.",
        "Link parameter c='-0.5' is below the smallest value, 0: clamped, using 0 instead.",
    ]


def test_the_links_pages_write_read_back_without_warnings():
    assert (
        parse_query_link(
            {"q": "x", "task": "auto", "router": "rules", "seed": "0", "iterations": "10000"}
        ).warnings
        == ()
    )
    link = parse_explorer_link(
        {"task": "game24", "position": "4 7 8 8", "iterations": "100000", "c": "0", "seed": "0"}
    )
    assert link.warnings == () and (link.iterations, link.c) == (100_000, 0.0)


def test_parameters_left_over_from_another_page_are_not_warned_about():
    """Navigating inside the console (not opening a link) keeps the last page's parameters in the
    URL: only the page a session opens on is checked for parameters it does not read."""
    at = _open("", {"q": "24: 3 3 8 8", "seed": "7"})
    assert [w.value for w in at.warning] == []
    at.switch_page("../pages/overview.py").run()
    assert not at.exception and [w.value for w in at.warning] == []


def test_unknown_parameters_per_page():
    assert unknown_params("", {"q": "x", "seed": "1"}) == ()
    (warning,) = unknown_params("mcts", {"q": "x"})
    assert warning.text == (
        "Link parameter q='x' is not read by this page (it reads task, position, iterations, seed, c, "
        "selection): ignored."
    )
    assert unknown_params("a-page-of-another-part", {"x": "1"}) == ()  # not in PAGE_PARAMS: not checked
