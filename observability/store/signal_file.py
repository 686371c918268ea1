"""The flags' signal file: how every process learns, on its very next request, that the flags
changed (``<store>-flags``: 8 bytes that every committed change overwrites in place).

A reader maps the file into memory (:class:`SignalWatch`), so its per-request check is a read of
8 bytes of shared memory: no system call.  That matters more than the microseconds: a system
call releases the GIL and, in this virtual machine, costs a request ~10-15 µs (about 1.5 % of a
1 ms query, measured with ``benchmarks/telemetry_cost.py``), and it lets a thread waiting for
the GIL (the store's writer) into the middle of the request.  A writer (:func:`touch_signal`)
overwrites the bytes with the time in ns; the kernel's page cache makes the new bytes visible
to every process that has the file mapped at once.

Faults: where the file cannot be created or mapped (a read-only directory) the reader falls
back to a ``stat`` per request.  A file replaced or deleted by hand is noticed at the next
:meth:`SignalWatch.refresh` (the flag source calls it every ``RECHECK_S``, 1 s), which maps the
file anew.  Like the ``-shm`` file SQLite itself maps beside the database, the file must not be
truncated to zero bytes while processes have it mapped (they would stop with SIGBUS): delete it
instead.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time
from pathlib import Path

__all__ = ["SIGNAL_BYTES", "SignalWatch", "read_signal", "signal_path", "touch_signal"]

#: The signal's size: a writer's time in ns, little-endian.
SIGNAL_BYTES = 8
_STAMP = struct.Struct("<Q")


def signal_path(db_path: Path | str) -> Path:
    """The file beside the store that every flag change overwrites (``<store>-flags``)."""
    path = Path(db_path)
    return path.with_name(path.name + "-flags")


def touch_signal(db_path: Path | str) -> None:
    """Tell every process that the flags changed: overwrite the signal's 8 bytes in place (the
    file is created if missing).  Call it after the change is committed.  Never raises: a reader
    also re-checks the store on its own schedule (see :class:`engine.flags.source.FlagSource`)."""
    try:
        fd = os.open(signal_path(db_path), os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError:
        return
    try:
        os.pwrite(fd, _STAMP.pack(time.time_ns()), 0)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_signal(signal_file: str) -> tuple[int, int, int] | None:
    """(inode, modification time ns, size) of the signal file by ``os.stat``; None when there is
    none.  (The fallback of :class:`SignalWatch`.)"""
    try:
        st = os.stat(signal_file)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class SignalWatch:
    """The signal of one file, read from a shared memory mapping (see the module docstring).

    Calling it returns a token that changes whenever a writer signals (bytes while mapped, the
    ``stat`` triple in the fallback, None while there is no file); compare tokens for equality.
    Not thread-safe: call it and :meth:`refresh` under the owner's lock.
    """

    def __init__(self, signal_file: str) -> None:
        self.path = signal_file
        self._map: mmap.mmap | None = None
        self._inode: int | None = None
        self.refresh()

    @property
    def mapped(self) -> bool:
        """True while the file is mapped (False: each call ``stat``s it)."""
        return self._map is not None

    def __call__(self) -> object:
        """The current signal token (no system call while mapped)."""
        m = self._map
        if m is None:
            return read_signal(self.path)
        return m[:SIGNAL_BYTES]

    def refresh(self) -> None:
        """Map the file if it is not mapped, or was replaced, deleted or shortened since
        (one ``stat``; creates the file with a zero signal when it is missing).  Never raises:
        what cannot be mapped is read by ``stat`` until the next refresh."""
        try:
            st = os.stat(self.path)
            if self._map is not None and st.st_ino == self._inode and st.st_size >= SIGNAL_BYTES:
                return
        except OSError:
            pass
        self.close()
        try:
            self._map, self._inode = _map(self.path)
        except (OSError, ValueError):
            self._map = self._inode = None

    def close(self) -> None:
        """Unmap the file (calls then ``stat`` it until the next :meth:`refresh`)."""
        if self._map is not None:
            with contextlib.suppress(BufferError, ValueError):
                self._map.close()
        self._map = self._inode = None


def _map(path: str) -> tuple[mmap.mmap, int]:
    """A read-only shared mapping of the signal's bytes, and the file's inode; the file is
    created (and extended with zeros) to hold them when it is missing or shorter."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        fd = os.open(path, os.O_RDONLY)  # an existing file we may not write: map it as it is
    try:
        st = os.fstat(fd)
        if st.st_size < SIGNAL_BYTES:
            os.ftruncate(fd, SIGNAL_BYTES)  # only ever extends: zeros after what is there
        return mmap.mmap(fd, SIGNAL_BYTES, access=mmap.ACCESS_READ), st.st_ino
    finally:
        os.close(fd)
