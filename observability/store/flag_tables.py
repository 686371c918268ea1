"""Feature flags in the store: the ``flags`` table (one row per flag), its ``flag_changes`` audit
log, and ``requests.flags`` (the flags that applied to a request).

The migration (appended to ``observability.store.schema.MIGRATIONS``) adds to ``flags`` (created
empty by migration 3) the columns ``override_key`` (the engine setting the flag changes),
``override_value`` (its value as JSON), ``salt`` (NULL: the default ``flag:<name>``),
``updated_by`` and ``created_ts``; creates ``flag_changes`` (``id`` INTEGER PRIMARY KEY
AUTOINCREMENT, ``flag``, ``ts`` in unix seconds, ``actor``, ``action`` one of ``set``, ``kill``,
``unkill``, ``delete``, ``before`` and ``after``: the flag's row as JSON, NULL when it did not /
no longer exists); and adds ``requests.flags`` (the names of the flags that applied,
comma-separated in name order; NULL: none).

Every change is ONE ``BEGIN IMMEDIATE`` transaction that reads the flag's row, writes the new
row (or deletes it) and appends its audit row, so the audit log and the table never disagree,
also with several processes writing.  :func:`flags_version` is the cheap per-request check: it
changes whenever a change is committed (the last audit id, the row count and the newest
``updated_ts``), so a reader re-reads the table only then.

This module never imports ``engine`` or streamlit: rows are plain dicts (validation of what a
flag may say is :mod:`engine.flags`'s).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

__all__ = [
    "ACTIONS",
    "MIGRATION",
    "ChangeRow",
    "FlagRow",
    "change_flag",
    "create",
    "flags_version",
    "read_changes",
    "read_flag",
    "read_flags",
]

#: What a ``flag_changes`` row records.
ACTIONS: tuple[str, ...] = ("set", "kill", "unkill", "delete")

FlagRow = dict[str, Any]
ChangeRow = dict[str, Any]

_JSON_FLAG_COLUMNS = ("targeting", "override_value")
#: The columns ``mutate`` may set (the others are set by :func:`change_flag`).
_WRITABLE = frozenset(
    {"enabled", "rollout_pct", "targeting", "kill_switch", "description"}
    | {"override_key", "override_value", "salt"}
)


def create(db: Database) -> None:
    """The migration: new ``flags`` columns, the ``flag_changes`` table, ``requests.flags``."""
    flags = db.table("flags")
    for column, kind in (
        ("override_key", str),
        ("override_value", str),
        ("salt", str),
        ("updated_by", str),
        ("created_ts", float),
    ):
        flags.add_column(column, kind)
    db.execute(
        "CREATE TABLE flag_changes ("
        " id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " flag TEXT NOT NULL,"
        " ts FLOAT NOT NULL,"
        " actor TEXT NOT NULL,"
        " action TEXT NOT NULL CHECK (action IN ('set', 'kill', 'unkill', 'delete')),"
        " before TEXT,"
        " after TEXT)"
    )
    db.execute("CREATE INDEX idx_flag_changes_flag ON flag_changes (flag, id)")
    db.table("requests").add_column("flags", str)


#: The migration's entry in ``observability.store.schema.MIGRATIONS``.
MIGRATION: tuple[str, Callable[[Database], None]] = (
    "feature flags: override, audit log, request flags",
    create,
)


def _decode(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    for col in columns:
        text = row.get(col)
        if isinstance(text, str):
            try:
                row[col] = json.loads(text)
            except ValueError:
                row[col] = None  # garbage in the file: the caller's validation rejects the flag
    return row


def _rows(cur: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def read_flags(conn: sqlite3.Connection) -> list[FlagRow]:
    """Every ``flags`` row, by name, with ``targeting`` and ``override_value`` decoded (undecodable
    JSON becomes None).

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    rows = _rows(conn.execute("SELECT * FROM flags ORDER BY flag"))
    return [_decode(r, _JSON_FLAG_COLUMNS) for r in rows]


def read_flag(conn: sqlite3.Connection, name: str) -> FlagRow | None:
    """The ``flags`` row of ``name`` (JSON decoded), or None.

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    rows = _rows(conn.execute("SELECT * FROM flags WHERE flag = ?", (name,)))
    return _decode(rows[0], _JSON_FLAG_COLUMNS) if rows else None


def read_changes(conn: sqlite3.Connection, flag: str | None = None, limit: int = 200) -> list[ChangeRow]:
    """The newest ``limit`` audit rows (of ``flag``, or of every flag), newest first, with
    ``before`` and ``after`` decoded (dicts, or None).

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    if flag is None:
        cur = conn.execute("SELECT * FROM flag_changes ORDER BY id DESC LIMIT ?", (int(limit),))
    else:
        cur = conn.execute(
            "SELECT * FROM flag_changes WHERE flag = ? ORDER BY id DESC LIMIT ?", (flag, int(limit))
        )
    return [_decode(r, ("before", "after")) for r in _rows(cur)]


def flags_version(conn: sqlite3.Connection) -> tuple[Any, ...]:
    """A value that changes whenever a flag change is committed (by any process): the last audit
    id, the number of flags and the newest ``updated_ts``.  Three index/rowid look-ups.

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    row = conn.execute(
        "SELECT (SELECT MAX(id) FROM flag_changes), (SELECT COUNT(*) FROM flags), "
        "(SELECT MAX(updated_ts) FROM flags)"
    ).fetchone()
    return tuple(row)


def _encode(row: FlagRow | None) -> str | None:
    return None if row is None else json.dumps(row, sort_keys=True, separators=(",", ":"))


def change_flag(
    conn: sqlite3.Connection,
    name: str,
    mutate: Callable[[FlagRow | None], FlagRow | None],
    *,
    actor: str,
    action: str,
    ts: float,
) -> tuple[FlagRow | None, FlagRow | None]:
    """Change flag ``name`` atomically and record who did it; return its row (before, after).

    ``mutate`` gets the current row (JSON decoded; None when there is none) and returns the new
    row (all columns but ``flag``, ``updated_ts``, ``updated_by`` and ``created_ts``, which are
    set here; JSON columns as dicts/values) or None to delete the flag.  It runs inside the
    write transaction, so what it decides from is what it replaces; it may raise to abort
    (nothing is written).  ``conn`` must be in autocommit mode.

    Raises:
        ValueError: ``action`` is not one of :data:`ACTIONS`, ``actor`` is empty, or ``mutate``
            returned a column that is not a writable ``flags`` column.
        Exception: whatever ``mutate`` raises (nothing written).
        sqlite3.Error: the store cannot be written (nothing written).
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}")
    if not actor:
        raise ValueError("a flag change needs an actor (who made it)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = read_flag(conn, name)
        new = mutate(dict(before) if before is not None else None)
        after: FlagRow | None
        if new is None:
            conn.execute("DELETE FROM flags WHERE flag = ?", (name,))
            after = None
        else:
            unknown = set(new) - _WRITABLE
            if unknown:
                raise ValueError(f"unknown flag column(s): {', '.join(sorted(unknown))}")
            after = {
                **new,
                "flag": name,
                "updated_ts": ts,
                "updated_by": actor,
                "created_ts": before["created_ts"] if before and before.get("created_ts") else ts,
            }
            stored = {
                k: (json.dumps(v, sort_keys=True) if k in _JSON_FLAG_COLUMNS else v) for k, v in after.items()
            }
            cols = ", ".join(stored)
            marks = ", ".join("?" for _ in stored)
            updates = ", ".join(f"{c} = excluded.{c}" for c in stored if c != "flag")
            conn.execute(
                f"INSERT INTO flags ({cols}) VALUES ({marks}) ON CONFLICT(flag) DO UPDATE SET {updates}",
                tuple(stored.values()),
            )
        conn.execute(
            "INSERT INTO flag_changes (flag, ts, actor, action, before, after) VALUES (?, ?, ?, ?, ?, ?)",
            (name, ts, actor, action, _encode(before), _encode(after)),
        )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return before, after
