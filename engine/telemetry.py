"""The engine's link to observability: the SQLite store and the tracer.

``Telemetry.from_settings`` builds them once per engine (``ARBOR_TELEMETRY=off``
gives a no-op instance, for measuring their cost).  Spans go to the store's
batched writer (and to OTLP when ``ARBOR_OTLP_ENDPOINT`` is set); requests,
routing decisions and MCTS runs are queued to the store off the query's path.
Configured API keys are masked in everything recorded, even where a user
pasted one into a query.
Request statuses: ``ok``; ``error`` (the engine failed, counts against the
availability SLO); ``invalid`` (the input was rejected, excluded from it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from engine.config import Settings
from engine.llm import LLMError, LLMProvider, LLMRequest, LLMResponse
from engine.models import QueryResult
from observability.metrics import Metrics, enable_multiprocess
from observability.store import Store
from observability.tracing import (
    BatchingExporter,
    CallbackExporter,
    OtlpHttpExporter,
    SpanRecord,
    Tracer,
    redact_text,
    redact_values,
)


class Telemetry:
    """Store, tracer and metrics for one engine; each part is skipped when None."""

    def __init__(
        self,
        *,
        store: Store | None = None,
        tracer: Tracer | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tracer = tracer
        self.metrics = metrics
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> Telemetry:
        """Open the store at ``settings.db_path``, a tracer exporting into it, and metrics.

        With ``settings.metrics_dir`` the metrics use Prometheus multiprocess mode, so
        that the console's exporter also serves the samples of CLI workload processes.
        """
        if not settings.telemetry_enabled:
            return cls()
        if settings.metrics_dir is not None:
            enable_multiprocess(settings.metrics_dir)
        secrets = [s for s in (settings.openai_api_key, settings.anthropic_api_key) if s is not None]
        redact_values(secrets)
        store = Store(settings.db_path)
        exporters: list[Any] = [CallbackExporter(lambda records: _store_spans(store, records))]
        endpoint = getattr(settings, "otlp_endpoint", None)
        if endpoint:
            exporters.append(BatchingExporter(OtlpHttpExporter(endpoint)))
        return cls(store=store, tracer=Tracer(exporters, secrets=secrets), metrics=Metrics())

    @property
    def enabled(self) -> bool:
        return self.store is not None or self.tracer is not None or self.metrics is not None

    def span(self, name: str, /, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
        """A span under the current one (a null context when tracing is off)."""
        if self.tracer is None:
            return contextlib.nullcontext()
        return self.tracer.span(name, **attributes)

    def traced_provider(self, provider: LLMProvider) -> LLMProvider:
        """``provider`` with a span and metrics around every completion (itself when both are off)."""
        return provider if self.tracer is None and self.metrics is None else _TracedProvider(provider, self)

    def observe_rag(self, seconds: float, n_docs: int) -> None:
        """Count one retrieval (latency in seconds, documents returned)."""
        if self.metrics is not None:
            self.metrics.observe_rag(seconds, n_docs)

    def active(self, operation: str) -> contextlib.AbstractContextManager[Any]:
        """Hold the active-operations gauge up while the block runs."""
        return contextlib.nullcontext() if self.metrics is None else self.metrics.track_active(operation)

    def record_result(
        self,
        result: QueryResult,
        *,
        ts: float,
        user_id: str | None = None,
        simulated: bool = False,
        experiment: str | None = None,
        variant: str | None = None,
        tokens: int = 0,
        cost_usd: float = 0.0,
        mcts: Any = None,
    ) -> None:
        """Queue the request, its routing decisions and its MCTS run (if any); count them."""
        if self.metrics is not None:
            _observe(self.metrics, result, mcts)
        if self.store is None:
            return
        self.store.record_request(
            _request_row(result, ts, "ok", None, user_id, simulated, experiment, variant, tokens, cost_usd)
        )
        self.store.record_routing(
            [
                {
                    "request_id": result.request_id,
                    "step": s.index,
                    "agent": s.agent,
                    "reason": s.reason,
                    "probabilities": s.probabilities,
                    "features": list(s.features),
                    "confidence": s.confidence,
                    "latency_ms": s.latency_ms,
                }
                for s in result.steps
            ]
        )
        if mcts is not None:
            self._record_mcts(result, mcts, ts)

    def record_failure(
        self,
        *,
        request_id: str,
        trace_id: str,
        ts: float,
        task: str,
        query: str,
        status: str,
        error: str,
        latency_ms: float,
        seed: int | None,
        router: str,
        user_id: str | None = None,
        simulated: bool = False,
        experiment: str | None = None,
        variant: str | None = None,
    ) -> None:
        """Queue a request that failed (``error``) or was rejected (``invalid``)."""
        if self.metrics is not None and status == "error":
            self.metrics.observe_request(task, "error", latency_ms / 1000)
        if self.store is None:
            return
        self.store.record_request(
            {
                "request_id": request_id,
                "trace_id": trace_id,
                "ts": ts,
                "task": task,
                "query": redact_text(query),
                "status": status,
                "error": redact_text(error[:2000]),
                "latency_ms": latency_ms,
                "seed": seed,
                "router": router,
                "verdict": "unknown",
                "user_id": user_id,
                "simulated": int(simulated),
                "experiment": experiment,
                "variant": variant,
            }
        )

    def _record_mcts(self, result: QueryResult, search: Any, ts: float) -> None:
        assert self.store is not None
        s = search.stats
        run_id = f"{result.request_id}-mcts"
        final = search.snapshots[-1] if search.snapshots else None
        nodes = (
            []
            if final is None
            else [
                {
                    "node_id": n.id,
                    "parent_id": n.parent,
                    "depth": n.depth,
                    "label": n.label,
                    "visits": n.visits,
                    "value": n.value,
                    "prior": n.prior,
                }
                for n in final.nodes
            ]
        )
        config = search.config.model_dump() if search.config is not None else {}
        self.store.record_mcts_run(
            {
                "run_id": run_id,
                "request_id": result.request_id,
                "ts": ts,
                "task": result.task,
                "position": redact_text(result.query),
                "iterations": s.iterations,
                "seed": s.seed,
                "best_action": s.best_action_label,
                "root_value": s.root_value,
                "termination_reason": s.termination_reason,
                "tree_size": s.tree_size,
                "cache_hit_rate": s.cache_hit_rate,
                "elapsed_ms": s.elapsed_s * 1000,
                "config": config,
            },
            nodes,
        )

    def flush(self) -> None:
        """Block until everything queued so far is in the store."""
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


def _observe(metrics: Metrics, result: QueryResult, search: Any) -> None:
    metrics.observe_request(result.task, "ok", result.latency_ms / 1000)
    metrics.observe_verdict(result.task, result.verdict)
    for step in result.steps:
        metrics.observe_agent(step.agent, result.task, step.latency_ms / 1000, step.confidence)
        metrics.observe_routing(step.router, step.agent, step.reason.split(":", 1)[0])
    if search is not None:
        s = search.stats
        metrics.observe_search(s.iterations, s.termination_reason, s.elapsed_s)


def _store_spans(store: Store, records: list[SpanRecord]) -> None:
    store.record_spans([r.to_row() for r in records])


def _request_row(
    result: QueryResult,
    ts: float,
    status: str,
    error: str | None,
    user_id: str | None,
    simulated: bool,
    experiment: str | None,
    variant: str | None,
    tokens: int,
    cost_usd: float,
) -> dict[str, Any]:
    return {
        "request_id": result.request_id,
        "trace_id": result.trace_id,
        "ts": ts,
        "task": result.task,
        "query": redact_text(result.query),
        "answer": redact_text(result.answer),
        "answer_kind": result.answer_kind,
        "verdict": result.verdict,
        "quality": result.quality,
        "confidence": result.confidence,
        "agents_used": result.agents_used,
        "stop_reason": result.stop_reason,
        "latency_ms": result.latency_ms,
        "seed": result.seed,
        "router": result.router,
        "provider": result.provider,
        "status": status,
        "error": error,
        "user_id": user_id,
        "experiment": experiment,
        "variant": variant,
        "simulated": int(simulated),
        "tokens": tokens,
        "cost_usd": cost_usd,
    }


@dataclasses.dataclass(frozen=True)
class _TracedProvider:
    inner: LLMProvider
    telemetry: Telemetry

    @property
    def name(self) -> str:
        return self.inner.name

    def complete(self, request: LLMRequest) -> LLMResponse:
        metrics = self.telemetry.metrics
        started = time.perf_counter()
        with self.telemetry.span("llm.complete", provider=self.inner.name) as span:
            try:
                response = self.inner.complete(request)
            except LLMError as exc:
                if metrics is not None:
                    metrics.observe_llm(
                        self.inner.name,
                        time.perf_counter() - started,
                        0,
                        0,
                        0.0,
                        error_type=type(exc).__name__,
                    )
                raise
            if metrics is not None:
                metrics.observe_llm(
                    response.provider,
                    time.perf_counter() - started,
                    response.input_tokens,
                    response.output_tokens,
                    response.cost_usd,
                )
            if span is not None:
                span.set_attributes(
                    answered_by=response.provider,
                    input_tokens=response.input_tokens,
                    output_tokens=response.output_tokens,
                    cost_usd=response.cost_usd,
                    extractive=response.extractive,
                )
            return response
