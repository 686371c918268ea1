"""prometheus_client's multiprocess mode: several processes of one deployment, one exporter.

Every process (the console plus ``python -m engine load`` workers) writes its samples to
memory-mapped files in one shared directory, and the one process that runs the exporter (the
console) serves a :class:`~prometheus_client.multiprocess.MultiProcessCollector` that sums them.
Prometheus scrapes only the console, and a worker's requests show up under the console's target.

The one piece of process-global state (issue 11's documented exception)
-----------------------------------------------------------------------
prometheus_client decides between single- and multiprocess mode **once, when it is first
imported**, from the environment variable ``PROMETHEUS_MULTIPROC_DIR``. There is no API to
switch later (only patching the library, which this project does not do). Therefore:

* Either the variable is in the environment when the process starts (``make run`` and
  ``make load`` set it next to ``ARBOR_METRICS_DIR``), or the composition root calls
  :func:`enable_multiprocess` before anything imports prometheus_client. The modules of
  ``observability.metrics`` import prometheus_client only when a :class:`Metrics` or an exporter
  is created, so calling it first thing in the composition root (``ARBOR_METRICS_DIR`` ->
  ``enable_multiprocess(settings.metrics_dir)``) is early enough. Called too late, it raises
  :class:`MultiprocessError` naming the variable instead of silently keeping samples in memory.
* Start the exporter only in the console (see ``observability.metrics.exporter``); workers never
  start one (their ``ARBOR_METRICS_PORT`` should be 0), they only write files.
* Counters and histograms of finished workers stay in the directory and keep counting towards
  the totals (that is the point). ``mcts_active_operations`` is a ``livesum`` gauge: a process
  that exits normally removes its gauge file (an ``atexit`` hook registered when its
  :class:`Metrics` is created); files of processes killed with -9 are swept by
  :func:`sweep_dead_processes`, which the exporter runs on every scrape.
* Wipe the directory only when the whole deployment starts (``make run``), never while workers
  run; wiping looks like a counter reset to Prometheus, which ``rate``/``increase`` tolerate.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import sys
from pathlib import Path

__all__ = [
    "MULTIPROC_ENV",
    "MultiprocessError",
    "enable_multiprocess",
    "multiprocess_active",
    "multiprocess_dir",
    "register_exit_cleanup",
    "sweep_dead_processes",
]

#: The environment variable prometheus_client reads for multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class MultiprocessError(RuntimeError):
    """Multiprocess mode was asked for when prometheus_client can no longer switch to it."""


def multiprocess_dir() -> Path | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or None in single-process mode."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def multiprocess_active() -> bool:
    """Whether prometheus_client is imported and writes samples to the multiprocess directory."""
    values = sys.modules.get("prometheus_client.values")
    return values is not None and bool(getattr(values.ValueClass, "_multiprocess", False))


def enable_multiprocess(path: str | os.PathLike[str]) -> Path:
    """Put this process in prometheus_client's multiprocess mode, writing samples under ``path``.

    The composition root calls it at start-up, before the first :class:`Metrics`. It creates the
    directory and, when prometheus_client is not imported yet, sets ``PROMETHEUS_MULTIPROC_DIR``
    (inherited by child processes; the documented exception to "no global state"). When the
    variable was set before the process started, it only checks that it names ``path``.
    Returns the directory.

    Raises:
        MultiprocessError: prometheus_client was already imported in single-process mode, or
            the environment names another directory (samples would go elsewhere).
        OSError: the directory cannot be created.
    """
    directory = Path(path)
    current = multiprocess_dir()
    if current is not None and current.resolve() != directory.resolve():
        raise MultiprocessError(
            f"{MULTIPROC_ENV}={current} but multiprocess metrics were asked for in {directory};"
            " set both to the same directory"
        )
    imported = "prometheus_client.values" in sys.modules
    if imported and not multiprocess_active():
        raise MultiprocessError(
            "prometheus_client was imported in single-process mode before multiprocess mode was"
            f" enabled; set {MULTIPROC_ENV}={directory} in the environment of the process"
            " (make run and make load do), or enable it before anything imports prometheus_client"
        )
    directory.mkdir(parents=True, exist_ok=True)
    if current is None:
        os.environ[MULTIPROC_ENV] = str(directory)  # read by prometheus_client when imported
    return directory


def register_exit_cleanup(directory: Path) -> None:
    """At normal exit, drop this process's live-gauge files so ``livesum`` gauges forget it.

    Idempotent in effect: registering it twice removes the files once (the second finds none).
    """
    atexit.register(_mark_process_dead, os.getpid(), directory)


def _mark_process_dead(pid: int, directory: Path) -> None:
    """atexit hook: remove the live-gauge files of ``pid`` (this process) under ``directory``."""
    from prometheus_client import multiprocess

    if pid == os.getpid() and directory.is_dir():
        multiprocess.mark_process_dead(pid, str(directory))


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_dead_processes(path: str | os.PathLike[str]) -> list[int]:
    """Remove live-gauge files of processes that no longer exist (e.g. killed with -9).

    Counters and histograms of dead processes are kept: they still count. Returns the pids swept.
    """
    from prometheus_client import multiprocess

    swept: set[int] = set()
    for file in glob.glob(os.path.join(os.fspath(path), "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.match(os.path.basename(file))
        if match and not _pid_alive(int(match.group(1))):
            swept.add(int(match.group(1)))
    for pid in sorted(swept):
        multiprocess.mark_process_dead(pid, os.fspath(path))
    return sorted(swept)
