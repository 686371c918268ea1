"""Foreground work in flight, so background work (the store's writer) can stay out of its way.

CPython runs one thread's Python code at a time: a writer thread building and committing rows
while a query runs takes the interpreter from that query (and the cache lines it was using).
:class:`Activity` counts the requests in flight; the store's writer reads :meth:`Activity.busy`
and holds its queued rows while it is true, for at most its ``max_defer_s`` (see
:class:`observability.store.writer.Writer`).  Counting costs a lock acquire per start and end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["Activity"]


class Activity:
    """A thread-safe count of foreground operations in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._n = 0

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count one operation in flight while the block runs."""
        with self._lock:
            self._n += 1
        try:
            yield
        finally:
            with self._lock:
                self._n -= 1

    def busy(self) -> bool:
        """True while at least one operation is in flight (a plain read: no lock needed)."""
        return self._n > 0

    @property
    def in_flight(self) -> int:
        """Operations in flight now."""
        return self._n
