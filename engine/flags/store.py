"""Reading and changing flags in the store, every change audited (who, when, before, after).

:class:`FlagStore` works on the store file (``ARBOR_DB_PATH``) through short-lived connections;
each change is one transaction of :func:`observability.store.flag_tables.change_flag`, so the
console and the CLI may change flags at the same time and the engine of any process sees the
change at its next request (:mod:`engine.flags.source`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.flags.spec import FlagSpec, Targeting
from observability.store import Store
from observability.store.flag_tables import change_flag, read_changes, read_flag, read_flags
from observability.store.signal_file import touch_signal
from observability.store.transactions import connect

__all__ = ["FlagChange", "FlagNotFound", "FlagStore", "spec_from_row", "spec_to_row"]


_Row = dict[str, Any]


class FlagNotFound(KeyError):
    """No flag has that name."""

    def __str__(self) -> str:
        return f"no flag named {self.args[0]!r}"


@dataclass(frozen=True, slots=True)
class FlagChange:
    """One audited change: when (unix s), who, what (``set``, ``kill``, ``unkill``, ``delete``)
    and the flag's row before and after (dicts; None when it did not / no longer exists)."""

    id: int
    flag: str
    ts: float
    actor: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def setting(self) -> str:
        """What a ``set`` made the flag do (``mcts_iterations=200 at 30%``); empty otherwise."""
        after = self.after or {}
        if self.action != "set" or not after:
            return ""
        value = after.get("override_value")
        value = str(value).lower() if isinstance(value, bool) else value
        return f"{after.get('override_key')}={value} at {after.get('rollout_pct'):g}%"


def spec_to_row(spec: FlagSpec) -> dict[str, Any]:
    """The ``flags`` columns of ``spec`` (without name and stamps)."""
    return {
        "enabled": int(spec.enabled),
        "rollout_pct": spec.rollout_pct,
        "targeting": spec.targeting.model_dump(mode="json"),
        "kill_switch": int(spec.killed),
        "description": spec.description,
        "override_key": spec.key,
        "override_value": spec.value,
        "salt": spec.salt,
    }


def spec_from_row(row: dict[str, Any]) -> FlagSpec:
    """The flag a ``flags`` row holds.

    Raises:
        ValueError: the row does not hold a valid flag (a row written by hand, an older version);
            the message names the flag and the first problem.
    """
    try:
        return FlagSpec.model_validate(
            {
                "name": row.get("flag"),
                "key": row.get("override_key") or "",
                "value": row.get("override_value"),
                "rollout_pct": row.get("rollout_pct"),
                "targeting": Targeting.model_validate(row.get("targeting") or {}),
                "salt": row.get("salt"),
                "enabled": bool(row.get("enabled")),
                "killed": bool(row.get("kill_switch")),
                "description": row.get("description") or "",
            }
        )
    except (ValidationError, TypeError, ValueError) as exc:
        first = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"flag {row.get('flag')!r} in the store is invalid: {first}") from None


class FlagStore:
    """The flags of one store file.

    Args:
        path: the store file (created and migrated when missing, like the telemetry store).
        clock: unix seconds, stamps changes.
        busy_timeout_ms: how long a change waits for another writer's lock.

    Raises (constructor):
        StoreOpenError: the file cannot be opened or is not a store (SchemaError: newer schema).
    """

    def __init__(
        self, path: Path | str, *, clock: Callable[[], float] = time.time, busy_timeout_ms: int = 5000
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy = busy_timeout_ms
        Store(self.path, threaded=False, clock=clock).close()  # checks the file and migrates it

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.path, self._busy)
        try:
            yield conn
        finally:
            conn.close()

    # -- reads ------------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        """Every ``flags`` row by name (JSON decoded), valid or not, with ``updated_by/ts``."""
        with self._conn() as conn:
            return read_flags(conn)

    def list(self) -> tuple[FlagSpec, ...]:
        """Every valid flag, by name (invalid rows are left out: see :meth:`rows`)."""
        out = []
        for row in self.rows():
            try:
                out.append(spec_from_row(row))
            except ValueError:
                continue
        return tuple(out)

    def get(self, name: str) -> FlagSpec:
        """The flag called ``name``.

        Raises:
            FlagNotFound: there is none.
            ValueError: its row is invalid.
        """
        with self._conn() as conn:
            row = read_flag(conn, name)
        if row is None:
            raise FlagNotFound(name)
        return spec_from_row(row)

    def history(self, name: str | None = None, limit: int = 200) -> tuple[FlagChange, ...]:
        """The newest ``limit`` changes (of flag ``name``, or of all), newest first."""
        with self._conn() as conn:
            rows = read_changes(conn, name, limit)
        return tuple(
            FlagChange(
                int(r["id"]), str(r["flag"]), float(r["ts"]), str(r["actor"]), str(r["action"]),
                r["before"] if isinstance(r["before"], dict) else None,
                r["after"] if isinstance(r["after"], dict) else None,
            )
            for r in rows
        )  # fmt: skip

    # -- changes ----------------------------------------------------------------------------------
    def _change(
        self, name: str, action: str, actor: str, mutate: Callable[[_Row | None], _Row | None]
    ) -> FlagChange:
        actor = _actor(actor)
        ts = self._clock()
        with self._conn() as conn:
            before, after = change_flag(conn, name, mutate, actor=actor, action=action, ts=ts)
            last = conn.execute("SELECT MAX(id) FROM flag_changes WHERE flag = ?", (name,)).fetchone()[0]
        touch_signal(self.path)  # committed: every process's next request re-reads the flags
        return FlagChange(int(last), name, ts, actor, action, before, after)

    def set(self, spec: FlagSpec, actor: str, *, keep_kill: bool = True) -> FlagChange:
        """Create or replace flag ``spec.name``.  With ``keep_kill`` an existing flag keeps its
        kill switch (only :meth:`kill`/:meth:`unkill` turn it); a new one takes ``spec.killed``.

        Raises:
            ValueError: ``actor`` is empty.
            sqlite3.Error: the store cannot be written (nothing changed).
        """

        def mutate(before: dict[str, Any] | None) -> dict[str, Any]:
            row = spec_to_row(spec)
            if keep_kill and before is not None:
                row["kill_switch"] = int(bool(before.get("kill_switch")))
            return row

        return self._change(spec.name, "set", actor, mutate)

    def kill(self, name: str, actor: str) -> FlagChange:
        """Turn flag ``name`` off everywhere at once (the next request of every process).

        Raises:
            FlagNotFound: there is no such flag (nothing recorded).
        """
        return self._switch(name, actor, killed=True)

    def unkill(self, name: str, actor: str) -> FlagChange:
        """Release the kill switch of ``name`` (it applies again by its rollout and targeting).

        Raises:
            FlagNotFound: there is no such flag (nothing recorded).
        """
        return self._switch(name, actor, killed=False)

    def _switch(self, name: str, actor: str, *, killed: bool) -> FlagChange:
        def mutate(before: dict[str, Any] | None) -> dict[str, Any]:
            if before is None:
                raise FlagNotFound(name)
            keep = {k: before.get(k) for k in ("enabled", "rollout_pct", "targeting", "description",
                                               "override_key", "override_value", "salt")}  # fmt: skip
            return {**keep, "kill_switch": int(killed)}

        return self._change(name, "kill" if killed else "unkill", actor, mutate)

    def delete(self, name: str, actor: str) -> FlagChange:
        """Remove flag ``name`` (its history stays).

        Raises:
            FlagNotFound: there is no such flag (nothing recorded).
        """

        def mutate(before: dict[str, Any] | None) -> None:
            if before is None:
                raise FlagNotFound(name)
            return None

        return self._change(name, "delete", actor, mutate)


def _actor(actor: str) -> str:
    actor = (actor or "").strip()
    if not actor or len(actor) > 200 or not actor.isprintable():
        raise ValueError("the actor (who makes the change) must be 1..200 printable characters")
    return actor
