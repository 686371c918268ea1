"""Transactions of the store's writer: one connection, ``BEGIN IMMEDIATE`` batches, bounded lock retries.

:class:`Transactions` commits a batch of prepared rows (see :mod:`observability.store.rows`) in
one transaction.  Append-only tables use one cached ``INSERT OR IGNORE`` per column shape through
``executemany`` (the first row with a primary key wins); upsert tables go through sqlite-utils'
``insert_all(upsert=True)``.  When a batch fails for a reason other than a lock, it is written
again row by row, each row in a savepoint, so only the offending rows are lost.

A database that stays locked beyond the connection's busy timeout is retried with exponential
back-off (20 ms doubling to at most 1 s) within a total budget of ``RETRY_BUDGET_S`` seconds
(tenacity); each retry is logged and counted (``StoreStats.lock_retries``).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlite_utils import Database
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_before_delay, wait_exponential

from observability.store.schema import POLICIES

__all__ = ["RETRY_BUDGET_S", "Groups", "LockRetry", "Transactions", "WriteOutcome", "connect", "is_transient"]

log = logging.getLogger(__name__)

#: Prepared rows of one submission or batch: ``[(table, [row, ...]), ...]``.
Groups = list[tuple[str, list[dict[str, Any]]]]
#: Longest time (s) a transaction or the schema set-up is retried while the file stays locked.
RETRY_BUDGET_S = 30.0
_TRANSIENT = ("locked", "busy")
_T = TypeVar("_T")


def connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """An autocommit connection to ``path`` (busy timeout in ms, ``synchronous=NORMAL``), usable
    from any thread (the store serialises its use).

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    conn = sqlite3.connect(
        str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def is_transient(exc: BaseException) -> bool:
    """True for SQLite's "database is locked/busy" errors: worth retrying, the rows are fine."""
    return isinstance(exc, sqlite3.OperationalError) and any(w in str(exc).lower() for w in _TRANSIENT)


class LockRetry:
    """Runs a function, retrying while SQLite stays busy beyond the busy timeout (bounded).

    Args:
        path: the store file, named in the log lines.
        on_retry: called before each retry (the store counts them).
        budget_s: total time, in seconds, after which the last error is raised.
    """

    def __init__(self, path: Path, on_retry: Callable[[], None], budget_s: float = RETRY_BUDGET_S) -> None:
        self._path = path
        self._on_retry = on_retry
        self._retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential(multiplier=0.02, max=1.0),
            stop=stop_before_delay(budget_s),
            before_sleep=self._before_sleep,
            reraise=True,
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        self._on_retry()
        exc = state.outcome.exception() if state.outcome is not None else None
        log.warning("store %s busy (%s); retrying in %.2fs", self._path, exc, state.upcoming_sleep)

    def __call__(self, fn: Callable[[], _T]) -> _T:
        """``fn()``, retried on transient lock errors.

        Raises:
            Exception: whatever ``fn`` raised last (a lock error once the budget is spent).
        """
        return self._retrying(fn)


@dataclass(frozen=True)
class WriteOutcome:
    """What became of a batch of ``rows`` rows: ``failed`` rows skipped with their error (the
    rest committed), or ``error`` when none could be written."""

    rows: int
    failed: list[tuple[str, BaseException]]
    error: BaseException | None = None


@functools.lru_cache(maxsize=256)
def _insert_ignore_sql(table: str, cols: tuple[str, ...]) -> str:
    """``INSERT OR IGNORE`` of ``cols`` into ``table`` (names come from the schema, quoted anyway)."""
    names = ", ".join(f'"{c}"' for c in cols)
    return f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})'


_ByShape = dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]]


class Transactions:
    """Commits prepared rows over one connection (used by one thread at a time).

    Args:
        conn: an autocommit connection (:func:`connect`).
        db: sqlite-utils' view of the same connection (for upserts).
        retry: the lock retry wrapped around each transaction.
        batch_size: rows per statement chunk of an upsert.
    """

    def __init__(self, conn: sqlite3.Connection, db: Database, retry: LockRetry, batch_size: int) -> None:
        self._conn = conn
        self._db = db
        self._retry = retry
        self._batch_size = batch_size

    def write(self, groups: Groups) -> WriteOutcome:
        """Commit ``groups`` in one transaction; on a persistent error fall back to one row at a time.

        Never raises for a write error: it is returned in the outcome.
        """
        by_shape: _ByShape = {}
        for table, rows in groups:
            for row in rows:
                by_shape.setdefault((table, tuple(row)), []).append(tuple(row.values()))
        n = sum(len(v) for v in by_shape.values())
        try:
            return WriteOutcome(n, self._retry(lambda: self._transaction(by_shape)))
        except Exception as exc:
            log.warning("store batch of %d row(s) failed (%s); retrying row by row", n, exc)
        try:
            return WriteOutcome(n, self._retry(lambda: self._transaction(by_shape, row_by_row=True)))
        except Exception as exc2:
            return WriteOutcome(n, [], exc2)

    def _transaction(self, by_shape: _ByShape, row_by_row: bool = False) -> list[tuple[str, BaseException]]:
        """One BEGIN IMMEDIATE transaction; returns the rows skipped (row_by_row only) with their error."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        failed: list[tuple[str, BaseException]] = []
        try:
            for (table, cols), values in by_shape.items():
                if not row_by_row:
                    self._insert(table, cols, values)
                    continue
                for value in values:
                    conn.execute("SAVEPOINT arbor_row")
                    try:
                        self._insert(table, cols, [value])
                    except sqlite3.Error as exc:
                        if is_transient(exc):
                            raise
                        conn.execute("ROLLBACK TO arbor_row")
                        failed.append((table, exc))
                    conn.execute("RELEASE arbor_row")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return failed

    def _insert(self, table: str, cols: tuple[str, ...], values: list[tuple[Any, ...]]) -> None:
        policy = POLICIES[table]
        if policy.conflict == "upsert":
            pk: Any = policy.pk[0] if len(policy.pk) == 1 else policy.pk
            records: list[Any] = [list(cols), *values]
            self._db.table(table).insert_all(records, pk=pk, upsert=True, batch_size=self._batch_size)
            return
        # Append-only rows are already normalised to SQLite scalars, so one cached INSERT OR IGNORE
        # through executemany does what sqlite-utils' insert_all(ignore=True) does, at a third of
        # its cost per row (no per-value JSON check, no statement rebuilt per chunk).
        self._conn.executemany(_insert_ignore_sql(table, cols), values)
