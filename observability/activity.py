"""Foreground work in flight, so background work (the store's writer) can stay out of its way.

CPython runs one thread's Python code at a time: a writer thread building and committing rows
while a query runs takes the interpreter from that query (and the cache lines it was using), and
even a writer that only polls now and then makes the query hand the interpreter over at every
system call it makes.  :class:`Activity` counts the requests in flight; the store's writer asks
:meth:`Activity.busy` and, while it is true, BLOCKS in :meth:`Activity.wait_idle` (looking
20 times a second, not at every request's end) until the last request has ended, someone needs
the writer (:meth:`Activity.poke`), or its ``max_defer_s`` is over (see
:class:`observability.store.writer.Writer`).  Counting costs a lock acquire per start and end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["IDLE_CHECK_S", "Activity"]

#: How often a waiter in :meth:`Activity.wait_idle` looks whether the operations have ended (s).
IDLE_CHECK_S = 0.05


class Activity:
    """A thread-safe count of foreground operations in flight, with a wait for "none"."""

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self._n = 0
        self._pokes = 0

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count one operation in flight while the block runs."""
        with self._idle:
            self._n += 1
        try:
            yield
        finally:
            with self._idle:
                self._n -= 1

    def busy(self) -> bool:
        """True while at least one operation is in flight (a plain read: no lock needed)."""
        return self._n > 0

    @property
    def in_flight(self) -> int:
        """Operations in flight now."""
        return self._n

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no operation is in flight, :meth:`poke` is called, or ``timeout_s`` seconds
        pass; True when idle or poked.

        The end of an operation does not wake the waiter (that would cost every request a
        thread switch when requests follow each other closely): the waiter looks every
        :data:`IDLE_CHECK_S` seconds, and a poke wakes it at once."""
        end = time.monotonic() + timeout_s
        with self._idle:
            pokes = self._pokes
            while True:
                if self._n == 0 or self._pokes != pokes:
                    return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, IDLE_CHECK_S))

    def poke(self) -> None:
        """Wake whoever waits in :meth:`wait_idle` (e.g. a flush needs the writer now)."""
        with self._idle:
            self._pokes += 1
            self._idle.notify_all()
