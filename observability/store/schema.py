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
   ``fallback_error`` (how the first of them failed);
6. ``request_rollups``: per-minute request counts and latency buckets, kept by a trigger (:mod:`.rollups`);
7. ``requests.request_json``: the full validated request, for replay (:mod:`.request_json`).
8. experiment exposures per unit: ``exposures`` keyed by (experiment, unit), one row per unit at its
   first request (``request_id``, ``ts``), with its ``variant`` and ``bucket``; older rows keep the
   first per (experiment, user_id or request_id) (:mod:`.exposures_per_unit`).
9. ``incidents``: injected or declared incidents (kind, title, start and end, simulated) (:mod:`.incidents`).
10. ``request_rollups_daily``: daily request counts by every dimension (:mod:`.rollups_daily`).
11. experiment sums: per-unit and per-variant sufficient statistics (:mod:`.experiment_sums`).
12. ``request_rollups_minute_sli``: per-minute SLI counts (:mod:`.rollups_minute_sli`).
13. feature flags: ``flags`` override columns, the ``flag_changes`` audit log, ``requests.flags``
    (:mod:`.flag_tables`).
14. canary releases: ``canary_runs``, ``canary_steps``, ``canary_guardrails`` (:mod:`.canary_store`).
15. the ``requests(experiment, variant, status)`` index of the Experiments list
    (:mod:`.experiment_status_index`).

Migrations 1-5 live in :mod:`.migrations_core`.

This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from sqlite_utils import Database

from observability.store import (
    canary_store,
    experiment_status_index,
    experiment_sums_migration,
    exposures_per_unit,
    flag_tables,
    incidents,
    migrations_core,
    request_json,
    rollups,
    rollups_daily,
    rollups_minute_sli,
)

__all__ = [
    "MIGRATIONS",
    "POLICIES",
    "ROW_TYPES",
    "SCHEMA_VERSION",
    "SERVED_STATUSES",
    *("ExposureRow", "LogRow", "MctsNodeRow", "MctsRunRow", "RequestRow", "RoutingRow"),
    "SchemaError",
    "SpanRow",
    "StoreOpenError",
    "TablePolicy",
    "TableShape",
    "describe",
    "migrate",
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


#: Request statuses that count as served (answered, well or badly): the denominator of the error
#: ratio and the requests whose latency is measured.  ``invalid`` (rejected input) and ``cancelled``
#: (the caller stopped reading) are not served.  The one definition; the read model builds its SQL from it.
SERVED_STATUSES: tuple[str, ...] = ("ok", "error")


POLICIES: dict[str, TablePolicy] = {
    "requests": TablePolicy(
        pk=("request_id",),
        json_columns=frozenset({"agents_used"}),
        choices={
            "status": _set(*SERVED_STATUSES, "invalid", "cancelled"),
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
    # One exposure per (experiment, unit): the first submitted wins (a resumed run re-submits it).
    "exposures": TablePolicy(pk=("experiment", "unit"), auto_ts=("ts",)),
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
    "incidents": TablePolicy(pk=("id",), choices={"simulated": _set(0, 1)}),
}


# --------------------------------------------------------------------------- migrations


MIGRATIONS: list[tuple[str, Callable[[Database], None]]] = [
    ("core request telemetry", migrations_core.v1_core),
    ("mcts runs, nodes and snapshots", migrations_core.v2_mcts),
    ("slo, golden and experiment tables", migrations_core.v3_slo_golden_experiments),
    ("request log lines and correlation ids", migrations_core.v4_logs),
    ("llm fallback provenance on requests", migrations_core.v5_llm_fallback),
    ("per-minute request roll-ups", lambda db: rollups.create(db.conn)),
    (request_json.NAME, request_json.add_request_json),
    (exposures_per_unit.NAME, exposures_per_unit.migrate),
    incidents.MIGRATION,
    ("daily request roll-ups by every dimension", lambda db: rollups_daily.create_daily(db.conn)),
    (experiment_sums_migration.NAME, experiment_sums_migration.migrate),
    (rollups_minute_sli.NAME, lambda db: rollups_minute_sli.create_minute_sli(db.conn)),
    flag_tables.MIGRATION,
    canary_store.MIGRATION,
    (experiment_status_index.NAME, experiment_status_index.migrate),
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
            meta = {"version": number, "name": name, "applied_at": clock()}
            db.table("schema_meta").insert(meta, replace=True)
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
            cols = db.table(table).columns
        except sqlite3.Error as exc:  # pragma: no cover - defensive
            raise SchemaError(f"cannot read table {table}: {exc}") from exc
        if not cols:
            raise SchemaError(f"table {table} is missing from the store")
        required = frozenset(c.name for c in cols if c.is_pk or (c.notnull and c.default_value is None))
        shapes[table] = TableShape(columns=tuple(c.name for c in cols), required=required)
    return shapes


# --------------------------------------------------------------------------- row types
# The columns of the tables the engine writes, in file order: the one list writers build rows
# with (``RequestRow(...)._asdict()``).  A field left out is None (NULL), except where the
# table has a default.  tests/observability/test_store_schema.py checks them against a migrated file.


class RequestRow(NamedTuple):
    """One ``requests`` row (times in unix s, latency in ms, JSON ``agents_used`` a list)."""

    request_id: str
    trace_id: str | None = None
    ts: float | None = None
    task: str | None = None
    query: str | None = None
    answer: str | None = None
    answer_kind: str | None = None
    verdict: str | None = None
    quality: float | None = None
    confidence: float | None = None
    agents_used: Any = None
    stop_reason: str | None = None
    latency_ms: float | None = None
    seed: int | None = None
    router: str | None = None
    provider: str | None = None
    status: str = "ok"
    error: str | None = None
    user_id: str | None = None
    experiment: str | None = None
    variant: str | None = None
    simulated: int = 0
    tokens: int | None = None
    cost_usd: float | None = None
    correlation_id: str | None = None
    fallback_from: str | None = None
    fallback_error: str | None = None
    request_json: str | None = None  # the validated QueryRequest as JSON (see .request_json)
    flags: str | None = None  # the feature flags that applied, comma-separated (see .flag_tables)


class SpanRow(NamedTuple):
    """One ``spans`` row (start/end in unix s, duration in ms, JSON ``attributes`` a dict)."""

    span_id: str
    trace_id: str
    parent_id: str | None = None
    name: str | None = None
    start_ts: float | None = None
    end_ts: float | None = None
    duration_ms: float | None = None
    status: str | None = None
    attributes: Any = None
    correlation_id: str | None = None


class RoutingRow(NamedTuple):
    """One ``routing_decisions`` row (JSON ``probabilities`` a dict, ``features`` a list; latency in ms)."""

    request_id: str
    step: int
    agent: str | None = None
    reason: str | None = None
    probabilities: Any = None
    features: Any = None
    confidence: float | None = None
    latency_ms: float | None = None


class LogRow(NamedTuple):
    """One ``logs`` row: a request's log line ``seq`` (ts in unix s, level name, JSON ``attributes``)."""

    trace_id: str
    seq: int
    ts: float | None = None
    level: str | None = None
    logger: str | None = None
    message: str | None = None
    correlation_id: str | None = None
    span_id: str | None = None
    attributes: Any = None


class MctsRunRow(NamedTuple):
    """One ``mcts_runs`` row: a search (ts in unix s, elapsed in ms, JSON ``config`` a dict)."""

    run_id: str
    request_id: str | None = None
    ts: float | None = None
    task: str | None = None
    position: str | None = None
    iterations: int | None = None
    seed: int | None = None
    best_action: str | None = None
    root_value: float | None = None
    termination_reason: str | None = None
    tree_size: int | None = None
    cache_hit_rate: float | None = None
    elapsed_ms: float | None = None
    config: Any = None


class MctsNodeRow(NamedTuple):
    """One ``mcts_nodes`` row: a node of a search's flat tree."""

    run_id: str
    node_id: int
    parent_id: int | None = None
    depth: int | None = None
    label: str | None = None
    visits: int | None = None
    value: float | None = None
    prior: float | None = None


class ExposureRow(NamedTuple):
    """One ``exposures`` row: a unit's assignment, recorded at its first request (ts in unix s)."""

    experiment: str
    unit: str
    variant: str
    bucket: int | None = None
    request_id: str | None = None
    ts: float | None = None


#: The row type of each table the engine writes, by table name.
ROW_TYPES: dict[str, type[tuple[Any, ...]]] = {
    "requests": RequestRow,
    "spans": SpanRow,
    "routing_decisions": RoutingRow,
    "logs": LogRow,
    "mcts_runs": MctsRunRow,
    "mcts_nodes": MctsNodeRow,
    "exposures": ExposureRow,
}
