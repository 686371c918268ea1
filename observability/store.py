"""The SQLite telemetry store: batched writes off the hot path, short-lived read connections.

One file (``ARBOR_DB_PATH``, default ``data/runtime/arbor.db``) in WAL mode
with a 5 s busy timeout and ``synchronous=NORMAL``; the schema and its
migrations live in :mod:`observability.store_schema`.

Writes: :meth:`Store.submit` validates rows in the caller (unknown table or
column, a missing primary key, a value SQLite cannot store -> ``ValueError``
there, nothing queued) and puts them on a queue.  ONE writer thread drains the
queue in ``BEGIN IMMEDIATE`` transactions of up to ``batch_size`` rows, waiting
at most ``flush_interval_s`` to fill a batch.  A submission is never split
across transactions, so :meth:`Store.submit_bundle` writes several tables
atomically.  Append-only tables use ``INSERT OR IGNORE`` on their primary key
(a request submitted twice is stored once, the first one wins); ``experiments``,
``flags`` and ``alerts`` are upserted.  :meth:`Store.flush` blocks until every
row submitted before the call is committed (WAL + ``synchronous=NORMAL``: it
survives the process being killed; a power cut may lose the last commits).

Bounded backlog: at most ``max_backlog`` submissions are queued or being
written at any time (the batch in its transaction included).  A submission
that would exceed it waits (back-pressure) until the writer has committed
enough; the check is one comparison of two counters, and only a full backlog
touches a lock.  So a process killed outright loses at most ``max_backlog``
submissions.  Each submission gets a ticket (its sequence number):
:meth:`Store.wait_for` blocks until that submission is committed (group
commit: while someone waits, the writer commits as soon as the queue is empty
instead of waiting for the batch to fill).

A writer error never stops the writer: a failed batch is retried row by row so
only the offending rows are lost, the error is kept and raised by the next
``flush()``/``close()`` as :class:`StoreError` (each error is raised once).

Reads open their own connection each (WAL lets them run beside the writer) and
see committed rows only: call ``flush()`` first to read your own writes.

Several processes may each hold a ``Store`` on the same file; SQLite's locks
serialise their transactions.  A ``Store`` must not be used across ``fork``:
create one in the child.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import math
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from observability.store_schema import (
    POLICIES,
    SCHEMA_VERSION,
    SchemaError,
    StoreOpenError,
    TablePolicy,
    TableShape,
    check_store_file,
    describe,
    migrate,
    open_error,
)

__all__ = ["SCHEMA_VERSION", "SchemaError", "Store", "StoreError", "StoreOpenError", "StoreStats"]

log = logging.getLogger(__name__)

Row = Mapping[str, Any]
_Groups = list[tuple[str, list[dict[str, Any]]]]
_FLUSH = object()
_STOP = object()
_TICK_S = 0.001  # the writer's poll while rows are arriving ...
_IDLE_TICK_S = 0.02  # ... backing off to this when the queue stays empty
_ROOM_CHECK_S = 1.0  # a producer waiting for room re-checks the writer's health this often
_ROOM_WARN_S = 10.0  # ... and says so once when it has waited this long
Tables = Mapping[str, "Row | Iterable[Row]"]


@dataclass(frozen=True)
class _Deferred:
    """Rows to be built (and validated) in the writer thread: ``build() -> {table: rows}``."""

    build: Callable[[], Tables]


_SCALARS = (str, int, float, bytes, type(None))
_TRANSIENT = ("locked", "busy")
_RETRY_BUDGET_S = 30.0


class StoreError(RuntimeError):
    """Rows could not be written (kept by the writer, raised by flush/close), or the store is closed."""


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


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    conn = sqlite3.connect(
        str(path), timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = OFF")
    return conn


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and any(w in str(exc).lower() for w in _TRANSIENT)


@functools.lru_cache(maxsize=256)
def _insert_ignore_sql(table: str, cols: tuple[str, ...]) -> str:
    """``INSERT OR IGNORE`` of ``cols`` into ``table`` (names come from the schema, quoted anyway)."""
    names = ", ".join(f'"{c}"' for c in cols)
    return f'INSERT OR IGNORE INTO "{table}" ({names}) VALUES ({", ".join("?" * len(cols))})'


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_JSON = json.JSONEncoder(separators=(",", ":"), default=_json_default)  # stateless: safe to share


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
    ) -> None:
        if str(db_path) == ":memory:":
            raise ValueError("the store needs a file: readers open their own connections")
        if batch_size < 1 or flush_interval_s < 0 or busy_timeout_ms < 0:
            raise ValueError("batch_size >= 1, flush_interval_s >= 0 and busy_timeout_ms >= 0 are required")
        if max_backlog < 1:
            raise ValueError("max_backlog must be >= 1")
        self._max_backlog = max_backlog
        self.path = Path(db_path)
        check_store_file(self.path)  # reads only: a foreign or newer file is rejected untouched
        self._clock = clock
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._busy_timeout_ms = busy_timeout_ms
        self._threaded = threaded
        self._pid = os.getpid()

        self._submitted_rows = self._committed_rows = self._failed_rows = 0
        self._batches = self._lock_retries = 0
        try:
            self._conn = _connect(self.path, busy_timeout_ms)
        except sqlite3.Error as exc:
            raise open_error(self.path, exc) from None
        try:
            self._db = Database(self._conn, recursive_triggers=False, execute_plugins=False)
            self._shapes: dict[str, TableShape] = self._retry_transient(self._open_schema)
        except sqlite3.Error as exc:
            self._conn.close()
            if _is_transient(exc):
                raise
            raise open_error(self.path, exc) from None
        except BaseException:
            self._conn.close()
            raise

        self._submit_lock = threading.Lock()  # orders sequence numbers with queue order; guards _closed
        self._write_lock = threading.Lock()  # synchronous mode: one writer at a time
        self._cv = threading.Condition()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._wake = threading.Event()  # set by flush and close: the polling writer looks at once
        self._seq = 0  # submissions enqueued
        self._done = 0  # submissions processed (committed or failed)
        self._urgent = 0  # the highest ticket someone waits for (wait_for): commit it without delay
        self._full_waits = 0  # times a producer had to wait for room in the backlog
        self._closed = False
        self._errors: list[StoreError] = []
        self._reported = 0
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(
                target=self._writer, name=f"arbor-store:{self.path.name}", daemon=True
            )
            self._thread.start()
        atexit.register(self._atexit_close)

    # ------------------------------------------------------------------ set-up

    def _open_schema(self) -> dict[str, TableShape]:
        self._db.enable_wal()
        mode = self._db.journal_mode
        if mode != "wal":
            raise StoreError(
                f"{self.path}: journal_mode is {mode!r}, WAL is required (network file system?): "
                "put ARBOR_DB_PATH on a local disk"
            )
        migrate(self._db, self._clock)
        return describe(self._db)

    def _retry_transient(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn``, retrying while SQLite stays busy beyond the busy timeout (bounded)."""
        deadline = time.monotonic() + _RETRY_BUDGET_S
        delay = 0.02
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if not _is_transient(exc) or time.monotonic() + delay > deadline:
                    raise
                self._lock_retries += 1
                log.warning("store %s busy (%s); retrying in %.2fs", self.path, exc, delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @property
    def schema_version(self) -> int:
        """The schema version this store runs (``PRAGMA user_version`` of the file)."""
        return SCHEMA_VERSION

    @property
    def max_backlog(self) -> int:
        """Submissions queued or being written at most (threaded mode); more wait for room."""
        return self._max_backlog

    @property
    def tables(self) -> dict[str, tuple[str, ...]]:
        """Writable tables and their columns, in file order."""
        return {name: shape.columns for name, shape in self._shapes.items()}

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
        return self._enqueue([(table, self._prepare(table, row_or_rows))])

    def submit_bundle(self, tables: Mapping[str, Row | Iterable[Row]]) -> int:
        """Queue rows of several tables to be committed in ONE transaction (all or none); return rows queued.

        Raises:
            ValueError, StoreError: as :meth:`submit`; a bad row anywhere queues nothing.
        """
        return self._enqueue([(table, self._prepare(table, rows)) for table, rows in tables.items()])

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
        if not self._threaded:
            self._enqueue(self._resolve(_Deferred(build)))
            return 0
        return self._admit(_Deferred(build), max(1, rows_hint), 0)

    def _admit(self, groups: _Groups | _Deferred, rows: int, counted: int) -> int:
        """Queue one submission of ``rows`` rows (``counted`` of them counted as submitted now)
        within the backlog bound; return its ticket.  Without a full backlog this is one
        comparison more than a plain put; a full one makes the caller wait for the writer."""
        while True:
            with self._submit_lock:
                if self._closed:
                    raise StoreError(f"store {self.path} is closed")
                if self._seq - self._done < self._max_backlog:
                    self._seq += 1
                    self._submitted_rows += counted
                    self._queue.put((self._seq, groups, rows))
                    return self._seq
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        """Block while the backlog is full (back-pressure); the writer notifies after each batch.

        Raises:
            StoreError: the writer thread is not running, so no room will come.
        """
        thread = self._thread
        self._wake.set()
        t0 = time.monotonic()
        warned = False
        with self._cv:
            self._full_waits += 1
            while self._seq - self._done >= self._max_backlog and not self._closed:
                if thread is None or not thread.is_alive():
                    raise StoreError(f"store {self.path}: the writer stopped with a full backlog")
                self._cv.wait(_ROOM_CHECK_S)
                if not warned and time.monotonic() - t0 > _ROOM_WARN_S:
                    warned = True
                    log.warning(
                        "store %s: backlog of %d submission(s) full for %.0fs; producers are waiting",
                        self.path,
                        self._max_backlog,
                        _ROOM_WARN_S,
                    )

    def wait_for(self, ticket: int, timeout_s: float = 30.0) -> bool:
        """Block until the submission with ``ticket`` (from :meth:`submit_deferred`) is committed
        or failed, at most ``timeout_s`` seconds; True when it was.  The writer commits at once
        while someone waits (group commit: the submissions queued by then share the
        transaction).  Raises nothing: write errors stay for the next ``flush``/``close``."""
        thread = self._thread
        if ticket <= self._done or thread is None:
            return True
        with self._cv:
            if ticket > self._urgent:
                self._urgent = ticket
        self._wake.set()
        with self._cv:
            self._cv.wait_for(lambda: self._done >= ticket or not thread.is_alive(), timeout_s)
            return self._done >= ticket

    def _resolve(self, deferred: _Deferred) -> _Groups:
        groups = [(table, self._prepare(table, rows)) for table, rows in deferred.build().items()]
        return [(t, rows) for t, rows in groups if rows]

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

    def _prepare(self, table: str, row_or_rows: Row | Iterable[Row]) -> list[dict[str, Any]]:
        shape = self._shapes.get(table)
        if shape is None:
            raise ValueError(f"unknown table {table!r}; tables: {sorted(self._shapes)}")
        if isinstance(row_or_rows, Mapping):
            rows: Iterable[Any] = (row_or_rows,)
        elif isinstance(row_or_rows, (str, bytes)):
            raise ValueError(f"{table}: rows must be mappings, got {type(row_or_rows).__name__}")
        else:
            rows = row_or_rows
        policy = POLICIES[table]
        return [self._normalise(table, shape, policy, row) for row in rows]

    def _normalise(self, table: str, shape: TableShape, policy: TablePolicy, row: Any) -> dict[str, Any]:
        if not isinstance(row, Mapping):
            raise ValueError(f"{table}: each row must be a mapping, got {type(row).__name__}")
        unknown = row.keys() - shape.column_set
        if unknown:
            raise ValueError(f"{table}: unknown column(s) {sorted(unknown)}; columns: {list(shape.columns)}")
        json_cols = policy.json_columns
        out: dict[str, Any] = {}
        for key, value in row.items():
            kind = type(value)
            if key in json_cols:
                value = self._json_value(table, key, value)
            elif kind is float:
                if value != value:  # NaN: SQLite stores it as NULL anyway; say so explicitly
                    value = None
            elif kind not in _SCALARS:
                value = self._scalar(table, key, value)
            out[key] = value
        for key, allowed in policy.choices.items():
            if key in out and out[key] not in allowed:
                raise ValueError(f"{table}.{key}: {out[key]!r} is not one of {sorted(map(str, allowed))}")
        for key in policy.auto_ts:
            if out.get(key) is None:
                out[key] = float(self._clock())
        missing = [c for c in shape.required if out.get(c) is None]
        if missing:
            raise ValueError(f"{table}: missing required column(s) {sorted(missing)}")
        return out

    @staticmethod
    def _scalar(table: str, key: str, value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, Enum):
            return Store._scalar(table, key, value.value)
        if isinstance(value, int):  # int subclasses
            return int(value)
        if isinstance(value, float):  # numpy.float64 and other float subclasses
            return None if math.isnan(value) else float(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, bytes):
            return bytes(value)
        if hasattr(value, "item") and callable(value.item):  # numpy scalars (int64, bool_, float32)
            item = value.item()
            if type(item) in (*_SCALARS, bool):
                return Store._scalar(table, key, item) if type(item) in (bool, float) else item
        raise ValueError(
            f"{table}.{key}: cannot store a {type(value).__name__} (use str, int, float, bytes or None)"
        )

    @staticmethod
    def _json_value(table: str, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError as exc:
                raise ValueError(f"{table}.{key}: a string for a JSON column must be valid JSON") from exc
            return value
        try:
            return _JSON.encode(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{table}.{key}: not JSON serialisable: {exc}") from exc

    def _enqueue(self, groups: _Groups) -> int:
        groups = [(t, rows) for t, rows in groups if rows]
        n = sum(len(rows) for _, rows in groups)
        if os.getpid() != self._pid:
            raise StoreError("this Store was created in another process (fork): open a new one in the child")
        if not self._threaded:
            with self._write_lock:
                if self._closed:
                    raise StoreError(f"store {self.path} is closed")
                if n:
                    self._submitted_rows += n
                    self._write(groups)
            self._raise_errors()
            return n
        if n:
            self._admit(groups, n, n)
        else:
            with self._submit_lock:
                if self._closed:
                    raise StoreError(f"store {self.path} is closed")
        return n

    # ------------------------------------------------------------------ writer

    def _writer(self) -> None:
        """Writer thread: gather a batch, commit it, publish progress; never dies on a write error."""
        try:
            stop = False
            while not stop:
                batch, rows, stop = self._gather(self._take())
                if not batch:
                    continue
                try:
                    self._write([group for _, groups, _ in batch for group in groups])
                except Exception as exc:  # pragma: no cover - _write records its own errors
                    self._record_error(StoreError(f"writer failed on {rows} row(s): {exc!r}"), rows)
                with self._cv:
                    self._done = batch[-1][0]
                    self._cv.notify_all()
        finally:
            try:
                self._conn.close()
            finally:
                with self._cv:
                    self._cv.notify_all()

    def _materialise(self, groups: _Groups | _Deferred) -> _Groups:
        """Groups as queued, or a deferred job's rows built and validated now (writer thread)."""
        if not isinstance(groups, _Deferred):
            return groups
        try:
            resolved = self._resolve(groups)
        except Exception as exc:
            self._record_error(StoreError(f"deferred rows not written: {exc!r}"), 0)
            return []
        with self._cv:
            self._submitted_rows += sum(len(rows) for _, rows in resolved)
        return resolved

    def _gather(self, first: Any) -> tuple[list[tuple[int, _Groups, int]], int, bool]:
        """A batch from ``first`` on: until batch_size rows, the flush interval, or a marker.

        Deferred jobs are built as they arrive, while the thread that submitted one is
        usually between requests, not when the batch is committed (which would take the
        GIL from queries running by then).  After each job the writer offers the GIL
        (``time.sleep(0)``), so a query thread waiting for it runs at once instead of
        after CPython's 5 ms switch interval.

        The batch also ends as soon as the queue is empty when someone waits for one of its
        submissions (:meth:`wait_for`) or producers wait for room in the backlog.

        Returns (batch, rows, stop); a flush marker ends the batch early, the stop marker also ends the loop.
        """
        if first is _STOP:
            return [], 0, True
        if first is _FLUSH:
            return [], 0, False
        batch, rows = [self._built(first)], first[2]
        deadline = time.monotonic() + self._flush_interval_s
        while rows < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                full = self._seq - self._done >= self._max_backlog
                if remaining <= 0 or full or self._urgent >= batch[0][0]:
                    break  # the interval is over, producers wait for room, or someone waits for this batch
                self._nap(min(remaining, _TICK_S))
                continue
            if item is _STOP:
                return batch, rows, True
            if item is _FLUSH:
                break
            batch.append(self._built(item))
            rows += item[2]
        return batch, rows, False

    def _take(self) -> Any:
        """The next queued item, polled for: the writer sleeps in short ticks (longer while idle)
        instead of blocking on the queue, so a submission never has to wake a thread.  A put
        then costs the submitting query ~0.2 µs instead of the ~6 µs of waking a blocked
        writer; flush and close still wake it at once (``_wake``)."""
        tick = _TICK_S
        while True:
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                self._nap(tick)
                tick = min(tick * 2, _IDLE_TICK_S)

    def _nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``; flush and close cut it short (``_wake``)."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _built(self, item: tuple[int, _Groups | _Deferred, int]) -> tuple[int, _Groups, int]:
        seq, groups, rows = item
        if not isinstance(groups, _Deferred):
            return item  # type: ignore[return-value]
        built = self._materialise(groups)
        time.sleep(0)
        return seq, built, rows

    def _write(self, groups: _Groups) -> None:
        """Commit ``groups`` in one transaction; on a persistent error fall back to one row at a time."""
        by_shape: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]] = {}
        for table, rows in groups:
            for row in rows:
                by_shape.setdefault((table, tuple(row)), []).append(tuple(row.values()))
        n = sum(len(v) for v in by_shape.values())
        try:
            failed = self._retry_transient(lambda: self._transaction(by_shape))
        except Exception as exc:
            log.warning("store batch of %d row(s) failed (%s); retrying row by row", n, exc)
            try:
                failed = self._retry_transient(lambda: self._transaction(by_shape, row_by_row=True))
            except Exception as exc2:
                self._record_error(StoreError(f"{n} row(s) not written: {exc2!r}"), n)
                return
        for table, exc in failed:
            self._record_error(StoreError(f"{table}: row not written: {exc!r}"), 1)
        with self._cv:
            self._committed_rows += n - len(failed)
            self._batches += 1

    def _transaction(
        self, by_shape: dict[tuple[str, tuple[str, ...]], list[tuple[Any, ...]]], row_by_row: bool = False
    ) -> list[tuple[str, BaseException]]:
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
                        if _is_transient(exc):
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
            self._db[table].insert_all(records, pk=pk, upsert=True, batch_size=self._batch_size)
            return
        # Append-only rows are already normalised to SQLite scalars, so one cached INSERT OR IGNORE
        # through executemany does what sqlite-utils' insert_all(ignore=True) does, at a third of
        # its cost per row (no per-value JSON check, no statement rebuilt per chunk).
        sql = _insert_ignore_sql(table, cols)
        self._conn.executemany(sql, values)

    def _record_error(self, error: StoreError, rows: int) -> None:
        log.error("%s", error)
        with self._cv:
            self._errors.append(error)
            self._failed_rows += rows

    def _raise_errors(self) -> None:
        with self._cv:
            new = self._errors[self._reported :]
            self._reported = len(self._errors)
        if new:
            more = f" (and {len(new) - 1} more error(s))" if len(new) > 1 else ""
            raise StoreError(f"{new[0]}{more}") from new[0]

    def flush(self, timeout_s: float = 10.0) -> None:
        """Block until every row submitted before this call is committed (or failed).

        Raises:
            StoreError: a write failed since the last flush/close (each error is raised
                once), or the rows were not committed within ``timeout_s`` seconds.
        """
        pending, timed_out = self._drain(timeout_s)
        if timed_out:
            raise StoreError(f"flush timed out after {timeout_s}s: {pending} submission(s) pending")
        if pending:
            raise StoreError(f"writer stopped with {pending} submission(s) unwritten")
        self._raise_errors()

    def wait(self, timeout_s: float = 10.0) -> bool:
        """Block until every row submitted before this call is committed or failed, at most
        ``timeout_s`` seconds; True when it was.  Unlike :meth:`flush` it raises nothing: write
        errors stay for the next ``flush``/``close`` (for readers that want their own writes)."""
        pending, _ = self._drain(timeout_s)
        return pending == 0

    def _drain(self, timeout_s: float) -> tuple[int, bool]:
        """Wait for the writer to process what is queued now: (submissions left, timed out)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return 0, False
        with self._submit_lock:
            target = self._seq
        self._queue.put(_FLUSH)
        self._wake.set()
        with self._cv:
            ok = self._cv.wait_for(lambda: self._done >= target or not thread.is_alive(), timeout_s)
            return max(0, target - self._done), not ok

    def close(self, timeout_s: float = 30.0) -> None:
        """Flush, stop the writer and release the connection; later calls do nothing.

        Raises:
            StoreError: a write failed and was not yet reported, or the writer did not
                finish within ``timeout_s`` seconds.
        """
        with self._submit_lock, self._write_lock:
            first = not self._closed
            self._closed = True
            if first and self._thread is not None:
                self._queue.put(_STOP)
                self._wake.set()
        with self._cv:
            self._cv.notify_all()  # producers waiting for room: the store is closed, they stop waiting
        if not first:
            # Closed before; but if that close was cut short (a signal's exception during the
            # join), the writer may still be draining: wait for it here too (e.g. at exit).
            if self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout_s)
            return
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise StoreError(f"store writer did not finish within {timeout_s}s")
        else:
            self._conn.close()
        atexit.unregister(self._atexit_close)  # only now: an interrupted close is finished at exit
        self._raise_errors()

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
        with self._cv:
            return StoreStats(
                submitted_rows=self._submitted_rows,
                committed_rows=self._committed_rows,
                failed_rows=self._failed_rows,
                batches=self._batches,
                lock_retries=self._lock_retries,
                pending_rows=self._submitted_rows - self._committed_rows - self._failed_rows,
                backlog=self._seq - self._done,
                backlog_waits=self._full_waits,
            )

    # ------------------------------------------------------------------ reads

    @contextmanager
    def _reader(self) -> Iterator[Database]:
        conn = _connect(self.path, self._busy_timeout_ms)
        try:
            conn.execute("PRAGMA query_only = ON")
            yield Database(conn, recursive_triggers=False, execute_plugins=False)
        finally:
            conn.close()

    def _rows(self, table: str, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        json_cols = POLICIES[table].json_columns
        with self._reader() as db:
            rows = list(db.query(sql, list(params)))
        for row in rows:
            for col in json_cols & row.keys():
                if isinstance(row[col], str):
                    row[col] = json.loads(row[col])
        return rows

    def query(self, sql: str, params: Iterable[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """Run a read-only SQL query on a fresh connection; rows as dicts (JSON left as text).

        Raises:
            sqlite3.Error: bad SQL, or the statement tries to write (``query_only``).
            ValueError: the statement returns no rows.
        """
        with self._reader() as db:
            return list(db.query(sql, params if isinstance(params, Mapping) else list(params)))

    def requests_frame(
        self,
        since_ts: float | None = None,
        until_ts: float | None = None,
        task: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Requests with ``since_ts <= ts < until_ts`` (unix s), oldest first; ``agents_used`` decoded.

        ``limit`` keeps the most recent ``limit`` rows.  Wrap in ``pandas.DataFrame`` for a frame.
        """
        where, params = [], []
        if since_ts is not None:
            where.append("ts >= ?")
            params.append(since_ts)
        if until_ts is not None:
            where.append("ts < ?")
            params.append(until_ts)
        if task is not None:
            where.append("task = ?")
            params.append(task)
        sql = "SELECT * FROM requests" + (" WHERE " + " AND ".join(where) if where else "")
        if limit is not None:
            sql = f"SELECT * FROM ({sql} ORDER BY ts DESC, request_id DESC LIMIT ?)"
            params.append(int(limit))
        return self._rows("requests", sql + " ORDER BY ts, request_id", params)

    def request(self, request_id: str) -> dict[str, Any] | None:
        """One request row by id, or None."""
        rows = self._rows("requests", "SELECT * FROM requests WHERE request_id = ?", [request_id])
        return rows[0] if rows else None

    def spans_for_trace(self, trace_id: str) -> list[dict[str, Any]]:
        """Spans of a trace ordered by start time; ``attributes`` decoded."""
        return self._rows(
            "spans", "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ts, span_id", [trace_id]
        )

    def routing_for_request(self, request_id: str) -> list[dict[str, Any]]:
        """Routing decisions of a request ordered by step; ``probabilities``/``features`` decoded."""
        sql = "SELECT * FROM routing_decisions WHERE request_id = ? ORDER BY step"
        return self._rows("routing_decisions", sql, [request_id])

    def count(self, table: str) -> int:
        """Committed rows in ``table``.

        Raises:
            ValueError: unknown table.
        """
        if table not in POLICIES:
            raise ValueError(f"unknown table {table!r}; tables: {sorted(POLICIES)}")
        with self._reader() as db:
            return int(db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0])

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` of the file: ``"ok"``, or the problems found, one per line."""
        with self._reader() as db:
            return "\n".join(str(r[0]) for r in db.execute("PRAGMA integrity_check").fetchall())
