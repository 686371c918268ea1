"""The store package's parts: row types against the migrated file, the one "served", the lock retry.

Oracles: the columns a fresh file has (read with PRAGMA table_info on our own connection), the
statuses counted by hand, and a lock held by a connection of our own.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlite_utils import Database

from observability.span_record import SpanRecord
from observability.store import (
    ROW_TYPES,
    SERVED_STATUSES,
    RequestRow,
    RoutingRow,
    SpanRow,
    Store,
)
from observability.store.schema import MIGRATIONS, POLICIES
from observability.store.transactions import LockRetry


def _columns(path: Path, table: str) -> tuple[str, ...]:
    with sqlite3.connect(path) as conn:
        return tuple(r[1] for r in conn.execute(f"PRAGMA table_info({table})"))


def test_row_types_list_the_columns_of_a_migrated_file_in_order(tmp_path: Path) -> None:
    path = tmp_path / "arbor.db"
    Store(path, threaded=False).close()
    assert set(ROW_TYPES) == {
        "requests", "spans", "routing_decisions", "logs", "mcts_runs", "mcts_nodes", "exposures"
    }  # fmt: skip
    for table, row_type in ROW_TYPES.items():
        assert row_type._fields == _columns(path, table), table  # type: ignore[attr-defined]
    # the tracer's span rows have the store's columns, in its order
    record = SpanRecord("t" * 32, "s" * 16, None, "query", 1.0, 2.0, 1000.0, "ok")
    assert tuple(record.to_row()) == SpanRow._fields


def test_row_type_defaults_match_the_table_defaults_and_unknown_columns_fail() -> None:
    row = RequestRow(request_id="r1")._asdict()
    assert row["status"] == "ok" and row["simulated"] == 0  # the requests table's own defaults
    assert [k for k, v in row.items() if v is not None] == ["request_id", "status", "simulated"]
    with pytest.raises(TypeError):
        RoutingRow(request_id="r1", step=0, agentt="hrm")  # type: ignore[call-arg]


def test_a_row_built_from_a_row_type_round_trips(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db", threaded=False) as store:
        store.submit("requests", RequestRow(request_id="r1", ts=5.0, agents_used=["hrm", "trm"])._asdict())
        got = store.request("r1")
    assert got is not None
    assert (got["ts"], got["agents_used"], got["status"], got["error"]) == (5.0, ["hrm", "trm"], "ok", None)


def test_served_is_ok_and_error_in_every_read(tmp_path: Path) -> None:
    assert SERVED_STATUSES == ("ok", "error")
    assert set(SERVED_STATUSES) < POLICIES["requests"].choices["status"]
    statuses = ["ok", "ok", "error", "invalid", "cancelled", "cancelled"]
    with Store(tmp_path / "s.db", threaded=False) as store:
        for i, status in enumerate(statuses):
            store.record_request({"request_id": f"r{i}", "ts": 100.0 + i, "status": status, "latency_ms": i})
        reads = store.reads
        served = reads.served_requests(0.0, 1000.0)
        assert sorted(r["status"] for r in served) == ["error", "ok", "ok"]
        assert sorted(reads.served_latencies_ms(0.0, 1000.0)) == [0.0, 1.0, 2.0]
        totals = {r["status"]: r["n"] for r in reads.status_totals(0.0, 1000.0)}
        assert totals == {"ok": 2, "error": 1, "invalid": 1, "cancelled": 2}
        assert reads.request_facts() == (6, 105.0)
        assert reads.served_requests(101.0, 102.0) == [{"ts": 101.0, "status": "ok", "latency_ms": 1.0}]


# ----------------------------------------------------------------------------- the lock retry


def test_lock_retry_retries_transient_errors_and_counts_them(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    retries: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "done"

    with caplog.at_level(logging.WARNING, logger="observability.store"):
        assert LockRetry(Path("x.db"), lambda: retries.append(1))(flaky) == "done"
    assert (len(calls), len(retries)) == (3, 2)
    waits = [r.getMessage() for r in caplog.records if "busy" in r.getMessage()]
    assert waits == [
        "store x.db busy (database is locked); retrying in 0.02s",
        "store x.db busy (database is locked); retrying in 0.04s",
    ]


def test_lock_retry_raises_other_errors_at_once_and_locks_beyond_the_budget() -> None:
    retries: list[int] = []
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise sqlite3.OperationalError("no such table: nope")

    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        LockRetry(Path("x.db"), lambda: retries.append(1))(broken)
    assert (len(calls), retries) == (1, [])

    def locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError, match="locked"):  # a budget smaller than the first wait
        LockRetry(Path("x.db"), lambda: retries.append(1), budget_s=0.01)(locked)
    assert retries == []


def test_store_write_waits_out_a_lock_held_beyond_its_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    store = Store(path, threaded=False, busy_timeout_ms=0)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection
    errors: list[BaseException] = []

    def write() -> None:
        try:
            store.record_request({"request_id": "r1", "ts": 1.0})
        except BaseException as exc:
            errors.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 20  # a bound on failure only: the condition is behavioural
    while store.stats.lock_retries == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert store.stats.lock_retries >= 1  # the write hit the lock and is being retried
    holder.execute("COMMIT")
    writer.join(30)
    holder.close()
    assert errors == [] and not writer.is_alive()
    assert store.request("r1") is not None
    store.close()


def _store_before(path: Path, migration: str) -> Database:
    """A store file at ``path`` migrated up to (not including) the migration named ``migration``."""
    number = [name for name, _ in MIGRATIONS].index(migration) + 1
    db = Database(sqlite3.connect(path, isolation_level=None))
    db.conn.execute("BEGIN")
    for _, apply in MIGRATIONS[: number - 1]:
        apply(db)
    db.conn.execute(f"PRAGMA user_version = {number - 1}")
    db.conn.execute("COMMIT")
    return db


def test_request_json_migration_adds_the_column_and_keeps_older_rows_null(tmp_path: Path) -> None:
    """The request_json migration (issue 13): a file migrated from before it keeps its rows, their
    request_json is NULL, and new rows can carry the JSON."""
    from observability.store.request_json import NAME

    path = tmp_path / "before.db"
    db = _store_before(path, NAME)
    db.conn.execute("INSERT INTO requests (request_id, ts, status) VALUES ('old', 1.0, 'ok')")
    db.conn.close()
    with Store(path) as store:
        row = RequestRow(request_id="new", ts=2.0, request_json='{"query": "q"}')
        store.submit("requests", row._asdict())
    with sqlite3.connect(path) as con:
        rows = dict(con.execute("SELECT request_id, request_json FROM requests").fetchall())
    assert rows == {"old": None, "new": '{"query": "q"}'}


def test_experiment_status_index_migration_keeps_the_counts_and_covers_them(tmp_path: Path) -> None:
    """Schema v15: a store from before it is migrated; the Experiments list's per-variant,
    per-status counts equal a count of the rows by hand and come from the index alone."""
    import collections

    from observability.store.experiment_runs import recorded_units
    from observability.store.experiment_status_index import NAME

    path = tmp_path / "before.db"
    db = _store_before(path, NAME)
    rows = [
        (f"r{i}", float(i), status, exp, variant)
        for i, (status, exp, variant) in enumerate(
            [("ok", "e1", "a"), ("error", "e1", "a"), ("ok", "e1", "b"), ("invalid", "e1", "b")] * 3
            + [("ok", "e2", "a")] * 4
        )
    ]
    db.conn.executemany(
        "INSERT INTO requests (request_id, ts, status, experiment, variant) VALUES (?, ?, ?, ?, ?)", rows
    )
    db.conn.close()
    Store(path).close()  # migrates
    with sqlite3.connect(path) as con:
        counts = recorded_units(con, "e1")
        plan = con.execute(
            "EXPLAIN QUERY PLAN SELECT variant, status, COUNT(*) FROM requests WHERE experiment = ?"
            " GROUP BY variant, status",
            ("e1",),
        ).fetchall()
        indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    by_hand = collections.Counter((v, s) for _, _, s, e, v in rows if e == "e1")
    assert counts == {
        v: {"units": 0, **{s: n for (v2, s), n in by_hand.items() if v2 == v}} for v in ("a", "b")
    }
    assert "COVERING INDEX idx_requests_experiment_status" in plan[0][-1]
    assert "idx_requests_experiment" not in indexes
