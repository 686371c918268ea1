"""Every request is recorded once, with its spans, routing decisions and MCTS run."""

from __future__ import annotations

import sqlite3

import pytest
from pydantic import SecretStr

from engine import Engine, QueryError, QueryRequest
from engine.config import load_settings
from engine.faults import Faults, InjectedFault

SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture
def engine(tmp_path):
    settings = load_settings(db_path=tmp_path / "arbor.db", metrics_port=0, openai_api_key=SecretStr(SECRET))
    e = Engine(settings)
    yield e
    e.close()


def _rows(db, sql):
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql)]


def test_requests_spans_and_routing_are_recorded(engine, tmp_path):
    ok = [
        engine.run(QueryRequest(query=q, seed=i))
        for i, q in enumerate(["24: 4 7 8 8", "tictactoe: .../.../...", "What does the HRM agent do?"])
    ]
    with pytest.raises(QueryError):
        engine.run(QueryRequest(query="tictactoe: XXXX"))
    with pytest.raises(InjectedFault):
        list(
            engine.stream(QueryRequest(query="connect4: 4453", seed=1), live=False, faults=Faults(error=True))
        )
    engine.telemetry.flush()
    db = tmp_path / "arbor.db"
    rows = {r["request_id"]: r for r in _rows(db, "select * from requests")}
    assert len(rows) == 5
    assert sorted(r["status"] for r in rows.values()) == ["error", "invalid", "ok", "ok", "ok"]
    for result in ok:
        row = rows[result.request_id]
        assert (row["answer"], row["verdict"], row["trace_id"]) == (
            result.answer,
            result.verdict,
            result.trace_id,
        )
        decisions = _rows(db, f"select * from routing_decisions where request_id = '{result.request_id}'")
        assert [d["agent"] for d in sorted(decisions, key=lambda d: d["step"])] == [
            s.agent for s in result.steps
        ]
        spans = _rows(db, f"select * from spans where trace_id = '{result.trace_id}'")
        names = {s["name"] for s in spans}
        assert "query" in names and {f"agent.{a}" for a in result.agents_used} <= names
        root = next(s for s in spans if s["name"] == "query")
        ids = {s["span_id"] for s in spans}
        assert root["parent_id"] is None
        assert all(s["parent_id"] in ids for s in spans if s is not root)
    opening = ok[1]
    runs = _rows(db, f"select * from mcts_runs where request_id = '{opening.request_id}'")
    if "mcts" in opening.agents_used:
        assert len(runs) == 1 and runs[0]["iterations"] == opening.mcts["iterations"]
    freeform_spans = _rows(db, f"select name from spans where trace_id = '{ok[2].trace_id}'")
    assert {"rag.retrieve", "llm.complete"} <= {s["name"] for s in freeform_spans}
    failed = next(r for r in rows.values() if r["status"] == "error")
    assert "InjectedFault" in failed["error"]


def test_a_configured_key_never_reaches_the_store(engine, tmp_path):
    engine.run(QueryRequest(query=f"Is {SECRET} a key?", seed=1))
    engine.close()
    for path in tmp_path.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path


def test_telemetry_off_writes_nothing(tmp_path):
    e = Engine(load_settings(db_path=tmp_path / "arbor.db", telemetry="off", metrics_port=0))
    e.run(QueryRequest(query="24: 4 7 8 8", seed=1))
    e.close()
    assert not (tmp_path / "arbor.db").exists()
