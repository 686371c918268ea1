"""The engine's view of the flags: a per-process cache re-read only when the flags changed.

Every request asks :meth:`FlagSource.resolve`.  That costs one read of the signal that every flag
change overwrites after its commit (:func:`observability.store.signal_file.touch_signal`, by
:class:`engine.flags.store.FlagStore`: the console and the CLI): 8 bytes of the signal file,
mapped into memory, so no system call.  A change made by any process is seen by the very next
request of every process.  When the signal changed, and at least every
:data:`RECHECK_S` seconds anyway (a change written to the table by hand), it runs ONE small query
on a kept read connection (:func:`observability.store.flag_tables.flags_version`: the last audit
id, the row count and the newest ``updated_ts``) and re-reads and validates the ``flags`` rows
only when that answer changed.  A query per request cost ~25-130 µs inside a running engine
(against a 1-2 ms offline query); a ``stat`` of the file ~10-15 µs inside a running engine; the
mapped read well under 1 µs.

Faults: a store that cannot be read gives NO flags for that request (flags are off rather than
stale) and one warning in the log; an invalid row (written by hand, garbage) is skipped with a
warning, the other flags still apply; a setting the request refuses applies no flag (logged).

This module imports :mod:`engine.flags.evaluation` (and with it the experiments package) only when
the store holds flags, so ``import engine`` stays cheap.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from observability.store.flag_tables import flags_version, read_flags
from observability.store.signal_file import SignalWatch, signal_path
from observability.store.transactions import connect

if TYPE_CHECKING:
    from engine.flags.evaluation import AppliedFlag
    from engine.flags.spec import FlagSpec
    from engine.models import QueryRequest

__all__ = ["RECHECK_S", "FlagSource"]

#: Longest a process trusts an unchanged signal file before asking the store again (s).
RECHECK_S = 1.0

log = logging.getLogger(__name__)


class FlagSource:
    """The current flags of one store file, for the engine (thread-safe).

    Args:
        path: the store file; None: no flags ever (telemetry off, golden replays).
        busy_timeout_ms: how long a read waits for a lock (WAL readers rarely wait).
        clock: monotonic seconds, for the :data:`RECHECK_S` schedule.
    """

    def __init__(
        self,
        path: Path | str | None,
        *,
        busy_timeout_ms: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = None if path is None else Path(path)
        self._busy = busy_timeout_ms
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._version: tuple[Any, ...] | None = None
        self._flags: tuple[FlagSpec, ...] = ()
        self._signal: object = None
        self._watch = None if path is None else SignalWatch(str(signal_path(path)))
        self._clock = clock
        self._checked = -RECHECK_S  # the clock's time of the last query

    @classmethod
    def disabled(cls) -> FlagSource:
        """A source without flags (golden replays run exactly what was captured)."""
        return cls(None)

    def current(self) -> tuple[FlagSpec, ...]:
        """The valid flags now in the store (by name); () without a store or when it cannot be read."""
        if self.path is None or self._watch is None:
            return ()
        with self._lock:
            signal = self._watch()
            now = self._clock()
            if self._version is not None and signal == self._signal and now - self._checked < RECHECK_S:
                return self._flags
            if now - self._checked >= RECHECK_S:
                self._watch.refresh()  # a signal file replaced or deleted by hand is mapped anew
                signal = self._watch()
            try:
                if self._conn is None:
                    self._conn = connect(self.path, self._busy)
                    self._conn.execute("PRAGMA query_only = ON")
                version = flags_version(self._conn)
                self._signal, self._checked = signal, now
                if version != self._version:
                    self._flags = self._parse(read_flags(self._conn))
                    self._version = version
                return self._flags
            except sqlite3.Error as exc:
                log.warning("feature flags unreadable, none applied to this request: %s", exc)
                self._drop()
                return ()

    @staticmethod
    def _parse(rows: list[dict[str, Any]]) -> tuple[FlagSpec, ...]:
        if not rows:
            return ()
        from engine.flags.store import spec_from_row

        out = []
        for row in rows:
            try:
                out.append(spec_from_row(row))
            except ValueError as exc:
                log.warning("%s; it is skipped", exc)
        return tuple(out)

    def resolve(
        self, request: QueryRequest, unit: str, pinned: Collection[str] = ()
    ) -> tuple[QueryRequest, tuple[AppliedFlag, ...]]:
        """(the request with the applying flags' settings, those flags) for ``request`` from
        ``unit``; ``pinned`` keys are left alone (an experiment variant sets them)."""
        flags = self.current()
        if not flags:
            return request, ()
        from engine.flags.evaluation import apply_flags, evaluate

        try:
            applied = evaluate(flags, request, unit, pinned)
            return apply_flags(request, applied), applied
        except ValueError as exc:  # a flag's setting the request refuses (pydantic's errors included)
            log.warning("feature flags not applied to this request: %s", str(exc).splitlines()[0])
            return request, ()

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn, self._version, self._flags = None, None, ()

    def close(self) -> None:
        """Release the read connection and the signal's mapping (a later call reopens them)."""
        with self._lock:
            self._drop()
            if self._watch is not None:
                self._watch.close()
