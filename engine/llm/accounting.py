"""Thread-safe running totals of LLM use: requests, errors by type, tokens, cost, per provider.

The fallback chain updates an :class:`Accounting`; :meth:`Accounting.snapshot` returns a frozen,
consistent :class:`AccountingSnapshot` for the console, reports and metrics exporters.  Units: tokens
are counts, ``cost_usd`` US dollars, ``latency_s`` seconds (sum over answered calls).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from engine.llm.types import LLMError, LLMResponse

__all__ = ["Accounting", "AccountingSnapshot", "ProviderTotals"]


@dataclass(frozen=True)
class ProviderTotals:
    """Totals of one provider.

    ``calls``: calls made to it (not counting those its open breaker skipped); ``successes``;
    ``errors``: failed calls by exception class name (``"ProviderUnavailable"``, ...); ``skipped``:
    calls its open circuit breaker refused; ``attempts``: HTTP attempts of the answered calls;
    ``unpriced``: answered calls whose model had no configured price (their cost is unknown, counted as
    0); ``estimated``: answered calls with approximate token counts.
    """

    calls: int = 0
    successes: int = 0
    errors: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    skipped: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_s: float = 0.0
    attempts: int = 0
    unpriced: int = 0
    estimated: int = 0

    @property
    def error_count(self) -> int:
        """All failed calls."""
        return sum(self.errors.values())


@dataclass(frozen=True)
class AccountingSnapshot:
    """Totals at one instant.

    ``requests``: requests the chain received; ``answered``: of those, answered by some provider;
    ``failed``: ended in AllProvidersFailed; ``fallbacks``: answered by a provider other than the
    first; ``extractive``: answered extractively (offline); ``providers``: per provider name.
    """

    requests: int
    answered: int
    failed: int
    fallbacks: int
    extractive: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    providers: Mapping[str, ProviderTotals]

    @property
    def errors(self) -> Mapping[str, int]:
        """Failed provider calls by exception class name, over all providers."""
        total: Counter[str] = Counter()
        for totals in self.providers.values():
            total.update(totals.errors)
        return MappingProxyType(dict(total))


class _Mutable:
    """Mutable per-provider counters, guarded by the owning Accounting's lock."""

    __slots__ = (
        "attempts",
        "calls",
        "cost_usd",
        "errors",
        "estimated",
        "input_tokens",
        "latency_s",
        "output_tokens",
        "skipped",
        "successes",
        "unpriced",
    )

    def __init__(self) -> None:
        self.calls = self.successes = self.skipped = self.attempts = 0
        self.input_tokens = self.output_tokens = self.unpriced = self.estimated = 0
        self.cost_usd = self.latency_s = 0.0
        self.errors: Counter[str] = Counter()

    def freeze(self) -> ProviderTotals:
        return ProviderTotals(
            calls=self.calls,
            successes=self.successes,
            errors=MappingProxyType(dict(self.errors)),
            skipped=self.skipped,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            cost_usd=self.cost_usd,
            latency_s=self.latency_s,
            attempts=self.attempts,
            unpriced=self.unpriced,
            estimated=self.estimated,
        )


class Accounting:
    """Running totals, safe to update from many threads.  All ``record_*`` methods are O(1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._providers: dict[str, _Mutable] = {}
        self._requests = self._answered = self._failed = self._fallbacks = self._extractive = 0

    def _provider(self, name: str) -> _Mutable:
        entry = self._providers.get(name)
        if entry is None:
            entry = self._providers[name] = _Mutable()
        return entry

    def record_request(self) -> None:
        """A request entered the chain."""
        with self._lock:
            self._requests += 1

    def record_skip(self, provider: str) -> None:
        """``provider``'s open breaker refused a call (no network call was made)."""
        with self._lock:
            self._provider(provider).skipped += 1

    def record_error(self, provider: str, error: LLMError) -> None:
        """A call to ``provider`` failed with ``error``."""
        with self._lock:
            entry = self._provider(provider)
            entry.calls += 1
            entry.errors[type(error).__name__] += 1

    def record_success(self, response: LLMResponse) -> None:
        """``response.provider`` answered; ``response.fallbacks`` > 0 marks a fallback answer."""
        with self._lock:
            entry = self._provider(response.provider)
            entry.calls += 1
            entry.successes += 1
            entry.input_tokens += response.input_tokens
            entry.output_tokens += response.output_tokens
            entry.cost_usd += response.cost_usd
            entry.latency_s += response.latency_s
            entry.attempts += response.attempts
            entry.unpriced += 0 if response.priced else 1
            entry.estimated += 1 if response.tokens_estimated else 0
            self._answered += 1
            self._fallbacks += 1 if response.fallbacks else 0
            self._extractive += 1 if response.extractive else 0

    def record_failed_request(self) -> None:
        """A request ended with every provider failed."""
        with self._lock:
            self._failed += 1

    def snapshot(self) -> AccountingSnapshot:
        """A consistent, frozen copy of the totals."""
        with self._lock:
            providers = {name: entry.freeze() for name, entry in sorted(self._providers.items())}
            return AccountingSnapshot(
                requests=self._requests,
                answered=self._answered,
                failed=self._failed,
                fallbacks=self._fallbacks,
                extractive=self._extractive,
                input_tokens=sum(p.input_tokens for p in providers.values()),
                output_tokens=sum(p.output_tokens for p in providers.values()),
                cost_usd=sum(p.cost_usd for p in providers.values()),
                providers=MappingProxyType(providers),
            )
