"""Traces read back from the store: the filtered list, the span tree, and one trace in detail.

Rows are inserted by hand with round times, so every expected order, depth, offset and count
below is worked out from the rows themselves; the last tests run real queries through the engine
and check the detail against the span rows the store holds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from observability.store import Store
from observability.traces import (
    ERROR_KEY,
    TraceFilter,
    TraceFilterError,
    build_span_tree,
    count_traces,
    list_traces,
    parse_filter,
    trace_detail,
    trace_id_for_request,
)


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "traces.db", threaded=False)
    yield s
    s.close()


def span(span_id: str, trace_id: str, parent: str | None, name: str, start: float, ms: float, **kw):
    """A spans row starting at ``start`` (unix s) and lasting ``ms`` milliseconds."""
    return {
        "span_id": span_id,
        "trace_id": trace_id,
        "parent_id": parent,
        "name": name,
        "start_ts": start,
        "end_ts": start + ms / 1000,
        "duration_ms": ms,
        "status": kw.pop("status", "ok"),
        "attributes": kw.pop("attributes", {}),
        **kw,
    }


def request(rid: str, ts: float, status: str = "ok", task: str = "game24", latency: float | None = 10.0):
    return {
        "request_id": rid,
        "trace_id": f"t-{rid}",
        "correlation_id": rid,
        "ts": ts,
        "task": task,
        "query": f"query of {rid}",
        "status": status,
        "latency_ms": latency,
        "seed": 7,
        "router": "rules",
        "agents_used": ["hrm"],
    }


def ids(traces) -> list[str]:
    return [t.request.request_id for t in traces]


# ----------------------------------------------------------------------------------------- span tree


def test_tree_is_depth_first_with_siblings_by_start_and_offsets_from_the_first_start():
    rows = [
        span("c", "t", "a", "llm.complete", 100.012, 3.0),
        span("a", "t", "r", "agent.trm", 100.010, 20.0),
        span("r", "t", None, "query", 100.000, 50.0),
        span("b", "t", "r", "agent.hrm", 100.005, 5.0),
    ]
    nodes, notes = build_span_tree(rows)
    # by hand: r is the root; its children by start are b (100.005) then a (100.010); c hangs off a
    assert [(n.span_id, n.depth) for n in nodes] == [("r", 0), ("b", 1), ("a", 1), ("c", 2)]
    assert [n.offset_ms for n in nodes] == pytest.approx([0.0, 5.0, 10.0, 12.0])
    assert [n.duration_ms for n in nodes] == pytest.approx([50.0, 5.0, 20.0, 3.0])
    assert not any(n.orphan for n in nodes) and notes == ()


def test_missing_parents_go_to_the_top_level_and_are_flagged():
    rows = [
        span("r", "t", None, "query", 10.0, 5.0),
        span("x", "t", "gone", "agent.mcts", 9.0, 1.0),  # its parent is not in the trace
        span("y", "t", "x", "llm.complete", 9.5, 0.2),
    ]
    nodes, notes = build_span_tree(rows)
    # top level by start: x (9.0) before r (10.0); y stays under x
    assert [(n.span_id, n.depth, n.orphan) for n in nodes] == [
        ("x", 0, True),
        ("y", 1, False),
        ("r", 0, False),
    ]
    assert [n.offset_ms for n in nodes] == pytest.approx([0.0, 500.0, 1000.0])
    assert len(notes) == 1 and notes[0].startswith("1 span(s) name a parent")


def test_parent_cycles_are_broken_and_every_span_appears_once():
    rows = [
        span("r", "t", None, "query", 1.000, 10.0),
        span("p", "t", "q", "agent.hrm", 1.002, 1.0),  # p and q are each other's parent
        span("q", "t", "p", "agent.trm", 1.001, 1.0),
        span("s", "t", "s", "synthesise", 1.003, 1.0),  # its own parent: a top-level span
    ]
    nodes, notes = build_span_tree(rows)
    # roots by start: r (1.000), s (1.003); then the cycle, entered at its earliest span q (1.001)
    assert [(n.span_id, n.depth) for n in nodes] == [("r", 0), ("s", 0), ("q", 0), ("p", 1)]
    assert sorted(n.span_id for n in nodes) == ["p", "q", "r", "s"]
    assert any("cycle" in note for note in notes)


def test_error_text_is_taken_out_of_the_attributes_and_missing_times_are_unknown():
    rows = [
        span("r", "t", None, "query", 5.0, 2.0, status="error", attributes={ERROR_KEY: "boom", "task": "g"}),
        {"span_id": "n", "trace_id": "t", "parent_id": "r", "name": "agent.hrm"},  # no times at all
    ]
    nodes, _ = build_span_tree(rows)
    root, child = nodes
    assert (root.error, root.attributes, root.status) == ("boom", {"task": "g"}, "error")
    assert (child.depth, child.offset_ms, child.duration_ms, child.status) == (1, None, None, None)


# ----------------------------------------------------------------------------------------- the list


@pytest.fixture
def five(store: Store) -> Store:
    """r1..r5 one per 1000 s; r1 and r2 share the correlation id of a load run, r3 has its own;
    r3 has two spans (10..30 ms and 20..60 ms after 3000 s)."""
    store.submit(
        "requests",
        [
            {**request("r1", 1000.0, "ok", "game24", 10.0), "correlation_id": "load-1-x"},
            {**request("r2", 2000.0, "error", "freeform", 250.0), "correlation_id": "load-1-x"},
            {**request("r3", 3000.0, "ok", "connect4", 40.0), "correlation_id": "corr-abc"},
            request("r4", 4000.0, "invalid", "game24", None),
            request("r5", 5000.0, "cancelled", "tictactoe", 100.0),
        ],
    )
    store.submit(
        "spans",
        [
            span("s31", "t-r3", None, "query", 3000.010, 20.0),
            span("s32", "t-r3", "s31", "agent.hrm", 3000.020, 40.0),
        ],
    )
    return store


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ["r5", "r4", "r3", "r2", "r1"]),
        ({"statuses": ["ok", "error"]}, ["r3", "r2", "r1"]),
        ({"statuses": ["invalid"]}, ["r4"]),
        ({"task": "game24"}, ["r4", "r1"]),
        ({"min_latency_ms": 40}, ["r5", "r3", "r2"]),  # inclusive; r4 has no latency
        ({"max_latency_ms": 100}, ["r5", "r3", "r1"]),
        ({"min_latency_ms": 40, "max_latency_ms": 100}, ["r5", "r3"]),
        ({"window_s": 2500}, ["r5", "r4", "r3"]),  # now = 5000: ts >= 2500
        ({"limit": 2}, ["r5", "r4"]),
        ({"id_text": "r3"}, ["r3"]),  # request id
        ({"id_text": "t-r4"}, ["r4"]),  # trace id
        ({"id_text": "t-r"}, ["r5", "r4", "r3", "r2", "r1"]),  # a prefix of every trace id
        ({"id_text": "corr-a"}, ["r3"]),  # a correlation id, by prefix
        ({"id_text": "load-1-x"}, ["r2", "r1"]),  # a load run's shared correlation id
        ({"id_text": "*"}, []),  # matched literally, not as a wildcard
        ({"id_text": "R3"}, []),  # case-sensitive
        ({"statuses": ["ok"], "task": "connect4", "min_latency_ms": 39.5}, ["r3"]),
    ],
)
def test_filters_include_and_exclude_the_right_requests(five: Store, fields, expected):
    assert ids(list_traces(five, TraceFilter(**fields), now=5000.0)) == expected


def test_list_rows_carry_span_count_and_span_wall_time(five: Store):
    by_id = {t.request.request_id: t for t in list_traces(five, TraceFilter(), now=5000.0)}
    r3 = by_id["r3"]
    # spans 3000.010..3000.030 and 3000.020..3000.060: 2 spans, 60 - 10 = 50 ms
    assert (r3.span_count, r3.span_ms) == (2, pytest.approx(50.0))
    assert (by_id["r1"].span_count, by_id["r1"].span_ms) == (0, None)
    assert (r3.request.task, r3.request.latency_ms, r3.request.agents_used) == ("connect4", 40.0, ("hrm",))
    assert by_id["r4"].request.latency_ms is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"min_latency_ms": 50, "max_latency_ms": 10},
            "minimum latency (50 ms) is above the maximum (10 ms)",
        ),
        ({"min_latency_ms": -1}, "Min latency (ms): Input should be greater than or equal to 0"),
        ({"statuses": ["fine"]}, "Status: Input should be 'ok', 'error', 'invalid' or 'cancelled'"),
        ({"limit": 0}, "Limit: Input should be greater than or equal to 1"),
        ({"id_text": "abc def"}, "Id: an id has no spaces or control characters"),
        ({"window_s": 0}, "Time window (s): Input should be greater than 0"),
        ({"task": "Game 24"}, "Task: String should match pattern"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_bad_filter_input_gets_a_clear_message(fields, message):
    with pytest.raises(TraceFilterError) as info:
        parse_filter(fields)
    assert len(info.value.problems) == 1
    assert message in info.value.problems[0]


def test_blank_widget_values_do_not_filter():
    flt = parse_filter({"task": None, "id_text": "  ", "statuses": ["ok", "ok"], "min_latency_ms": None})
    assert (flt.task, flt.id_text, flt.statuses, flt.min_latency_ms) == (None, None, ("ok",), None)


# ----------------------------------------------------------------------------------------- the detail


def test_unknown_trace_is_none(five: Store):
    assert trace_detail(five, "no-such-trace") is None
    assert trace_id_for_request(five, "no-such-request") is None
    assert trace_id_for_request(five, "r3") == "t-r3"


def test_detail_gathers_spans_logs_routing_and_mcts_runs(store: Store):
    rid, tid = "req1", "t-req1"
    store.submit("requests", {**request(rid, 100.0), "answer": "b2", "verdict": "correct", "quality": 1.0})
    store.submit(
        "spans",
        [
            span("root", tid, None, "query", 100.000, 30.0),
            span("m", tid, "root", "agent.mcts", 100.004, 20.0),
        ],
    )
    store.submit(
        "logs",
        [  # inserted out of order: the detail follows seq
            {"trace_id": tid, "seq": 1, "ts": 100.010, "level": "INFO", "message": "second", "span_id": "m"},
            {
                "trace_id": tid,
                "seq": 0,
                "ts": 100.001,
                "level": "DEBUG",
                "message": "first",
                "span_id": "root",
            },
        ],
    )
    store.submit(
        "routing_decisions",
        [
            {"request_id": rid, "step": 1, "agent": "mcts", "reason": "why", "probabilities": {"mcts": 0.9}},
            {"request_id": rid, "step": 0, "agent": "hrm", "reason": "why", "confidence": 0.25,
             "probabilities": {"hrm": 0.7, "trm": 0.1, "mcts": 0.2}},
        ],
    )  # fmt: skip
    store.record_mcts_run(
        {"run_id": "run1", "request_id": rid, "task": "tictactoe", "position": "X.O/.X./..O",
         "iterations": 80, "seed": 11, "config": {"iterations": 100, "c": 2.0, "selection": "puct"}},
        nodes=[{"node_id": i, "parent_id": i - 1, "depth": i} for i in range(3)],
    )  # fmt: skip
    detail = trace_detail(store, tid)
    assert detail is not None
    assert (detail.request.request_id, detail.request.answer, detail.request.quality) == (rid, "b2", 1.0)
    assert (detail.start_ts, detail.duration_ms) == (100.0, pytest.approx(30.0))
    assert [(s.name, s.depth) for s in detail.spans] == [("query", 0), ("agent.mcts", 1)]
    assert [(x.message, x.span_name) for x in detail.logs] == [("first", "query"), ("second", "agent.mcts")]
    assert [x.offset_ms for x in detail.logs] == pytest.approx([1.0, 10.0])
    assert [(r.step, r.agent, r.confidence) for r in detail.routing] == [(0, "hrm", 0.25), (1, "mcts", None)]
    assert detail.routing[0].probabilities == {"hrm": 0.7, "trm": 0.1, "mcts": 0.2}
    (run,) = detail.mcts_runs
    assert (run.run_id, run.node_count, run.iterations, run.config["iterations"]) == ("run1", 3, 80, 100)


def test_a_trace_without_its_request_row_still_opens(store: Store):
    # spans alone, the root naming its request: routing decisions are found through that attribute
    store.submit("spans", span("r", "lonely", None, "query", 1.0, 2.0, attributes={"request_id": "q9"}))
    store.submit("routing_decisions", {"request_id": "q9", "step": 0, "agent": "trm"})
    detail = trace_detail(store, "lonely")
    assert detail is not None and detail.request is None
    assert [r.agent for r in detail.routing] == ["trm"]
    assert detail.logs == () and detail.mcts_runs == ()


# ----------------------------------------------------------------------------------------- real runs


@pytest.fixture
def engine_runs(tmp_path: Path):
    engine = Engine(load_settings(db_path=tmp_path / "engine.db", metrics_port=0))
    try:
        game = engine.run(
            QueryRequest(query="connect4: 4453", seed=3, mcts_iterations=300, correlation_id="ops-42")
        )
        text = engine.run(QueryRequest(query="How do I investigate high p95 latency?", seed=3))
    finally:
        engine.close()
    store = Store(tmp_path / "engine.db", threaded=False)
    yield store, game, text
    store.close()


def _check_tree_matches_rows(store: Store, trace_id: str):
    detail = trace_detail(store, trace_id)
    rows = {r["span_id"]: r for r in store.spans_for_trace(trace_id)}
    assert detail is not None and rows
    assert sorted(s.span_id for s in detail.spans) == sorted(rows)  # every span exactly once
    depth = {}
    for s in detail.spans:  # depth-first: a parent comes before its children, one level up
        parent = rows[s.span_id]["parent_id"]
        assert s.parent_id == parent
        depth[s.span_id] = 0 if parent is None else depth[parent] + 1
        assert s.depth == depth[s.span_id]
    root = detail.spans[0]
    assert (root.name, root.depth, root.offset_ms) == ("query", 0, 0.0)
    assert [s.depth for s in detail.spans].count(0) == 1
    # its log lines: in sequence, each naming a span of this trace (or none), one correlation id
    log_rows = store.query("SELECT seq, span_id FROM logs WHERE trace_id = ? ORDER BY seq", [trace_id])
    assert log_rows, "the engine records each request's log lines"
    assert [x.seq for x in detail.logs] == [r["seq"] for r in log_rows]
    assert [x.span_name for x in detail.logs] == [rows[r["span_id"]]["name"] if r["span_id"] else None
                                                  for r in log_rows]  # fmt: skip
    assert detail.correlation_ids == (detail.request.correlation_id,)
    return detail


def test_real_game_query_trace(engine_runs):
    store, game, _ = engine_runs
    detail = _check_tree_matches_rows(store, game.trace_id)
    # one agent span per routing step, in order, under the root; then synthesise
    agents = [s.name for s in detail.spans if s.name.startswith("agent.")]
    assert agents == [f"agent.{step.agent}" for step in game.steps]
    searched = {"mcts.search"} if "mcts" in game.agents_used else set()
    assert {s.name for s in detail.spans} == {"query", "route", "synthesise", *agents, *searched}
    assert [s.name for s in detail.spans].count("route") == len(game.steps)  # one per routing decision
    assert all(s.depth == (2 if s.name == "mcts.search" else 1) for s in detail.spans[1:])
    assert [r.agent for r in detail.routing] == [step.agent for step in game.steps]
    assert detail.request.request_id == game.request_id and detail.request.seed == 3
    if "mcts" in game.agents_used:
        assert [r.run_id for r in detail.mcts_runs] == [f"{game.request_id}-mcts"]
    # the list finds it by request id and by its correlation id, and counts its spans
    (found,) = list_traces(store, TraceFilter(id_text=game.request_id))
    assert found.span_count == len(detail.spans)
    assert ids(list_traces(store, TraceFilter(id_text="ops-4"))) == [game.request_id]
    assert detail.correlation_ids == ("ops-42",)


def test_real_freeform_query_trace_nests_llm_calls_under_agents(engine_runs):
    store, _, text = engine_runs
    detail = _check_tree_matches_rows(store, text.trace_id)
    by_id = {s.span_id: s for s in detail.spans}
    llm = [s for s in detail.spans if s.name == "llm.complete"]
    assert llm, "a freeform query asks the (offline) LLM"
    assert all(by_id[s.parent_id].name.startswith("agent.") and s.depth == 2 for s in llm)
    assert "rag.retrieve" in {s.name for s in detail.spans}


def test_query_text_is_matched_literally_and_the_count_is_bounded(store):
    rows = [
        {**request("a", 1.0), "query": "24: 1 2 3 4 100%"},
        {**request("b", 2.0), "query": "24: 1 2 3 4 1000"},
        {**request("c", 3.0), "query": "path a_b\\c"},
        {**request("d", 4.0), "query": "path axb\\\\c"},
    ]
    store.submit("requests", rows)
    store.flush()
    # %, _ and \ match only themselves (as LIKE wildcards "100%" would match b, "a_b" d)
    assert ids(list_traces(store, TraceFilter(query_text="100%"))) == ["a"]
    assert ids(list_traces(store, TraceFilter(query_text="a_b\\c"))) == ["c"]
    assert ids(list_traces(store, TraceFilter(query_text="PATH"))) == ["d", "c"]  # ASCII any case
    assert count_traces(store, TraceFilter(query_text="24:")) == 2
    assert count_traces(store, TraceFilter(limit=1)) == 4  # the limit bounds rows, not the count
    assert count_traces(store, TraceFilter(), cap=2) == 3  # cap + 1: "more than 2"
    with pytest.raises(TraceFilterError, match="Query text"):
        parse_filter({"query_text": "x" * 201})


def test_experiment_and_correlation_filters_match_exactly(store):
    # two experiments with a variant of the same name, and a canary run's requests: a variant
    # alone mixes them, the experiment (or the run's correlation id) separates them
    rows = [
        {**request("a1", 1.0), "experiment": "exp-a", "variant": "treatment"},
        {**request("a2", 2.0), "experiment": "exp-a", "variant": "control"},
        {**request("b1", 3.0), "experiment": "exp-b", "variant": "treatment"},
        {**request("c1", 4.0), "experiment": "cx", "variant": "canary", "correlation_id": "canary-r1"},
        {**request("c2", 5.0), "experiment": "cx", "variant": "canary", "correlation_id": "canary-r2"},
        {**request("c3", 6.0), "experiment": "cx", "variant": "baseline", "correlation_id": "canary-r1"},
    ]
    store.submit("requests", rows)
    store.flush()
    assert ids(list_traces(store, TraceFilter(variant="treatment"))) == ["b1", "a1"]
    assert ids(list_traces(store, TraceFilter(variant="treatment", experiment="exp-a"))) == ["a1"]
    assert ids(list_traces(store, TraceFilter(experiment="exp-b"))) == ["b1"]
    assert ids(list_traces(store, TraceFilter(experiment="exp"))) == []  # exact, not a prefix
    canary_r1 = TraceFilter(variant="canary", correlation_id="canary-r1")
    assert ids(list_traces(store, canary_r1)) == ["c1"]
    assert count_traces(store, TraceFilter(correlation_id="canary-r1")) == 2
    with pytest.raises(TraceFilterError, match="Experiment"):
        parse_filter({"experiment": "no spaces allowed"})
