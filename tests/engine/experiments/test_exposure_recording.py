"""Exposure recording in the engine: a request of an experiment writes its unit's exposure with
its request row (one transaction, first request wins), also when the request is rejected."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine import Engine, QueryError, QueryRequest
from engine.config import load_settings
from engine.experiments import Assignment


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _drain(engine: Engine, request: QueryRequest, **kw: object) -> None:
    for _ in engine.stream(request, live=False, **kw):  # type: ignore[arg-type]
        pass


def test_first_request_of_a_unit_writes_its_exposure_and_later_ones_do_not(tmp_path: Path) -> None:
    db = tmp_path / "e.db"
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    a = Assignment("exp", "alice", 1234, "b")
    try:
        _drain(
            engine, QueryRequest(query="24: 4 7 8 8", seed=1, user_id="alice"), assignment=a, request_id="r-1"
        )
        # a rejected request of the same unit: recorded (invalid) with the labels, exposure unchanged
        with pytest.raises(QueryError):
            _drain(engine, QueryRequest(query="connect4: 9", user_id="alice"), assignment=a, request_id="r-2")
        # a rejected first request of another unit still exposes it
        b = Assignment("exp", "bob", 77, "a")
        with pytest.raises(QueryError):
            _drain(engine, QueryRequest(query="connect4: 9", user_id="bob"), assignment=b, request_id="r-3")
        # labels without a unit: a request row, no exposure
        _drain(engine, QueryRequest(query="24: 1 2 3 4", seed=1), experiment="exp", variant="a")
    finally:
        engine.close()
    assert _rows(db, "SELECT unit, variant, bucket, request_id FROM exposures ORDER BY unit") == [
        ("alice", "b", 1234, "r-1"),
        ("bob", "a", 77, "r-3"),
    ]
    assert _rows(db, "SELECT e.ts = r.ts FROM exposures e JOIN requests r USING (request_id)") == [(1,), (1,)]
    assert _rows(
        db,
        "SELECT request_id, status, experiment, variant FROM requests WHERE request_id LIKE 'r-%' "
        "ORDER BY request_id",
    ) == [
        ("r-1", "ok", "exp", "b"),
        ("r-2", "invalid", "exp", "b"),
        ("r-3", "invalid", "exp", "a"),
    ]
    assert _rows(db, "SELECT COUNT(*) FROM requests WHERE experiment = 'exp' AND user_id IS NULL") == [(1,)]


def test_a_contradicting_assignment_or_bad_request_id_is_refused_before_anything_is_recorded(
    tmp_path: Path,
) -> None:
    db = tmp_path / "r.db"
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    a = Assignment("exp", "alice", 1, "b")
    try:
        with pytest.raises(ValueError, match="unit 'alice'"):
            _drain(engine, QueryRequest(query="24: 4 7 8 8", user_id="bob"), assignment=a)
        with pytest.raises(ValueError, match="contradict"):
            _drain(engine, QueryRequest(query="24: 4 7 8 8", user_id="alice"), assignment=a, variant="a")
        with pytest.raises(ValueError, match="request_id"):
            _drain(engine, QueryRequest(query="24: 4 7 8 8"), request_id="has space")
    finally:
        engine.close()
    assert _rows(db, "SELECT COUNT(*) FROM requests") == [(0,)]
