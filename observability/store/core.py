"""The SQLite telemetry store: batched writes off the hot path, short-lived read connections.

One file (``ARBOR_DB_PATH``, default ``data/runtime/arbor.db``) in WAL mode with a 5 s busy
timeout and ``synchronous=NORMAL``.  :class:`Store` puts together the package's parts: the
file checks (:mod:`.files`), the schema and its migrations (:mod:`.schema`), row conversion
(:mod:`.rows`), the writer (:mod:`.writer`, :mod:`.transactions`) and the read model (:mod:`.reads`).

Writes: :meth:`Store.submit` validates rows in the caller (unknown table or column, a missing
primary key, a value SQLite cannot store -> ``ValueError`` there, nothing queued) and queues
them; ONE writer thread commits them in ``BEGIN IMMEDIATE`` transactions of up to
``batch_size`` rows.  A submission is never split across transactions, so
:meth:`Store.submit_bundle` writes several tables atomically.  Append-only tables use
``INSERT OR IGNORE`` on their primary key (a request submitted twice is stored once, the first
one wins); ``experiments``, ``flags`` and ``alerts`` are upserted.  :meth:`Store.flush` blocks
until every row submitted before the call is committed (WAL + ``synchronous=NORMAL``: it
survives the process being killed; a power cut may lose the last commits).

Bounded backlog: at most ``max_backlog`` submissions are queued or being written; one more waits
(back-pressure), so a process killed outright loses at most ``max_backlog`` submissions.  Each
submission gets a ticket: :meth:`Store.wait_for` blocks until it is committed (group commit).

A writer error never stops the writer: a failed batch is retried row by row so only the
offending rows are lost, the error is kept and raised by the next ``flush()``/``close()`` as
:class:`StoreError` (each error is raised once).

Reads (:attr:`Store.reads`, a :class:`ReadModel`) open their own connection each and see
committed rows only: call ``flush()`` first to read your own writes.

Several processes may each hold a ``Store`` on the same file; SQLite's locks serialise their
transactions.  A ``Store`` must not be used across ``fork``: create one in the child.
"""

from __future__ import annotations

import atexit
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from observability.activity import Activity
from observability.store.files import check_store_file, open_error
from observability.store.reads import ReadModel
from observability.store.rows import Row, RowPreparer, Tables
from observability.store.schema import SCHEMA_VERSION, TableShape, describe, migrate
from observability.store.transactions import Groups, LockRetry, Transactions, connect, is_transient
from observability.store.writer import Deferred, StoreError, Writer

__all__ = ["Store", "StoreStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreStats:
    """Counters since the store was opened (rows, not submissions)."""

    submitted_rows: int
    committed_rows: int  # rows in committed transactions, duplicates ignored by INSERT OR IGNORE included
    failed_rows: int
    batches: int
    lock_retries: int  # transactions retried after SQLITE_BUSY outlasted the busy timeout
    pending_rows: int
    backlog: int = 0  # submissions queued or being written now (at most max_backlog)
    backlog_waits: int = 0  # times a producer waited for room (back-pressure)


class Store:
    """Telemetry store over one SQLite file (see the module docstring for the guarantees).

    Args:
        db_path: the database file; parent directories are created.
        clock: returns unix seconds; stamps ``ts``/``updated_ts`` columns a row leaves out
            (a simulated clock gives simulated timestamps).
        batch_size: rows per transaction at most (a single larger submission is still one transaction).
        flush_interval_s: longest time a row waits for its batch to fill before it is committed.
        threaded: False writes each submission synchronously in the caller (tests, CLI tools).
        busy_timeout_ms: how long a connection waits for another's lock.
        max_backlog: submissions queued or being written at most; a submission beyond it waits
            until the writer has made room (threaded mode only; >= 1).
        activity, max_defer_s: while requests are in flight (``activity``) the writer holds
            queued rows, at most ``max_defer_s`` seconds, so it does not compete with them (see
            :mod:`observability.store.writer`; 0 or None: never held).

    Raises:
        ValueError: ``db_path`` is ``:memory:`` (readers need a file) or a parameter is out of range.
        SchemaError: the file's schema is newer than this code or the file is not a store
            (checked before anything is written to it).
        StoreOpenError: the file or its directory cannot be created, read or written, or the file
            is corrupt; the message names the file and what to do.  (SchemaError is one.)
        StoreError: the file cannot be put in WAL mode (e.g. some network file systems).
        sqlite3.OperationalError: the file stayed locked beyond the retry budget.
    """

    def __init__(
        self,
        db_path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        batch_size: int = 500,
        flush_interval_s: float = 0.05,
        threaded: bool = True,
        busy_timeout_ms: int = 5000,
        max_backlog: int = 2000,
        activity: Activity | None = None,
        max_defer_s: float = 0.0,
    ) -> None:
        if str(db_path) == ":memory:":
            raise ValueError("the store needs a file: readers open their own connections")
        if batch_size < 1 or flush_interval_s < 0 or busy_timeout_ms < 0:
            raise ValueError("batch_size >= 1, flush_interval_s >= 0 and busy_timeout_ms >= 0 are required")
        if max_backlog < 1:
            raise ValueError("max_backlog must be >= 1")
        if not max_defer_s >= 0:
            raise ValueError("max_defer_s must be >= 0")
        self.path = Path(db_path)
        check_store_file(self.path)  # reads only: a foreign or newer file is rejected untouched
        self._clock = clock
        self._pid = os.getpid()
        self._lock_retries = 0
        retry = LockRetry(self.path, self._count_retry)
        try:
            conn = connect(self.path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise open_error(self.path, exc) from None
        try:
            db = Database(conn, recursive_triggers=False, execute_plugins=False)
            shapes: dict[str, TableShape] = retry(lambda: self._open_schema(db))
        except sqlite3.Error as exc:
            conn.close()
            if is_transient(exc):
                raise
            raise open_error(self.path, exc) from None
        except BaseException:
            conn.close()
            raise
        self._rows = RowPreparer(shapes, clock)
        self._writer = Writer(
            self.path,
            conn,
            Transactions(conn, db, retry, batch_size),
            self._rows,
            batch_size=batch_size,
            flush_interval_s=flush_interval_s,
            max_backlog=max_backlog,
            threaded=threaded,
            activity=activity,
            max_defer_s=max_defer_s,
        )
        #: The read model: every read query of the store (see :class:`ReadModel`).
        self.reads = ReadModel(self.path, busy_timeout_ms)
        atexit.register(self._atexit_close)

    def _count_retry(self) -> None:
        self._lock_retries += 1

    def _open_schema(self, db: Database) -> dict[str, TableShape]:
        db.enable_wal()
        mode = db.journal_mode
        if mode != "wal":
            raise StoreError(
                f"{self.path}: journal_mode is {mode!r}, WAL is required (network file system?): "
                "put ARBOR_DB_PATH on a local disk"
            )
        migrate(db, self._clock)
        return describe(db)

    @property
    def schema_version(self) -> int:
        """The schema version this store runs (``PRAGMA user_version`` of the file)."""
        return SCHEMA_VERSION

    @property
    def max_backlog(self) -> int:
        """Submissions queued or being written at most (threaded mode); more wait for room."""
        return self._writer.max_backlog

    @property
    def tables(self) -> dict[str, tuple[str, ...]]:
        """Writable tables and their columns, in file order."""
        return self._rows.tables

    # ------------------------------------------------------------------ writes

    def submit(self, table: str, row_or_rows: Row | Iterable[Row]) -> int:
        """Queue one row (a mapping) or an iterable of rows for ``table``; return the number queued.

        JSON columns take dict/list (or a JSON string); booleans are stored as 0/1;
        ``ts``-like columns left out are stamped with the clock.  The rows are
        copied, so the caller may reuse its dicts.  While ``max_backlog`` submissions
        are pending the call waits for the writer (back-pressure).

        Raises:
            ValueError: unknown table or column, missing primary key or required
                column, a value outside the column's choices, or one SQLite cannot store.
                Nothing of the call is queued; earlier submissions are unaffected.
            StoreError: the store is closed, used in a forked child, or (synchronous
                mode) the write failed.
        """
        return self._enqueue([(table, self._rows.prepare(table, row_or_rows))])

    def submit_bundle(self, tables: Mapping[str, Row | Iterable[Row]]) -> int:
        """Queue rows of several tables to be committed in ONE transaction (all or none); return rows queued.

        Raises:
            ValueError, StoreError: as :meth:`submit`; a bad row anywhere queues nothing.
        """
        return self._enqueue([(table, self._rows.prepare(table, rows)) for table, rows in tables.items()])

    def submit_deferred(self, build: Callable[[], Tables], rows_hint: int = 1) -> int:
        """Queue ``build``, called later in the writer thread, whose ``{table: rows}`` are
        validated there and committed in one transaction: the caller pays only a queue put
        (and waits first while the backlog is full).  Returns the submission's ticket for
        :meth:`wait_for` (0 in synchronous mode, where the rows are written before it returns).

        A ``build`` that raises, or rows that fail validation, are reported by the next
        :meth:`flush`/:meth:`close` as :class:`StoreError`; nothing of that call is written.
        ``rows_hint`` is the expected row count, for batching.

        Raises:
            StoreError: the store is closed, or its writer stopped while this call waited for room.
        """
        if not self._writer.threaded:
            self._enqueue(self._rows.prepare_tables(build()))
            return 0
        return self._writer.admit(Deferred(build), max(1, rows_hint), 0)

    def wait_for(self, ticket: int, timeout_s: float = 30.0) -> bool:
        """Block until the submission with ``ticket`` (from :meth:`submit_deferred`) is committed
        or failed, at most ``timeout_s`` seconds; True when it was.  The writer commits at once
        while someone waits (group commit: the submissions queued by then share the
        transaction).  Raises nothing: write errors stay for the next ``flush``/``close``."""
        return self._writer.wait_for(ticket, timeout_s)

    def record_request(self, row: Row) -> int:
        """Queue one ``requests`` row (``request_id`` required; ``ts`` defaults to the clock)."""
        if not isinstance(row, Mapping):
            raise ValueError("record_request takes one mapping")
        return self.submit("requests", row)

    def record_spans(self, rows: Iterable[Row]) -> int:
        """Queue ``spans`` rows (``span_id``, ``trace_id``, ``name`` required; times in unix s / ms)."""
        return self.submit("spans", rows)

    def record_routing(self, rows: Iterable[Row]) -> int:
        """Queue ``routing_decisions`` rows (``request_id``, ``step``, ``agent`` required)."""
        return self.submit("routing_decisions", rows)

    def record_mcts_run(self, run_row: Row, nodes: Iterable[Row] = (), snapshots: Iterable[Row] = ()) -> int:
        """Queue an MCTS run with its flat tree and snapshots, committed together.

        ``run_id`` is copied into nodes and snapshots that leave it out.

        Raises:
            ValueError: as :meth:`submit`, or ``run_row`` has no ``run_id``.
        """
        if not isinstance(run_row, Mapping) or run_row.get("run_id") is None:
            raise ValueError("record_mcts_run needs a run row with a run_id")
        run_id = run_row["run_id"]
        return self.submit_bundle(
            {
                "mcts_runs": run_row,
                "mcts_nodes": [{"run_id": run_id, **n} for n in nodes],
                "mcts_snapshots": [{"run_id": run_id, **s} for s in snapshots],
            }
        )

    def _enqueue(self, groups: Groups) -> int:
        if os.getpid() != self._pid:
            raise StoreError("this Store was created in another process (fork): open a new one in the child")
        return self._writer.enqueue(groups)

    # ------------------------------------------------------------------ flush and close

    def flush(self, timeout_s: float = 10.0) -> None:
        """Block until every row submitted before this call is committed (or failed).

        Raises:
            StoreError: a write failed since the last flush/close (each error is raised
                once), or the rows were not committed within ``timeout_s`` seconds.
        """
        pending, timed_out = self._writer.drain(timeout_s)
        if timed_out:
            raise StoreError(f"flush timed out after {timeout_s}s: {pending} submission(s) pending")
        if pending:
            raise StoreError(f"writer stopped with {pending} submission(s) unwritten")
        self._writer.raise_errors()

    def wait(self, timeout_s: float = 10.0) -> bool:
        """Block until every row submitted before this call is committed or failed, at most
        ``timeout_s`` seconds; True when it was.  Unlike :meth:`flush` it raises nothing: write
        errors stay for the next ``flush``/``close`` (for readers that want their own writes)."""
        pending, _ = self._writer.drain(timeout_s)
        return pending == 0

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, stop the writer and release the connection; later calls do nothing.

        Raises:
            StoreError: a write failed and was not yet reported, or the writer did not
                finish within ``timeout_s`` seconds.
        """
        if not self._writer.close(timeout_s):
            return
        atexit.unregister(self._atexit_close)  # only now: an interrupted close is finished at exit
        self._writer.raise_errors()

    def _atexit_close(self) -> None:
        try:
            self.close()
        except Exception as exc:  # at exit: report, never raise
            log.error("store %s: %s", self.path, exc)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def stats(self) -> StoreStats:
        """Row counters since the store was opened."""
        submitted, committed, failed, batches, backlog, waits = self._writer.counters()
        return StoreStats(
            submitted_rows=submitted,
            committed_rows=committed,
            failed_rows=failed,
            batches=batches,
            lock_retries=self._lock_retries,
            pending_rows=submitted - committed - failed,
            backlog=backlog,
            backlog_waits=waits,
        )

    # ------------------------------------------------------------------ reads (see ReadModel)

    def query(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Ad-hoc read-only SQL on a fresh connection: :meth:`ReadModel.query`."""
        return self.reads.query(sql, params)

    def requests_frame(
        self,
        since_ts: float | None = None,
        until_ts: float | None = None,
        task: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Requests in a time range, oldest first: :meth:`ReadModel.requests_frame`."""
        return self.reads.requests_frame(since_ts, until_ts, task, limit)

    def request(self, request_id: str) -> dict[str, Any] | None:
        """One request row by id, or None: :meth:`ReadModel.request`."""
        return self.reads.request(request_id)

    def spans_for_trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Spans of a trace ordered by start time: :meth:`ReadModel.spans_for_trace`."""
        return self.reads.spans_for_trace(trace_id)

    def routing_for_request(self, request_id: str) -> list[dict[str, Any]]:
        """Routing decisions of a request ordered by step: :meth:`ReadModel.routing_for_request`."""
        return self.reads.routing_for_request(request_id)

    def count(self, table: str) -> int:
        """Committed rows in ``table``: :meth:`ReadModel.count` (ValueError for an unknown table)."""
        return self.reads.count(table)

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` of the file: :meth:`ReadModel.integrity_check`."""
        return self.reads.integrity_check()
