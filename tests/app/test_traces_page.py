"""AppTest tests of the Traces page (through the console's router) and of the Query console's
link to a run's trace.  Rows are written to the store by hand, so the expected list order,
waterfall bars and tables are worked out from them; one test runs a real query."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from app import links, runtime
from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.explorer import ExploreRequest, explore
from observability.store import Store
from observability.traces import ERROR_KEY, MctsRunInfo, RequestInfo, TraceDetail, trace_detail
from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
PAGE = "../pages/traces.py"  # relative to app/main.py


@pytest.fixture
def db(monkeypatch, tmp_path) -> Path:
    """A fresh store file for the console; the cached settings and engine are dropped before and
    after so the console opens this file (other tests' engines point at theirs)."""
    path = tmp_path / "arbor.db"
    monkeypatch.setenv("ARBOR_DB_PATH", str(path))
    runtime.get_settings.clear()
    runtime.get_engine.clear()
    yield path
    runtime.get_settings.clear()
    runtime.get_engine.clear()


def write(path: Path, **tables: list[dict]) -> None:
    store = Store(path, threaded=False)
    try:
        for table, rows in tables.items():
            store.submit(table, rows)
    finally:
        store.close()


def open_page(query_params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    for key, value in (query_params or {}).items():
        at.query_params[key] = value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def request(rid: str, ts: float, status: str = "ok", task: str = "game24", latency: float = 10.0) -> dict:
    return {"request_id": rid, "trace_id": f"trace-{rid}", "ts": ts, "task": task, "query": f"q {rid}",
            "status": status, "latency_ms": latency, "seed": 5, "router": "rules"}  # fmt: skip


THREE = {
    "requests": [
        request("a", 1_000.0, "ok", "game24", 12.0),
        request("b", 2_000.0, "error", "freeform", 300.0),
        request("c", 3_000.0, "ok", "connect4", 45.0),
    ]
}


def table(at: AppTest) -> list[str]:
    """The trace ids of the list, top to bottom."""
    return list(at.main.dataframe[0].value["trace id"])


def texts(elements) -> list[str]:
    return [shown(e.value) for e in elements]


# ------------------------------------------------------------------------------------------ list


def test_empty_store_says_how_to_get_traces(db):
    at = open_page()
    assert at.title[0].value == "Traces"
    assert any("No traces yet" in i and "python -m engine load" in i for i in texts(at.info))
    assert len(at.main.dataframe) == 0


def test_telemetry_off_is_a_message(db, monkeypatch):
    monkeypatch.setenv("ARBOR_TELEMETRY", "off")
    at = open_page({"trace": "whatever"})
    assert any("Telemetry is off" in i for i in texts(at.info))
    assert not at.warning and len(at.main.dataframe) == 0


def test_list_is_newest_first_and_filters_narrow_it(db):
    write(db, **THREE)
    at = open_page()
    assert table(at) == ["trace-c", "trace-b", "trace-a"]
    at.multiselect(key="traces_status").set_value(["error"]).run()
    assert table(at) == ["trace-b"]
    at.multiselect(key="traces_status").set_value([]).run()
    at.selectbox(key="traces_task").set_value("game24").run()
    assert table(at) == ["trace-a"]
    at.selectbox(key="traces_task").set_value(None).run()
    at.number_input(key="traces_min_ms").set_value(40.0).run()  # 45 and 300 ms
    assert table(at) == ["trace-c", "trace-b"]
    at.number_input(key="traces_max_ms").set_value(100.0).run()  # 45 ms only
    assert table(at) == ["trace-c"]
    at.number_input(key="traces_max_ms").set_value(None)
    at.number_input(key="traces_min_ms").set_value(None)
    at.text_input(key="traces_id").set_value("trace-a").run()
    assert table(at) == ["trace-a"]
    at.text_input(key="traces_id").set_value("nothing-like-it").run()
    assert any("No trace matches these filters (3 request(s)" in i for i in texts(at.info))
    assert not at.exception


def test_bad_filter_is_a_warning_not_a_traceback(db):
    write(db, **THREE)
    at = open_page()
    at.number_input(key="traces_min_ms").set_value(50.0)
    at.number_input(key="traces_max_ms").set_value(10.0).run()
    assert not at.exception
    assert texts(at.warning) == ["Filter: the minimum latency (50 ms) is above the maximum (10 ms)"]
    assert len(at.main.dataframe) == 0


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("traces_limit", 6000, "Limit: Input should be less than or equal to 5000"),
        ("traces_min_ms", -5.0, "Min latency (ms): Input should be greater than or equal to 0"),
    ],
)
def test_an_out_of_range_number_is_named_not_replaced(db, key, value, message):
    # no browser-side bounds (the browser would drop the typed value and keep the previous filter)
    write(db, **THREE)
    at = open_page()
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert message in texts(at.warning)
    assert len(at.main.dataframe) == 0


# ------------------------------------------------------------------------------------------ detail


def _trace_rows() -> dict[str, list[dict]]:
    """Request r1 (tictactoe) with a root span, two agents (the second failed) and an LLM call under
    the first; log lines, two routing decisions and an MCTS run with two stored nodes."""
    t = "trace-r1"
    req = {**request("r1", 100.0, "error", "tictactoe", 40.0), "query": "tictactoe: X.O/.X./..O",
           "error": "ProviderUnavailable: down"}  # fmt: skip

    def sp(sid, parent, name, start, ms, status="ok", **attrs):
        times = {"start_ts": start, "end_ts": start + ms / 1000, "duration_ms": ms}
        return {"span_id": sid, "trace_id": t, "parent_id": parent, "name": name, "status": status,
                "attributes": attrs, **times}  # fmt: skip

    return {
        "requests": [req],
        "spans": [
            sp("s0", None, "query", 100.000, 40.0, "error", request_id="r1"),
            sp("s1", "s0", "agent.hrm", 100.002, 10.0),
            sp("s2", "s1", "llm.complete", 100.004, 5.0),
            sp("s3", "s0", "agent.mcts", 100.015, 20.0, "error", **{ERROR_KEY: "boom"}),
        ],
        "logs": [
            {"trace_id": t, "seq": 0, "ts": 100.003, "level": "INFO", "logger": "arbor.pipeline",
             "message": "routed to hrm", "span_id": "s1"},
            {"trace_id": t, "seq": 1, "ts": 100.030, "level": "ERROR", "logger": "arbor.pipeline",
             "message": "mcts failed", "span_id": "s3"},
        ],
        "routing_decisions": [
            {"request_id": "r1", "step": 0, "agent": "hrm", "reason": "argmax: hrm at 0.70",
             "probabilities": {"hrm": 0.7, "trm": 0.1, "mcts": 0.2}, "confidence": 0.5, "latency_ms": 10.0},
            {"request_id": "r1", "step": 1, "agent": "mcts", "reason": "fallback",
             "probabilities": {"hrm": 0.1, "trm": 0.1, "mcts": 0.8}},
        ],
        "mcts_runs": [
            {"run_id": "r1-mcts", "request_id": "r1", "ts": 100.0, "task": "tictactoe",
             "position": "tictactoe: X.O/.X./..O", "iterations": 90, "seed": 42, "best_action": "c2",
             "tree_size": 91, "config": {"iterations": 100, "c": 1.5, "selection": "ucb1"}},
        ],
        "mcts_nodes": [{"run_id": "r1-mcts", "node_id": 0, "depth": 0}, {"run_id": "r1-mcts", "node_id": 1}],
    }  # fmt: skip


def _waterfall(at: AppTest) -> dict:
    (chart,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return chart


def test_deep_link_opens_the_trace_with_waterfall_tree_logs_routing_and_mcts(db):
    write(db, **_trace_rows())
    at = open_page({"trace": "trace-r1"})
    assert [shown(h.value) for h in at.header] == ["Trace trace-r1"]
    # waterfall: depth-first order query, agent.hrm, llm.complete, agent.mcts; offsets from 100.000 s,
    # with the untraced gaps worked out from the rows: query 0-40 ms has children at 2-12 and 15-35
    # (gaps 0-2, 12-15, 35-40), agent.hrm 2-12 has llm.complete at 4-9 (gaps 2-4, 9-12)
    chart = _waterfall(at)
    bars = chart["data"][0]
    assert bars["base"] == pytest.approx([0.0, 0.0, 2.0, 2.0, 4.0, 9.0, 12.0, 15.0, 35.0], abs=1e-6)
    assert bars["x"] == pytest.approx([40.0, 2.0, 10.0, 2.0, 5.0, 3.0, 3.0, 20.0, 5.0], abs=1e-6)
    labels = [a["text"] for a in chart["layout"]["annotations"]]
    gap1, gap2 = "\u2003<i>untraced</i>", "\u2003\u2003<i>untraced</i>"
    assert labels == ["query", gap1, "\u2003agent.hrm", gap2, "\u2003\u2003llm.complete", gap2, gap1,
                      "\u2003agent.mcts", gap1]  # fmt: skip
    red = "#dc2626"
    assert [c == red for c in bars["marker"]["color"]] == [True] + [False] * 6 + [True, False]
    # the span tree, the log lines and the routing decisions as tables
    tree, logs, routing = (d.value for d in at.main.dataframe[1:4])
    assert [s.strip("\u2003└ ") for s in tree["span"]] == ["query", "agent.hrm", "llm.complete", "agent.mcts"]
    assert list(tree["error"]) == ["", "", "", "boom"]
    # self time: duration minus the children (query 40 - 10 - 20, agent.hrm 10 - 5); leaves their own
    assert list(tree["self (ms)"]) == pytest.approx([10.0, 5.0, 5.0, 20.0], abs=1e-6)
    assert list(logs["message"]) == ["routed to hrm", "mcts failed"]
    assert list(logs["span"]) == ["agent.hrm", "agent.mcts"]
    assert list(logs["+ms"]) == pytest.approx([3.0, 30.0])
    assert list(routing["agent"]) == ["hrm", "mcts"] and list(routing["p(mcts)"]) == [0.2, 0.8]
    assert list(routing["step"]) == [1, 2]  # stored 0 and 1: numbered from 1 on screen
    # mcts failed in its own step (its span failed, no answer logged)
    assert list(routing["step outcome"]) == [
        "finished",
        "did not finish: request failed at agent.mcts: ProviderUnavailable: down",
    ]
    # the request's error, and the links out
    assert any("ProviderUnavailable: down" in e for e in texts(at.error))
    links = [m for m in texts(at.markdown) if "](" in m]
    replay = next(m for m in links if m.startswith("[Replay in the Query console]"))
    explorer = next(m for m in links if m.startswith("[Open this search in the MCTS explorer]"))
    assert _params(replay) == {"q": "tictactoe: X.O/.X./..O", "task": "tictactoe", "seed": "5",
                               "router": "rules", "iterations": "100"}  # fmt: skip
    assert _params(explorer) == {"task": "tictactoe", "position": "X.O/.X./..O", "seed": "42",
                                 "iterations": "100", "c": "1.5", "selection": "ucb1"}  # fmt: skip
    assert any(m.label == "Tree size" and m.value == "91" for m in at.metric)


def _params(markdown_link: str) -> dict[str, str]:
    url = markdown_link.split("](", 1)[1].split(")", 1)[0]
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_trace_without_log_lines_says_so(db):
    rows = _trace_rows()
    del rows["logs"]
    write(db, **rows)
    at = open_page({"trace": "trace-r1"})
    assert "No log lines recorded for this trace." in texts(at.info)


def test_request_link_opens_its_trace_and_rewrites_the_url(db):
    write(db, **_trace_rows())
    at = open_page({"request": "r1"})
    assert [shown(h.value) for h in at.header] == ["Trace trace-r1"]
    assert at.query_params["trace"] == "trace-r1"


def test_unknown_trace_in_the_link_is_a_warning(db):
    write(db, **THREE)
    at = open_page({"trace": "feedface"})
    assert any(w.startswith("No trace feedface in the store") for w in texts(at.warning))
    assert not at.header and table(at) == ["trace-c", "trace-b", "trace-a"]


# ------------------------------------------------------------------------------------------ query console


def test_query_console_links_a_finished_run_to_its_trace(db):
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    at.text_area(key="query_text").set_value("connect4: 4453")
    at.number_input(key="query_seed").set_value(3)
    at.number_input(key="query_iterations").set_value(300)
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.exception, at.exception
    result = at.session_state["query_result"]
    (link,) = at.page_link
    assert (link.value, link.proto.page) == ("Open trace", "traces")
    assert parse_qs(link.proto.query_string) == {"trace": [result.trace_id]}
    # follow it (AppTest cannot click a page link): the trace opens with one bar per span
    at.query_params.clear()
    at.query_params["trace"] = result.trace_id
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    assert [shown(h.value) for h in at.header] == [f"Trace {result.trace_id}"]
    assert table(at) == [result.trace_id]  # the list has the run too, right away
    labels = [a["text"].strip("\u2003") for a in _waterfall(at)["layout"]["annotations"]]
    expected = ["query"]
    for s in result.steps:  # a route span, then the agent's (MCTS with its search inside); from step 1
        expected += [f"route · step {s.index + 1}", f"agent.{s.agent} · step {s.index + 1}"]
        expected += ["mcts.search"] if s.agent == "mcts" else []
    assert [x for x in labels if x != "<i>untraced</i>"] == [*expected, "synthesise"]
    assert "No log lines recorded for this trace." not in texts(at.info)  # the engine logged the run


# ------------------------------------------------------------------------------------------ links


def _request_info(**changes) -> RequestInfo:
    base = dict.fromkeys(RequestInfo.__dataclass_fields__)
    base |= {"request_id": "r", "ts": 1.0, "status": "ok", "agents_used": (), "simulated": False}
    return RequestInfo(**(base | changes))


def _run(**changes) -> MctsRunInfo:
    base = dict.fromkeys(MctsRunInfo.__dataclass_fields__)
    base |= {"run_id": "m", "node_count": 0, "config": {}}
    return MctsRunInfo(**(base | changes))


def test_links_encode_their_parameters_and_leave_out_what_is_unknown():
    req = _request_info(query="24: 4 7 8 8 & more?", task="game24", seed=0, router="hybrid")
    detail = TraceDetail("t", req, None, None, (), (), (), (), (), ())
    url = links.replay_url(detail)
    assert url is not None and " " not in url and "&more" not in url
    assert url.startswith("./?")
    assert parse_qs(urlsplit(url).query) == {
        "q": ["24: 4 7 8 8 & more?"], "task": ["game24"], "seed": ["0"], "router": ["hybrid"],
    }  # fmt: skip
    # the explorer link needs a game and a position; iterations fall back to the run's own
    run = _run(task="connect4", position="4453", seed=9, iterations=250)
    assert parse_qs(urlsplit(links.explorer_url(run)).query) == {
        "task": ["connect4"], "position": ["4453"], "seed": ["9"], "iterations": ["250"],
    }  # fmt: skip
    # every task prefix the engine accepts is dropped from the position, not only "<task>:"
    for stored, task, position in (
        ("ttt: X.O/.X./..O", "tictactoe", "X.O/.X./..O"),
        ("Connect four: 4453", "connect4", "4453"),
        ("game of 24: 4 7 8 8", "game24", "4 7 8 8"),
    ):
        url = links.explorer_url(_run(task=task, position=stored, seed=1, iterations=10))
        assert parse_qs(urlsplit(url).query)["position"] == [position]
    assert links.explorer_url(_run(task="freeform", position="x")) is None
    assert links.explorer_url(_run(task="tictactoe", position=None)) is None
    assert links.replay_url(TraceDetail("t", None, None, None, (), (), (), (), (), ())) is None


def test_the_explorer_link_repeats_the_recorded_search_exactly(tmp_path):
    engine = Engine(load_settings(db_path=tmp_path / "e.db", metrics_port=0))
    try:
        result = engine.run(QueryRequest(query="connect4: 4453", seed=3, mcts_iterations=300))
    finally:
        engine.close()
    assert "mcts" in result.agents_used
    store = Store(tmp_path / "e.db", threaded=False)
    try:
        (run,) = trace_detail(store, result.trace_id).mcts_runs
    finally:
        store.close()
    params = {k: v[0] for k, v in parse_qs(urlsplit(links.explorer_url(run)).query).items()}
    assert (params["task"], params["position"]) == ("connect4", "4453")
    again = explore(ExploreRequest(**params)).result  # pydantic casts the query strings
    stats = again.stats
    assert (stats.best_action_label, stats.root_value, stats.tree_size, stats.seed) == (
        run.best_action, run.root_value, run.tree_size, run.seed,
    )  # fmt: skip


def test_the_list_says_how_many_traces_are_simulated(db) -> None:
    write(
        db, requests=[{**request("a", 1_000.0), "simulated": 1}, request("b", 2_000.0), request("c", 3_000.0)]
    )
    at = open_page()
    captions = " ".join(texts(at.caption))
    assert "3 matching trace(s)" in captions
    assert "1 of them are simulated (load generator, simulated clock)." in captions
    assert list(at.main.dataframe[0].value["simulated"]) == [False, False, True]


# ------------------------------------------------------------------------------------------ search and sort

SEARCHABLE = {
    "requests": [
        {**request("a", 1_000.0, latency=30.0), "query": "connect4: 4453"},
        {**request("b", 2_000.0, latency=10.0), "query": "Connect4: 4444"},
        {**request("c", 3_000.0, latency=20.0), "query": "24: 4 7 8 8 — 50% off_today"},
        {**request("d", 4_000.0, latency=None), "query": "24: 5 0 off today"},
    ]
}


def _caption_with(at: AppTest, text: str) -> str:
    return next(c for c in texts(at.caption) if text in c)


def test_query_text_search_narrows_the_list_and_says_how_many_matched(db):
    write(db, **SEARCHABLE)
    at = open_page()
    assert table(at) == ["trace-d", "trace-c", "trace-b", "trace-a"]
    at.text_input(key="traces_query").set_value("CONNECT4").run()  # any case (ASCII)
    assert table(at) == ["trace-b", "trace-a"]
    assert _caption_with(at, "matching trace(s)").startswith("2 matching trace(s), all shown")
    # % and _ are literal: "50%" matches c only (as a wildcard it would match d too: "5 0 ")
    at.text_input(key="traces_query").set_value("5%").run()  # as a wildcard it would match a, c and d
    assert len(at.main.dataframe) == 0 and any(i.startswith("No trace matches") for i in texts(at.info))
    at.text_input(key="traces_query").set_value("50% off_").run()
    assert table(at) == ["trace-c"]
    at.text_input(key="traces_query").set_value("off_today").run()  # "_" would also match "off today"
    assert table(at) == ["trace-c"]
    # the count is of every match, not of the rows shown
    at.text_input(key="traces_query").set_value("4:").run()  # a, b ("connect4:") and c, d ("24:")
    at.number_input(key="traces_limit").set_value(2).run()
    assert table(at) == ["trace-d", "trace-c"]
    assert _caption_with(at, "matching trace(s)").startswith("4 matching trace(s), the first 2 shown")
    at.text_input(key="traces_query").set_value("nothing like it").run()
    assert "No trace matches these filters (4 request(s) recorded in all)." in texts(at.info)


def test_the_list_sorts_by_latency_time_and_status(db):
    write(db, **{"requests": [*SEARCHABLE["requests"][:3], request("e", 500.0, "error", latency=5.0)]})
    at = open_page()
    at.selectbox(key="traces_order").set_value("slowest").run()
    assert table(at) == ["trace-a", "trace-c", "trace-b", "trace-e"]  # 30, 20, 10, 5 ms
    at.selectbox(key="traces_order").set_value("fastest").run()
    assert table(at) == ["trace-e", "trace-b", "trace-c", "trace-a"]
    at.selectbox(key="traces_order").set_value("oldest").run()
    assert table(at) == ["trace-e", "trace-a", "trace-b", "trace-c"]
    at.selectbox(key="traces_order").set_value("status").run()
    assert table(at) == ["trace-e", "trace-c", "trace-b", "trace-a"]  # error before ok, then newest
    assert "slowest first" not in _caption_with(at, "matching trace(s)")


def test_the_open_trace_is_marked_in_the_list(db):
    write(db, **THREE)
    at = open_page({"trace": "trace-b"})
    listed = at.main.dataframe[0].value
    assert list(listed["trace id"]) == ["trace-c", "trace-b", "trace-a"]
    assert list(listed["open"]) == ["", "▶", ""]
    at.query_params["trace"] = "trace-a"
    at.run()
    assert list(at.main.dataframe[0].value["open"]) == ["", "", "▶"]


# ------------------------------------------------------------------------------------------ a failed request


def test_an_agent_that_answered_before_the_request_failed_says_so(db):
    """A real request on a simulated clock: hrm answers, then an injected fault fails the request.
    The step says it answered and where the request failed; steps count from 1; the trace header
    and the list show the row's (simulated) time."""
    from engine.faults import Faults, InjectedFault

    engine = Engine(load_settings(db_path=db, metrics_port=0))
    try:
        with pytest.raises(InjectedFault):
            list(engine.stream(QueryRequest(query="connect4: 4453", seed=1, router="rules"), live=False,
                               ts=1_600_000_000.0, simulated=True, faults=Faults(error=True),
                               request_id="answered-then-failed"))  # fmt: skip
    finally:
        engine.close()
    at = open_page({"request": "answered-then-failed"})
    assert not at.exception
    routing = next(d.value for d in at.main.dataframe if "step outcome" in d.value.columns)
    assert list(routing["step"]) == [1] and list(routing["agent"]) == ["hrm"]
    assert list(routing["step outcome"]) == [
        "answered; request failed at the query loop, after hrm answered: "
        "InjectedFault: injected error after the hrm step"
    ]
    assert not any("did not finish" in str(v) for v in routing["step outcome"])
    assert (
        "Step 1 (hrm): answered; request failed at the query loop, after hrm answered: "
        "InjectedFault: injected error after the hrm step"
    ) in texts(at.warning)
    logs = next(d.value for d in at.main.dataframe if "message" in d.value.columns)
    assert any(m.startswith("step 1: routed to hrm") for m in logs["message"])
    # one clock: the list's time, the header's start and the log lines are all the simulated ts
    assert "Started 2020-09-13 12:26:40 UTC" in _caption_with(at, "Started ")
    assert str(at.main.dataframe[0].value["time"].iloc[0]).startswith("2020-09-13 12:26:40")
    assert all(t.startswith("12:26:40") for t in logs["time (UTC)"])
