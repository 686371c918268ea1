"""A fallback chain of providers guarded by circuit breakers, with accounting.

:class:`FallbackChain` is itself an :class:`~engine.llm.base.LLMProvider`.  For each request it tries
the providers in order: a provider whose breaker is open is skipped without a network call; a
provider that raises :class:`~engine.llm.types.LLMError` is recorded as a failure on its breaker and
the next one is tried; the first answer is returned, its ``fallbacks`` / ``failed_providers`` naming
the providers that fell through.  When every provider fails, :class:`AllProvidersFailed` carries each
provider's error.  An exception that is not an LLMError (a bug) is recorded as a breaker failure and
re-raised unchanged: the chain does not hide programming errors behind a fallback answer.

Every provider the chain tries (a skip by an open breaker included) is one *provider call*.  The
answer's ``failures`` records how each earlier call failed (:class:`ProviderFailure`), and a caller
that passes ``call_scope`` to :meth:`FallbackChain.complete` gets each call run inside
``call_scope(provider_name)`` -- e.g. a tracing span per call: a failed call's exception leaves the
scope (so a span is marked ``error`` with the exception type) before the next provider is tried,
and the scope's value, if it has ``set_attributes``, receives the call's attributes (``attempts``,
``status_code``, ``skipped``; ``input_tokens``, ``output_tokens``, ``cost_usd`` when it answered).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from engine.llm.accounting import Accounting, AccountingSnapshot, ProviderTotals
from engine.llm.base import LLMProvider
from engine.llm.breaker import CircuitBreaker
from engine.llm.types import (
    AllProvidersFailed,
    CircuitOpen,
    LLMError,
    LLMRequest,
    LLMResponse,
    ProviderFailure,
)

__all__ = ["Accounting", "AccountingSnapshot", "CallScope", "FallbackChain", "ProviderTotals"]

log = logging.getLogger(__name__)

#: ``call_scope(provider_name)``: a context manager wrapped around one provider call of a chain.
CallScope = Callable[[str], AbstractContextManager[Any]]


def _no_scope(provider: str) -> AbstractContextManager[Any]:
    return contextlib.nullcontext()


def _annotate(scope_value: Any, **attributes: Any) -> None:
    """Give the call scope's value (a span) the call's attributes, if it takes any."""
    setter = getattr(scope_value, "set_attributes", None)
    if callable(setter):
        setter(**attributes)


class FallbackChain:
    """Try ``providers`` in order (see the module docstring).

    ``breakers``: one per provider, aligned by position (None: that provider has no breaker), or a
    mapping from provider name to breaker; None: no breakers.  ``accounting``: the totals to update
    (a new :class:`Accounting` by default; read it via :attr:`accounting`).  Provider names must be
    unique.  Thread-safe if the providers are.

    Raises ValueError for an empty chain, duplicate names or a breaker list of the wrong length.
    """

    def __init__(
        self,
        providers: Sequence[LLMProvider],
        breakers: Sequence[CircuitBreaker | None] | Mapping[str, CircuitBreaker] | None = None,
        *,
        accounting: Accounting | None = None,
        name: str = "chain",
    ) -> None:
        self.providers: tuple[LLMProvider, ...] = tuple(providers)
        if not self.providers:
            raise ValueError("a fallback chain needs at least one provider")
        names = [p.name for p in self.providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique, got {names}")
        if breakers is None:
            aligned: tuple[CircuitBreaker | None, ...] = (None,) * len(self.providers)
        elif isinstance(breakers, Mapping):
            unknown = set(breakers) - set(names)
            if unknown:
                raise ValueError(f"breakers for unknown providers: {sorted(unknown)}")
            aligned = tuple(breakers.get(n) for n in names)
        else:
            aligned = tuple(breakers)
            if len(aligned) != len(self.providers):
                raise ValueError("breakers must have one entry (or None) per provider")
        self.breakers = aligned
        self.accounting = accounting if accounting is not None else Accounting()
        self.name = name

    def __repr__(self) -> str:
        return f"FallbackChain(name={self.name!r}, providers={[p.name for p in self.providers]})"

    @property
    def primary(self) -> LLMProvider:
        """The first provider (the configured one)."""
        return self.providers[0]

    def breaker(self, provider: str) -> CircuitBreaker | None:
        """The breaker guarding the provider named ``provider`` (None if unguarded or unknown)."""
        for p, b in zip(self.providers, self.breakers, strict=True):
            if p.name == provider:
                return b
        return None

    def complete(self, request: LLMRequest, *, call_scope: CallScope | None = None) -> LLMResponse:
        """The first provider's answer that succeeds, with ``failures`` naming the ones before it.

        ``call_scope``: wraps each provider call (see the module docstring); None: no wrapping.
        Raises AllProvidersFailed (with every provider's error, CircuitOpen for skipped ones) when none
        answers; re-raises a non-LLMError exception from a provider after recording it.
        """
        scope = call_scope or _no_scope
        self.accounting.record_request()
        errors: list[tuple[str, LLMError]] = []
        for provider, breaker in zip(self.providers, self.breakers, strict=True):
            skipped = False
            try:
                with scope(provider.name) as span:
                    if breaker is not None:
                        try:
                            breaker.before_call()
                        except CircuitOpen:
                            skipped = True
                            _annotate(span, skipped=True, attempts=0)
                            raise
                    response = self._call(provider, breaker, request, span)
            except LLMError as exc:
                errors.append((provider.name, exc))
                if skipped:
                    self.accounting.record_skip(provider.name)
                    log.info("%s: skipped, %s", provider.name, exc.message)
                else:
                    self.accounting.record_error(provider.name, exc)
                    log.warning("%s failed (%s): %s", provider.name, type(exc).__name__, exc.message)
                continue
            if errors:
                response = dataclasses.replace(
                    response,
                    fallbacks=len(errors),
                    failed_providers=tuple(name for name, _ in errors),
                    failures=tuple(ProviderFailure.of(name, err) for name, err in errors),
                )
            self.accounting.record_success(response)
            return response
        self.accounting.record_failed_request()
        raise AllProvidersFailed(errors)

    @staticmethod
    def _call(
        provider: LLMProvider, breaker: CircuitBreaker | None, request: LLMRequest, span: Any
    ) -> LLMResponse:
        """One admitted provider call: the breaker told of its outcome, the scope of its attributes."""
        try:
            response = provider.complete(request)
        except BaseException as exc:
            if breaker is not None:
                breaker.record_failure()
            if isinstance(exc, LLMError):
                _annotate(span, skipped=False, attempts=exc.attempts, status_code=exc.status_code)
            raise
        if breaker is not None:
            breaker.record_success()
        _annotate(
            span,
            skipped=False,
            attempts=response.attempts,
            input_tokens=response.input_tokens,
            output_tokens=response.output_tokens,
            cost_usd=response.cost_usd,
            extractive=response.extractive,
        )
        return response

    def close(self) -> None:
        """Close every provider that has a ``close()`` (releases owned HTTP clients)."""
        for provider in self.providers:
            close = getattr(provider, "close", None)
            if callable(close):
                close()
