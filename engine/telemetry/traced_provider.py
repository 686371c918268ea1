"""Tracing of LLM completions: the spans around a provider's calls and the metrics counted from them.

:meth:`Telemetry.traced_provider <engine.telemetry.recorder.Telemetry.traced_provider>` wraps the
request's provider in a :class:`TracedProvider`, which opens an ``llm.complete`` span around each
completion (and an ``llm.call`` span around each provider call of a fallback chain);
:func:`observe_calls` counts the LLM and retrieval metrics from those spans in the store's writer
thread, off the query's path.  :func:`fallback_note` is the sentence shown (and set as the span's
status description) when a fallback provider answered.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

from engine.llm import FallbackChain, LLMProvider, LLMRequest, LLMResponse
from observability.metrics import Metrics
from observability.tracing import SpanRecord, Tracer

__all__ = ["TracedProvider", "fallback_note", "observe_calls"]


def observe_calls(metrics: Metrics, spans: list[SpanRecord]) -> None:
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
class TracedProvider:
    """An ``llm.complete`` span around each completion; for a :class:`FallbackChain`, an ``llm.call``
    child span around each provider call it makes (see :func:`observe_calls`).

    ``llm.complete`` attributes: ``provider`` (the chain's first provider), ``answered_by``,
    ``fallback_from`` (the providers that failed, comma-separated) and the answer's tokens and cost.
    A fallback answer leaves ``llm.complete`` with status ``error`` and the fallback sentence as its
    description, so a degraded answer is never shown as a clean one.
    """

    inner: LLMProvider
    tracer: Tracer

    @property
    def name(self) -> str:
        """The wrapped provider's name."""
        return self.inner.name

    def complete(self, request: LLMRequest) -> LLMResponse:
        """``inner``'s completion of ``request`` inside an ``llm.complete`` span (raises what it raises)."""
        inner = self.inner
        primary = getattr(getattr(inner, "primary", None), "name", None) or inner.name
        with self.tracer.span("llm.complete", provider=primary) as span:
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
        return self.tracer.span("llm.call", provider=provider)
