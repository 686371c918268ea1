"""The store's writer: a bounded queue of submissions drained by one polling thread in batches.

ONE writer thread drains the queue in transactions of up to ``batch_size`` rows, waiting at most
``flush_interval_s`` to fill a batch; a submission is never split across transactions.  At most
``max_backlog`` submissions are queued or being written at any time (the batch in its transaction
included): one more waits (back-pressure) until the writer has committed enough -- the check is one
comparison of two counters, only a full backlog touches a lock.  Each submission gets a ticket
(its sequence number); :meth:`Writer.wait_for` blocks until that submission is committed (group
commit: while someone waits, the writer commits as soon as the queue is empty).

Foreground first: given an :class:`observability.activity.Activity` (the requests in flight), the
writer leaves queued submissions alone while requests run -- it neither builds nor commits
them, so it does not take the interpreter from running requests -- and catches up when it turns
false.  It holds them at most ``max_defer_s`` seconds from when it first saw the oldest of them,
and never while someone waits for a commit (:meth:`Writer.wait_for`, flush, close) or the
backlog is half full.  The backlog bound, and so what a ``kill -9`` can lose, is unchanged.

A writer error never stops the writer: the failed rows' error is kept and raised once by the next
:meth:`Writer.flush`/:meth:`Writer.close` as :class:`StoreError`.  Unthreaded (``threaded=False``)
each submission is written synchronously in the caller.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from observability.activity import Activity
from observability.store.rows import RowPreparer, Tables
from observability.store.transactions import Groups, Transactions

__all__ = ["Deferred", "StoreError", "Writer"]

log = logging.getLogger(__name__)

_FLUSH = object()
_STOP = object()
_TICK_S = 0.001  # the writer's poll while rows are arriving ...
_IDLE_TICK_S = 0.02  # ... backing off to this when the queue stays empty
_ROOM_CHECK_S = 1.0  # a producer waiting for room re-checks the writer's health this often
_ROOM_WARN_S = 10.0  # ... and says so once when it has waited this long


class StoreError(RuntimeError):
    """Rows could not be written (kept by the writer, raised by flush/close), or the store is closed."""


@dataclass(frozen=True)
class Deferred:
    """Rows to be built (and validated) in the writer thread: ``build() -> {table: rows}``."""

    build: Callable[[], Tables]


_Item = tuple[int, "Groups | Deferred", int]  # (ticket, rows or a deferred job, row count)


class Writer:
    """Queue, batching, back-pressure and tickets over one :class:`Transactions`.

    Args:
        path: the store file (named in messages and the thread's name).
        conn: the writing connection; closed when the writer stops.
        transactions: commits the batches.
        preparer: validates the rows of deferred jobs.
        batch_size, flush_interval_s, max_backlog, threaded: as :class:`observability.store.Store`.
        activity: the requests in flight (None: never held); ``max_defer_s``: how long queued rows
            may be held for them at most (0: never held).  See the module docstring.
    """

    def __init__(
        self,
        path: Path,
        conn: sqlite3.Connection,
        transactions: Transactions,
        preparer: RowPreparer,
        *,
        batch_size: int,
        flush_interval_s: float,
        max_backlog: int,
        threaded: bool,
        activity: Activity | None = None,
        max_defer_s: float = 0.0,
    ) -> None:
        self.path = path
        self._activity = activity if max_defer_s > 0 else None
        self._max_defer_s = max_defer_s
        self.deferrals = 0  # times the writer held rows for running requests
        self._released = 0  # submissions up to this ticket go without being held again
        self._next: Any = None  # a submission taken from the queue, held to start the next batch
        self._conn = conn
        self._tx = transactions
        self._preparer = preparer
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self.max_backlog = max_backlog
        self.submitted_rows = self.committed_rows = self.failed_rows = self.batches = 0
        self._submit_lock = threading.Lock()  # orders sequence numbers with queue order; guards _closed
        self._write_lock = threading.Lock()  # synchronous mode: one writer at a time
        self._cv = threading.Condition()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._wake = threading.Event()  # set by flush and close: the polling writer looks at once
        self._seq = 0  # submissions enqueued
        self._done = 0  # submissions processed (committed or failed)
        self._urgent = 0  # the highest ticket someone waits for (wait_for): commit it without delay
        self.backlog_waits = 0  # times a producer had to wait for room in the backlog
        self._closed = False
        self._errors: list[StoreError] = []
        self._reported = 0
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name=f"arbor-store:{path.name}", daemon=True)
            self._thread.start()

    @property
    def threaded(self) -> bool:
        """True when a writer thread commits the rows (False: each submission in its caller)."""
        return self._thread is not None

    @property
    def backlog(self) -> int:
        """Submissions queued or being written now."""
        return self._seq - self._done

    def counters(self) -> tuple[int, int, int, int, int, int]:
        """(submitted, committed, failed rows, batches, backlog, backlog waits), read together."""
        with self._cv:
            return (
                self.submitted_rows,
                self.committed_rows,
                self.failed_rows,
                self.batches,
                self._seq - self._done,
                self.backlog_waits,
            )

    # ------------------------------------------------------------------ submitting

    def enqueue(self, groups: Groups) -> int:
        """Write prepared ``groups`` (one submission: one transaction); return the rows queued.

        Raises:
            StoreError: the writer is closed, or (unthreaded) the write failed.
        """
        groups = [(t, rows) for t, rows in groups if rows]
        n = sum(len(rows) for _, rows in groups)
        if self._thread is None:
            with self._write_lock:
                if self._closed:
                    raise StoreError(f"store {self.path} is closed")
                if n:
                    self.submitted_rows += n
                    self._write(groups)
            self.raise_errors()
            return n
        if n:
            self.admit(groups, n, n)
        else:
            with self._submit_lock:
                if self._closed:
                    raise StoreError(f"store {self.path} is closed")
        return n

    def admit(self, groups: Groups | Deferred, rows: int, counted: int) -> int:
        """Queue one submission of ``rows`` rows (``counted`` of them counted as submitted now)
        within the backlog bound; return its ticket.  Without a full backlog this is one
        comparison more than a plain put; a full one makes the caller wait for the writer.

        Raises:
            StoreError: the writer is closed, or stopped while this call waited for room.
        """
        while True:
            with self._submit_lock:
                if self._closed:
                    raise StoreError(f"store {self.path} is closed")
                if self._seq - self._done < self.max_backlog:
                    self._seq += 1
                    self.submitted_rows += counted
                    self._queue.put((self._seq, groups, rows))
                    if self._activity is not None and 2 * (self._seq - self._done) == self.max_backlog:
                        self._activity.poke()  # half full: the writer stops holding rows
                    return self._seq
            self._wait_for_room()

    def _wait_for_room(self) -> None:
        """Block while the backlog is full (back-pressure); the writer notifies after each batch.

        Raises:
            StoreError: the writer thread is not running, so no room will come.
        """
        thread = self._thread
        self._alert()
        t0 = time.monotonic()
        warned = False
        with self._cv:
            self.backlog_waits += 1
            while self._seq - self._done >= self.max_backlog and not self._closed:
                if thread is None or not thread.is_alive():
                    raise StoreError(f"store {self.path}: the writer stopped with a full backlog")
                self._cv.wait(_ROOM_CHECK_S)
                if not warned and time.monotonic() - t0 > _ROOM_WARN_S:
                    warned = True
                    log.warning(
                        "store %s: backlog of %d submission(s) full for %.0fs; producers are waiting",
                        self.path,
                        self.max_backlog,
                        _ROOM_WARN_S,
                    )

    def wait_for(self, ticket: int, timeout_s: float = 30.0) -> bool:
        """Block until the submission with ``ticket`` is committed or failed, at most ``timeout_s``
        seconds; True when it was.  Raises nothing: write errors stay for the next flush/close."""
        thread = self._thread
        if ticket <= self._done or thread is None:
            return True
        with self._cv:
            if ticket > self._urgent:
                self._urgent = ticket
        self._alert()
        with self._cv:
            self._cv.wait_for(lambda: self._done >= ticket or not thread.is_alive(), timeout_s)
            return self._done >= ticket

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
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

    def _materialise(self, groups: Groups | Deferred) -> Groups:
        """Groups as queued, or a deferred job's rows built and validated now (writer thread)."""
        if not isinstance(groups, Deferred):
            return groups
        try:
            resolved = self._preparer.prepare_tables(groups.build())
        except Exception as exc:
            self._record_error(StoreError(f"deferred rows not written: {exc!r}"), 0)
            return []
        with self._cv:
            self.submitted_rows += sum(len(rows) for _, rows in resolved)
        return resolved

    def _gather(self, first: Any) -> tuple[list[tuple[int, Groups, int]], int, bool]:
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
        self._hold(first[0])
        batch, rows = [self._built(first)], first[2]
        deadline = time.monotonic() + self._flush_interval_s
        while rows < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                full = self._seq - self._done >= self.max_backlog
                if remaining <= 0 or full or self._urgent >= batch[0][0]:
                    break  # the interval is over, producers wait for room, or someone waits for this batch
                if self._activity is not None and self._activity.busy():
                    break  # requests run again: commit what is built, hold the rest
                self._nap(min(remaining, _TICK_S))
                continue
            if item is _STOP:
                return batch, rows, True
            if item is _FLUSH:
                break
            if self._holds(item[0]):
                self._next = item  # arrived while requests run: it starts the next batch, held
                break
            batch.append(self._built(item))
            rows += item[2]
        return batch, rows, False

    def _alert(self) -> None:
        """Someone needs the writer now (flush, close, a commit wait, a full backlog): wake it
        from its nap and from a hold for running requests."""
        self._wake.set()
        if self._activity is not None:
            self._activity.poke()

    def _holds(self, seq: int) -> bool:
        """True when submission ``seq`` is to wait for the running requests: they run, and it
        may be held (:meth:`_may_hold`)."""
        activity = self._activity
        return activity is not None and activity.busy() and self._may_hold(seq)

    def _may_hold(self, seq: int) -> bool:
        """True when submission ``seq`` may wait for requests: it was not released by an earlier
        hold, nobody waits for it, and the backlog is under half full."""
        return (
            self._activity is not None
            and seq > self._released
            and self._urgent < seq
            and 2 * (self._seq - self._done) < self.max_backlog
        )

    def _hold(self, seq: int) -> None:
        """Wait while foreground work runs before touching submission ``seq`` and those after it:
        until the requests have stopped for a moment (:meth:`Activity.wait_idle`), at most
        ``max_defer_s``, and not at all while someone waits for it or the backlog is half full."""
        activity = self._activity
        if activity is None or not self._may_hold(seq):
            return
        until = time.monotonic() + self._max_defer_s
        counted = False
        while self._may_hold(seq):
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            if not counted and activity.busy():
                self.deferrals += 1
                counted = True
            if activity.wait_idle(remaining) and not activity.busy():
                return  # the requests stopped (or a poke while idle): the writer goes on as usual
        # Held long enough (or someone waits): what is queued now is written without more holds,
        # so a writer under constant load still drains the queue at full speed once a period.
        self._released = self._seq

    def _take(self) -> Any:
        """The next queued item, polled for: the writer sleeps in short ticks (longer while idle)
        instead of blocking on the queue, so a submission never has to wake a thread.  A put
        then costs the submitting query ~0.2 µs instead of the ~6 µs of waking a blocked
        writer; flush and close still wake it at once (``_wake``).  While requests run (and the
        queue is empty) it blocks on the :class:`Activity` instead of polling."""
        if self._next is not None:
            item, self._next = self._next, None
            return item
        tick = _TICK_S
        while True:
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                activity = self._activity
                if activity is not None and activity.busy():
                    # Nothing queued and requests running: block until they end (or a poke) rather
                    # than poll, so the writer never asks a running request for the interpreter.
                    activity.wait_idle(self._max_defer_s)
                    tick = _TICK_S
                    continue
                self._nap(tick)
                tick = min(tick * 2, _IDLE_TICK_S)

    def _nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``; flush and close cut it short (``_wake``)."""
        self._wake.wait(seconds)
        self._wake.clear()

    def _built(self, item: _Item) -> tuple[int, Groups, int]:
        seq, groups, rows = item
        if not isinstance(groups, Deferred):
            return seq, groups, rows
        built = self._materialise(groups)
        time.sleep(0)
        return seq, built, rows

    def _write(self, groups: Groups) -> None:
        """Commit ``groups`` (see :meth:`Transactions.write`) and account for the outcome."""
        outcome = self._tx.write(groups)
        if outcome.error is not None:
            error = StoreError(f"{outcome.rows} row(s) not written: {outcome.error!r}")
            self._record_error(error, outcome.rows)
            return
        for table, exc in outcome.failed:
            self._record_error(StoreError(f"{table}: row not written: {exc!r}"), 1)
        with self._cv:
            self.committed_rows += outcome.rows - len(outcome.failed)
            self.batches += 1

    # ------------------------------------------------------------------ errors, flush, close

    def _record_error(self, error: StoreError, rows: int) -> None:
        log.error("%s", error)
        with self._cv:
            self._errors.append(error)
            self.failed_rows += rows

    def raise_errors(self) -> None:
        """Raise the write errors not reported yet (the first, with a count of the others), once.

        Raises:
            StoreError: a write failed since the last call.
        """
        with self._cv:
            new = self._errors[self._reported :]
            self._reported = len(self._errors)
        if new:
            more = f" (and {len(new) - 1} more error(s))" if len(new) > 1 else ""
            raise StoreError(f"{new[0]}{more}") from new[0]

    def drain(self, timeout_s: float) -> tuple[int, bool]:
        """Wait for the writer to process what is queued now: (submissions left, timed out)."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return 0, False
        with self._submit_lock:
            target = self._seq
        with self._cv:
            self._urgent = max(self._urgent, target)
        self._queue.put(_FLUSH)
        self._alert()
        with self._cv:
            ok = self._cv.wait_for(lambda: self._done >= target or not thread.is_alive(), timeout_s)
            return max(0, target - self._done), not ok

    def close(self, timeout_s: float) -> bool:
        """Stop taking submissions, let the thread drain the queue and release the connection.

        Returns True for the call that closed it (False: closed before, and only waited for a
        drain an interrupted close left running).

        Raises:
            StoreError: the writer did not finish within ``timeout_s`` seconds.
        """
        with self._submit_lock, self._write_lock:
            first = not self._closed
            self._closed = True
            if first and self._thread is not None:
                with self._cv:
                    self._urgent = max(self._urgent, self._seq)
                self._queue.put(_STOP)
                self._alert()
        with self._cv:
            self._cv.notify_all()  # producers waiting for room: the store is closed, they stop waiting
        if not first:
            # Closed before; but if that close was cut short (a signal's exception during the
            # join), the writer may still be draining: wait for it here too (e.g. at exit).
            if self._thread is not None and self._thread.is_alive():
                self._thread.join(timeout_s)
            return False
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise StoreError(f"store writer did not finish within {timeout_s}s")
        else:
            self._conn.close()
        return True
