"""The engine's Prometheus metrics: families built from the catalogue, typed recording methods.

Single process::

    metrics = Metrics()                       # a private CollectorRegistry, see Metrics.registry
    start_exporter(9464, registry=metrics.registry)
    metrics.observe_request("game24", "ok", 0.042)

Several processes of one deployment: see ``observability.metrics.multiprocess``.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from observability.metrics.catalogue import CATALOGUE, REQUEST_STATUSES, VERDICTS, MetricSpec
from observability.metrics.exporter import start_exporter
from observability.metrics.multiprocess import multiprocess_active, multiprocess_dir, register_exit_cleanup

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase

    from observability.activity import Activity

__all__ = ["Metrics", "build_family"]


def build_family(spec: MetricSpec, registry: CollectorRegistry) -> MetricWrapperBase:
    """Create the prometheus_client family of one catalogue row on ``registry``."""
    # prometheus_client is imported when the first family is built, not when this module is:
    # its multiprocess mode is fixed at import (see observability.metrics.multiprocess).
    from prometheus_client import Counter, Gauge, Histogram

    # A counter's name may end in _total: prometheus_client strips and re-adds the suffix.
    if spec.kind == "counter":
        return Counter(spec.name, spec.help, spec.labels, registry=registry)
    if spec.kind == "histogram":
        return Histogram(spec.name, spec.help, spec.labels, buckets=spec.buckets, registry=registry)
    return Gauge(
        spec.name,
        spec.help,
        spec.labels,
        multiprocess_mode=spec.multiprocess_mode or "all",
        registry=registry,
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
    """The engine's Prometheus metrics: every family of the catalogue, on one registry.

    ``registry=None`` creates a private :class:`CollectorRegistry` (so that several engines,
    e.g. in tests, never collide on prometheus_client's global registry); serve it with
    ``start_exporter(port, registry=metrics.registry)`` or :meth:`serve`.

    Every recording method validates its input and raises ValueError with a clear message on
    unknown label values (status, verdict) or impossible numbers (negative or NaN seconds,
    confidence outside [0, 1]).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        from prometheus_client import CollectorRegistry

        self.registry: CollectorRegistry = registry if registry is not None else CollectorRegistry()
        directory = multiprocess_dir()
        if multiprocess_active() and directory is not None:
            register_exit_cleanup(directory)
        from prometheus_client import Counter, Histogram

        #: Every family of the catalogue, by name.
        self.families: dict[str, MetricWrapperBase] = {
            spec.name: build_family(spec, self.registry) for spec in CATALOGUE
        }
        # The same families by kind, typed for the recording methods.
        self._counters = {n: f for n, f in self.families.items() if isinstance(f, Counter)}
        self._histograms = {n: f for n, f in self.families.items() if isinstance(f, Histogram)}
        self._children: dict[tuple[str, ...], Any] = {}  # (family, label values...) -> child

    def _child(self, name: str, **labels: str) -> Any:
        """Family ``name``'s child for these label values, looked up through prometheus_client
        (a lock and a validation, ~2 µs) once per combination, then from a dict."""
        key = (name, *labels.values())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.families[name].labels(**labels)
        return child

    # -- recording -------------------------------------------------------------------------

    def observe_request(self, task: str, status: str, seconds: float) -> None:
        """Count one finished request (``status`` is ``"ok"`` or ``"error"``) and its latency."""
        _check_label("task", task)
        if status not in REQUEST_STATUSES:
            raise ValueError(f"status must be one of {REQUEST_STATUSES}, got {status!r}")
        duration = _check_seconds("request duration", seconds)
        self._child("mcts_requests_total", task=task, status=status).inc()
        self._child("mcts_request_duration_seconds", task=task).observe(duration)

    def observe_verdict(self, task: str, verdict: str) -> None:
        """Count one answer's verdict (``correct``, ``incorrect`` or ``unknown`` when not judged)."""
        _check_label("task", task)
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
        self._child("mcts_verdicts_total", task=task, verdict=verdict).inc()

    def observe_agent(self, agent: str, task: str, seconds: float | None, confidence: float | None) -> None:
        """Count one agent invocation with its latency and its confidence in [0, 1]; both None for
        an invocation that did not finish (its request failed): counted, nothing observed."""
        _check_label("agent", agent)
        _check_label("task", task)
        duration = score = 0.0
        finished = seconds is not None and confidence is not None
        if seconds is not None and confidence is not None:
            duration = _check_seconds("agent latency", seconds)
            score = float(confidence)
            if not 0.0 <= score <= 1.0:  # also rejects NaN
                raise ValueError(f"confidence must be in [0, 1], got {confidence!r}")
        self._child("mcts_agent_requests_total", agent=agent, task=task).inc()
        if finished:
            self._child("mcts_agent_request_latency_seconds", agent=agent).observe(duration)
            self._child("mcts_agent_confidence_score", agent=agent).observe(score)

    def observe_search(self, iterations: int, outcome: str, seconds: float) -> None:
        """Count one search's iterations under ``outcome`` and observe its per-iteration latency.

        The histogram gets one sample per search, ``seconds / iterations``; a search with zero
        iterations counts nothing there (its latency per iteration is undefined).
        """
        _check_label("outcome", outcome)
        if isinstance(iterations, bool) or int(iterations) != iterations or iterations < 0:
            raise ValueError(f"iterations must be a non-negative integer, got {iterations!r}")
        elapsed = _check_seconds("search elapsed time", seconds)
        self._child("mcts_iterations_total", outcome=outcome).inc(int(iterations))
        if iterations > 0:
            self._histograms["mcts_iteration_latency_seconds"].observe(elapsed / int(iterations))

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
        self._child("mcts_llm_request_latency_seconds", provider=provider).observe(duration)
        self._child("mcts_llm_tokens_total", provider=provider, direction="input").inc(tokens_in)
        self._child("mcts_llm_tokens_total", provider=provider, direction="output").inc(tokens_out)
        self._child("mcts_llm_cost_usd_total", provider=provider).inc(cost)
        if error_type is not None:
            self._child("mcts_llm_request_errors_total", provider=provider, error_type=error_type).inc()

    def observe_rag(self, seconds: float, n_docs: int) -> None:
        """Count one retrieval with its latency and the number of documents it returned."""
        duration = _check_seconds("retrieval latency", seconds)
        docs = _check_count("n_docs", n_docs)
        self._counters["mcts_rag_queries_total"].inc()
        self._histograms["mcts_rag_retrieval_latency_seconds"].observe(duration)
        self._histograms["mcts_rag_documents_retrieved"].observe(docs)

    def count_in_flight(self, operation: str, activity: Activity) -> None:
        """Have ``mcts_active_operations{operation}`` show ``activity``'s operations in flight:
        read when scraped (nothing to do per operation), or in multiprocess mode, where a gauge
        cannot be read from a function, counted up and down as each operation starts and ends."""
        gauge = self._child("mcts_active_operations", operation=_check_label("operation", operation))
        if multiprocess_active():
            activity.add_listener(gauge.inc, gauge.dec)
        else:
            gauge.set_function(lambda: activity.in_flight)

    def track_active(self, operation: str) -> AbstractContextManager[Any]:
        """Hold ``mcts_active_operations{operation}`` one higher while the block runs."""
        gauge = self._child("mcts_active_operations", operation=_check_label("operation", operation))
        return gauge.track_inprogress()

    def observe_routing(self, router: str, agent: str, reason_kind: str) -> None:
        """Count one meta-controller decision (``reason_kind``: e.g. router, fallback, override)."""
        self._child(
            "mcts_routing_decisions_total",
            router=_check_label("router", router),
            agent=_check_label("agent", agent),
            reason_kind=_check_label("reason_kind", reason_kind),
        ).inc()

    def serve(self, port: int, addr: str = "127.0.0.1") -> int | None:
        """Start (once) the exporter for this registry; see :func:`start_exporter`."""
        return start_exporter(port, registry=self.registry, addr=addr)
