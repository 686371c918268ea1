"""Prometheus metrics of the engine: one injectable registry, typed recording methods, one exporter.

Names follow the reference framework (all ``mcts_*``, Prometheus conventions: counters end in
``_total``, durations are histograms in seconds). :data:`METRIC_NAMES` lists every family as it
appears in the exposition (counters with their ``_total`` suffix; histograms by their base name,
whose samples are ``<name>_bucket``, ``<name>_sum`` and ``<name>_count``).

Single process::

    metrics = Metrics()                       # a private CollectorRegistry, see Metrics.registry
    start_exporter(9464, registry=metrics.registry)
    metrics.observe_request("game24", "ok", 0.042)

Several processes of one deployment (the console plus ``python -m engine load`` workers)
---------------------------------------------------------------------------------------
prometheus_client's multiprocess mode: every process writes its samples to memory-mapped files
in one shared directory, and the one process that runs the exporter (the console) serves a
:class:`~prometheus_client.multiprocess.MultiProcessCollector` that sums them. Prometheus then
scrapes only the console, and a worker's requests show up under the console's target.

* Point ``PROMETHEUS_MULTIPROC_DIR`` at the shared directory in **every** process of the
  deployment (console and workers) *before* :class:`Metrics` is created, or call
  :func:`enable_multiprocess` first thing (it sets the variable and switches prometheus_client
  even if it was imported earlier). Settings wiring: ``ARBOR_METRICS_DIR`` ->
  ``enable_multiprocess(settings.metrics_dir)`` at process start-up.
* Start the exporter only in the console: :func:`start_exporter` sees the multiprocess directory
  and serves the aggregate instead of the registry it was given. Workers never start one (their
  ``ARBOR_METRICS_PORT`` should be 0), they only write files.
* Counters and histograms of finished workers stay in the directory and keep counting towards
  the totals (that is the point). ``mcts_active_operations`` is a ``livesum`` gauge: a process
  that exits normally removes its gauge file (an ``atexit`` hook registered by
  :func:`enable_multiprocess`); files of processes killed with -9 are swept by
  :func:`sweep_dead_processes`, which the exporter runs on every scrape.
* Wipe the directory only when the whole deployment starts (``make run``), never while workers
  run; wiping looks like a counter reset to Prometheus, which ``rate``/``increase`` tolerate.
"""

from __future__ import annotations

import atexit
import glob
import logging
import math
import os
import re
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

__all__ = [
    "BUCKETS",
    "LLM_TOKEN_DIRECTIONS",
    "METRIC_NAMES",
    "MULTIPROC_ENV",
    "REQUEST_STATUSES",
    "VERDICTS",
    "Metrics",
    "enable_multiprocess",
    "exporter_registry",
    "multiprocess_dir",
    "running_exporters",
    "start_exporter",
    "stop_exporter",
    "sweep_dead_processes",
]

log = logging.getLogger(__name__)

#: The environment variable prometheus_client reads for multiprocess mode.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Request outcomes. The availability SLO counts ``status="error"`` as bad.
REQUEST_STATUSES: tuple[str, ...] = ("ok", "error")
#: Verdict labels of ``mcts_verdicts_total`` (the engine's ``QueryResult.verdict``).
VERDICTS: tuple[str, ...] = ("correct", "incorrect", "unknown")
#: ``direction`` label values of ``mcts_llm_tokens_total``.
LLM_TOKEN_DIRECTIONS: tuple[str, ...] = ("input", "output")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Histogram bucket upper bounds (``+Inf`` is implicit), by metric family name.
BUCKETS: Mapping[str, tuple[float, ...]] = {
    # 1 ms .. 10 s; 0.5 s is a bucket boundary because the latency SLO counts requests under it.
    "mcts_request_duration_seconds": _LATENCY_BUCKETS,
    "mcts_agent_request_latency_seconds": _LATENCY_BUCKETS,
    "mcts_agent_confidence_score": (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    # One MCTS iteration takes microseconds offline and up to ~0.1 s with an LLM rollout.
    "mcts_iteration_latency_seconds": (
        1e-6,
        2.5e-6,
        5e-6,
        1e-5,
        2.5e-5,
        5e-5,
        1e-4,
        2.5e-4,
        5e-4,
        1e-3,
        2.5e-3,
        5e-3,
        0.01,
        0.1,
    ),
    "mcts_llm_request_latency_seconds": (
        0.001,
        0.005,
        0.01,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
        2.5,
        5.0,
        10.0,
        30.0,
        60.0,
    ),
    "mcts_rag_retrieval_latency_seconds": (
        0.0005,
        0.001,
        0.0025,
        0.005,
        0.01,
        0.025,
        0.05,
        0.1,
        0.25,
        0.5,
        1.0,
    ),
    "mcts_rag_documents_retrieved": (0, 1, 2, 3, 5, 8, 10, 20, 50),
}

#: Every metric family Metrics declares, as named in the exposition format.
METRIC_NAMES: tuple[str, ...] = (
    "mcts_requests_total",
    "mcts_request_duration_seconds",
    "mcts_verdicts_total",
    "mcts_agent_requests_total",
    "mcts_agent_request_latency_seconds",
    "mcts_agent_confidence_score",
    "mcts_iterations_total",
    "mcts_iteration_latency_seconds",
    "mcts_llm_request_errors_total",
    "mcts_llm_request_latency_seconds",
    "mcts_llm_tokens_total",
    "mcts_llm_cost_usd_total",
    "mcts_active_operations",
    "mcts_rag_queries_total",
    "mcts_rag_retrieval_latency_seconds",
    "mcts_rag_documents_retrieved",
    "mcts_routing_decisions_total",
)


def _check_seconds(what: str, seconds: float) -> float:
    """Return ``seconds`` as a float, or raise ValueError for NaN, infinite or negative durations."""
    value = float(seconds)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite, non-negative number of seconds, got {seconds!r}")
    return value


def _check_count(what: str, count: float) -> float:
    """Return ``count`` as a float, or raise ValueError for NaN, infinite or negative amounts."""
    value = float(count)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite, non-negative number, got {count!r}")
    return value


def _check_label(what: str, value: str) -> str:
    """Return a non-empty label value, or raise ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


class Metrics:
    """The engine's Prometheus metrics, declared on one registry.

    ``registry=None`` creates a private :class:`CollectorRegistry` (so that several engines,
    e.g. in tests, never collide on prometheus_client's global registry); serve it with
    ``start_exporter(port, registry=metrics.registry)`` or :meth:`serve`.

    Every recording method validates its input and raises ValueError with a clear message on
    unknown label values (status, verdict) or impossible numbers (negative or NaN seconds,
    confidence outside [0, 1]).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry: CollectorRegistry = registry if registry is not None else CollectorRegistry()
        if getattr(values.ValueClass, "_multiprocess", False):
            _register_exit_hook()
        reg = self.registry
        self._active: dict[str, Gauge] = {}
        self.requests = Counter(
            "mcts_requests_total",
            "Engine requests by task and outcome status (ok|error).",
            ["task", "status"],
            registry=reg,
        )
        self.request_duration = Histogram(
            "mcts_request_duration_seconds",
            "End-to-end engine request latency in seconds.",
            ["task"],
            buckets=BUCKETS["mcts_request_duration_seconds"],
            registry=reg,
        )
        self.verdicts = Counter(
            "mcts_verdicts_total",
            "Answers by task and verdict against ground truth (correct|incorrect|unknown).",
            ["task", "verdict"],
            registry=reg,
        )
        self.agent_requests = Counter(
            "mcts_agent_requests_total",
            "Agent invocations by agent and task.",
            ["agent", "task"],
            registry=reg,
        )
        self.agent_latency = Histogram(
            "mcts_agent_request_latency_seconds",
            "Latency of one agent invocation in seconds.",
            ["agent"],
            buckets=BUCKETS["mcts_agent_request_latency_seconds"],
            registry=reg,
        )
        self.agent_confidence = Histogram(
            "mcts_agent_confidence_score",
            "Confidence (0..1) reported by an agent invocation.",
            ["agent"],
            buckets=BUCKETS["mcts_agent_confidence_score"],
            registry=reg,
        )
        self.iterations = Counter(
            "mcts_iterations_total",
            "MCTS iterations run, by how the search ended.",
            ["outcome"],
            registry=reg,
        )
        self.iteration_latency = Histogram(
            "mcts_iteration_latency_seconds",
            "Mean latency of one MCTS iteration (search elapsed / iterations), one sample per search.",
            buckets=BUCKETS["mcts_iteration_latency_seconds"],
            registry=reg,
        )
        self.llm_errors = Counter(
            "mcts_llm_request_errors_total",
            "Failed LLM calls by provider and error type.",
            ["provider", "error_type"],
            registry=reg,
        )
        self.llm_latency = Histogram(
            "mcts_llm_request_latency_seconds",
            "Latency of every LLM call (failed ones included) in seconds; its _count is the call count.",
            ["provider"],
            buckets=BUCKETS["mcts_llm_request_latency_seconds"],
            registry=reg,
        )
        self.llm_tokens = Counter(
            "mcts_llm_tokens_total",
            "LLM tokens by provider and direction (input|output).",
            ["provider", "direction"],
            registry=reg,
        )
        self.llm_cost = Counter(
            "mcts_llm_cost_usd_total",
            "Estimated LLM cost in US dollars by provider.",
            ["provider"],
            registry=reg,
        )
        self.active_operations = Gauge(
            "mcts_active_operations",
            "Operations in progress, by operation.",
            ["operation"],
            multiprocess_mode="livesum",
            registry=reg,
        )
        self.rag_queries = Counter(
            "mcts_rag_queries_total",
            "Retrieval queries against the RAG corpus.",
            registry=reg,
        )
        self.rag_latency = Histogram(
            "mcts_rag_retrieval_latency_seconds",
            "Latency of one retrieval in seconds.",
            buckets=BUCKETS["mcts_rag_retrieval_latency_seconds"],
            registry=reg,
        )
        self.rag_documents = Histogram(
            "mcts_rag_documents_retrieved",
            "Documents returned by one retrieval.",
            buckets=BUCKETS["mcts_rag_documents_retrieved"],
            registry=reg,
        )
        self.routing_decisions = Counter(
            "mcts_routing_decisions_total",
            "Meta-controller decisions by router, chosen agent and kind of reason.",
            ["router", "agent", "reason_kind"],
            registry=reg,
        )

    # -- recording -------------------------------------------------------------------------

    def observe_request(self, task: str, status: str, seconds: float) -> None:
        """Count one finished request (``status`` is ``"ok"`` or ``"error"``) and its latency."""
        _check_label("task", task)
        if status not in REQUEST_STATUSES:
            raise ValueError(f"status must be one of {REQUEST_STATUSES}, got {status!r}")
        duration = _check_seconds("request duration", seconds)
        self.requests.labels(task=task, status=status).inc()
        self.request_duration.labels(task=task).observe(duration)

    def observe_verdict(self, task: str, verdict: str) -> None:
        """Count one answer's verdict (``correct``, ``incorrect`` or ``unknown`` when not judged)."""
        _check_label("task", task)
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        self.verdicts.labels(task=task, verdict=verdict).inc()

    def observe_agent(self, agent: str, task: str, seconds: float | None, confidence: float | None) -> None:
        """Count one agent invocation with its latency and its confidence in [0, 1]; both None for
        an invocation that did not finish (its request failed): counted, nothing observed."""
        _check_label("agent", agent)
        _check_label("task", task)
        finished = seconds is not None and confidence is not None
        if finished:
            duration = _check_seconds("agent latency", seconds)
            score = float(confidence)
            if not 0.0 <= score <= 1.0:  # also rejects NaN
                raise ValueError(f"confidence must be in [0, 1], got {confidence!r}")
        self.agent_requests.labels(agent=agent, task=task).inc()
        if finished:
            self.agent_latency.labels(agent=agent).observe(duration)
            self.agent_confidence.labels(agent=agent).observe(score)

    def observe_search(self, iterations: int, outcome: str, seconds: float) -> None:
        """Count one search's iterations under ``outcome`` and observe its per-iteration latency.

        The histogram gets one sample per search, ``seconds / iterations``; a search with zero
        iterations counts nothing there (its latency per iteration is undefined).
        """
        _check_label("outcome", outcome)
        if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
        elapsed = _check_seconds("search elapsed time", seconds)
        self.iterations.labels(outcome=outcome).inc(int(iterations))
        if iterations > 0:
            self.iteration_latency.observe(elapsed / int(iterations))

    def observe_llm(
        self,
        provider: str,
        seconds: float,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        error_type: str | None = None,
    ) -> None:
        """Record one LLM call: latency (always), tokens, cost, and the error when it failed.

        ``error_type`` names the failure (e.g. ``"RateLimited"``); None means success. The
        latency histogram's ``_count`` is the number of calls, the denominator of the LLM error
        ratio alert.
        """
        _check_label("provider", provider)
        duration = _check_seconds("LLM latency", seconds)
        tokens_in = _check_count("input_tokens", input_tokens)
        tokens_out = _check_count("output_tokens", output_tokens)
        cost = _check_count("cost_usd", cost_usd)
        if error_type is not None:
            _check_label("error_type", error_type)
        self.llm_latency.labels(provider=provider).observe(duration)
        self.llm_tokens.labels(provider=provider, direction="input").inc(tokens_in)
        self.llm_tokens.labels(provider=provider, direction="output").inc(tokens_out)
        self.llm_cost.labels(provider=provider).inc(cost)
        if error_type is not None:
            self.llm_errors.labels(provider=provider, error_type=error_type).inc()

    def observe_rag(self, seconds: float, n_docs: int) -> None:
        """Count one retrieval with its latency and the number of documents it returned."""
        duration = _check_seconds("retrieval latency", seconds)
        docs = _check_count("n_docs", n_docs)
        self.rag_queries.inc()
        self.rag_latency.observe(duration)
        self.rag_documents.observe(docs)

    def track_active(self, operation: str) -> AbstractContextManager[Any]:
        """Hold ``mcts_active_operations{operation}`` one higher while the block runs."""
        gauge = self._active.get(operation)
        if gauge is None:  # labels() validates and looks up the child: once per operation
            gauge = self.active_operations.labels(operation=_check_label("operation", operation))
            self._active[operation] = gauge
        return gauge.track_inprogress()

    def observe_routing(self, router: str, agent: str, reason_kind: str) -> None:
        """Count one meta-controller decision (``reason_kind``: e.g. router, fallback, override)."""
        self.routing_decisions.labels(
            router=_check_label("router", router),
            agent=_check_label("agent", agent),
            reason_kind=_check_label("reason_kind", reason_kind),
        ).inc()

    def serve(self, port: int, addr: str = "127.0.0.1") -> int | None:
        """Start (once) the exporter for this registry; see :func:`start_exporter`."""
        return start_exporter(port, registry=self.registry, addr=addr)


# -- multiprocess mode ---------------------------------------------------------------------


def multiprocess_dir() -> Path | None:
    """The multiprocess directory from ``PROMETHEUS_MULTIPROC_DIR``, or None in single-process mode."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


_atexit_registered = False


def enable_multiprocess(path: str | os.PathLike[str]) -> Path:
    """Switch this process to prometheus_client's multiprocess mode, writing samples under ``path``.

    Call it before the first :class:`Metrics` is created (metrics created earlier keep their
    in-memory values). It creates the directory, sets ``PROMETHEUS_MULTIPROC_DIR`` (inherited by
    child processes), switches prometheus_client's value class if the library was imported
    before the variable was set, and registers an ``atexit`` hook that removes this process's
    live-gauge files. Returns the directory.
    """
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    os.environ[MULTIPROC_ENV] = str(directory)
    if not getattr(values.ValueClass, "_multiprocess", False):
        # prometheus_client picks its value class at import time from the environment; this is
        # the switch its own test-suite uses for the same purpose.
        values.ValueClass = values.MultiProcessValue()
    _register_exit_hook()
    return directory


def _register_exit_hook() -> None:
    """Register (once) the atexit hook that removes this process's live-gauge files."""
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(_mark_this_process_dead)
        _atexit_registered = True


def _mark_this_process_dead() -> None:
    """atexit hook: drop this process's live-gauge files so ``livesum`` gauges forget it."""
    directory = multiprocess_dir()
    if directory is not None and directory.is_dir():
        multiprocess.mark_process_dead(os.getpid(), str(directory))


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
    swept: set[int] = set()
    for file in glob.glob(os.path.join(os.fspath(path), "gauge_live*_*.db")):
        match = _LIVE_GAUGE_FILE.match(os.path.basename(file))
        if match and not _pid_alive(int(match.group(1))):
            swept.add(int(match.group(1)))
    for pid in sorted(swept):
        multiprocess.mark_process_dead(pid, os.fspath(path))
    return sorted(swept)


class _SweepingMultiProcessCollector(Collector):
    """MultiProcessCollector that first forgets the live gauges of dead processes."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._inner = multiprocess.MultiProcessCollector(None, path=path)

    def collect(self):  # type: ignore[no-untyped-def]
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
    """
    directory = Path(multiproc_dir) if multiproc_dir is not None else multiprocess_dir()
    if directory is not None:
        if not directory.is_dir():
            raise ValueError(f"multiprocess metrics directory {directory} does not exist")
        aggregate = CollectorRegistry()
        aggregate.register(_SweepingMultiProcessCollector(str(directory)))
        return aggregate
    if registry is None:
        from prometheus_client import REGISTRY

        return REGISTRY
    return registry


# -- exporter ------------------------------------------------------------------------------


@dataclass
class _Exporter:
    """A running exporter: its server, serving thread and what it serves."""

    server: WSGIServer
    thread: threading.Thread
    registry: CollectorRegistry | None
    port: int


# Module-level guard (deliberately the only module state here): the exporter binds a TCP port,
# a process-wide resource, and Streamlit reruns the console's script on every interaction, so
# "start the exporter" must be idempotent per (address, port) for the life of the process.
_EXPORTERS: dict[tuple[str, int], _Exporter] = {}
_EXPORTERS_LOCK = threading.Lock()


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
    all processes (see :func:`exporter_registry`). Raises OSError when the port is taken by
    something else.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
    if port == 0:
        return None
    key = (addr, port)
    with _EXPORTERS_LOCK:
        running = _EXPORTERS.get(key)
        if running is not None:
            if registry is not None and registry is not running.registry:
                log.warning("metrics exporter on %s:%d already serves another registry", addr, port)
            return running.port
        served = exporter_registry(registry, multiproc_dir)
        server, thread = start_http_server(port, addr=addr, registry=served)
        bound = int(server.server_port)
        _EXPORTERS[key] = _Exporter(server=server, thread=thread, registry=registry, port=bound)
        log.info("metrics exporter listening on http://%s:%d/metrics", addr, bound)
        return bound


def stop_exporter(port: int, addr: str = "127.0.0.1") -> bool:
    """Stop the exporter started on ``addr:port``; return whether one was running (for tests)."""
    with _EXPORTERS_LOCK:
        running = _EXPORTERS.pop((addr, port), None)
    if running is None:
        return False
    running.server.shutdown()
    running.server.server_close()
    running.thread.join(timeout=5)
    return True


def running_exporters() -> list[tuple[str, int]]:
    """The (address, port) of every exporter this process runs."""
    with _EXPORTERS_LOCK:
        return sorted(_EXPORTERS)
