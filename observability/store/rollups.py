"""Per-minute and hourly roll-ups of ``requests``, maintained by SQLite in the writer's transaction.

``request_rollups`` holds one row per minute and group: the minute (unix s, a multiple of 60,
``minute <= ts < minute + 60``), the request's ``status``, ``task``, ``last_agent`` (the last
element of ``agents_used``), ``provider``, ``router``, ``variant``, ``verdict`` and
``simulated``, and for that group: ``n`` requests, ``lat_n`` of them with a latency,
``lat_sum_ms`` their latency summed (ms) and cumulative latency histogram counts ``le_<bound>``
(requests with ``latency_ms <= bound``, as Prometheus' ``le`` buckets; ``lat_n`` is the ``+Inf``
bucket).  The bounds (:data:`BOUNDS_MS`) are the ones of the ``mcts_request_duration_seconds``
histogram, which include every latency SLO threshold (0.5 s).

``request_rollups_hourly`` holds the same counts per hour (``hour``, a multiple of 3600) by
``status``, ``verdict`` and ``simulated`` only: what the SLIs need, in a few rows an hour, so a
28-day SLO window reads ~10^4 rows instead of one per minute and group (at ~25 requests a
minute nearly every request is its own minute group: 1M requests made 819k minute rows).

Maintenance: an ``AFTER INSERT ON requests`` trigger upserts the row's group in both tables
(``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n, ...``), so the roll-ups are written
in the same transaction as the request row, by every writer of the file (the store, an import,
raw SQL).  ``INSERT OR IGNORE`` of a request that is already stored inserts nothing and fires
nothing: a request submitted twice is counted once.  :func:`rebuild` recomputes both from the rows.

NULL in a text dimension is stored as ``''`` (SQLite's UNIQUE treats NULLs as distinct, which
would defeat the upsert); readers map ``''`` back to None.  The minute is computed in integers
(``CAST(ts AS INTEGER) / 60 * 60``), exact for ``ts >= 0``.

The tables' columns are frozen with the migration that created them (schema v6): changing
:data:`BOUNDS_MS` needs a new migration.  This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

__all__ = [
    "BOUNDS_MS",
    "DAILY_TABLE",
    "DAY",
    "DIMENSIONS",
    "HOUR",
    "HOURLY_TABLE",
    "LEVELS",
    "LE_COLUMNS",
    "MINUTE",
    "MINUTE_SLI",
    "MINUTE_SLI_TABLE",
    "TABLE",
    "TEXT_DIMENSIONS",
    "Level",
    "RebuildReport",
    "backfill",
    "bucket_column",
    "create",
    "create_table_sql",
    "create_trigger_sql",
    "rebuild",
    "row_aggregates_sql",
    "row_dimension_sql",
]

#: The per-minute roll-up table (by every dimension).
TABLE = "request_rollups"
#: The hourly roll-up table (by status, verdict and simulated only).
HOURLY_TABLE = "request_rollups_hourly"
#: Upper bounds (ms) of the cumulative latency buckets: ``mcts_request_duration_seconds``' bounds
#: (1 ms .. 10 s) in milliseconds; 500 ms is the latency SLO's threshold.  Frozen with schema v6.
BOUNDS_MS: tuple[float, ...] = (
    1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
)  # fmt: skip
#: The group key after ``minute``, in primary-key order.
DIMENSIONS: tuple[str, ...] = (
    "status", "task", "last_agent", "provider", "router", "variant", "verdict", "simulated",
)  # fmt: skip
#: The text dimensions (NULL stored as ``''``); ``simulated`` is 0/1.
TEXT_DIMENSIONS: tuple[str, ...] = DIMENSIONS[:-1]
_TRIGGER = "requests_rollup_insert"


def bucket_column(bound_ms: float) -> str:
    """The column name of the cumulative bucket ``latency_ms <= bound_ms``: ``le_2_5`` for 2.5 ms."""
    text = f"{bound_ms:g}".replace(".", "_")
    return f"le_{text}"


#: The cumulative bucket columns, in the order of :data:`BOUNDS_MS`.
LE_COLUMNS: tuple[str, ...] = tuple(bucket_column(b) for b in BOUNDS_MS)
_COUNTS = ("n", "lat_n", "lat_sum_ms", *LE_COLUMNS)


def _dimension_exprs(ref: str) -> dict[str, str]:
    """SQL of each key column computed from a ``requests`` row named ``ref`` (``NEW`` or a table alias)."""
    exprs = {"minute": f"(CAST({ref}.ts AS INTEGER) / 60) * 60"}
    for dim in DIMENSIONS:
        if dim == "last_agent":
            # json_valid first: malformed JSON must not make json_extract fail the request's INSERT.
            agents = f"{ref}.agents_used"
            exprs[dim] = (
                f"COALESCE(CASE WHEN json_valid({agents}) THEN json_extract({agents}, '$[#-1]') END, '')"
            )
        elif dim == "simulated":
            exprs[dim] = f"COALESCE({ref}.simulated, 0)"
        else:
            exprs[dim] = f"COALESCE({ref}.{dim}, '')"
    return exprs


def row_dimension_sql(dim: str, ref: str = "r") -> str:
    """SQL of the roll-up dimension ``dim`` computed from the ``requests`` row ``ref`` (for reads of
    the rows that must group exactly as the roll-up does).

    Raises:
        ValueError: ``dim`` is not a dimension (nor ``minute``).
    """
    exprs = _dimension_exprs(ref)
    if dim not in exprs:
        raise ValueError(f"unknown roll-up dimension {dim!r}; dimensions: {', '.join(DIMENSIONS)}")
    return exprs[dim]


def _count_exprs(ref: str) -> list[str]:
    """Per-row values of the count columns for the ``requests`` row ``ref``."""
    lat = f"{ref}.latency_ms"
    return [
        "1",
        f"({lat} IS NOT NULL)",
        f"COALESCE({lat}, 0.0)",
        *(f"COALESCE({lat} <= {b!r}, 0)" for b in BOUNDS_MS),
    ]


def row_aggregates_sql(ref: str = "r") -> str:
    """``SUM(...) AS <column>`` of every count column over ``requests`` rows ``ref`` (the roll-up's
    aggregates computed from the rows), comma-separated."""
    return ", ".join(f"SUM({e}) AS {c}" for e, c in zip(_count_exprs(ref), _COUNTS, strict=True))


@dataclass(frozen=True)
class Level:
    """One roll-up table: ``period_s``-second periods (column ``time_column``) by ``dimensions``."""

    table: str
    time_column: str
    period_s: int
    dimensions: tuple[str, ...]

    @property
    def key(self) -> tuple[str, ...]:
        return (self.time_column, *self.dimensions)


#: Per minute by every dimension (the attribution's source), and per hour by the dimensions the
#: SLIs need (status, verdict, simulated): a few rows an hour, so a 28-day SLO reads ~10^4 rows.
MINUTE = Level(TABLE, "minute", 60, DIMENSIONS)
HOUR = Level(HOURLY_TABLE, "hour", 3600, ("status", "verdict", "simulated"))
#: The levels created by the schema v6 migration (:func:`create`) and kept by its trigger.
LEVELS: tuple[Level, ...] = (MINUTE, HOUR)
#: The daily roll-up table (by every dimension; schema v7, :mod:`observability.store.rollups_daily`).
DAILY_TABLE = "request_rollups_daily"
#: Per day by every dimension: what a long window grouped by task, agent, provider, router or
#: variant reads (a few thousand rows a day at most, where the minute table has one per request).
DAY = Level(DAILY_TABLE, "day", 86_400, DIMENSIONS)
#: The per-minute SLI roll-up table (its own migration, :mod:`observability.store.rollups_minute_sli`).
MINUTE_SLI_TABLE = "request_rollups_minute_sli"
#: Per minute by the SLI dimensions only (status, verdict, simulated): a few rows a minute, so the
#: SLO buckets of a 28-day period (the alert replay's minutes) read ~10^5 narrow rows instead of
#: the minute table's one row per request or so.
MINUTE_SLI = Level(MINUTE_SLI_TABLE, "minute", 60, ("status", "verdict", "simulated"))


def _key_exprs(level: Level, ref: str) -> list[str]:
    dims = _dimension_exprs(ref)
    period = f"(CAST({ref}.ts AS INTEGER) / {level.period_s}) * {level.period_s}"
    return [period, *(dims[d] for d in level.dimensions)]


def _create_table_sql(level: Level) -> str:
    key_cols = [f"{level.time_column} INTEGER NOT NULL"] + [
        f"{d} INTEGER NOT NULL" if d == "simulated" else f"{d} TEXT NOT NULL" for d in level.dimensions
    ]
    count_cols = ["n INTEGER NOT NULL", "lat_n INTEGER NOT NULL", "lat_sum_ms REAL NOT NULL"] + [
        f"{c} INTEGER NOT NULL" for c in LE_COLUMNS
    ]
    cols = ",\n  ".join(key_cols + count_cols)
    return f"CREATE TABLE {level.table} (\n  {cols},\n  PRIMARY KEY ({', '.join(level.key)})\n) WITHOUT ROWID"


def _upsert_sql(level: Level) -> str:
    values = _key_exprs(level, "NEW") + _count_exprs("NEW")
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTS)
    return (
        f"  INSERT INTO {level.table} ({', '.join((*level.key, *_COUNTS))})\n"
        f"  VALUES ({', '.join(values)})\n"
        f"  ON CONFLICT ({', '.join(level.key)}) DO UPDATE SET {updates};\n"
    )


def create_trigger_sql(name: str, levels: tuple[Level, ...]) -> str:
    """SQL of the ``AFTER INSERT ON requests`` trigger ``name`` upserting each row's group in ``levels``."""
    body = "".join(_upsert_sql(level) for level in levels)
    return f"CREATE TRIGGER {name} AFTER INSERT ON requests BEGIN\n{body}END"


def create_table_sql(level: Level) -> str:
    """SQL creating the roll-up table of ``level`` (key columns, then the count columns)."""
    return _create_table_sql(level)


def _create_trigger_sql() -> str:
    return create_trigger_sql(_TRIGGER, LEVELS)


def backfill(
    conn: sqlite3.Connection,
    since: int | None = None,
    until: int | None = None,
    levels: tuple[Level, ...] = LEVELS,
) -> int:
    """Insert the roll-ups of the ``requests`` rows (those with ``since <= ts < until`` when given)
    into the tables of ``levels``, which hold nothing for them yet; return the groups written in
    the first of them (the minute groups by default)."""
    written = 0
    where, params = "", []
    if since is not None and until is not None:
        where, params = " WHERE r.ts >= ? AND r.ts < ?", [since, until]
    for level in levels:
        keys = _key_exprs(level, "r")
        key_sql = ", ".join(f"{e} AS {k}" for e, k in zip(keys, level.key, strict=True))
        sql = (
            f"INSERT INTO {level.table} ({', '.join((*level.key, *_COUNTS))})"
            f" SELECT {key_sql}, {row_aggregates_sql('r')} FROM requests r{where}"
            f" GROUP BY {', '.join(str(i + 1) for i in range(len(level.key)))}"
        )
        rowcount = conn.execute(sql, params).rowcount
        written = written if level is not levels[0] else rowcount
    return written


def create(conn: sqlite3.Connection) -> None:
    """Create the roll-up tables and their trigger and backfill them from the stored requests.

    The schema migration to v6 calls this inside its transaction (so the backfill and the
    trigger start from the same rows).
    """
    for level in LEVELS:
        conn.execute(_create_table_sql(level))
    conn.execute(_create_trigger_sql())
    backfill(conn)


@dataclass(frozen=True)
class RebuildReport:
    """What :func:`rebuild` did: ``requests`` rows read, per-minute ``groups`` written, ``elapsed_s``."""

    requests: int
    groups: int
    elapsed_s: float


def rebuild(conn: sqlite3.Connection, chunk_s: int = 86_400) -> RebuildReport:
    """Recompute the roll-ups from the ``requests`` rows, one ``chunk_s`` slice of time (a day by
    default; a multiple of 3600) per ``BEGIN IMMEDIATE`` transaction: each slice's roll-ups are
    deleted and recomputed from its rows together, so readers see a slice old or new, never a
    mix, and writers wait for one slice at most (~1 s per 36k requests here), not the whole
    rebuild.  Requests written meanwhile go through the trigger as usual.  The daily roll-up
    (schema v7) and the per-minute SLI roll-up (when migrated) are then recomputed from the rebuilt minutes, a
    day per transaction.  Rows with ``ts < 0``
    (which the roll-ups' integer minutes do not support) are skipped.  ``conn`` must be in
    autocommit mode and the file at schema v6 or later.

    Raises:
        ValueError: ``chunk_s`` is not a positive multiple of 3600.
        sqlite3.OperationalError: the tables are missing (the store was not opened by code that
            migrates it) or the file stayed locked beyond the busy timeout.
    """
    if chunk_s <= 0 or chunk_s % 3600:
        raise ValueError(f"chunk_s must be a positive multiple of 3600, got {chunk_s}")
    t0 = time.perf_counter()
    lo, hi = conn.execute("SELECT MIN(ts), MAX(ts) FROM requests WHERE ts >= 0").fetchone()
    requests = groups = 0
    # every slice up to the last request's; stale roll-ups outside [first, last] are deleted too
    stale = [
        conn.execute(f"SELECT MIN({v.time_column}), MAX({v.time_column}) FROM {v.table}").fetchone()
        for v in LEVELS
    ]
    bounds = [v for v in (lo, hi, *stale[0], *stale[1]) if v is not None]
    if bounds:
        start = int(min(bounds)) // chunk_s * chunk_s
        end = int(max(bounds)) // chunk_s * chunk_s + chunk_s
        for since in range(max(start, 0), end, chunk_s):
            g, n = _rebuild_slice(conn, since, since + chunk_s)
            groups += g
            requests += n
    for level in (DAY, MINUTE_SLI):
        _rebuild_from_minutes(conn, level)
    return RebuildReport(requests=requests, groups=groups, elapsed_s=time.perf_counter() - t0)


def _rebuild_from_minutes(conn: sqlite3.Connection, level: Level) -> None:
    """Recompute ``level`` (the daily roll-up of schema v7, the per-minute SLI roll-up;
    nothing to do when its table does not exist yet) from the minute roll-up just rebuilt, one
    day per transaction; days that no longer have a minute are emptied."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [level.table])
    if exists.fetchone() is None:
        return
    col, period = level.time_column, level.period_s
    days = conn.execute(
        f"SELECT DISTINCT minute / 86400 * 86400 FROM {MINUTE.table}"
        f" UNION SELECT DISTINCT {col} / 86400 * 86400 FROM {level.table}"
    ).fetchall()
    keys = ", ".join(level.dimensions)
    sums = ", ".join(f"SUM({c})" for c in _COUNTS)
    for (day,) in days:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"DELETE FROM {level.table} WHERE {col} >= ? AND {col} < ?", [day, day + 86_400])
            conn.execute(
                f"INSERT INTO {level.table} ({col}, {keys}, {', '.join(_COUNTS)})"
                f" SELECT minute / {period} * {period}, {keys}, {sums} FROM {MINUTE.table}"
                f" WHERE minute >= ? AND minute < ? GROUP BY 1, {keys}",
                [day, day + 86_400],
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _rebuild_slice(conn: sqlite3.Connection, since: int, until: int) -> tuple[int, int]:
    """Recompute the roll-ups of ``since <= ts < until`` in one transaction: (minute groups, requests)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for level in LEVELS:
            col = level.time_column
            conn.execute(f"DELETE FROM {level.table} WHERE {col} >= ? AND {col} < ?", [since, until])
        groups = backfill(conn, since, until)
        n = conn.execute("SELECT count(*) FROM requests WHERE ts >= ? AND ts < ?", [since, until]).fetchone()[
            0
        ]
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return groups, int(n)
