"""The ``/metrics`` HTTP exporter: start once per address and port, stop, list.

No registry of exporters is kept in module state: an exporter *is* a daemon thread of this
module's :class:`ExporterThread` class serving one socket, so the interpreter's own thread list
(``threading.enumerate()``) is the one record of what runs. That keeps :func:`start_exporter`
idempotent per (address, port) across Streamlit reruns, which re-execute the console's script,
without a global dict that tests would have to reset.

In multiprocess mode (``observability.metrics.multiprocess``) the exporter serves the aggregate
of every process's sample files instead of the registry it was given.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from observability.metrics.multiprocess import multiprocess_dir, sweep_dead_processes

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

__all__ = [
    "ExporterThread",
    "exporter_registry",
    "running_exporters",
    "start_exporter",
    "stop_exporter",
]

log = logging.getLogger(__name__)


class _SweepingMultiProcessCollector:
    """MultiProcessCollector that first forgets the live gauges of dead processes (a Collector:
    prometheus_client's Collector is a protocol with just ``collect``)."""

    def __init__(self, path: str) -> None:
        from prometheus_client import multiprocess

        self._path = path
        self._inner = multiprocess.MultiProcessCollector(None, path=path)

    def collect(self) -> Iterable[Metric]:
        """Sweep dead processes' live gauges, then merge every process's files."""
        sweep_dead_processes(self._path)
        return self._inner.collect()


def exporter_registry(
    registry: CollectorRegistry | None, multiproc_dir: str | os.PathLike[str] | None = None
) -> CollectorRegistry:
    """The registry an exporter should serve.

    In multiprocess mode (``multiproc_dir`` given, or ``PROMETHEUS_MULTIPROC_DIR`` set) a fresh
    registry aggregating every process's files, ignoring ``registry`` (whose samples are in those
    files already); otherwise ``registry``, or prometheus_client's global one when None.
    Raises ValueError when the multiprocess directory does not exist.
    """
    from prometheus_client import REGISTRY, CollectorRegistry

    directory = Path(multiproc_dir) if multiproc_dir is not None else multiprocess_dir()
    if directory is not None:
        if not directory.is_dir():
            raise ValueError(f"multiprocess metrics directory {directory} does not exist")
        aggregate = CollectorRegistry()
        aggregate.register(_SweepingMultiProcessCollector(str(directory)))
        return aggregate
    return REGISTRY if registry is None else registry


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every scrape to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Drop the access log line."""


class ExporterThread(threading.Thread):
    """A running exporter: the daemon thread serving ``server`` for (``addr``, ``port``).

    ``registry`` is what the caller asked to serve (None: the global or multiprocess one).
    """

    def __init__(self, server: WSGIServer, addr: str, port: int, registry: CollectorRegistry | None) -> None:
        super().__init__(name=f"metrics-exporter {addr}:{port}", target=server.serve_forever, daemon=True)
        self.server = server
        self.addr = addr
        self.port = port
        self.registry = registry

    def stop(self) -> None:
        """Stop serving, close the socket and wait (up to 5 s) for the thread to end."""
        self.server.shutdown()
        self.server.server_close()
        self.join(timeout=5)


def _running(addr: str, port: int) -> ExporterThread | None:
    """The live exporter of (addr, port) in this process, if any."""
    for thread in threading.enumerate():
        if isinstance(thread, ExporterThread) and (thread.addr, thread.port) == (addr, port):
            return thread
    return None


def _server(addr: str, port: int, registry: CollectorRegistry) -> WSGIServer:
    """A threading WSGI server for prometheus_client's ``/metrics`` app, bound to addr:port."""
    from prometheus_client import make_wsgi_app
    from prometheus_client.exposition import ThreadingWSGIServer

    family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]

    class Server(ThreadingWSGIServer):
        """ThreadingWSGIServer for the address family of ``addr`` (IPv4 or IPv6)."""

        address_family = family

    return make_server(addr, port, make_wsgi_app(registry), Server, handler_class=_QuietHandler)


def start_exporter(
    port: int,
    registry: CollectorRegistry | None = None,
    addr: str = "127.0.0.1",
    *,
    multiproc_dir: str | os.PathLike[str] | None = None,
) -> int | None:
    """Serve ``/metrics`` on ``addr:port`` once per process; return the bound port (None if disabled).

    ``port=0`` disables the exporter (``ARBOR_METRICS_PORT=0``). A second call for the same
    address and port returns the running exporter's port without starting another; it keeps
    serving the registry of the first call (a warning is logged when a different one is passed).
    Pass ``metrics.registry``: None means prometheus_client's global registry, which holds none
    of :class:`Metrics`' families. In multiprocess mode the served registry is the aggregate of
    all processes (see :func:`exporter_registry`).

    Raises:
        ValueError: a port outside 0..65535 (or not an int), or a missing multiprocess directory.
        OSError: the port is taken by something else.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
    if port == 0:
        return None
    running = _running(addr, port)
    if running is None:
        served = exporter_registry(registry, multiproc_dir)
        try:
            server = _server(addr, port, served)
        except OSError:
            running = _running(addr, port)  # lost a race with a concurrent start: reuse it
            if running is None:
                raise
        else:
            thread = ExporterThread(server, addr, port, registry)
            thread.start()
            log.info("metrics exporter listening on http://%s:%d/metrics", addr, port)
            return port
    if registry is not None and registry is not running.registry:
        log.warning("metrics exporter on %s:%d already serves another registry", addr, port)
    return running.port


def stop_exporter(port: int, addr: str = "127.0.0.1") -> bool:
    """Stop the exporter started on ``addr:port``; return whether one was running."""
    running = _running(addr, port)
    if running is None:
        return False
    running.stop()
    return True


def running_exporters() -> list[tuple[str, int]]:
    """The (address, port) of every exporter this process runs."""
    return sorted((t.addr, t.port) for t in threading.enumerate() if isinstance(t, ExporterThread))
