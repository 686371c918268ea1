"""Schema of the telemetry store: table policies, ordered migrations, the shapes writers validate against.

The schema version is ``PRAGMA user_version`` (atomic with the migration that
sets it); ``schema_meta`` keeps one row per applied migration (version, name,
applied_at in unix seconds) for people reading the file.  Migrations are an
ordered list of functions; version *n* means the first *n* have been applied.
Each migration is frozen once shipped: change the schema by appending one.

The chain as first built (issue 4):

1. core request telemetry: ``requests``, ``spans``, ``routing_decisions``, ``schema_meta``;
2. MCTS: ``mcts_runs``, ``mcts_nodes``, ``mcts_snapshots``;
3. SLO, golden and experiments: request columns ``experiment``, ``variant``,
   ``simulated``, ``tokens``, ``cost_usd``; tables ``golden_runs``,
   ``experiments``, ``exposures``, ``flags``, ``alerts``;
4. logs: the structured log lines of each request (``logs``), keyed by trace id and sequence;
   request column ``correlation_id``;
5. LLM fallback: request columns ``fallback_from`` (the LLM providers that failed before a
   fallback answered, comma-separated; ``provider`` is the one that answered) and
   ``fallback_error`` (how the first of them failed).

This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlite_utils import Database

__all__ = [
    "MIGRATIONS",
    "POLICIES",
    "SCHEMA_VERSION",
    "SchemaError",
    "StoreOpenError",
    "TablePolicy",
    "TableShape",
    "check_store_file",
    "describe",
    "migrate",
    "open_error",
]


class StoreOpenError(RuntimeError):
    """The store file cannot be opened for writing: its directory cannot be created or written,
    the file is read-only, unreadable, corrupt or not a SQLite database.  The message names the
    file, what is wrong and what to do."""


class SchemaError(StoreOpenError):
    """The database's schema cannot be used: newer than this code, or not an Arbor store."""


@dataclass(frozen=True)
class TablePolicy:
    """How rows of one table are written and read.

    ``conflict``: ``"ignore"`` for append-only records (the first row with a
    primary key wins, so resubmitting a row stores it once), ``"upsert"`` for
    mutable state (``INSERT ... ON CONFLICT DO UPDATE`` of the columns given).
    ``json_columns`` hold JSON text: writers pass dict/list (serialised by the
    store), readers get them decoded.  ``choices`` restricts text columns to a
    set of values.  ``auto_ts`` columns are stamped with the store's clock
    (unix seconds) when a row leaves them out.
    """

    pk: tuple[str, ...]
    conflict: Literal["ignore", "upsert"] = "ignore"
    json_columns: frozenset[str] = frozenset()
    choices: Mapping[str, frozenset[object]] = field(default_factory=dict)
    auto_ts: tuple[str, ...] = ()


def _set(*values: object) -> frozenset[object]:
    return frozenset(values)


POLICIES: dict[str, TablePolicy] = {
    "requests": TablePolicy(
        pk=("request_id",),
        json_columns=frozenset({"agents_used"}),
        choices={
            "status": _set("ok", "error", "invalid", "cancelled"),
            "verdict": _set("correct", "incorrect", "unknown", None),
            "simulated": _set(0, 1),
        },
        auto_ts=("ts",),
    ),
    "spans": TablePolicy(
        pk=("span_id",), json_columns=frozenset({"attributes"}), choices={"status": _set("ok", "error", None)}
    ),
    "routing_decisions": TablePolicy(
        pk=("request_id", "step"), json_columns=frozenset({"probabilities", "features"})
    ),
    "mcts_runs": TablePolicy(pk=("run_id",), json_columns=frozenset({"config"}), auto_ts=("ts",)),
    "mcts_nodes": TablePolicy(pk=("run_id", "node_id")),
    "mcts_snapshots": TablePolicy(pk=("run_id", "iteration"), json_columns=frozenset({"payload"})),
    "golden_runs": TablePolicy(
        pk=("run_id", "golden_id"),
        json_columns=frozenset({"diff"}),
        choices={"status": _set("pass", "regression", "error")},
        auto_ts=("ts",),
    ),
    "experiments": TablePolicy(
        pk=("experiment",),
        conflict="upsert",
        json_columns=frozenset({"variants", "metrics", "config", "decision_reasons"}),
        choices={"status": _set("draft", "running", "stopped", "decided")},
        auto_ts=("updated_ts",),
    ),
    "exposures": TablePolicy(pk=("experiment", "request_id"), auto_ts=("ts",)),
    "flags": TablePolicy(
        pk=("flag",),
        conflict="upsert",
        json_columns=frozenset({"targeting"}),
        choices={"enabled": _set(0, 1), "kill_switch": _set(0, 1)},
        auto_ts=("updated_ts",),
    ),
    "logs": TablePolicy(pk=("trace_id", "seq"), json_columns=frozenset({"attributes"})),
    "alerts": TablePolicy(
        pk=("alert_id",),
        conflict="upsert",
        choices={
            "severity": _set("page", "ticket", None),
            "state": _set("firing", "resolved"),
            "simulated": _set(0, 1),
        },
        auto_ts=("updated_ts",),
    ),
}


# --------------------------------------------------------------------------- migrations
# Types: str -> TEXT, int -> INTEGER, float -> FLOAT (REAL affinity).  JSON columns are TEXT.


def _v1_core(db: Database) -> None:
    """requests, spans, routing_decisions and the schema_meta log."""
    db["schema_meta"].create({"version": int, "name": str, "applied_at": float}, pk="version")
    db["requests"].create(
        {
            "request_id": str, "trace_id": str, "ts": float, "task": str, "query": str, "answer": str,
            "answer_kind": str, "verdict": str, "quality": float, "confidence": float, "agents_used": str,
            "stop_reason": str, "latency_ms": float, "seed": int, "router": str, "provider": str,
            "status": str, "error": str, "user_id": str,
        },
        pk="request_id",
        not_null={"ts", "status"},
        defaults={"status": "ok"},
    )  # fmt: skip
    db["requests"].create_index(["ts"], index_name="idx_requests_ts")
    db["requests"].create_index(["task"], index_name="idx_requests_task")
    db["requests"].create_index(["trace_id"], index_name="idx_requests_trace_id")
    db["spans"].create(
        {
            "span_id": str, "trace_id": str, "parent_id": str, "name": str, "start_ts": float,
            "end_ts": float, "duration_ms": float, "status": str, "attributes": str, "correlation_id": str,
        },
        pk="span_id",
        not_null={"trace_id", "name"},
    )  # fmt: skip
    db["spans"].create_index(["trace_id"], index_name="idx_spans_trace_id")
    db["spans"].create_index(["correlation_id"], index_name="idx_spans_correlation_id")
    # The primary key (request_id, step) is the index on routing_decisions(request_id).
    db["routing_decisions"].create(
        {
            "request_id": str, "step": int, "agent": str, "reason": str, "probabilities": str,
            "features": str, "confidence": float, "latency_ms": float,
        },
        pk=("request_id", "step"),
        not_null={"agent"},
    )  # fmt: skip


def _v2_mcts(db: Database) -> None:
    """mcts_runs (one per search), mcts_nodes (the flat tree), mcts_snapshots (growth for the scrubber)."""
    db["mcts_runs"].create(
        {
            "run_id": str, "request_id": str, "ts": float, "task": str, "position": str, "iterations": int,
            "seed": int, "best_action": str, "root_value": float, "termination_reason": str,
            "tree_size": int, "cache_hit_rate": float, "elapsed_ms": float, "config": str,
        },
        pk="run_id",
        not_null={"ts"},
    )  # fmt: skip
    db["mcts_runs"].create_index(["request_id"], index_name="idx_mcts_runs_request_id")
    db["mcts_runs"].create_index(["ts"], index_name="idx_mcts_runs_ts")
    db["mcts_nodes"].create(
        {
            "run_id": str, "node_id": int, "parent_id": int, "depth": int, "label": str, "visits": int,
            "value": float, "prior": float,
        },
        pk=("run_id", "node_id"),
    )  # fmt: skip
    db["mcts_snapshots"].create(
        {"run_id": str, "iteration": int, "payload": str}, pk=("run_id", "iteration"), not_null={"payload"}
    )


def _v3_slo_golden_experiments(db: Database) -> None:
    """Experiment/cost columns on requests; golden_runs, experiments, exposures, flags, alerts."""
    requests = db["requests"]
    requests.add_column("experiment", str)
    requests.add_column("variant", str)
    requests.add_column("simulated", int, not_null_default=0)
    requests.add_column("tokens", int)
    requests.add_column("cost_usd", float)
    requests.create_index(["experiment", "variant"], index_name="idx_requests_experiment")
    db["golden_runs"].create(
        {
            "run_id": str, "golden_id": str, "ts": float, "status": str, "request_id": str, "trace_id": str,
            "first_divergence": str, "diff": str, "quality": float, "golden_quality": float,
            "latency_ms": float, "golden_latency_ms": float,
        },
        pk=("run_id", "golden_id"),
        not_null={"ts", "status"},
    )  # fmt: skip
    db["golden_runs"].create_index(["ts"], index_name="idx_golden_runs_ts")
    db["experiments"].create(
        {
            "experiment": str, "name": str, "status": str, "salt": str, "variants": str, "metrics": str,
            "config": str, "decision": str, "decision_reasons": str, "created_ts": float, "updated_ts": float,
        },
        pk="experiment",
        not_null={"status"},
        defaults={"status": "draft"},
    )  # fmt: skip
    db["exposures"].create(
        {"experiment": str, "request_id": str, "variant": str, "user_id": str, "bucket": int, "ts": float},
        pk=("experiment", "request_id"),
        not_null={"variant", "ts"},
    )
    db["exposures"].create_index(["experiment", "variant"], index_name="idx_exposures_variant")
    db["flags"].create(
        {
            "flag": str, "enabled": int, "rollout_pct": float, "targeting": str, "kill_switch": int,
            "description": str, "updated_ts": float,
        },
        pk="flag",
        not_null={"enabled", "rollout_pct", "kill_switch"},
        defaults={"enabled": 1, "rollout_pct": 0.0, "kill_switch": 0},
    )  # fmt: skip
    db["alerts"].create(
        {
            "alert_id": str, "name": str, "slo": str, "severity": str, "state": str, "ts": float,
            "resolved_ts": float, "burn_rate": float, "threshold": float, "long_window": str,
            "short_window": str, "source": str, "message": str, "simulated": int, "updated_ts": float,
        },
        pk="alert_id",
        not_null={"state", "simulated"},
        defaults={"state": "firing", "simulated": 0},
    )  # fmt: skip
    db["alerts"].create_index(["ts"], index_name="idx_alerts_ts")


def _v4_logs(db: Database) -> None:
    """logs: a request's structured log lines (ts in unix seconds, level name, logger, message,
    the ids of the span that logged, extra fields as JSON), in order (seq) within their trace."""
    db["logs"].create(
        {
            "trace_id": str, "seq": int, "ts": float, "level": str, "logger": str, "message": str,
            "correlation_id": str, "span_id": str, "attributes": str,
        },
        pk=("trace_id", "seq"),
        not_null={"ts", "level", "message"},
    )  # fmt: skip
    db["logs"].create_index(["correlation_id"], index_name="idx_logs_correlation_id")
    db["requests"].add_column("correlation_id", str)
    db["requests"].create_index(["correlation_id"], index_name="idx_requests_correlation_id")


def _v5_llm_fallback(db: Database) -> None:
    """requests.fallback_from and requests.fallback_error: which LLM providers failed before the
    one recorded in ``provider`` answered, and how the first failed (NULL: none failed)."""
    db["requests"].add_column("fallback_from", str)
    db["requests"].add_column("fallback_error", str)


MIGRATIONS: list[tuple[str, Callable[[Database], None]]] = [
    ("core request telemetry", _v1_core),
    ("mcts runs, nodes and snapshots", _v2_mcts),
    ("slo, golden and experiment tables", _v3_slo_golden_experiments),
    ("request log lines and correlation ids", _v4_logs),
    ("llm fallback provenance on requests", _v5_llm_fallback),
]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: Database, clock: Callable[[], float]) -> int:
    """Bring ``db`` to ``SCHEMA_VERSION`` in one ``BEGIN IMMEDIATE`` transaction; return the version.

    The version is read again under the write lock, so several processes
    opening a new file at once migrate it exactly once.  ``db.conn`` must be in
    autocommit mode (``isolation_level=None``).

    Raises:
        SchemaError: the file's version is newer than this code knows, or a
            version-0 file already holds tables that are not the store's.
        sqlite3.OperationalError: the lock could not be taken within the busy timeout.
    """
    conn = db.conn
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"database schema version {version} is newer than this code's {SCHEMA_VERSION}; "
                "upgrade Arbor or point ARBOR_DB_PATH at another file"
            )
        if version == 0:
            foreign = [n for n in db.table_names() if not n.startswith("sqlite_")]
            if foreign:
                raise SchemaError(
                    f"not an Arbor telemetry store (schema version 0 but tables {sorted(foreign)[:5]}); "
                    "point ARBOR_DB_PATH at a new or store file"
                )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            name, apply = MIGRATIONS[number - 1]
            apply(db)
            db["schema_meta"].insert({"version": number, "name": name, "applied_at": clock()}, replace=True)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return SCHEMA_VERSION


@dataclass(frozen=True)
class TableShape:
    """The columns of one table as the file has them (read with PRAGMA table_info)."""

    columns: tuple[str, ...]
    required: frozenset[str]  # primary key, or NOT NULL without a default: a row must give a non-null value

    @property
    def column_set(self) -> frozenset[str]:
        return frozenset(self.columns)


def describe(db: Database) -> dict[str, TableShape]:
    """Shapes of the tables in ``POLICIES``, from the database itself (so validation matches the file).

    Raises:
        SchemaError: a table of ``POLICIES`` is missing (a migration was not applied).
    """
    shapes: dict[str, TableShape] = {}
    for table in POLICIES:
        try:
            cols = db[table].columns
        except sqlite3.Error as exc:  # pragma: no cover - defensive
            raise SchemaError(f"cannot read table {table}: {exc}") from exc
        if not cols:
            raise SchemaError(f"table {table} is missing from the store")
        required = frozenset(c.name for c in cols if c.is_pk or (c.notnull and c.default_value is None))
        shapes[table] = TableShape(columns=tuple(c.name for c in cols), required=required)
    return shapes


# --------------------------------------------------------------------------- opening a file
_SQLITE_HEADER = b"SQLite format 3\x00"
_ELSEWHERE = "or point ARBOR_DB_PATH at another file"


def _foreign_error(path: Path, tables: list[str]) -> SchemaError:
    names = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
    return SchemaError(
        f"{path} is not an Arbor telemetry store: it is a SQLite database with other tables ({names}) "
        f"and no Arbor schema version; nothing was written to it. Point ARBOR_DB_PATH at a new file "
        "or an Arbor store"
    )


def _newer_error(path: Path, version: int) -> SchemaError:
    return SchemaError(
        f"{path} has schema version {version}, newer than this Arbor's {SCHEMA_VERSION}; "
        f"nothing was written to it. Upgrade Arbor, {_ELSEWHERE}"
    )


def _corrupt_error(path: Path, detail: str) -> StoreOpenError:
    return StoreOpenError(
        f"{path} is not a usable SQLite database ({detail}): it is corrupt or another kind of file. "
        f"Move it aside (Arbor then creates a new store there), {_ELSEWHERE}"
    )


def _dir_error(path: Path, detail: str) -> StoreOpenError:
    return StoreOpenError(
        f"cannot write in directory {path.parent} ({detail}): the store {path.name} and its -wal and "
        f"-shm files live there. Make the directory writable, {_ELSEWHERE}"
    )


def _read_only_error(path: Path) -> StoreOpenError:
    return StoreOpenError(
        f"{path} is read-only: Arbor writes its telemetry there. Make it writable, {_ELSEWHERE}"
    )


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def check_store_file(path: Path) -> None:
    """Check ``path`` can hold a store, reading only: nothing is written to the file.

    Run before the store's connection enables WAL or migrates, so a foreign or newer file is
    rejected untouched.  A missing or empty file passes (a new store is created).

    Raises:
        StoreOpenError: the directory is missing and cannot be created or is not writable, the
            path is a directory, the file is read-only or unreadable, or it is not a SQLite database.
        SchemaError: the file's schema version is newer than this code's, or it is a SQLite
            database with tables of its own and no Arbor schema version.
    """
    path = Path(path)
    for parent in (path.parent, *path.parent.parents):
        if parent.exists():
            if not parent.is_dir():
                raise StoreOpenError(
                    f"cannot create the store {path}: {parent} is a file, not a directory; "
                    f"{_ELSEWHERE.removeprefix('or ')}"
                )
            break
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreOpenError(
            f"cannot create directory {path.parent} for the store {path.name} ({exc.strerror}). "
            f"Create it or make its parent writable, {_ELSEWHERE}"
        ) from None
    if path.is_dir():
        raise StoreOpenError(f"{path} is a directory, not a store file: {_ELSEWHERE.removeprefix('or ')}")
    if not path.exists() or path.stat().st_size == 0:
        if not _writable(path.parent):
            raise _dir_error(path, "not writable")
        return
    try:
        with path.open("rb") as fh:
            header = fh.read(len(_SQLITE_HEADER))
    except OSError as exc:
        raise StoreOpenError(f"cannot read {path} ({exc.strerror}): make it readable, {_ELSEWHERE}") from None
    if header != _SQLITE_HEADER:
        raise _corrupt_error(path, "no SQLite header")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise open_error(path, exc) from None
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [
            r[0]
            for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if not r[0].startswith("sqlite_")
        ]
    except sqlite3.Error as exc:
        # Locked by another process's migration, or a WAL file in a read-only directory: leave
        # it to the open path (which retries locks and checks the schema again under its lock).
        transient = any(w in str(exc).lower() for w in ("unable to open", "locked", "busy"))
        if not transient:
            raise open_error(path, exc) from None
        version, tables = None, []
    finally:
        conn.close()
    if version is not None and version > SCHEMA_VERSION:
        raise _newer_error(path, version)
    if version == 0 and tables:
        raise _foreign_error(path, tables)
    if not _writable(path):
        raise _read_only_error(path)
    if not _writable(path.parent):
        raise _dir_error(path, "not writable")


def open_error(path: Path, exc: sqlite3.Error) -> StoreOpenError:
    """The StoreOpenError for a SQLite error raised while opening or migrating ``path``."""
    path = Path(path)
    text = str(exc)
    lowered = text.lower()
    if "not a database" in lowered or "malformed" in lowered or "corrupt" in lowered:
        return _corrupt_error(path, text)
    if "readonly" in lowered or "read-only" in lowered or "unable to open" in lowered:
        if path.parent.exists() and not _writable(path.parent):
            return _dir_error(path, "not writable")
        if path.exists() and not _writable(path):
            return _read_only_error(path)
    return StoreOpenError(
        f"cannot open the store {path} ({text}): check the file and its directory, {_ELSEWHERE}"
    )
