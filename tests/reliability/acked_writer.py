"""A ``store_writer.py`` child in ``ack`` mode whose acknowledged request ids are collected while it
runs, for the kill -9 tests: start it, wait on ``acked`` as the test needs, then :meth:`kill`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("store_writer.py")


class AckedWriter:
    """The writer child on ``path``: ``acked`` holds every request id it printed after its commit."""

    def __init__(self, path: Path, prefix: str = "k") -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), str(path), "ack", "--prefix", prefix],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.acked: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.acked.append(line.strip())

    def stderr(self) -> str:
        """What the child wrote on stderr (read once it has ended)."""
        return self.proc.stderr.read() if self.proc.stderr is not None else ""

    def kill(self) -> None:
        """SIGKILL the child and wait until every line it printed has been read."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._reader.join(timeout=30)
