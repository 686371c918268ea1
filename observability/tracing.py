"""Tracing: nested spans with trace/span/parent ids, a correlation id, attributes and a status.

Spans nest through :mod:`contextvars`, so the current span follows the code that is running (the
thread, or the asyncio task) and never leaks between threads::

    tracer = Tracer([JsonlExporter("data/runtime/spans.jsonl")])  # observability.exporters
    with correlation_scope("req-42"), tracer.span("query", task="game24") as root:
        with tracer.span("agent.hrm") as child:       # parent_id == root.span_id, same trace_id
            child.set_attribute("confidence", 0.9)

A finished span becomes an immutable :class:`SpanRecord` that is handed, in the thread that ended
the span, to every exporter's ``export([record])`` (see the :class:`SpanExporter` protocol; the
implementations live in :mod:`observability.exporters`).  Exporter failures are caught and counted
(:attr:`Tracer.export_failures`); they never reach the traced code.  Exporters that do I/O should
sit behind a :class:`observability.exporters.BatchingExporter`, which moves the work to a
background thread.

**Threads.**  A new thread starts with an *empty* context: a span opened there would start a new
trace.  To keep the trace parent, wrap the callable with :func:`propagate`, which captures the
caller's context (current span, trace, correlation id) at wrap time::

    threading.Thread(target=propagate(work), args=(x,)).start()
    executor.submit(propagate(work), x)
    loop.run_in_executor(None, propagate(work), x)   # run_in_executor does not copy the context

Each call of the wrapper runs in a fresh copy of the captured context, so one wrapper may be called
from several threads at once.  (asyncio tasks copy the context by themselves.)

**Generators.**  A span opened inside a generator stays current for the consumer between ``yield``
points (generators run in their caller's context).  Closing a generator early raises
``GeneratorExit`` inside it; that is not counted as an error.

**Timestamps.**  A root span reads the wall clock (``clock``) once; every timestamp below it is that
anchor plus the monotonic ``perf`` clock's elapsed time, so a child always lies inside its parent,
durations are never negative, and an injected (e.g. simulated) wall clock moves whole traces.

**Redaction** happens whenever attributes are read (a span's ``attributes``, its record), so no
exporter or collector reader ever sees a secret; error messages are masked when they are set.
Both follow the rules of :mod:`observability.redaction`, with the values passed as
``Tracer(secrets=...)`` (or added later with :meth:`Tracer.add_secrets`).
Attribute values are kept as given until then: pass values that will not change.

**Modules.**  Ids and the trace context live in :mod:`observability.trace_context`, the open span
in :mod:`observability.span`, the finished record in :mod:`observability.span_record`; their
public names are re-exported here.  Each tracer owns its id generator
(:class:`observability.trace_context.IdSource`): no module-level state.

**Cost.**  The traced code pays for two clock reads and a context-variable switch per span; ids
and timestamps are derived when first read (:mod:`observability.span`), records are built only
for exporters.  Collectors (:meth:`Tracer.add_collector`) receive the ended span
itself and build its record later, e.g. in a writer thread: that is how the engine keeps
telemetry off a query's path.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

from observability.redaction import normalise_secrets, redact_str
from observability.span import Span, TraceAnchor
from observability.span_record import ERROR_KEY, SpanRecord, Status
from observability.trace_context import (
    AMBIENT_TRACE,
    IdFactory,
    IdSource,
    check_span_id,
    check_trace_id,
    correlation_scope,
    current_span,
    current_span_id,
    current_trace_id,
    get_correlation_id,
    new_span_id,
    new_trace_id,
    propagate,
    start_trace,
)

__all__ = [
    "ERROR_KEY",
    "Span",
    "SpanExporter",
    "SpanRecord",
    "Status",
    "Tracer",
    "correlation_scope",
    "current_span",
    "current_span_id",
    "current_trace_id",
    "get_correlation_id",
    "new_span_id",
    "new_trace_id",
    "propagate",
    "start_trace",
]

log = logging.getLogger("arbor.tracing")

P = ParamSpec("P")
R = TypeVar("R")


@runtime_checkable
class SpanExporter(Protocol):
    """Receives finished spans.  ``export`` may raise; the tracer counts and swallows the error.

    Exporters may also define ``flush(timeout_s)`` and ``shutdown()``; :meth:`Tracer.flush` and
    :meth:`Tracer.shutdown` call them when present.
    """

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Take a batch of finished spans."""
        ...


class Tracer:
    """Creates spans and hands finished ones to its exporters.

    Args:
        exporters: receivers of finished spans, each called as ``export([record])`` in the thread
            that ended the span.
        clock: wall clock in unix seconds, read once per root span (inject a fake or simulated one).
        perf: monotonic clock in seconds, for durations and child offsets.
        id_factory: ``f(nbytes) -> lowercase hex id`` (16 bytes for traces, 8 for spans); random
            by default, injectable for deterministic tests.  Its output is validated.
        secrets: secret values masked in this tracer's attributes and errors (in addition to the
            ``sk-...``-shaped keys every tracer masks).
    """

    def __init__(
        self,
        exporters: Sequence[SpanExporter] = (),
        *,
        clock: Callable[[], float] = time.time,
        perf: Callable[[], float] = time.perf_counter,
        id_factory: IdFactory | None = None,
        secrets: Iterable[object] = (),
    ) -> None:
        self._exporters: tuple[SpanExporter, ...] = tuple(exporters)
        self._collectors: tuple[Callable[[Span], None], ...] = ()
        self._trace_collectors: tuple[Callable[[str, list[Span]], None], ...] = ()
        self._finishing = bool(self._exporters)  # a span's end calls _finish (collectors, exporters)
        self._clock = clock
        self._perf = perf
        self._id_factory = id_factory
        self._ids = IdSource()
        self._secrets = normalise_secrets(secrets)
        self._lock = threading.Lock()
        self._export_failures = 0
        self._last_export_error: str | None = None

    # -- configuration --------------------------------------------------------------------------

    @property
    def exporters(self) -> tuple[SpanExporter, ...]:
        """The exporters, in call order."""
        return self._exporters

    def add_exporter(self, exporter: SpanExporter) -> None:
        """Append an exporter (thread-safe; spans ending afterwards reach it)."""
        with self._lock:
            self._exporters = (*self._exporters, exporter)
            self._finishing = True

    def remove_exporter(self, exporter: SpanExporter) -> None:
        """Remove an exporter if present."""
        with self._lock:
            self._exporters = tuple(e for e in self._exporters if e is not exporter)
            self._finishing = bool(self._exporters or self._collectors)

    def add_collector(self, collector: Callable[[Span], None]) -> None:
        """Also hand every span that ends to ``collector(span)``, in the thread that ended it.

        A collector gets the ended :class:`Span` itself, so no record is built on the traced
        code's path: it keeps the span and calls :meth:`Span.record` later, in any thread (an
        ended span no longer changes).  Failures are counted like exporters'.
        """
        with self._lock:
            self._collectors = (*self._collectors, collector)
            self._finishing = True

    def remove_collector(self, collector: Callable[[Span], None]) -> None:
        """Remove a collector if present."""
        with self._lock:
            self._collectors = tuple(c for c in self._collectors if c != collector)
            self._finishing = bool(self._exporters or self._collectors)

    def add_trace_collector(self, collector: Callable[[str, list[Span]], None]) -> None:
        """Hand the spans of each root's tree to ``collector(trace_id, spans)`` when the root
        ends, in the thread that ended it: the spans in the order they ended, the root last.

        The cheapest way to keep spans: an ending span is appended to its root's list (no call),
        and the collector is called once per root.  A span that ends after its root is not
        handed over.  Applies to roots opened after this call.  Failures are counted like
        exporters'.
        """
        with self._lock:
            self._trace_collectors = (*self._trace_collectors, collector)

    def remove_trace_collector(self, collector: Callable[[str, list[Span]], None]) -> None:
        """Remove a trace collector if present."""
        with self._lock:
            self._trace_collectors = tuple(c for c in self._trace_collectors if c != collector)

    def add_secrets(self, secrets: Iterable[object]) -> None:
        """Mask these secret values too in this tracer's spans from now on."""
        with self._lock:
            self._secrets = normalise_secrets((*self._secrets, *secrets))

    @property
    def export_failures(self) -> int:
        """How many ``export`` calls raised (the spans they carried were lost for that exporter)."""
        return self._export_failures

    @property
    def last_export_error(self) -> str | None:
        """``"ExporterClass: Type: message"`` of the last failed export, or None."""
        return self._last_export_error

    # -- spans ----------------------------------------------------------------------------------

    def span(self, name: str, /, *, trace_id: str | None = None, **attributes: Any) -> Span:
        """A span named ``name``, to be used as a context manager that yields itself.

        Entering it opens the span.  Its parent is the current span (sharing its trace id); with no
        current span it is a root, of the enclosing :func:`start_trace` trace or else of a new
        trace.  ``trace_id=`` forces the trace: the span is a child only if the current span
        belongs to that trace, otherwise a root of it.  An exception leaving the block marks the
        span ``error`` and propagates.
        """
        if not isinstance(name, str) or not name:
            raise ValueError("span name must be a non-empty string")
        return Span(self, name, trace_id, attributes)  # ``attributes`` is this call's own dict

    def traced(
        self, name: str | None = None, **attributes: Any
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: run the function inside ``self.span(name or fn.__qualname__, **attributes)``."""

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            span_name = name or fn.__qualname__

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                with self.span(span_name, **attributes):
                    return fn(*args, **kwargs)

            return wrapper

        return decorate

    @contextmanager
    def start_trace(self, trace_id: str | None = None) -> Iterator[str]:
        """:func:`start_trace` using this tracer's id factory for a new id."""
        with start_trace(trace_id, id_factory=self._new_id) as tid:
            yield tid

    def _new_id(self, nbytes: int) -> str:
        if self._id_factory is None:
            return self._ids(nbytes)
        value = self._id_factory(nbytes)
        return check_trace_id(value) if nbytes == 16 else check_span_id(value)

    def _new_trace(self, trace_id: str | None) -> TraceAnchor:
        """The anchor of a root span's trace: ``trace_id`` (checked by the caller), else the
        enclosing :func:`start_trace` trace, else a new id; the clocks read now."""
        tid = trace_id or AMBIENT_TRACE.get() or self._new_id(16)
        base = self._ids.bits(64) if self._id_factory is None else 0
        wall = self._clock()
        return TraceAnchor(tid, wall, self._perf(), base, bool(self._trace_collectors))

    def _trace_ended(self, trace: TraceAnchor) -> None:
        """The root of ``trace`` ended: hand its spans to the trace collectors."""
        spans, trace.ended = trace.ended, None
        if spans is None:
            return
        for collector in self._trace_collectors:
            try:
                collector(trace.trace_id, spans)
            except Exception as exc:
                self._count_failure(collector, exc)

    def _finish(self, span: Span) -> None:
        """Hand the ended ``span`` to every collector, and its record to every exporter."""
        for collector in self._collectors:
            try:
                collector(span)
            except Exception as exc:
                self._count_failure(collector, exc)
        if not self._exporters:
            return
        batch = [span.record()]
        for exporter in self._exporters:
            try:
                exporter.export(batch)
            except Exception as exc:
                self._count_failure(exporter, exc)

    def _count_failure(self, exporter: object, exc: BaseException) -> None:
        with self._lock:
            self._export_failures += 1
            n = self._export_failures
            self._last_export_error = redact_str(
                f"{type(exporter).__name__}: {type(exc).__name__}: {exc}", self._secrets
            )
        if n == 1 or n % 1000 == 0:
            log.warning("span export failed (%d so far): %s", n, self._last_export_error)

    # -- lifecycle ------------------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Ask every exporter that can (``flush(timeout_s)``) to deliver what it holds.

        Returns False if any exporter reported that it could not finish in time or failed.
        """
        ok = True
        for exporter in self._exporters:
            fn = getattr(exporter, "flush", None)
            if callable(fn):
                try:
                    ok = (fn(timeout_s) is not False) and ok
                except Exception as exc:
                    self._count_failure(exporter, exc)
                    ok = False
        return ok

    def shutdown(self) -> None:
        """Flush, then shut down every exporter that has ``shutdown()``.  Safe to call twice."""
        self.flush()
        for exporter in self._exporters:
            fn = getattr(exporter, "shutdown", None)
            if callable(fn):
                try:
                    fn()
                except Exception as exc:
                    self._count_failure(exporter, exc)
