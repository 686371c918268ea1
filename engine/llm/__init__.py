"""LLM providers for the engine: offline (default), OpenAI, Anthropic, LM Studio.

Network providers use httpx with timeouts, retries with exponential back-off and full jitter
(honouring Retry-After), a circuit breaker each, and sit in a :class:`FallbackChain` that ends with
the :class:`OfflineProvider`, so a provider that is down degrades to an extractive offline answer,
labelled as such (``response.provider == "offline"``, ``extractive=True``, ``fallbacks >= 1``).
Token and cost totals accumulate in ``chain.accounting``.  API keys are ``SecretStr`` and appear in
no message, repr or log record.  Never imports streamlit.

Typical use::

    from engine.llm import LLMRequest, make_provider
    llm = make_provider(settings)
    reply = llm.complete(LLMRequest.from_prompt("[1] ...\\nQuestion: ...", system="Answer briefly."))
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from engine.llm.accounting import Accounting, AccountingSnapshot, ProviderTotals
from engine.llm.anthropic import DEFAULT_ANTHROPIC_BASE_URL, DEFAULT_ANTHROPIC_MODEL, AnthropicProvider
from engine.llm.base import LLMProvider
from engine.llm.breaker import BreakerSnapshot, BreakerState, CircuitBreaker
from engine.llm.chain import FallbackChain
from engine.llm.cost import DEFAULT_PRICES, Cost, Price, PriceTable, cost_usd
from engine.llm.lmstudio import DEFAULT_LMSTUDIO_MODEL, LMStudioProvider
from engine.llm.offline import OfflineProvider
from engine.llm.openai import DEFAULT_OPENAI_BASE_URL, DEFAULT_OPENAI_MODEL, OpenAIProvider
from engine.llm.remote import RemoteProvider
from engine.llm.transport import RetryPolicy, parse_retry_after, redact
from engine.llm.types import (
    AllProvidersFailed,
    AuthError,
    BadResponse,
    CircuitOpen,
    LLMError,
    LLMRequest,
    LLMResponse,
    Message,
    ProviderFailure,
    ProviderNotConfigured,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
    Usage,
)

__all__ = [
    "DEFAULT_PRICES",
    "Accounting",
    "AccountingSnapshot",
    "AllProvidersFailed",
    "AnthropicProvider",
    "AuthError",
    "BadResponse",
    "BreakerSnapshot",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "Cost",
    "FallbackChain",
    "LLMError",
    "LLMProvider",
    "LLMRequest",
    "LLMResponse",
    "LMStudioProvider",
    "Message",
    "OfflineProvider",
    "OpenAIProvider",
    "Price",
    "PriceTable",
    "ProviderFailure",
    "ProviderNotConfigured",
    "ProviderTotals",
    "ProviderUnavailable",
    "RateLimited",
    "RemoteProvider",
    "RequestRejected",
    "RetryPolicy",
    "Usage",
    "cost_usd",
    "make_provider",
    "parse_retry_after",
    "redact",
]

_UNSET: Any = object()


def _pick(explicit: Any, settings: Any, field: str, default: Any) -> Any:
    """``explicit`` if given, else ``settings.<field>`` if Settings has that field and it is set, else
    ``default``.  Lets settings added to engine/config.py later take effect without code changes here."""
    if explicit is not _UNSET:
        return explicit
    value = getattr(settings, field, None)
    return default if value is None else value


def make_provider(
    settings: Any = None,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rng_seed: int = 0,
    clock: Callable[[], float] = time.monotonic,
    accounting: Accounting | None = None,
    provider: str | None = None,
    openai_model: str = _UNSET,
    openai_base_url: str = _UNSET,
    anthropic_model: str = _UNSET,
    anthropic_base_url: str = _UNSET,
    lmstudio_model: str = _UNSET,
    max_attempts: int = _UNSET,
    backoff_base_s: float = _UNSET,
    backoff_max_s: float = _UNSET,
    breaker_failure_threshold: int = _UNSET,
    breaker_reset_timeout_s: float = _UNSET,
    breaker_half_open_max_calls: int = _UNSET,
) -> FallbackChain:
    """The configured provider in a :class:`FallbackChain` that falls back to :class:`OfflineProvider`.

    ``settings``: an :class:`engine.config.Settings` (None: :func:`engine.config.load_settings`).
    ``provider`` overrides ``settings.llm_provider`` (e.g. a per-request choice).  For ``"offline"``
    the chain holds only the offline provider (same type and accounting for every configuration).
    The network provider gets a :class:`CircuitBreaker`; the offline provider has none (it cannot be
    down).  ``client``/``sleep``/``rng_seed``/``clock``: injected into the transport (tests).  The
    other keywords default to the same-named Settings field when Settings has one (see the package
    report: these are proposed settings), else to the built-in defaults (3 attempts, 0.5 s base, 8 s
    cap; breaker 5 failures, 30 s, 1 probe).

    Raises ProviderNotConfigured (an AuthError and a ConfigError) when the chosen provider needs a key
    that is not configured (the message names the ARBOR_ variable), ValueError for an unknown
    provider name.
    """
    if settings is None:
        from engine.config import load_settings

        settings = load_settings()
    chosen = (provider or getattr(settings, "llm_provider", "offline") or "offline").strip().lower()
    offline = OfflineProvider(clock=clock)
    if chosen == "offline":
        return FallbackChain([offline], [None], accounting=accounting)

    retry = RetryPolicy(
        max_attempts=_pick(max_attempts, settings, "llm_max_attempts", 3),
        base_delay_s=_pick(backoff_base_s, settings, "llm_backoff_base_s", 0.5),
        max_delay_s=_pick(backoff_max_s, settings, "llm_backoff_max_s", 8.0),
    )
    common: dict[str, Any] = {
        "timeout_s": getattr(settings, "llm_timeout_s", 30.0),
        "retry": retry,
        "client": client,
        "sleep": sleep,
        "clock": clock,
        "rng_seed": rng_seed,
    }
    remote: RemoteProvider
    if chosen == "openai":
        remote = OpenAIProvider(
            getattr(settings, "openai_api_key", None),
            model=_pick(openai_model, settings, "openai_model", DEFAULT_OPENAI_MODEL),
            base_url=_pick(openai_base_url, settings, "openai_base_url", DEFAULT_OPENAI_BASE_URL),
            **common,
        )
    elif chosen == "anthropic":
        remote = AnthropicProvider(
            getattr(settings, "anthropic_api_key", None),
            model=_pick(anthropic_model, settings, "anthropic_model", DEFAULT_ANTHROPIC_MODEL),
            base_url=_pick(anthropic_base_url, settings, "anthropic_base_url", DEFAULT_ANTHROPIC_BASE_URL),
            **common,
        )
    elif chosen == "lmstudio":
        remote = LMStudioProvider(
            None,
            model=_pick(lmstudio_model, settings, "lmstudio_model", DEFAULT_LMSTUDIO_MODEL),
            base_url=getattr(settings, "lmstudio_base_url", None),
            **common,
        )
    else:
        raise ValueError(f"unknown LLM provider {chosen!r} (expected offline, openai, anthropic or lmstudio)")
    breaker = CircuitBreaker(
        failure_threshold=_pick(breaker_failure_threshold, settings, "llm_breaker_failure_threshold", 5),
        reset_timeout_s=_pick(breaker_reset_timeout_s, settings, "llm_breaker_reset_timeout_s", 30.0),
        half_open_max_calls=_pick(
            breaker_half_open_max_calls, settings, "llm_breaker_half_open_max_calls", 1
        ),
        clock=clock,
        name=remote.name,
    )
    return FallbackChain([remote, offline], [breaker, None], accounting=accounting)
