"""Foreground work in flight, so background work (the store's writer) can stay out of its way.

CPython runs one thread's Python code at a time: a writer thread building and committing rows
while a query runs takes the interpreter from that query (and the cache lines it was using).
Worse, a thread that merely WAITS for the GIL is handed it, or at least woken, at every system
call the running query makes (each releases the GIL): CPython's convoy effect.  So the request
path makes no system call (see :mod:`observability.store.signal_file` and the id sources), and
the writer wakes rarely while requests run.  :class:`Activity` counts the requests in flight;
the store's writer asks :meth:`Activity.busy` and, while it is true, BLOCKS in
:meth:`Activity.wait_idle` (looking after 200 ms, then ever less often while requests go on;
never at every request's end) until the last request has ended, someone needs the writer
(:meth:`Activity.poke`), or its ``max_defer_s`` is over (see
:class:`observability.store.writer.Writer`).  Counting costs a lock acquire per start and end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["IDLE_CHECK_S", "SETTLE_S", "Activity"]

#: When a waiter in :meth:`Activity.wait_idle` first looks whether the operations have ended (s);
#: it then looks after twice as long each time.  Each look takes the GIL from a running request
#: and, measured, slows the requests after it too (~40 µs each over the next ~20 requests of a
#: 1 ms workload at 50 ms), so bursts shorter than this are never interrupted.
IDLE_CHECK_S = 0.2
#: How long no operation may start before a waiter counts the process as idle (s): between two
#: requests of a burst there are only microseconds, and a waiter that took such a gap for idle
#: would start its work just as the next request begins.
SETTLE_S = 0.002


class Activity:
    """A thread-safe count of foreground operations in flight, with a wait for "none"."""

    def __init__(self) -> None:
        self._idle = threading.Condition(threading.Lock())
        self._n = 0
        self._starts = 0  # operations started so far (a waiter sees whether one began meanwhile)
        self._pokes = 0
        self._listeners: tuple[tuple[Callable[[], None], Callable[[], None]], ...] = ()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Count one operation in flight while the block runs."""
        with self._idle:
            self._n += 1
            self._starts += 1
        for on_start, _ in self._listeners:
            on_start()
        try:
            yield
        finally:
            with self._idle:
                self._n -= 1
            for _, on_end in self._listeners:
                on_end()

    def add_listener(self, on_start: Callable[[], None], on_end: Callable[[], None]) -> None:
        """Also call ``on_start()`` as each operation starts and ``on_end()`` as it ends (in its
        thread; e.g. a gauge that cannot read :attr:`in_flight` by itself)."""
        with self._idle:
            self._listeners = (*self._listeners, (on_start, on_end))

    def busy(self) -> bool:
        """True while at least one operation is in flight (a plain read: no lock needed)."""
        return self._n > 0

    @property
    def in_flight(self) -> int:
        """Operations in flight now."""
        return self._n

    def wait_idle(self, timeout_s: float) -> bool:
        """Block until no operation has been in flight for :data:`SETTLE_S`, :meth:`poke` is
        called, or ``timeout_s`` seconds pass; True when idle or poked.

        The end of an operation does not wake the waiter (that would cost every request a
        thread switch when requests follow each other closely): the waiter looks after
        :data:`IDLE_CHECK_S` seconds, then after twice as long each time it finds operations
        still running (a waiter that wakes must take the GIL from a running request: under
        constant load it then wakes a few times a second, not 20), and a poke wakes it at once.
        Finding none running, it waits :data:`SETTLE_S` more and counts the process idle only if
        none started meanwhile."""
        end = time.monotonic() + timeout_s
        interval = IDLE_CHECK_S
        with self._idle:
            pokes = self._pokes
            while True:
                if self._pokes != pokes:
                    return True
                left = end - time.monotonic()
                if self._n == 0:
                    starts = self._starts
                    if left > 0:
                        self._idle.wait(min(left, SETTLE_S))
                    if self._pokes != pokes or (self._n == 0 and self._starts == starts):
                        return True
                    continue  # a request began in the gap: the burst goes on
                if left <= 0:
                    return False
                self._idle.wait(min(left, interval))
                interval *= 2  # still busy: look less often (each look takes the GIL from a request)

    def poke(self) -> None:
        """Wake whoever waits in :meth:`wait_idle` (e.g. a flush needs the writer now)."""
        with self._idle:
            self._pokes += 1
            self._idle.notify_all()
