"""app.links: the URLs between pages and the deep-link parsing, tested directly (no Streamlit).

Expected values are written out by hand: percent-encoding with nothing kept safe (``:`` is %3A,
``/`` is %2F, a space is %20), and Python's own int()/float() rules for the numbers."""

from __future__ import annotations

from app.links import (
    ExplorerLink,
    QueryLink,
    explorer_link_params,
    explorer_url,
    parse_explorer_link,
    parse_query_link,
    parse_trace_link,
    query_link_params,
    replay_url,
)
from engine import QueryRequest
from observability.traces import MctsRunInfo, RequestInfo, TraceDetail


def _run(**changes) -> MctsRunInfo:
    base = dict.fromkeys(MctsRunInfo.__dataclass_fields__)
    base |= {"run_id": "m", "node_count": 0, "config": {}}
    return MctsRunInfo(**(base | changes))


def _detail(runs: tuple[MctsRunInfo, ...] = (), **changes) -> TraceDetail:
    base = dict.fromkeys(RequestInfo.__dataclass_fields__)
    base |= {"request_id": "r", "ts": 1.0, "status": "ok", "agents_used": (), "simulated": False}
    return TraceDetail("t", RequestInfo(**(base | changes)), None, None, (), (), (), runs, (), ())


# -- URLs -------------------------------------------------------------------------------------------


def test_explorer_url_carries_the_configured_search_exactly():
    run = _run(
        task="tictactoe",
        position="tictactoe: X.O/.X./..O",
        seed=3,
        iterations=123,
        config={"iterations": 400, "c": 2.0, "selection": "puct"},
    )
    assert (
        explorer_url(run)
        == "mcts?task=tictactoe&position=X.O%2F.X.%2F..O&seed=3&iterations=400&c=2.0&selection=puct"
    )


def test_explorer_url_leaves_out_config_values_of_the_wrong_kind():
    # iterations not an int: the run's own count; c not a number and an unknown rule: left out
    run = _run(
        task="game24",
        position="4 7 8 8",
        seed=1,
        iterations=50,
        config={"iterations": "many", "c": "x", "selection": "greedy"},
    )
    assert explorer_url(run) == "mcts?task=game24&position=4%207%208%208&seed=1&iterations=50"


def test_replay_url_reopens_the_console_on_the_request():
    run = _run(config={"iterations": 300})
    detail = _detail((run,), query="24: 4 7 8 8", task="game24", seed=0, router="rules")
    assert replay_url(detail) == "./?q=24%3A%204%207%208%208&task=game24&seed=0&router=rules&iterations=300"


def test_replay_url_drops_names_the_console_does_not_know():
    detail = _detail(query="hello", task="chess", seed=None, router="neural")
    assert replay_url(detail) == "./?q=hello"


def test_the_console_link_reads_back_what_it_wrote():
    request = QueryRequest(query="connect4: 4453", task="connect4", router="hybrid", mcts_iterations=250)
    params = query_link_params(request, 5)
    assert params == {
        "q": "connect4: 4453",
        "task": "connect4",
        "seed": 5,
        "router": "hybrid",
        "iterations": 250,
    }
    # the browser hands them back as strings
    assert parse_query_link({k: str(v) for k, v in params.items()}) == QueryLink(
        query="connect4: 4453", task="connect4", router="hybrid", seed=5, iterations=250
    )


def test_the_explorer_link_reads_back_what_it_wrote():
    params = explorer_link_params("connect4", "4453", iterations=250, c=1.5, selection="puct", seed=9)
    assert params == {
        "task": "connect4",
        "position": "4453",
        "iterations": 250,
        "c": 1.5,
        "selection": "puct",
        "seed": 9,
    }
    assert parse_explorer_link({k: str(v) for k, v in params.items()}) == ExplorerLink(
        task="connect4", position="4453", iterations=250, seed=9, c=1.5, selection="puct"
    )


# -- deep links -------------------------------------------------------------------------------------


def test_query_link_ignores_unknown_names_and_bad_numbers_with_a_warning_each():
    link = parse_query_link(
        {"q": "", "task": "chess", "router": "neural", "seed": "abc", "iterations": "1.5"},
        default_iterations=700,
    )
    assert (link.query, link.task, link.router, link.seed, link.iterations) == (None,) * 5
    assert [(w.param, w.value, w.action, w.used) for w in link.warnings] == [
        ("task", "chess", "ignored", "Auto-detect"),
        ("router", "neural", "ignored", "rules"),
        ("seed", "abc", "ignored", "a random seed"),
        ("iterations", "1.5", "ignored", "700"),
    ]
    assert link.problems[1] == (
        "Link parameter router='neural' is not one of rules, gru, hybrid, fixed:hrm, fixed:trm, "
        "fixed:mcts: ignored, using rules instead."
    )


def test_query_link_takes_what_int_takes():
    assert parse_query_link({"seed": " 42 ", "iterations": "1_000"}) == QueryLink(seed=42, iterations=1000)
    assert parse_query_link({}) == QueryLink()


def test_explorer_link_position_only_with_a_known_task():
    alone = parse_explorer_link({"position": "4453"})
    assert (alone.task, alone.position) == (None, None)
    assert [(w.param, w.action, w.reason) for w in alone.warnings] == [
        ("position", "ignored", "comes without a task")
    ]
    freeform = parse_explorer_link({"task": "freeform", "position": "x"})
    assert (freeform.task, freeform.position) == (None, None)
    assert [w.param for w in freeform.warnings] == ["task", "position"]
    assert parse_explorer_link({"task": "game24"}) == ExplorerLink(task="game24", position="")


def test_explorer_link_warnings_in_parameter_order():
    link = parse_explorer_link({"c": "wide", "seed": "x", "iterations": "10", "selection": "greedy"})
    assert (link.iterations, link.seed, link.c, link.selection) == (10, None, None, None)
    assert [(w.param, w.action) for w in link.warnings] == [
        ("seed", "ignored"),
        ("c", "ignored"),
        ("selection", "ignored"),
    ]
    assert parse_explorer_link({"c": "0.25", "selection": "ucb1"}) == ExplorerLink(c=0.25, selection="ucb1")


def test_trace_link_prefers_the_trace_id():
    assert parse_trace_link({"trace": "abc", "request": "r1"}) == ("trace", "abc")
    assert parse_trace_link({"trace": "", "request": "r1"}) == ("request", "r1")
    assert parse_trace_link({"request": ""}) is None
    assert parse_trace_link({}) is None
