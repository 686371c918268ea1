"""A fallback chain of providers guarded by circuit breakers, with accounting.

:class:`FallbackChain` is itself an :class:`~engine.llm.base.LLMProvider`.  For each request it tries
the providers in order: a provider whose breaker is open is skipped without a network call; a
provider that raises :class:`~engine.llm.types.LLMError` is recorded as a failure on its breaker and
the next one is tried; the first answer is returned, its ``fallbacks`` / ``failed_providers`` naming
the providers that fell through.  When every provider fails, :class:`AllProvidersFailed` carries each
provider's error.  An exception that is not an LLMError (a bug) is recorded as a breaker failure and
re-raised unchanged: the chain does not hide programming errors behind a fallback answer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence

from engine.llm.accounting import Accounting, AccountingSnapshot, ProviderTotals
from engine.llm.base import LLMProvider
from engine.llm.breaker import CircuitBreaker
from engine.llm.types import AllProvidersFailed, CircuitOpen, LLMError, LLMRequest, LLMResponse

__all__ = ["Accounting", "AccountingSnapshot", "FallbackChain", "ProviderTotals"]

log = logging.getLogger(__name__)


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

    def complete(self, request: LLMRequest) -> LLMResponse:
        """The first provider's answer that succeeds.

        Raises AllProvidersFailed (with every provider's error, CircuitOpen for skipped ones) when none
        answers; re-raises a non-LLMError exception from a provider after recording it.
        """
        self.accounting.record_request()
        errors: list[tuple[str, LLMError]] = []
        for provider, breaker in zip(self.providers, self.breakers, strict=True):
            if breaker is not None:
                try:
                    breaker.before_call()
                except CircuitOpen as exc:
                    errors.append((provider.name, exc))
                    self.accounting.record_skip(provider.name)
                    log.info("%s: skipped, %s", provider.name, exc.message)
                    continue
            try:
                response = provider.complete(request)
            except LLMError as exc:
                if breaker is not None:
                    breaker.record_failure()
                errors.append((provider.name, exc))
                self.accounting.record_error(provider.name, exc)
                log.warning("%s failed (%s): %s", provider.name, type(exc).__name__, exc.message)
                continue
            except BaseException:
                if breaker is not None:
                    breaker.record_failure()
                raise
            if breaker is not None:
                breaker.record_success()
            if errors:
                response = dataclasses.replace(
                    response,
                    fallbacks=len(errors),
                    failed_providers=tuple(name for name, _ in errors),
                )
            self.accounting.record_success(response)
            return response
        self.accounting.record_failed_request()
        raise AllProvidersFailed(errors)

    def close(self) -> None:
        """Close every provider that has a ``close()`` (releases owned HTTP clients)."""
        for provider in self.providers:
            close = getattr(provider, "close", None)
            if callable(close):
                close()
