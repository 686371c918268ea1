"""``ARBOR_DURABILITY``: when a request's rows are committed relative to ``Engine.run`` returning.

The store here would wait an hour to fill a batch (``flush_interval_s=3600``), so in
``async`` mode nothing is committed before a flush, and in ``commit`` mode only the
request's own wait can have committed its rows.  Rows are read through separate
``sqlite3`` connections.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine import Engine, QueryError, QueryRequest
from engine.config import ConfigError, load_settings
from engine.events import Final
from engine.telemetry import Telemetry
from engine.wiring import build_telemetry
from observability.store import Store
from observability.tracing import Tracer


def _count(db: Path, sql: str, *params: object) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql, params).fetchone()[0])
    finally:
        conn.close()


def _engine(tmp_path: Path, durability: str) -> tuple[Engine, Path]:
    db = tmp_path / f"{durability}.db"
    store = Store(db, flush_interval_s=3600.0, batch_size=1_000_000)
    telemetry = Telemetry(store=store, tracer=Tracer(), durability=durability)  # type: ignore[arg-type]
    return Engine(load_settings(db_path=db, metrics_port=0), telemetry=telemetry), db


def test_commit_mode_run_returns_after_the_request_rows_are_committed(tmp_path: Path) -> None:
    engine, db = _engine(tmp_path, "commit")
    try:
        for seed, query in enumerate(["24: 4 7 8 8", "tictactoe: X.O/.X./..O", "connect4: 4453"]):
            result = engine.run(QueryRequest(query=query, seed=seed))
            rid, tid = result.request_id, result.trace_id
            assert _count(db, "SELECT count(*) FROM requests WHERE request_id = ?", rid) == 1
            assert _count(db, "SELECT count(*) FROM routing_decisions WHERE request_id = ?", rid) == len(
                result.steps
            )
            assert _count(db, "SELECT count(*) FROM spans WHERE trace_id = ? AND name = 'query'", tid) == 1
            searched = "mcts" in result.agents_used
            assert _count(db, "SELECT count(*) FROM mcts_runs WHERE request_id = ?", rid) == int(searched)
    finally:
        engine.close()


def test_commit_mode_stream_yields_final_after_the_commit_and_failures_wait_too(tmp_path: Path) -> None:
    engine, db = _engine(tmp_path, "commit")
    try:
        seen = []
        for event in engine.stream(QueryRequest(query="24: 1 2 3 4", seed=3), live=False):
            if isinstance(event, Final):
                sql = "SELECT count(*) FROM requests WHERE request_id = ?"
                seen.append(_count(db, sql, event.result.request_id))
        assert seen == [1]
        with pytest.raises(QueryError):
            engine.run(QueryRequest(query="tictactoe: XXXX"))
        assert _count(db, "SELECT count(*) FROM requests WHERE status = 'invalid'") == 1
    finally:
        engine.close()


def test_async_mode_returns_before_the_commit_and_close_flushes_everything(tmp_path: Path) -> None:
    engine, db = _engine(tmp_path, "async")
    ids = [engine.run(QueryRequest(query="24: 4 7 8 8", seed=s)).request_id for s in range(5)]
    assert _count(db, "SELECT count(*) FROM requests") == 0  # queued: the batch is still filling
    engine.close()
    placeholders = ",".join("?" * len(ids))
    assert _count(db, f"SELECT count(*) FROM requests WHERE request_id IN ({placeholders})", *ids) == 5


def test_settings_choose_the_mode_and_the_backlog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_DURABILITY", "Commit")
    monkeypatch.setenv("ARBOR_STORE_MAX_BACKLOG", "17")
    settings = load_settings(db_path=tmp_path / "s.db", metrics_port=0)
    assert (settings.durability, settings.store_max_backlog) == ("commit", 17)
    telemetry = build_telemetry(settings)
    try:
        assert telemetry.durability == "commit"
        assert telemetry.store is not None and telemetry.store.max_backlog == 17
    finally:
        telemetry.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ARBOR_DURABILITY", "sometimes"),
        ("ARBOR_STORE_MAX_BACKLOG", "0"),
        ("ARBOR_STORE_MAX_BACKLOG", "many"),
    ],
)
def test_bad_durability_settings_name_their_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_defaults_are_async_with_a_backlog_of_2000(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBOR_DURABILITY", raising=False)
    monkeypatch.delenv("ARBOR_STORE_MAX_BACKLOG", raising=False)
    settings = load_settings()
    assert (settings.durability, settings.store_max_backlog) == ("async", 2000)


def test_telemetry_rejects_an_unknown_mode() -> None:
    with pytest.raises(ValueError, match="durability"):
        Telemetry(durability="eventually")  # type: ignore[arg-type]
