"""The SQLite telemetry store: schema and migrations, round trips, validation, flush and close.

Expected values are written out by hand; the file is read back through separate
``sqlite3`` connections, not through the store, wherever durability is the point.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from observability.store import SCHEMA_VERSION, SchemaError, Store, StoreError

ROOT = Path(__file__).resolve().parents[2]

ALL_TABLES = {
    "schema_meta", "requests", "spans", "routing_decisions", "mcts_runs", "mcts_nodes", "mcts_snapshots",
    "golden_runs", "experiments", "exposures", "flags", "alerts", "logs",
}  # fmt: skip


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection of our own, independent of the store."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    return conn


def count(path: Path, table: str) -> int:
    with raw(path) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "arbor.db"


@pytest.fixture
def store(db_path: Path):
    s = Store(db_path)
    yield s
    s.close()


# ----------------------------------------------------------------------------- schema


def test_new_file_gets_the_current_schema_wal_and_indexes(store: Store, db_path: Path) -> None:
    conn = raw(db_path)  # never a literal version: other changes append migrations
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= ALL_TABLES
    meta = [tuple(r)[:2] for r in conn.execute("SELECT version, name FROM schema_meta ORDER BY version")]
    assert [v for v, _ in meta] == list(range(1, SCHEMA_VERSION + 1))
    assert {"request_rollups", "request_rollups_hourly", "request_rollups_daily"} <= tables

    def indexed(table: str) -> list[list[str]]:
        names = [r[1] for r in conn.execute(f"PRAGMA index_list({table})")]
        return [[c[2] for c in conn.execute(f"PRAGMA index_info({n})")] for n in names]

    assert ["ts"] in indexed("requests")
    assert ["task"] in indexed("requests")
    assert ["trace_id"] in indexed("spans")
    # routing_decisions(request_id) is served by the leading column of its primary key
    assert any(cols[0] == "request_id" for cols in indexed("routing_decisions"))
    request_cols = {r[1] for r in conn.execute("PRAGMA table_info(requests)")}
    assert {"request_id", "trace_id", "ts", "quality", "agents_used", "simulated", "tokens", "cost_usd"} <= (
        request_cols
    )
    conn.close()
    assert store.schema_version == SCHEMA_VERSION


def test_migrates_a_version_1_file_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE schema_meta (version INTEGER PRIMARY KEY, name TEXT, applied_at FLOAT);
        CREATE TABLE requests (request_id TEXT PRIMARY KEY, trace_id TEXT, ts FLOAT NOT NULL, task TEXT,
            query TEXT, answer TEXT, answer_kind TEXT, verdict TEXT, quality FLOAT, confidence FLOAT,
            agents_used TEXT, stop_reason TEXT, latency_ms FLOAT, seed INTEGER, router TEXT, provider TEXT,
            status TEXT NOT NULL DEFAULT 'ok', error TEXT, user_id TEXT);
        CREATE INDEX idx_requests_ts ON requests(ts);
        CREATE TABLE spans (span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_id TEXT,
            name TEXT NOT NULL, start_ts FLOAT, end_ts FLOAT, duration_ms FLOAT, status TEXT,
            attributes TEXT, correlation_id TEXT);
        CREATE TABLE routing_decisions (request_id TEXT, step INTEGER, agent TEXT NOT NULL, reason TEXT,
            probabilities TEXT, features TEXT, confidence FLOAT, latency_ms FLOAT,
            PRIMARY KEY (request_id, step));
        INSERT INTO schema_meta VALUES (1, 'core request telemetry', 100.0);
        INSERT INTO requests (request_id, ts, task, answer, agents_used) VALUES
            ('old-1', 1000.0, 'game24', '8/(3-8/3)', '["hrm"]');
        PRAGMA user_version = 1;
        """
    )
    conn.commit()
    conn.close()

    with Store(path) as store:
        store.record_request({"request_id": "new-1", "ts": 2000.0, "experiment": "exp", "variant": "b"})
        store.record_mcts_run({"run_id": "run-1", "ts": 2000.0, "iterations": 5})
        store.flush()

    conn = raw(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_meta ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    old = dict(conn.execute("SELECT * FROM requests WHERE request_id = 'old-1'").fetchone())
    assert old["answer"] == "8/(3-8/3)" and old["simulated"] == 0 and old["experiment"] is None
    new = dict(conn.execute("SELECT * FROM requests WHERE request_id = 'new-1'").fetchone())
    assert (new["experiment"], new["variant"]) == ("exp", "b")
    assert conn.execute("SELECT iterations FROM mcts_runs").fetchone()[0] == 5
    conn.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE requests (request_id TEXT PRIMARY KEY)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="99"):
        Store(path)
    with raw(path) as conn:  # untouched
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "corpus.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE passages (id INTEGER PRIMARY KEY, text TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaError, match="not an Arbor telemetry store"):
        Store(path)
    with raw(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"passages"}


def test_memory_path_is_refused() -> None:
    with pytest.raises(ValueError, match="file"):
        Store(":memory:")


# ----------------------------------------------------------------------------- round trips

REQUEST = {
    "request_id": "req-1", "trace_id": "trace-1", "ts": 1_700_000_000.25, "task": "game24",
    "query": "24: 4 7 8 8", "answer": "(7-8/8)*4", "answer_kind": "expression", "verdict": "correct",
    "quality": 1.0, "confidence": 0.75, "agents_used": ["hrm", "mcts"], "stop_reason": "verified",
    "latency_ms": 12.5, "seed": 0, "router": "hybrid", "provider": "offline", "status": "ok", "error": None,
    "user_id": "u-7", "experiment": "router-test", "variant": "gru", "simulated": 1, "tokens": 0,
    "cost_usd": 0.0, "correlation_id": "load-1", "fallback_from": "openai",
    "fallback_error": "ProviderUnavailable: openai: HTTP 500 from POST http://127.0.0.1:9/v1/chat/completions",
    "request_json": '{"query": "24: 4 7 8 8", "seed": 0}',
    "flags": "a-flag,b-flag",
}  # fmt: skip


def test_request_round_trip(store: Store) -> None:
    store.record_request(REQUEST)
    store.flush()
    assert store.request("req-1") == REQUEST
    assert store.request("missing") is None
    assert store.count("requests") == 1


def test_unknown_quality_stays_null_and_defaults_apply(store: Store, db_path: Path) -> None:
    store.record_request({"request_id": "r", "ts": 5.0, "task": "freeform", "quality": float("nan")})
    store.flush()
    with raw(db_path) as conn:
        row = dict(conn.execute("SELECT * FROM requests").fetchone())
    assert row["quality"] is None and row["status"] == "ok" and row["simulated"] == 0


def test_clock_stamps_rows_without_ts(db_path: Path) -> None:
    with Store(db_path, clock=lambda: 86_400.5) as store:
        store.record_request({"request_id": "r"})
        store.submit("exposures", {"experiment": "e", "unit": "u", "request_id": "r", "variant": "a"})
        store.flush()
        assert store.request("r")["ts"] == 86_400.5
        assert store.query("SELECT ts FROM exposures") == [{"ts": 86_400.5}]


def test_span_and_routing_round_trips(store: Store) -> None:
    spans = [
        {"span_id": "b", "trace_id": "t", "parent_id": "a", "name": "agent.hrm", "start_ts": 2.0,
         "end_ts": 2.5, "duration_ms": 500.0, "status": "ok", "attributes": {"k": [1, 2]},
         "correlation_id": "c"},
        {"span_id": "a", "trace_id": "t", "parent_id": None, "name": "query", "start_ts": 1.0,
         "end_ts": 3.0, "duration_ms": 2000.0, "status": "error", "attributes": '{"task":"game24"}',
         "correlation_id": "c"},
        {"span_id": "z", "trace_id": "other", "name": "query"},
    ]  # fmt: skip
    routing = [
        {"request_id": "r", "step": 1, "agent": "mcts", "reason": "fallback: confidence 0.2 < 0.3",
         "probabilities": {"hrm": 0.2, "trm": 0.1, "mcts": 0.7}, "features": [0.0] * 10,
         "confidence": 0.7, "latency_ms": 0.25},
        {"request_id": "r", "step": 0, "agent": "hrm", "reason": "router", "probabilities": None},
    ]  # fmt: skip
    store.record_spans(spans)
    store.record_routing(routing)
    store.flush()
    got = store.spans_for_trace("t")
    assert [s["span_id"] for s in got] == ["a", "b"]  # by start time
    assert got[0]["attributes"] == {"task": "game24"} and got[0]["status"] == "error"
    assert got[1] == spans[0]
    decisions = store.routing_for_request("r")
    assert [d["step"] for d in decisions] == [0, 1]
    assert decisions[1]["probabilities"] == {"hrm": 0.2, "trm": 0.1, "mcts": 0.7}
    assert decisions[1]["features"] == [0.0] * 10
    assert decisions[0]["probabilities"] is None


def test_mcts_run_round_trip_with_nodes_and_snapshots(store: Store, db_path: Path) -> None:
    run = {"run_id": "m1", "request_id": "r", "ts": 10.0, "task": "tictactoe", "position": "X.O/.X./..O",
           "iterations": 200, "seed": 7, "best_action": "c2", "root_value": 0.25,
           "termination_reason": "iterations", "tree_size": 3, "cache_hit_rate": 0.5, "elapsed_ms": 4.0,
           "config": {"c": 1.414, "selection": "ucb1"}}  # fmt: skip
    nodes = [
        {"node_id": 0, "parent_id": None, "depth": 0, "label": "root", "visits": 200, "value": 50.0},
        {"node_id": 1, "parent_id": 0, "depth": 1, "label": "c2", "visits": 150, "value": 60.0, "prior": 0.5},
        {"node_id": 2, "parent_id": 0, "depth": 1, "label": "a3", "visits": 50, "value": -10.0},
    ]
    snaps = [
        {"iteration": 100, "payload": {"pv": ["c2"]}},
        {"iteration": 200, "payload": {"pv": ["c2", "a1"]}},
    ]
    assert store.record_mcts_run(run, nodes, snaps) == 6
    store.flush()
    with raw(db_path) as conn:
        got = dict(conn.execute("SELECT * FROM mcts_runs").fetchone())
        assert json.loads(got.pop("config")) == {"c": 1.414, "selection": "ucb1"}
        assert got == {k: v for k, v in run.items() if k != "config"}
        rows = conn.execute(
            "SELECT run_id, node_id, parent_id, visits, prior FROM mcts_nodes ORDER BY node_id"
        )
        assert [tuple(r) for r in rows] == [
            ("m1", 0, None, 200, None),
            ("m1", 1, 0, 150, 0.5),
            ("m1", 2, 0, 50, None),
        ]
        payloads = conn.execute("SELECT iteration, payload FROM mcts_snapshots ORDER BY iteration").fetchall()
        assert [(i, json.loads(p)) for i, p in payloads] == [
            (100, {"pv": ["c2"]}),
            (200, {"pv": ["c2", "a1"]}),
        ]


def test_golden_experiment_exposure_flag_and_alert_rows(store: Store) -> None:
    store.submit(
        "golden_runs",
        {
            "run_id": "g1",
            "golden_id": "g24-basic",
            "ts": 1.0,
            "status": "regression",
            "first_divergence": "span 3: agent.trm != agent.mcts",
            "diff": {"spans": 1},
        },
    )
    store.submit(
        "experiments", {"experiment": "e1", "name": "router", "variants": [{"name": "a", "weight": 50}]}
    )
    store.submit("experiments", {"experiment": "e1", "status": "running"})  # upsert keeps name/variants
    store.submit(
        "exposures",
        [
            {"experiment": "e1", "unit": f"u{i}", "request_id": f"r{i}", "variant": "a", "ts": 1.0}
            for i in range(3)
        ],
    )
    store.submit("flags", {"flag": "gru-router", "rollout_pct": 25.0, "targeting": {"task": ["game24"]}})
    store.submit("flags", {"flag": "gru-router", "kill_switch": True})
    store.submit(
        "alerts", {"alert_id": "a1", "name": "page-1h", "severity": "page", "ts": 5.0, "burn_rate": 15.0}
    )
    store.submit("alerts", {"alert_id": "a1", "state": "resolved", "resolved_ts": 9.0})
    store.flush()
    exp = store.query("SELECT experiment, name, status, variants FROM experiments")
    assert exp == [{"experiment": "e1", "name": "router", "status": "running",
                    "variants": '[{"name":"a","weight":50}]'}]  # fmt: skip
    assert store.count("exposures") == 3
    flag = store.query("SELECT enabled, rollout_pct, targeting, kill_switch FROM flags")
    assert flag == [{"enabled": 1, "rollout_pct": 25.0, "targeting": '{"task":["game24"]}', "kill_switch": 1}]
    alert = store.query("SELECT name, state, ts, resolved_ts, burn_rate FROM alerts")
    assert alert == [
        {"name": "page-1h", "state": "resolved", "ts": 5.0, "resolved_ts": 9.0, "burn_rate": 15.0}
    ]
    golden = store.query("SELECT status, diff FROM golden_runs")
    assert golden == [{"status": "regression", "diff": '{"spans":1}'}]


def test_requests_frame_filters_by_time_task_and_limit(store: Store) -> None:
    rows = [("a", 100.0, "game24"), ("b", 200.0, "tictactoe"), ("c", 300.0, "game24"), ("d", 400.0, "game24")]
    store.record_request({"request_id": "late-first", "ts": 500.0, "task": "connect4"})
    for rid, ts, task in rows:
        store.record_request({"request_id": rid, "ts": ts, "task": task})
    store.flush()

    def ids(**kw: object) -> list[str]:
        return [r["request_id"] for r in store.requests_frame(**kw)]

    assert ids() == ["a", "b", "c", "d", "late-first"]
    assert ids(since_ts=200.0, until_ts=400.0) == ["b", "c"]  # since inclusive, until exclusive
    assert ids(task="game24") == ["a", "c", "d"]
    assert ids(task="game24", limit=2) == ["c", "d"]  # the most recent two, oldest first
    assert ids(since_ts=1000.0) == []


def test_numpy_enum_and_bool_values_are_stored_as_plain_values(store: Store) -> None:
    class Verdict(enum.Enum):
        CORRECT = "correct"

    class Kind(enum.StrEnum):
        EXPRESSION = "expression"

    store.record_request(
        {
            "request_id": "np",
            "ts": np.float64(3.5),
            "seed": np.int64(42),
            "confidence": np.float32(0.5),
            "verdict": Verdict.CORRECT,
            "simulated": True,
            "answer_kind": Kind.EXPRESSION,
            "agents_used": np.array(["hrm", "trm"]),
        }
    )
    store.flush()
    row = store.request("np")
    assert (row["ts"], row["seed"], row["confidence"], row["verdict"], row["simulated"]) == (
        3.5, 42, 0.5, "correct", 1,
    )  # fmt: skip
    assert row["agents_used"] == ["hrm", "trm"]
    assert type(row["seed"]) is int
    assert type(row["answer_kind"]) is str and row["answer_kind"] == "expression"


# ----------------------------------------------------------------------------- exactly once


def test_duplicate_request_id_is_stored_once_first_wins(store: Store, db_path: Path) -> None:
    store.record_request({"request_id": "dup", "ts": 1.0, "answer": "first"})
    store.record_request({"request_id": "dup", "ts": 2.0, "answer": "second"})  # same batch
    store.flush()
    store.record_request({"request_id": "dup", "ts": 3.0, "answer": "third"})  # a later batch
    store.submit("requests", [{"request_id": "dup", "ts": 4.0}, {"request_id": "other", "ts": 4.0}])
    store.flush()
    with raw(db_path) as conn:
        rows = conn.execute("SELECT request_id, ts, answer FROM requests ORDER BY request_id").fetchall()
    assert [tuple(r) for r in rows] == [("dup", 1.0, "first"), ("other", 4.0, None)]


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("table", "rows", "message"),
    [
        ("nope", {"x": 1}, "unknown table"),
        ("requests", {"request_id": "x", "colour": "red"}, r"unknown column\(s\) \['colour'\]"),
        ("requests", {"task": "game24"}, r"missing required column\(s\) \['request_id'\]"),
        ("requests", {"request_id": None}, "missing required"),
        ("requests", {"request_id": "x", "status": "weird"}, "status"),
        ("requests", {"request_id": "x", "query": object()}, "cannot store a object"),
        ("requests", {"request_id": "x", "agents_used": {1, 2}}, "not JSON serialisable"),
        ("requests", {"request_id": "x", "agents_used": "hrm,trm"}, "valid JSON"),
        ("spans", [{"span_id": "s", "trace_id": "t", "name": "n"}, "not a row"], "mapping"),
        ("spans", "spans", "mapping"),
        ("routing_decisions", {"request_id": "r", "step": 0}, r"\['agent'\]"),
    ],
)
def test_bad_rows_raise_in_the_caller_and_lose_nothing(
    store: Store, db_path: Path, table: str, rows: object, message: str
) -> None:
    store.record_request({"request_id": "before", "ts": 1.0})
    with pytest.raises(ValueError, match=message):
        store.submit(table, rows)  # type: ignore[arg-type]
    store.record_request({"request_id": "after", "ts": 2.0})
    store.flush()  # no StoreError: the writer never saw the bad row
    assert count(db_path, "requests") == 2
    assert count(db_path, "spans") == 0  # a bad row anywhere in a call queues none of it


def test_a_bad_row_in_a_bundle_queues_nothing_of_it(store: Store, db_path: Path) -> None:
    with pytest.raises(ValueError):
        store.submit_bundle({"requests": {"request_id": "r", "ts": 1.0}, "spans": {"span_id": "s"}})
    store.submit_bundle({"requests": {"request_id": "r2", "ts": 1.0},
                         "spans": {"span_id": "s", "trace_id": "t", "name": "q"}})  # fmt: skip
    store.flush()
    assert (count(db_path, "requests"), count(db_path, "spans")) == (1, 1)


def test_a_writer_error_is_reported_once_and_spares_the_rest_of_the_batch(db_path: Path) -> None:
    # A trigger rejects one row inside SQLite, where caller-side validation cannot see it.
    store = Store(db_path, flush_interval_s=5.0)  # a long interval so all rows share one batch
    with raw(db_path) as conn:
        conn.execute(
            "CREATE TRIGGER poison BEFORE INSERT ON requests WHEN NEW.query = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'poisoned row'); END"
        )
    store.record_request({"request_id": "good-1", "ts": 1.0})
    store.record_request({"request_id": "bad", "ts": 1.0, "query": "poison"})
    store.record_request({"request_id": "good-2", "ts": 1.0})
    with pytest.raises(StoreError, match="poisoned row"):
        store.flush()
    assert store.stats.failed_rows == 1
    store.record_request({"request_id": "good-3", "ts": 2.0})
    store.flush()  # the error was reported; the writer is still alive
    with raw(db_path) as conn:
        ids = [r[0] for r in conn.execute("SELECT request_id FROM requests ORDER BY request_id")]
    assert ids == ["good-1", "good-2", "good-3"]
    store.close()


# ----------------------------------------------------------------------------- flush and close


def test_flush_makes_rows_durable_without_waiting_for_the_interval(db_path: Path) -> None:
    # An endless flush interval and a batch larger than the rows: nothing but flush() can end
    # the batch, so the rows are committed only because flush cut it short (a flush that waited
    # for the interval would time out and raise instead of returning).
    store = Store(db_path, flush_interval_s=float("inf"), batch_size=10_000)
    store.record_spans([{"span_id": f"s{i}", "trace_id": "t", "name": "n"} for i in range(1234)])
    assert count(db_path, "spans") == 0  # queued, not committed
    assert store.stats.pending_rows == 1234
    store.flush()
    assert count(db_path, "spans") == 1234  # seen by an independent connection
    assert store.stats.batches == 1 and store.stats.pending_rows == 0
    store.close()


def test_wait_shows_own_writes_and_leaves_write_errors_to_flush(db_path: Path) -> None:
    store = Store(db_path, flush_interval_s=30.0)
    store.record_request({"request_id": "r1", "ts": 1.0})

    def broken() -> dict:
        raise RuntimeError("bad rows")

    store.submit_deferred(broken)
    assert store.wait() is True
    assert count(db_path, "requests") == 1  # committed, seen by another connection
    with pytest.raises(StoreError, match="bad rows"):  # the error was kept, and is raised once
        store.flush()
    store.flush()
    store.close()
    assert store.wait() is True  # a closed store has nothing pending


def test_batches_are_at_most_batch_size_rows(db_path: Path) -> None:
    store = Store(db_path, batch_size=10, flush_interval_s=1.0)
    for i in range(95):
        store.record_request({"request_id": f"r{i}", "ts": float(i)})
    store.flush()
    assert store.stats.batches >= 10  # 95 rows, at most 10 per transaction
    assert store.stats.committed_rows == 95
    store.close()


def test_close_is_idempotent_and_flushes(db_path: Path) -> None:
    store = Store(db_path, flush_interval_s=30.0)
    store.record_request({"request_id": "r", "ts": 1.0})
    store.close()
    assert count(db_path, "requests") == 1
    store.close()
    store.flush()  # nothing pending: a no-op
    with pytest.raises(StoreError, match="closed"):
        store.record_request({"request_id": "late", "ts": 1.0})
    assert store.count("requests") == 1  # reads still work after close


def test_synchronous_mode_writes_immediately_and_raises_at_once(db_path: Path) -> None:
    store = Store(db_path, threaded=False)
    store.record_request({"request_id": "r", "ts": 1.0})
    assert count(db_path, "requests") == 1  # no flush needed
    with raw(db_path) as conn:
        conn.execute("CREATE TRIGGER no_spans BEFORE INSERT ON spans BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(StoreError, match="'no'"):
        store.record_spans([{"span_id": "s", "trace_id": "t", "name": "n"}])
    store.close()
    store.close()


def test_a_forked_child_must_open_its_own_store(store: Store) -> None:
    store._pid = -1  # what a forked child sees: another pid than the creator's
    with pytest.raises(StoreError, match="fork"):
        store.record_request({"request_id": "r"})


def test_rows_are_written_when_the_process_exits_without_close(tmp_path: Path) -> None:
    path = tmp_path / "exit.db"
    script = textwrap.dedent(
        f"""
        from observability.store import Store
        store = Store({str(path)!r}, flush_interval_s=30.0)
        store.record_spans([{{"span_id": f"s{{i}}", "trace_id": "t", "name": "n"}} for i in range(500)])
        # no flush, no close: the atexit hook must commit them
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert count(path, "spans") == 500


def test_integrity_check_and_count(store: Store) -> None:
    assert store.integrity_check() == "ok"
    assert store.count("spans") == 0
    with pytest.raises(ValueError, match="unknown table"):
        store.count("sqlite_master")
