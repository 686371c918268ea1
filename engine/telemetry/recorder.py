""":class:`Telemetry`: a request's spans and log lines held until it is recorded, then handed to
the store's writer thread as ONE deferred job that builds its rows (:mod:`engine.telemetry.rows`)
and counts its metrics there.  The package docstring (:mod:`engine.telemetry`) tells the whole story.

Durability (``ARBOR_DURABILITY``): in ``async`` mode (the default) a request
returns as soon as its job is queued; the store's backlog is bounded
(``ARBOR_STORE_MAX_BACKLOG`` jobs) and a request waits for room when it is
full, so a killed process loses at most that many requests.  In ``commit``
mode recording a request also waits until the store has committed its rows
(group commit), so ``Engine.run`` returns, and ``Engine.stream`` yields its
final event, only after they are on disk; failed, rejected and cancelled
requests are waited for the same way.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from engine.llm import LLMProvider
from engine.models import QueryResult, StepRecord
from engine.telemetry.rows import (
    FailedRequest,
    LogLine,
    RequestMeta,
    exposure_rows,
    failure_request_row,
    log_rows,
    on_request_clock,
    redacted_request,
    result_rows,
    routing_rows,
)
from engine.telemetry.traced_provider import TracedProvider, observe_calls
from observability.activity import Activity
from observability.metrics import Metrics
from observability.redaction import normalise_secrets
from observability.store import Store
from observability.trace_context import CURRENT_SPAN
from observability.tracing import Span, Tracer

__all__ = ["COMMIT_TIMEOUT_S", "REQUEST_LOGGER", "Telemetry"]

#: The logger of per-request log lines (``Telemetry.log``).
REQUEST_LOGGER = logging.getLogger("arbor.request")
REQUEST_LOGGER.addHandler(logging.NullHandler())  # no stderr fallback; configure_logging adds real ones
_REQUEST = REQUEST_LOGGER.name
log = logging.getLogger(__name__)
_current_span = CURRENT_SPAN.get  # bound once: Telemetry.log runs several times a request

#: Longest a request waits for its rows' commit in ``commit`` mode (s): the store's own bounded
#: retry budget for a locked database is 30 s, so this is only reached when the disk is stuck.
COMMIT_TIMEOUT_S = 60.0


class _SpanBuffer:
    """Ended spans (a tracer's trace collector: handed over when their root ends), held by trace
    id until their request is recorded.

    The spans themselves are kept: their records are built by the store's writer thread.  No
    lock: ``dict.get``, ``dict.pop``, item assignment and ``list.extend`` are each atomic.
    """

    def __init__(self) -> None:
        self._spans: dict[str, list[Span]] = {}

    def __call__(self, trace_id: str, spans: list[Span]) -> None:
        held = self._spans.get(trace_id)
        if held is None:
            self._spans[trace_id] = spans
        else:  # a second root of the same trace
            held.extend(spans)

    def take(self, trace_id: str) -> list[Span]:
        return self._spans.pop(trace_id, [])


class _LogBuffer(logging.Handler):
    """Log lines held by trace id until their request is recorded, as plain tuples in
    :class:`LogLine`'s field order (the rows are made in the writer thread).

    Lines come from :meth:`Telemetry.log` (which opens a trace's buffer) and, while the buffer is
    attached as a logging handler (:meth:`Telemetry.capture_logs`, on the ``engine`` logger at
    WARNING), from library warnings emitted inside a span of a trace this buffer has open (e.g. an
    LLM provider failing over).  Other traces' records are ignored.  No lock: each dict and list
    operation here is atomic.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lines: dict[str, list[tuple[Any, ...]]] = {}

    def add(self, span: Span, line: tuple[Any, ...]) -> None:
        """Hold ``line``, logged inside ``span``, with its trace's lines."""
        trace_id = span.trace_id
        lines = self._lines.get(trace_id)
        if lines is None:
            self._lines[trace_id] = [line]
        else:
            lines.append(line)

    def emit(self, record: logging.LogRecord) -> None:
        span = _current_span()
        if span is None or record.name == REQUEST_LOGGER.name:
            return
        lines = self._lines.get(span.trace_id)
        if lines is not None:
            lines.append(
                (
                    record.created,
                    record.levelno,
                    record.name,
                    record.getMessage(),
                    span,
                    span.correlation_id,
                    {},
                )
            )

    def take(self, trace_id: str) -> list[tuple[Any, ...]]:
        return self._lines.pop(trace_id, [])


class Telemetry:
    """Store, tracer and metrics for one engine; each part is skipped when None.

    ``durability`` is ``"async"`` (recording queues the request's job) or ``"commit"``
    (recording returns once the store has committed the job's rows; see the module docstring).
    ``secrets`` (str or ``SecretStr``) are masked in every row recorded.  ``activity`` counts the
    requests in flight (held by ``Engine.stream``); the composition root gives the store the same one.
    Library warnings are kept with their request only after :meth:`capture_logs` (the composition
    root calls it; :meth:`close` detaches the handler again): constructing a Telemetry touches no
    global logger.

    Raises:
        ValueError: an unknown ``durability``.
    """

    def __init__(
        self,
        *,
        store: Store | None = None,
        tracer: Tracer | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        durability: Literal["async", "commit"] = "async",
        secrets: Iterable[object] = (),
        activity: Activity | None = None,
    ) -> None:
        if durability not in ("async", "commit"):
            raise ValueError(f"durability must be 'async' or 'commit', not {durability!r}")
        self.store = store
        self.durability = durability
        self._commit = durability == "commit"
        self.metrics = metrics
        self.clock = clock
        self.secrets = normalise_secrets(secrets)
        self.activity = activity or Activity()
        if metrics is not None:  # the queries-in-flight gauge reads the activity's count
            metrics.count_in_flight("query", self.activity)
        self._spans = _SpanBuffer()
        self._logs: _LogBuffer | None = None
        self._captured: list[logging.Logger] = []
        self.tracer = tracer
        #: ``span(name, /, **attributes)``: a span under the current one (the tracer's own
        #: :meth:`~observability.tracing.Tracer.span`, no layer between), or a null context when
        #: tracing is off.
        self.span: Callable[..., contextlib.AbstractContextManager[Any]] = (
            _no_span if tracer is None else tracer.span
        )
        if tracer is not None and store is not None:
            tracer.add_trace_collector(self._spans)
            self._logs = _LogBuffer()

    def capture_logs(self, logger: str = "engine") -> None:
        """Keep WARNING+ records of ``logger`` (and its children) emitted inside a traced request
        with that request's log lines, until :meth:`close`.  No-op without a store and tracer."""
        if self._logs is None:
            return
        target = logging.getLogger(logger)
        if target not in self._captured:
            target.addHandler(self._logs)
            self._captured.append(target)

    def log(self, level: int, message: str, /, **attributes: Any) -> None:
        """Log ``message`` for the request whose span is current: kept with its trace (stored in
        ``logs`` with the request) and passed to the ``arbor.request`` logger when it is enabled
        for ``level``.  ``attributes`` are JSON-safe extra fields.  Costs ~1 µs when stored only."""
        logs = self._logs
        if logs is not None:
            span = _current_span()
            if span is not None:
                logs.add(
                    span, (self.clock(), level, _REQUEST, message, span, span.correlation_id, attributes)
                )
        if REQUEST_LOGGER.isEnabledFor(level):
            REQUEST_LOGGER.log(level, message, extra=attributes)

    def traced_provider(self, provider: LLMProvider) -> LLMProvider:
        """``provider`` with an ``llm.complete`` span around every completion (itself when tracing
        is off); the LLM metrics are counted from those spans when the request is recorded."""
        return provider if self.tracer is None else TracedProvider(provider, self.tracer)

    def record_result(self, result: QueryResult, meta: RequestMeta, search: Any = None) -> None:
        """Record a finished request with its routing decisions, spans and MCTS run; count it."""
        trace_id = result.trace_id
        if REQUEST_LOGGER.isEnabledFor(logging.INFO):
            _log_outcome(logging.INFO, _answered(result), trace_id, meta.correlation_id)
        spans = self._spans.take(trace_id)
        held = self._held_logs(trace_id)
        hint = 4 + len(result.steps) + len(spans) + len(held)
        self._submit(_result_job, (result, meta, search, spans, held, self.clock(), self.secrets), hint)

    def record_failure(self, failure: FailedRequest) -> None:
        """Record a request that failed (``error``), was rejected (``invalid``) or stopped
        (``cancelled``) with its spans and the routing decisions it got to (unfinished steps are
        stored without confidence or latency)."""
        f = failure
        if REQUEST_LOGGER.isEnabledFor(_failure_level(f)):
            _log_outcome(_failure_level(f), _failed(f), f.trace_id, f.meta.correlation_id)
        spans = self._spans.take(f.trace_id)
        held = self._held_logs(f.trace_id)
        hint = 3 + len(f.steps) + len(f.unfinished) + len(spans) + len(held)
        self._submit(_failure_job, (f, spans, held, self.clock(), self.secrets), hint)

    def _held_logs(self, trace_id: str) -> list[tuple[Any, ...]]:
        return [] if self._logs is None else self._logs.take(trace_id)

    def _submit(self, build: Callable[..., dict[str, Any]], args: tuple[Any, ...], hint: int) -> None:
        """Run ``build(metrics, *args)`` (count the request, build its rows) in the store's writer
        thread; with no store, count it now and drop the rows.  Waits while the store's backlog is
        full, and in ``commit`` mode until the rows are committed (at most COMMIT_TIMEOUT_S: then
        it logs a warning and returns, the rows still queued).  One ``partial`` holds the job: few
        objects live on until the writer builds it (each one more makes the cyclic GC run sooner)."""
        metrics = self.metrics
        store = self.store
        if store is None:
            if metrics is not None:
                build(metrics, *args)
            return
        ticket = store.submit_deferred(functools.partial(build, metrics, *args), hint)
        if self._commit and not store.wait_for(ticket, COMMIT_TIMEOUT_S):
            log.warning(
                "durability=commit: request rows not committed within %.0fs; returning, they stay queued",
                COMMIT_TIMEOUT_S,
            )

    def flush(self) -> None:
        """Block until everything recorded so far is in the store (and counted)."""
        if self.tracer is not None:
            self.tracer.flush()
        if self.store is not None:
            self.store.flush()

    def close(self) -> None:
        """Flush and release the store and exporters (idempotent)."""
        if self.tracer is not None:
            self.tracer.shutdown()
        if self.store is not None:
            self.store.close()
        if self._logs is not None:
            for target in self._captured:
                target.removeHandler(self._logs)
            self._captured.clear()


def _result_job(
    metrics: Metrics | None,
    result: QueryResult,
    meta: RequestMeta,
    search: Any,
    spans: list[Span],
    held: list[tuple[Any, ...]],
    done_ts: float,
    secrets: tuple[str, ...],
) -> dict[str, Any]:
    """A finished request's rows (and metrics), built in the writer thread."""
    held.append((done_ts, logging.INFO, _REQUEST, _answered(result), None, meta.correlation_id, {}))
    records, lines = on_request_clock([s.record() for s in spans], _lines(held), meta.clock_shift_s)
    if metrics is not None:
        _observe(metrics, result, search)
        observe_calls(metrics, records)
    out = result_rows(result, meta, search, records, secrets)
    out["logs"] = log_rows(result.trace_id, lines, secrets)
    return out


def _failure_job(
    metrics: Metrics | None,
    f: FailedRequest,
    spans: list[Span],
    held: list[tuple[Any, ...]],
    done_ts: float,
    secrets: tuple[str, ...],
) -> dict[str, Any]:
    """A failed, rejected or cancelled request's rows (and metrics), built in the writer thread."""
    held.append((done_ts, _failure_level(f), _REQUEST, _failed(f), None, f.meta.correlation_id, {}))
    records, lines = on_request_clock([s.record() for s in spans], _lines(held), f.meta.clock_shift_s)
    if metrics is not None:
        if f.status == "error":
            metrics.observe_request(f.task, "error", f.latency_ms / 1000)
        _observe_steps(metrics, f.task, f.steps)
        for d in f.unfinished:  # invoked, never finished
            metrics.observe_agent(d.chosen, f.task, None, None)
            metrics.observe_routing(d.router, d.chosen, d.reason.split(":", 1)[0])
        observe_calls(metrics, records)
    return {
        "requests": redacted_request(failure_request_row(f), secrets),
        "routing_decisions": routing_rows(f.request_id, f.steps, f.unfinished),
        "spans": [r.to_row(encode=False) for r in records],
        "logs": log_rows(f.trace_id, lines, secrets),
        "exposures": exposure_rows(f.request_id, f.meta),
    }


def _answered(result: QueryResult) -> str:
    return f"answered in {result.latency_ms:.1f} ms: verdict {result.verdict}, stop: {result.stop_reason}"


def _failed(f: FailedRequest) -> str:
    return f"request {f.status}: {f.error[:500]}"


def _failure_level(f: FailedRequest) -> int:
    return logging.ERROR if f.status == "error" else logging.WARNING


def _log_outcome(level: int, message: str, trace_id: str, correlation_id: str | None) -> None:
    REQUEST_LOGGER.log(level, message, extra={"trace_id": trace_id, "correlation_id": correlation_id})


def _no_span(name: str, /, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


def _lines(held: list[tuple[Any, ...]]) -> list[LogLine]:
    return [LogLine._make(line) for line in held]


def _observe(metrics: Metrics, result: QueryResult, search: Any) -> None:
    metrics.observe_request(result.task, "ok", result.latency_ms / 1000)
    metrics.observe_verdict(result.task, result.verdict)
    _observe_steps(metrics, result.task, result.steps)
    if search is not None:
        s = search.stats
        metrics.observe_search(s.iterations, s.termination_reason, s.elapsed_s)


def _observe_steps(metrics: Metrics, task: str, steps: Sequence[StepRecord]) -> None:
    """Count finished steps: the agent invocation (latency, confidence) and the routing decision."""
    for step in steps:
        metrics.observe_agent(step.agent, task, step.latency_ms / 1000, step.confidence)
        metrics.observe_routing(step.router, step.agent, step.reason.split(":", 1)[0])
