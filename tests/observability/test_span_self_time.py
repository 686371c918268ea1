"""Self time and untraced gaps of spans: a synthetic tree worked out by hand, then real requests
whose root duration must equal the sum of the self times of all their spans."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.events import Final, MctsSnapshot
from observability.store import Store
from observability.traces import build_span_tree, trace_detail, untraced_notes, waterfall_rows
from tests.observability.test_traces import span

T0 = 1_000.0  # the root starts here (unix s); every time below is ms after it


def tree():
    """root 0-100 ms; A 10-40 (with A1 15-25), B 30-60 (overlaps A), C 80-120 (ends after root)."""
    rows = [
        span("r", "t", None, "root", T0, 100.0),
        span("a", "t", "r", "A", T0 + 0.010, 30.0),
        span("a1", "t", "a", "A1", T0 + 0.015, 10.0),
        span("b", "t", "r", "B", T0 + 0.030, 30.0),
        span("c", "t", "r", "C", T0 + 0.080, 40.0),
    ]
    nodes, _ = build_span_tree(rows)
    return {n.name: n for n in nodes}, nodes


def test_self_time_and_gaps_of_a_synthetic_tree():
    by, _ = tree()
    # root: children cover 10-60 (A and B merged) and 80-100 (C clipped) = 70 ms of 100
    assert by["root"].self_ms == pytest.approx(30.0)
    assert [(round(o, 6), round(d, 6)) for o, d in by["root"].gaps] == [(0.0, 10.0), (60.0, 20.0)]
    # A: 30 ms, A1 covers 15-25 -> gaps 10-15 and 25-40
    assert by["A"].self_ms == pytest.approx(20.0)
    assert [(round(o, 6), round(d, 6)) for o, d in by["A"].gaps] == [(10.0, 5.0), (25.0, 15.0)]
    # leaves: their whole duration is their own (traced) time, no gaps
    for leaf, ms in (("A1", 10.0), ("B", 30.0), ("C", 40.0)):
        assert by[leaf].self_ms == pytest.approx(ms) and by[leaf].gaps == ()


def test_waterfall_rows_interleave_gaps_with_children_by_time():
    _, nodes = tree()
    rows = waterfall_rows(nodes)
    got = [(r.label, r.depth, round(r.offset_ms, 6), round(r.duration_ms, 6)) for r in rows]
    assert got == [
        ("root", 0, 0.0, 100.0),
        ("untraced", 1, 0.0, 10.0),
        ("A", 1, 10.0, 30.0),
        ("untraced", 2, 10.0, 5.0),
        ("A1", 2, 15.0, 10.0),
        ("untraced", 2, 25.0, 15.0),
        ("B", 1, 30.0, 30.0),
        ("untraced", 1, 60.0, 20.0),
        ("C", 1, 80.0, 40.0),
    ]
    assert [r.parent.name for r in rows if r.span is None] == ["root", "A", "A", "root"]
    # a floor of 9 ms drops the small gap (5 ms) only
    floored = waterfall_rows(nodes, 9.0)
    assert [round(r.duration_ms, 6) for r in floored if r.span is None] == [10.0, 15.0, 20.0]


def test_a_span_without_times_has_no_self_time():
    rows = [span("r", "t", None, "root", T0, 10.0), {**span("x", "t", "r", "x", T0, 1.0), "start_ts": None}]
    nodes, _ = build_span_tree(rows)
    assert nodes[0].self_ms == pytest.approx(10.0)  # a child without times covers nothing
    assert nodes[1].self_ms is None and nodes[1].gaps == ()


@pytest.fixture
def engine(tmp_path: Path):
    e = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0))
    yield e
    e.close()


def _recorded(engine, db, trace_id: str):
    """The trace ``trace_id`` as the store holds it once the engine's telemetry is flushed."""
    engine.telemetry.flush()
    store = Store(db, threaded=False)
    try:
        detail = trace_detail(store, trace_id)
    finally:
        store.close()
    assert detail is not None
    return detail


@pytest.mark.parametrize(
    ("query", "router", "live"),
    [
        ("connect4: 4453", "gru", True),
        ("What does the HRM agent do?", "rules", False),
        ("tictactoe: X.O/.X./...", "hybrid", True),
    ],
)
def test_root_duration_is_the_sum_of_self_times(engine, tmp_path, query, router, live):
    result = None
    for event in engine.stream(QueryRequest(query=query, seed=3, router=router), live=live):
        if isinstance(event, Final):
            result = event.result
    assert result is not None
    detail = _recorded(engine, tmp_path / "arbor.db", result.trace_id)
    spans = detail.spans
    root = spans[0]
    assert root.name == "query" and all(s.depth > 0 for s in spans[1:])
    # leaves are traced work, a parent's self time is its untraced gaps: together the root.
    # Gaps come from unix-second timestamps (float64 steps of ~0.24 µs today), durations from
    # the monotonic clock: allow 1 µs of rounding per span.
    tol = 1e-3 * len(spans)
    assert root.duration_ms == pytest.approx(sum(s.self_ms for s in spans), abs=tol)
    leaves = sum(s.duration_ms for s in spans if not any(x.parent_id == s.span_id for x in spans))
    gaps = sum(d for s in spans for _, d in s.gaps)
    assert root.duration_ms == pytest.approx(leaves + gaps, abs=tol)
    for s in spans:
        if s.gaps:
            assert s.self_ms == pytest.approx(sum(d for _, d in s.gaps))
    assert sum(1 for s in spans if s.name == "route") == len(result.steps)


def test_live_mcts_span_explains_the_time_the_caller_held_the_stream(engine, tmp_path):
    """The console draws each live tree snapshot; the agent span stays open for it.  A caller that
    takes 5 ms a snapshot makes that visible: the notes name the snapshots and the held time."""
    result, taken = None, 0
    for event in engine.stream(QueryRequest(query="connect4: 4453", seed=1, router="rules"), live=True):
        if isinstance(event, MctsSnapshot):
            taken += 1
            time.sleep(0.005)
        if isinstance(event, Final):
            result = event.result
    assert result is not None and taken > 0
    detail = _recorded(engine, tmp_path / "arbor.db", result.trace_id)
    agent = next(s for s in detail.spans if s.name == "agent.mcts")
    search = next(s for s in detail.spans if s.name == "mcts.search")
    assert search.parent_id == agent.span_id
    assert agent.attributes["snapshots_streamed"] == taken
    assert agent.attributes["caller_ms"] >= taken * 5.0  # slept at least that long at the yields
    notes = untraced_notes(detail.spans, result.latency_ms)
    assert any(f"taking {taken} tree snapshot(s)" in n and "agent.mcts lasted" in n for n in notes)


def test_the_root_span_says_how_long_the_caller_held_each_event(engine, tmp_path):
    """A caller that takes 5 ms per event (as the console does, drawing each step) leaves that time
    inside the query span and outside every child; the root records it and the notes say so."""
    result, taken = None, 0
    for event in engine.stream(QueryRequest(query="24: 4 7 8 8", seed=2, router="rules"), live=False):
        if isinstance(event, Final):
            result = event.result
        else:
            taken += 1
            time.sleep(0.005)
    assert result is not None
    detail = _recorded(engine, tmp_path / "arbor.db", result.trace_id)
    root = detail.spans[0]
    assert root.attributes["events_streamed"] == taken  # every event before Final
    assert root.attributes["caller_ms"] >= taken * 5.0
    assert root.self_ms >= taken * 5.0  # held outside every child span: untraced time of the root
    notes = untraced_notes(detail.spans, result.latency_ms)
    assert any(n.startswith("query lasted") and f"over {taken} event(s)" in n for n in notes), notes
