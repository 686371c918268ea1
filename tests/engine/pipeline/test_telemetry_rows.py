"""The rows telemetry builds with the schema's row types land in the right columns.

Oracle: the search tree's own structure (a child is one level below its parent and has at most
its parent's visits) and the QueryResult the engine returned.
"""

from __future__ import annotations

import sqlite3

import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.events import Final


@pytest.fixture
def engine(tmp_path):
    e = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0))
    yield e
    e.close()


def _rows(db, sql, *params):
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, params)]


def test_mcts_nodes_and_run_rows_keep_each_value_in_its_column(engine, tmp_path):
    # live: the search keeps tree snapshots, and the last one's nodes are stored
    events = list(
        engine.stream(QueryRequest(query="tictactoe: .../.../...", seed=3, router="rules"), live=True)
    )
    result = next(e.result for e in events if isinstance(e, Final))
    engine.telemetry.flush()
    db = tmp_path / "arbor.db"
    assert "mcts" in result.agents_used
    (run,) = _rows(db, "select * from mcts_runs where request_id = ?", result.request_id)
    assert (run["run_id"], run["task"], run["iterations"]) == (
        f"{result.request_id}-mcts",
        result.task,
        result.mcts["iterations"],
    )
    nodes = {n["node_id"]: n for n in _rows(db, "select * from mcts_nodes where run_id = ?", run["run_id"])}
    assert len(nodes) > 1
    roots = [n for n in nodes.values() if n["parent_id"] is None or n["parent_id"] not in nodes]
    assert len(roots) == 1 and roots[0]["depth"] == 0
    for node in nodes.values():
        if node is roots[0]:
            continue
        parent = nodes[node["parent_id"]]
        assert node["depth"] == parent["depth"] + 1
        assert 0 <= node["visits"] <= parent["visits"]
        assert node["prior"] is None or 0.0 <= node["prior"] <= 1.0
        assert isinstance(node["label"], str)

    (request,) = _rows(db, "select * from requests where request_id = ?", result.request_id)
    assert (request["status"], request["error"], request["trace_id"], request["latency_ms"]) == (
        "ok",
        None,
        result.trace_id,
        result.latency_ms,
    )
    steps = _rows(db, "select * from routing_decisions where request_id = ? order by step", result.request_id)
    assert [(s["step"], s["agent"]) for s in steps] == [(s.index, s.agent) for s in result.steps]
