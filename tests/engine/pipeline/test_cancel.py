"""Cancelling a running query through the real engine: a CancelToken set from the consumer's side
stops the loop at its next boundary (before a step; inside a live search, at its next tree
snapshot), and closing the event stream stops a live search too.  Each cancelled request is
recorded once as ``cancelled`` with the steps it finished; requests answered before it are intact.

Oracle: the events the stream yielded (which steps started, which snapshots came) and the store's
rows, read back with sqlite3.
"""

from __future__ import annotations

import sqlite3
import threading

import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.events import AgentStarted, Consensus, Final, MctsSnapshot
from engine.pipeline import CancelToken, QueryCancelled

# connect4 from an open position: the search cannot be solved early, so 10,000 iterations with a
# snapshot every 50 would yield 200 snapshots if nothing stopped it.
DEEP = QueryRequest(query="connect4: 4453", seed=11, router="rules", mcts_iterations=10_000, max_steps=3)


@pytest.fixture
def engine(tmp_path):
    e = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0, snapshot_every=50))
    yield e
    e.close()


def _rows(engine: Engine, sql: str, *params: object) -> list[dict]:
    engine.telemetry.flush()
    with sqlite3.connect(engine.settings.db_path) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, params)]


def _searching() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "arbor-mcts" and t.is_alive()]


def _answered_first(engine: Engine) -> str:
    """A request answered in full before the cancelled one: its row must survive untouched."""
    result = engine.run(QueryRequest(query="24: 3 3 8 8", seed=7, router="rules", mcts_iterations=200))
    return result.request_id


def test_token_stops_a_live_search_at_its_first_snapshot(engine):
    done_id = _answered_first(engine)
    token = CancelToken()
    seen: list[object] = []
    with pytest.raises(QueryCancelled, match="stopped by the test"):
        for event in engine.stream(DEEP, live=True, cancel=token):
            seen.append(event)
            if isinstance(event, AgentStarted) and event.agent == "mcts":
                token.cancel("stopped by the test")  # before the search's first snapshot (iteration 50)
    started = [e for e in seen if isinstance(e, AgentStarted)]
    assert started and started[-1].agent == "mcts", "the rules router never ran MCTS on this position"
    # the search stopped at its first snapshot boundary: it handed over no snapshot at all
    assert not any(isinstance(e, MctsSnapshot) for e in seen)
    assert not any(isinstance(e, Final) for e in seen)
    assert _searching() == []
    rows = _rows(engine, "select request_id, status, error, seed from requests order by ts")
    assert [(r["status"], r["error"]) for r in rows] == [("ok", None), ("cancelled", "stopped by the test")]
    assert rows[0]["request_id"] == done_id and rows[1]["seed"] == 11
    # the steps before the search finished and are kept; the search's step is not a finished step
    sql = "select step, agent from routing_decisions where request_id = ?"
    steps = _rows(engine, sql, rows[1]["request_id"])
    finished_before = [(e.step, e.agent) for e in started[:-1]]
    assert [(s["step"], s["agent"]) for s in steps][: len(finished_before)] == finished_before


def test_token_stops_before_the_next_step(engine):
    token = CancelToken()
    seen: list[object] = []
    request = QueryRequest(query="tictactoe: X../.../...", seed=5, router="rules", mcts_iterations=300)
    with pytest.raises(QueryCancelled):
        for event in engine.stream(request, live=False, cancel=token):
            seen.append(event)
            if isinstance(event, Consensus):
                assert not event.stop, "the loop stopped after one step: nothing left to cancel"
                token.cancel()
    assert [e.step for e in seen if isinstance(e, AgentStarted)] == [0]  # step 1 never started
    (row,) = _rows(engine, "select request_id, status, error from requests")
    assert (row["status"], row["error"]) == ("cancelled", "cancelled by the caller")
    steps = _rows(engine, "select step from routing_decisions where request_id = ?", row["request_id"])
    assert [s["step"] for s in steps] == [0]


def test_closing_the_stream_stops_a_live_search(engine):
    stream = engine.stream(DEEP, live=True)
    snapshots = 0
    for event in stream:
        if isinstance(event, MctsSnapshot):
            snapshots += 1
            break
    assert snapshots == 1
    stream.close()  # what a console does when its page is stopped or rerun mid-run
    assert _searching() == []  # the worker was told to stop and joined, not left searching
    (row,) = _rows(engine, "select status, error from requests")
    assert (row["status"], row["error"]) == ("cancelled", "the caller stopped reading before the answer")


def test_a_token_is_one_way_and_keeps_its_first_reason():
    token = CancelToken()
    token.check()  # not cancelled: nothing happens
    assert (token.cancelled, token.reason) == (False, "cancelled")
    token.cancel("first")
    token.cancel("second")
    assert (token.cancelled, token.reason) == (True, "first")
    with pytest.raises(QueryCancelled, match="first"):
        token.check()
