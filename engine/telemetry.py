"""The engine's link to observability: the SQLite store, the tracer and the metrics.

:func:`engine.wiring.build_telemetry` builds them once per process (``ARBOR_TELEMETRY=off``
gives a no-op instance, for measuring their cost); ``Telemetry`` itself only takes
them.  A request's ended spans are held in memory by trace (a tracer collector: no
record is built yet) until the request is recorded; then ONE deferred job goes to the store's writer thread,
which builds the span records and the rows (request, routing decisions, spans,
logs, MCTS run), validates them and updates the metrics there -- the LLM and
retrieval metrics too, counted from the ``llm.complete`` and ``rag.retrieve``
spans -- so the query itself pays for its spans' ids and clocks and a queue put
(about 30-60 µs a request; ``benchmarks/telemetry_bench.py``).  Spans also go to OTLP when
``ARBOR_OTLP_ENDPOINT`` is set.  A request's log lines (``Telemetry.log``,
plus warnings that ``engine.*`` loggers emit inside its spans) are held the
same way and stored in ``logs``; they also go to Python logging (logger
``arbor.request``) when that level is enabled.  Every span and line carries
the request's correlation id.  Request statuses: ``ok``; ``error`` (the
engine failed: counts against the availability SLO); ``invalid`` (the input
was rejected: excluded from it); ``cancelled`` (the caller stopped reading).
The secrets given as ``Telemetry(secrets=...)`` (the composition root passes
the configured API keys, as it does to the tracer) are masked in everything
recorded, even where a user pasted one into a query.

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
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, NamedTuple

from engine.events import RouteDecision
from engine.llm import FallbackChain, LLMProvider, LLMRequest, LLMResponse
from engine.models import QueryResult, StepRecord
from observability.metrics import Metrics
from observability.redaction import normalise_secrets, redact_text
from observability.store import LogRow, MctsNodeRow, MctsRunRow, RequestRow, RoutingRow, Store
from observability.tracing import Span, SpanRecord, Tracer, current_span

#: The logger of per-request log lines (``Telemetry.log``).
REQUEST_LOGGER = logging.getLogger("arbor.request")
REQUEST_LOGGER.addHandler(logging.NullHandler())  # no stderr fallback; configure_logging adds real ones
_REQUEST = REQUEST_LOGGER.name
log = logging.getLogger(__name__)

_NODE_COLUMNS = MctsNodeRow._fields  # run_id, node_id, parent_id, depth, label, visits, value, prior

#: Longest a request waits for its rows' commit in ``commit`` mode (s): the store's own bounded
#: retry budget for a locked database is 30 s, so this is only reached when the disk is stuck.
COMMIT_TIMEOUT_S = 60.0


class _SpanBuffer:
    """Ended spans (a tracer collector), held by trace id until their request is recorded.

    The spans themselves are kept: their records are built by the store's writer thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: dict[str, list[Span]] = {}

    def __call__(self, span: Span) -> None:
        with self._lock:
            self._spans.setdefault(span.trace_id, []).append(span)

    def take(self, trace_id: str) -> list[Span]:
        with self._lock:
            return self._spans.pop(trace_id, [])


class _LogLine(NamedTuple):
    """One held log line (a tuple: it is built on the query's path; rows are made later)."""

    ts: float
    level: int
    logger: str
    message: str
    span_id: str | None
    correlation_id: str | None
    attributes: dict[str, Any]


class _LogBuffer(logging.Handler):
    """Log lines held by trace id until their request is recorded.

    Lines come from :meth:`Telemetry.log` (which opens a trace's buffer) and, while the buffer is
    attached as a logging handler (:meth:`Telemetry.capture_logs`, on the ``engine`` logger at
    WARNING), from library warnings emitted inside a span of a trace this buffer has open (e.g. an
    LLM provider failing over).  Other traces' records are ignored.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lines: dict[str, list[_LogLine]] = {}
        self._guard = threading.Lock()

    def add(self, trace_id: str, line: _LogLine) -> None:
        with self._guard:
            self._lines.setdefault(trace_id, []).append(line)

    def emit(self, record: logging.LogRecord) -> None:
        span = current_span()
        if span is None or record.name == REQUEST_LOGGER.name:
            return
        with self._guard:
            lines = self._lines.get(span.trace_id)
            if lines is not None:
                lines.append(
                    _LogLine(
                        record.created,
                        record.levelno,
                        record.name,
                        record.getMessage(),
                        span.span_id,
                        span.correlation_id,
                        {},
                    )
                )

    def take(self, trace_id: str) -> list[_LogLine]:
        with self._guard:
            return self._lines.pop(trace_id, [])


@dataclasses.dataclass(frozen=True, slots=True)
class RequestMeta:
    """How a request was run, for its record: when, by whom, under which experiment."""

    ts: float
    user_id: str | None = None
    simulated: bool = False
    experiment: str | None = None
    variant: str | None = None
    correlation_id: str | None = None


class Telemetry:
    """Store, tracer and metrics for one engine; each part is skipped when None.

    ``durability`` is ``"async"`` (recording queues the request's job) or ``"commit"``
    (recording returns once the store has committed the job's rows; see the module docstring).
    ``secrets`` (str or ``SecretStr``) are masked in every row recorded.  Library warnings are
    kept with their request only after :meth:`capture_logs` (the composition root calls it;
    :meth:`close` detaches the handler again): constructing a Telemetry touches no global logger.

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
    ) -> None:
        if durability not in ("async", "commit"):
            raise ValueError(f"durability must be 'async' or 'commit', not {durability!r}")
        self.store = store
        self.durability = durability
        self._commit = durability == "commit"
        self.metrics = metrics
        self.clock = clock
        self.secrets = normalise_secrets(secrets)
        self._spans = _SpanBuffer()
        self._logs: _LogBuffer | None = None
        self._captured: list[logging.Logger] = []
        self.tracer = tracer
        if tracer is not None and store is not None:
            tracer.add_collector(self._spans)
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

    def span(self, name: str, /, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
        """A span under the current one (a null context when tracing is off)."""
        if self.tracer is None:
            return contextlib.nullcontext()
        return self.tracer.span(name, **attributes)

    def log(self, level: int, message: str, /, **attributes: Any) -> None:
        """Log ``message`` for the request whose span is current: kept with its trace (stored in
        ``logs`` with the request) and passed to the ``arbor.request`` logger when it is enabled
        for ``level``.  ``attributes`` are JSON-safe extra fields.  Costs ~2 µs when stored only."""
        logs = self._logs
        if logs is not None:
            span = current_span()
            if span is not None:
                line = _LogLine(
                    self.clock(), level, _REQUEST, message, span.span_id, span.correlation_id, attributes
                )
                logs.add(span.trace_id, line)
        if REQUEST_LOGGER.isEnabledFor(level):
            REQUEST_LOGGER.log(level, message, extra=attributes)

    def active(self, operation: str) -> contextlib.AbstractContextManager[Any]:
        """Hold the active-operations gauge up while the block runs."""
        return contextlib.nullcontext() if self.metrics is None else self.metrics.track_active(operation)

    def traced_provider(self, provider: LLMProvider) -> LLMProvider:
        """``provider`` with an ``llm.complete`` span around every completion (itself when tracing
        is off); the LLM metrics are counted from those spans when the request is recorded."""
        return provider if self.tracer is None else _TracedProvider(provider, self)

    def record_result(self, result: QueryResult, meta: RequestMeta, search: Any = None) -> None:
        """Record a finished request with its routing decisions, spans and MCTS run; count it."""
        spans = self._spans.take(result.trace_id)
        logs = self._take_logs(
            result.trace_id,
            logging.INFO,
            f"answered in {result.latency_ms:.1f} ms: verdict {result.verdict}, stop: {result.stop_reason}",
            meta.correlation_id,
        )

        secrets = self.secrets

        def job(metrics: Metrics | None) -> dict[str, Any]:
            records = [s.record() for s in spans]
            if metrics is not None:
                _observe(metrics, result, search)
                _observe_calls(metrics, records)
            out = _result_rows(result, meta, search, records, secrets)
            out["logs"] = _log_rows(result.trace_id, logs, secrets)
            return out

        self._submit(job, 2 + len(result.steps) + len(spans) + len(logs))

    def record_failure(
        self,
        *,
        request_id: str,
        trace_id: str,
        task: str,
        query: str,
        status: str,
        error: str,
        latency_ms: float,
        seed: int | None,
        router: str,
        meta: RequestMeta,
        steps: Sequence[StepRecord] = (),
        unfinished: Sequence[RouteDecision] = (),
    ) -> None:
        """Record a request that failed (``error``), was rejected (``invalid``) or stopped
        (``cancelled``) with its spans and the routing decisions it got to: ``steps`` finished,
        ``unfinished`` decided but not finished (stored without confidence or latency)."""
        spans = self._spans.take(trace_id)
        level = logging.ERROR if status == "error" else logging.WARNING
        logs = self._take_logs(trace_id, level, f"request {status}: {error[:500]}", meta.correlation_id)
        row = RequestRow(
            request_id=request_id,
            trace_id=trace_id,
            ts=meta.ts,
            task=task,
            query=query,
            status=status,
            error=error[:2000],
            latency_ms=latency_ms,
            seed=seed,
            router=router,
            verdict="unknown",
            agents_used=list(dict.fromkeys([*(s.agent for s in steps), *(d.chosen for d in unfinished)])),
            user_id=meta.user_id,
            simulated=int(meta.simulated),
            experiment=meta.experiment,
            variant=meta.variant,
            correlation_id=meta.correlation_id,
        )._asdict()
        secrets = self.secrets

        def job(metrics: Metrics | None) -> dict[str, Any]:
            records = [s.record() for s in spans]
            if metrics is not None:
                if status == "error":
                    metrics.observe_request(task, "error", latency_ms / 1000)
                _observe_steps(metrics, task, steps)
                for d in unfinished:  # invoked, never finished
                    metrics.observe_agent(d.chosen, task, None, None)
                    metrics.observe_routing(d.router, d.chosen, d.reason.split(":", 1)[0])
                _observe_calls(metrics, records)
            return {
                "requests": _redacted(row, secrets),
                "routing_decisions": _routing_rows(request_id, steps, unfinished),
                "spans": [r.to_row() for r in records],
                "logs": _log_rows(trace_id, logs, secrets),
            }

        self._submit(job, 1 + len(steps) + len(unfinished) + len(spans) + len(logs))

    def _take_logs(
        self, trace_id: str, level: int, message: str, correlation_id: str | None
    ) -> list[_LogLine]:
        """The trace's held log lines, ending with ``message`` (the request's outcome)."""
        if REQUEST_LOGGER.isEnabledFor(level):
            REQUEST_LOGGER.log(level, message, extra={"trace_id": trace_id, "correlation_id": correlation_id})
        if self._logs is None:
            return []
        lines = self._logs.take(trace_id)
        lines.append(_LogLine(self.clock(), level, _REQUEST, message, None, correlation_id, {}))
        return lines

    def _submit(self, job: Callable[[Metrics | None], dict[str, Any]], hint: int) -> None:
        """Run ``job`` (count the request, build its rows) in the store's writer thread; with no
        store, count it now and drop the rows.  Waits while the store's backlog is full, and in
        ``commit`` mode until the rows are committed (at most COMMIT_TIMEOUT_S: then it logs a
        warning and returns, the rows still queued)."""
        metrics = self.metrics
        store = self.store
        if store is None:
            if metrics is not None:
                job(metrics)
            return
        ticket = store.submit_deferred(lambda: job(metrics), hint)
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


def _log_rows(trace_id: str, lines: list[_LogLine], secrets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``logs`` rows of a trace, in order; messages and text attributes redacted."""
    return [
        LogRow(
            trace_id=trace_id,
            seq=seq,
            ts=line.ts,
            level=logging.getLevelName(line.level),
            logger=line.logger,
            message=redact_text(line.message, secrets),
            correlation_id=line.correlation_id,
            span_id=line.span_id,
            attributes={
                k: redact_text(v, secrets) if isinstance(v, str) else v for k, v in line.attributes.items()
            }
            or None,
        )._asdict()
        for seq, line in enumerate(lines)
    ]


def _redacted(row: dict[str, Any], secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        k: redact_text(v, secrets)
        if k in ("query", "answer", "error", "fallback_error") and isinstance(v, str)
        else v
        for k, v in row.items()
    }


def _result_rows(
    result: QueryResult,
    meta: RequestMeta,
    search: Any,
    spans: list[SpanRecord],
    secrets: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every row one finished request writes (built in the store's writer thread)."""
    rows: dict[str, Any] = {
        "requests": _redacted(
            RequestRow(
                request_id=result.request_id,
                trace_id=result.trace_id,
                ts=meta.ts,
                task=result.task,
                query=result.query,
                answer=result.answer,
                answer_kind=result.answer_kind,
                verdict=result.verdict,
                quality=result.quality,
                confidence=result.confidence,
                agents_used=result.agents_used,
                stop_reason=result.stop_reason,
                latency_ms=result.latency_ms,
                seed=result.seed,
                router=result.router,
                provider=result.provider,
                status="ok",
                user_id=meta.user_id,
                experiment=meta.experiment,
                variant=meta.variant,
                correlation_id=meta.correlation_id,
                simulated=int(meta.simulated),
                tokens=result.tokens,
                cost_usd=result.cost_usd,
                fallback_from=result.fallback_from,
                fallback_error=result.fallback_error,
            )._asdict(),
            secrets,
        ),
        "routing_decisions": _routing_rows(result.request_id, result.steps),
        "spans": [s.to_row() for s in spans],
    }
    if search is not None:
        s = search.stats
        run_id = f"{result.request_id}-mcts"
        final = search.snapshots[-1] if search.snapshots else None
        rows["mcts_runs"] = MctsRunRow(
            run_id=run_id,
            request_id=result.request_id,
            ts=meta.ts,
            task=result.task,
            position=redact_text(result.query, secrets),
            iterations=s.iterations,
            seed=s.seed,
            best_action=s.best_action_label,
            root_value=s.root_value,
            termination_reason=s.termination_reason,
            tree_size=s.tree_size,
            cache_hit_rate=s.cache_hit_rate,
            elapsed_ms=s.elapsed_s * 1000,
            config=search.config.model_dump() if search.config is not None else {},
        )._asdict()
        rows["mcts_nodes"] = (
            []
            if final is None
            else [
                # Many rows per search: zipped with the row type's columns (~0.4 µs a row) rather
                # than built as a MctsNodeRow (~1.7 µs); the values follow MctsNodeRow's field order.
                dict(
                    zip(
                        _NODE_COLUMNS,
                        (run_id, n.id, n.parent, n.depth, n.label, n.visits, n.value, n.prior),
                        strict=True,
                    )
                )
                for n in final.nodes
            ]
        )
    return rows


def _routing_rows(
    request_id: str, steps: Sequence[StepRecord], unfinished: Sequence[RouteDecision] = ()
) -> list[dict[str, Any]]:
    """``routing_decisions`` rows: the finished steps, then the steps decided but not finished
    (no confidence, no latency)."""
    done = [
        (s.index, s.agent, s.reason, s.probabilities, s.features, s.confidence, s.latency_ms) for s in steps
    ]
    undone = [(d.step, d.chosen, d.reason, d.probabilities, d.features, None, None) for d in unfinished]
    return [
        RoutingRow(
            request_id=request_id,
            step=step,
            agent=agent,
            reason=reason,
            probabilities=probabilities,
            features=list(features),
            confidence=confidence,
            latency_ms=latency_ms,
        )._asdict()
        for step, agent, reason, probabilities, features, confidence, latency_ms in done + undone
    ]


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


def _observe_calls(metrics: Metrics, spans: list[SpanRecord]) -> None:
    """Count the request's LLM calls and retrievals from their spans (off the query's path).

    Each provider call of a fallback chain has its own ``llm.call`` span (provider = the provider
    called; a failed or breaker-skipped call is ``error`` with its ``exception.type``), and those are
    what is counted; an ``llm.complete`` span is counted itself only when the provider it wraps is
    not a chain (no ``llm.call`` children: ``chain`` attribute unset).
    """
    for span in spans:
        attrs = span.attributes
        if span.name == "llm.call" or (span.name == "llm.complete" and not attrs.get("chain")):
            error = attrs.get("exception.type", "LLMError") if not span.ok else None
            provider = attrs.get("provider") if span.name == "llm.call" else attrs.get("answered_by")
            metrics.observe_llm(
                str(provider or attrs.get("provider") or "unknown"),
                span.duration_ms / 1000,
                0 if error else attrs.get("input_tokens", 0),
                0 if error else attrs.get("output_tokens", 0),
                0.0 if error else attrs.get("cost_usd", 0.0),
                error_type=error,
            )
        elif span.name == "rag.retrieve" and span.ok:
            metrics.observe_rag(span.duration_ms / 1000, attrs.get("documents", 0))


def fallback_note(provider: str | None, fallback_from: str | None, fallback_error: str | None) -> str | None:
    """The sentence that says a fallback answered, e.g. ``"answered by the offline fallback after
    openai failed: ProviderUnavailable: openai: HTTP 500 ..."``; None when no provider failed."""
    if not fallback_from:
        return None
    answered = provider or "no provider"
    note = f"answered by the {answered} fallback after {fallback_from} failed"
    return f"{note}: {fallback_error}" if fallback_error else note


@dataclasses.dataclass(frozen=True)
class _TracedProvider:
    """An ``llm.complete`` span around each completion; for a :class:`FallbackChain`, an ``llm.call``
    child span around each provider call it makes (see :func:`_observe_calls`).

    ``llm.complete`` attributes: ``provider`` (the chain's first provider), ``answered_by``,
    ``fallback_from`` (the providers that failed, comma-separated) and the answer's tokens and cost.
    A fallback answer leaves ``llm.complete`` with status ``error`` and the fallback sentence as its
    description, so a degraded answer is never shown as a clean one.
    """

    inner: LLMProvider
    telemetry: Telemetry

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: LLMRequest) -> LLMResponse:
        inner = self.inner
        primary = getattr(getattr(inner, "primary", None), "name", None) or inner.name
        with self.telemetry.span("llm.complete", provider=primary) as span:
            if isinstance(inner, FallbackChain):
                span.set_attribute("chain", True)
                response = inner.complete(request, call_scope=self._call_span)
            else:
                response = inner.complete(request)
            span.set_attributes(
                answered_by=response.provider,
                input_tokens=response.input_tokens,
                output_tokens=response.output_tokens,
                cost_usd=response.cost_usd,
                extractive=response.extractive,
            )
            if response.failures:
                failed = ",".join(dict.fromkeys(f.provider for f in response.failures))
                first = response.failures[0]
                span.set_attributes(fallback_from=failed, fallback_error_type=first.error_type)
                span.set_status("error", fallback_note(response.provider, failed, first.describe()))
            return response

    def _call_span(self, provider: str) -> contextlib.AbstractContextManager[Any]:
        return self.telemetry.span("llm.call", provider=provider)
