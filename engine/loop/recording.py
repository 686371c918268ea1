"""Telemetry recording of one request: who it is, how far the loop got, which providers answered.

:class:`RunInfo` is a request's identity for its record (frozen); :class:`Progress` is what the
loop has decided and finished so far (appended to as it runs; a failed request records the
decisions it got to); :class:`CallLog` remembers which LLM providers answered and failed;
:class:`RequestRecorder` hands a finished or failed request to :class:`~engine.telemetry.Telemetry`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.events import RouteDecision
from engine.llm import AllProvidersFailed, LLMError, LLMProvider, LLMRequest, LLMResponse, ProviderFailure
from engine.models import QueryRequest, QueryResult, StepRecord
from engine.telemetry import FailedRequest, RequestMeta, Telemetry

__all__ = ["CallLog", "Progress", "RequestRecorder", "RunInfo"]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One request's identity for its record: the request, its resolved task, its ids and meta."""

    request: QueryRequest
    task_name: str
    request_id: str
    trace_id: str
    meta: RequestMeta


class Progress:
    """The routing decisions a request's loop made and the steps it finished, in order."""

    def __init__(self) -> None:
        self._decisions: list[RouteDecision] = []
        self._steps: list[StepRecord] = []
        #: The request's LLM calls and the provider it asked for, once its loop has chosen them
        #: (None before the loop starts; a task request's loop makes no LLM call: ``"none"``).
        self.calls: CallLog | None = None
        self.requested_provider: str | None = None

    def provenance(self) -> tuple[str | None, str | None, str | None]:
        """``(provider, fallback_from, fallback_error)`` for the request row, as far as the loop
        got: the provider asked for (or the one that answered) and the ones that failed on the way;
        ``"none"`` for a loop without LLM calls; all None before the loop started."""
        if self.calls is not None and self.requested_provider is not None:
            return self.calls.provenance(self.requested_provider)
        return (self.requested_provider, None, None)

    def decided(self, decision: RouteDecision) -> None:
        """A routing decision was made (its agent is about to run)."""
        self._decisions.append(decision)

    def finished(self, step: StepRecord) -> None:
        """The step of the latest decision finished."""
        self._steps.append(step)

    @property
    def steps(self) -> list[StepRecord]:
        """The finished steps (a copy)."""
        return list(self._steps)

    @property
    def unfinished(self) -> list[RouteDecision]:
        """The decisions whose step did not finish (at most one: the step that failed)."""
        return self._decisions[len(self._steps) :]


class CallLog:
    """One request's LLM provider, remembering which providers answered and which failed on the way
    (the request row's ``provider`` / ``fallback_from`` / ``fallback_error``).  Thread-safe."""

    def __init__(self, inner: LLMProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self._lock = threading.Lock()
        self._answered: list[str] = []
        self._failures: list[ProviderFailure] = []

    def complete(self, request: LLMRequest) -> LLMResponse:
        """Complete with the wrapped provider and remember who answered and who failed (also when
        the call raises: every provider of a chain that failed, or the one provider)."""
        try:
            response = self.inner.complete(request)
        except AllProvidersFailed as exc:
            with self._lock:
                self._failures.extend(ProviderFailure.of(name, err) for name, err in exc.errors)
            raise
        except LLMError as exc:
            with self._lock:
                self._failures.append(ProviderFailure.of(exc.provider or self.name, exc))
            raise
        with self._lock:
            self._answered.append(response.provider)
            self._failures.extend(response.failures)
        return response

    def provenance(self, requested: str) -> tuple[str, str | None, str | None]:
        """``(provider, fallback_from, fallback_error)``: the providers that answered (``requested``
        when no call was made), those that failed before a fallback answered (None: none), and the
        first failure as ``"<type>: <message>"`` (at most 500 characters)."""
        with self._lock:
            answered = ",".join(dict.fromkeys(self._answered)) or requested
            failed = ",".join(dict.fromkeys(f.provider for f in self._failures)) or None
            error = self._failures[0].describe()[:500] if self._failures else None
        return answered, failed, error


class RequestRecorder:
    """Records requests through ``telemetry``; ``clock`` (seconds) measures a failed request's
    latency from the ``t0`` its loop started at."""

    def __init__(self, telemetry: Telemetry, clock: Callable[[], float]) -> None:
        self.telemetry = telemetry
        self._clock = clock

    def result(self, result: QueryResult, meta: RequestMeta, search: Any) -> None:
        """Record a finished request (with its MCTS ``search``, if any)."""
        self.telemetry.record_result(result, meta, search)

    def failure(
        self, run: RunInfo, progress: Progress, status: str, error: str, t0: float, seed: int | None
    ) -> None:
        """Record a request that ended ``status`` (``error``, ``invalid``, ``cancelled``) with
        ``error`` and the steps it got to."""
        self.telemetry.record_failure(
            FailedRequest(
                request_id=run.request_id,
                trace_id=run.trace_id,
                task=run.task_name,
                query=run.request.query,
                status=status,
                error=error,
                latency_ms=(self._clock() - t0) * 1000,
                seed=seed,
                router=run.request.router,
                meta=run.meta,
                steps=progress.steps,
                unfinished=progress.unfinished,
                provenance=progress.provenance(),
            )
        )
