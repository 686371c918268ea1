"""Fault injection in the query loop: a request's drawn :class:`~engine.faults.Faults` applied.

* ``provider_error``: the request's LLM provider fails every call (:class:`FailingProvider`), so
  its fallback chain is exercised as in a real outage;
* ``extra_latency_s``: the first agent step takes that much longer -- slept with the injected
  sleeper on a live timeline, added to the recorded latencies on a simulated one;
* ``error``: the request fails with :class:`~engine.faults.InjectedFault` after its first step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from engine.faults import Faults, InjectedFault
from engine.llm import LLMProvider, LLMRequest, LLMResponse, ProviderUnavailable
from engine.models import QueryResult

__all__ = ["FailingProvider", "FaultInjector"]


class FailingProvider:
    """An LLM provider whose every call fails: the ``provider_error`` fault.  ``name`` is the
    wrapped provider's."""

    def __init__(self, inner: LLMProvider) -> None:
        self.inner = inner
        self.name = inner.name

    @property
    def primary(self) -> LLMProvider:
        """The provider whose failure this simulates (a chain's first provider)."""
        primary: LLMProvider = getattr(self.inner, "primary", self.inner)
        return primary

    def complete(self, request: LLMRequest) -> LLMResponse:
        """Raises ProviderUnavailable naming the primary provider, always."""
        raise ProviderUnavailable("injected provider error", provider=self.primary.name)


class FaultInjector:
    """One request's faults applied to its loop (one instance per request: it remembers whether
    the injected latency was spent).

    ``simulated``: the request runs on a simulated timeline (latency is added, not slept);
    ``sleep``: how a live request waits (seconds; ``time.sleep`` in production).
    """

    def __init__(self, faults: Faults, *, simulated: bool, sleep: Callable[[float], None]) -> None:
        self.faults = faults
        self._simulated = simulated
        self._sleep = sleep
        self._pending_s = faults.extra_latency_s

    def provider(self, llm: LLMProvider) -> LLMProvider:
        """``llm``, failing every call when the request drew ``provider_error``."""
        return FailingProvider(llm) if self.faults.provider_error else llm

    def before_agent(self) -> None:
        """Sleep the injected latency before the first agent runs (live timeline only)."""
        if self._pending_s and not self._simulated:
            self._sleep(self._pending_s)

    def step_latency_ms(self, measured_ms: float) -> float:
        """A step's recorded latency: ``measured_ms`` plus, for the first step on a simulated
        timeline, the injected latency (a live one measured its sleep already)."""
        if not self._pending_s:
            return measured_ms
        extra_ms = self._pending_s * 1000 if self._simulated else 0.0
        self._pending_s = 0.0
        return measured_ms + extra_ms

    def after_agent(self, agent: str) -> None:
        """Raise InjectedFault when the request drew ``error``."""
        if self.faults.error:
            raise InjectedFault(f"injected error after the {agent} step")

    def result(self, result: QueryResult) -> QueryResult:
        """``result`` with the injected latency added on a simulated timeline."""
        if self._simulated and self.faults.extra_latency_s:
            return dataclasses.replace(
                result, latency_ms=result.latency_ms + self.faults.extra_latency_s * 1000
            )
        return result
