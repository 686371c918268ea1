"""Values and errors shared by every LLM provider: messages, requests, responses, usage, exceptions.

All values are frozen dataclasses so a request or response can be logged, cached or handed across
threads without copying.  Token counts are integers; costs are US dollars; latencies are seconds.

Error messages never contain API keys: providers build them from the HTTP status, the exception type
and a short, redacted excerpt of the provider's own error message (see
:func:`engine.llm.transport.redact`).  No exception keeps a reference to the failed ``httpx`` request
(whose headers hold the key) or to a decode error (which quotes the body): errors are raised outside
the ``except`` block, so their ``__cause__`` and ``__context__`` are None.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from engine.config import ConfigError

__all__ = [
    "AllProvidersFailed",
    "AuthError",
    "BadResponse",
    "CircuitOpen",
    "LLMError",
    "LLMRequest",
    "LLMResponse",
    "Message",
    "ProviderFailure",
    "ProviderNotConfigured",
    "ProviderUnavailable",
    "RateLimited",
    "RequestRejected",
    "Role",
    "Usage",
]

Role = Literal["system", "user", "assistant"]
_ROLES: frozenset[str] = frozenset(("system", "user", "assistant"))


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message.  ``role`` is ``"system"``, ``"user"`` or ``"assistant"``.

    Raises ValueError for another role or a non-string content.
    """

    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValueError(f"message role must be one of {sorted(_ROLES)}, got {self.role!r}")
        if not isinstance(self.content, str):
            raise ValueError("message content must be a str")


@dataclass(frozen=True)
class LLMRequest:
    """A completion request, independent of the provider.

    ``messages``: at least one; a list is converted to a tuple.  ``max_tokens``: upper bound on output
    tokens (>= 1).  ``temperature``: 0.0 (deterministic as the provider allows) to 2.0.  ``model``:
    overrides the provider's configured model for this request.  ``metadata``: caller's labels (request
    id, agent, ...) for accounting and tracing; never sent to a provider.

    Raises ValueError when a field is out of range.
    """

    messages: tuple[Message, ...]
    max_tokens: int = 512
    temperature: float = 0.0
    model: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        messages = tuple(self.messages)
        if not messages:
            raise ValueError("a request needs at least one message")
        if not all(isinstance(m, Message) for m in messages):
            raise ValueError("messages must be Message instances")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError("max_tokens must be an int >= 1")
        if not 0.0 <= float(self.temperature) <= 2.0:
            raise ValueError("temperature must be in [0, 2]")
        if self.model is not None and not self.model.strip():
            raise ValueError("model must be None or a non-empty name")
        object.__setattr__(self, "messages", messages)
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @classmethod
    def from_prompt(cls, user: str, *, system: str | None = None, **kwargs: Any) -> LLMRequest:
        """A request of an optional system message and one user message."""
        msgs = ([Message("system", system)] if system is not None else []) + [Message("user", user)]
        return cls(messages=tuple(msgs), **kwargs)

    @property
    def system_text(self) -> str | None:
        """All system messages joined by a blank line, or None when there are none."""
        parts = [m.content for m in self.messages if m.role == "system"]
        return "\n\n".join(parts) if parts else None

    @property
    def chat_messages(self) -> tuple[Message, ...]:
        """The user and assistant messages, in order (the system messages removed)."""
        return tuple(m for m in self.messages if m.role != "system")


@dataclass(frozen=True, slots=True)
class Usage:
    """Token accounting of one or more calls.  ``estimated``: counts are approximations (offline
    tokenizer or a provider that did not report usage), not the provider's billing numbers."""

    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.estimated or other.estimated,
        )


@dataclass(frozen=True, slots=True)
class ProviderFailure:
    """One provider of a fallback chain that did not answer a request.

    ``error_type``: the LLMError class name (``"ProviderUnavailable"``, ``"CircuitOpen"`` when its
    open breaker skipped it, ...); ``message``: the error's secret-free message; ``status_code``: the
    last HTTP status, if any; ``attempts``: HTTP attempts made (0 when skipped).
    """

    provider: str
    error_type: str
    message: str
    status_code: int | None = None
    attempts: int = 0

    @classmethod
    def of(cls, provider: str, error: LLMError) -> ProviderFailure:
        """The failure record of ``error`` raised by (or for) ``provider``."""
        return cls(provider, type(error).__name__, error.message, error.status_code, error.attempts)

    def describe(self) -> str:
        """``"<error type>: <message>"``, e.g. ``"ProviderUnavailable: openai: HTTP 500 from ..."``."""
        return f"{self.error_type}: {self.message}"


@dataclass(frozen=True)
class LLMResponse:
    """A completed answer.

    ``provider``: name of the provider that answered (``"offline"`` when the fallback answered).
    ``model``: the model the provider reports having used.  ``input_tokens``/``output_tokens``: as
    reported by the provider, or approximations when ``tokens_estimated``.  ``cost_usd``: US dollars
    from the price table; 0.0 with ``priced=False`` when the model has no configured price.
    ``latency_s``: wall time of the whole call in seconds, retries and back-off sleeps included.
    ``attempts``: HTTP attempts made (1 = no retry).  ``extractive``: the text was copied from the
    supplied context (offline provider), not generated.  ``finish_reason``: the provider's own value
    (``"stop"``, ``"end_turn"``, ``"length"``, ...) or the offline provider's (``"extractive"``,
    ``"no_context"``, ``"no_match"``).  ``fallbacks``: how many earlier providers of a fallback chain
    failed or were skipped before this one answered; ``failed_providers`` names them in order and
    ``failures`` says how each failed.
    """

    text: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_s: float
    attempts: int = 1
    extractive: bool = False
    finish_reason: str | None = None
    priced: bool = True
    tokens_estimated: bool = False
    fallbacks: int = 0
    failed_providers: tuple[str, ...] = ()
    failures: tuple[ProviderFailure, ...] = ()

    @property
    def usage(self) -> Usage:
        """The token counts as a :class:`Usage`."""
        return Usage(self.input_tokens, self.output_tokens, self.tokens_estimated)


class LLMError(Exception):
    """Base of every LLM failure.

    ``provider``: the provider's name (or None); ``status_code``: the last HTTP status, if any;
    ``attempts``: HTTP attempts made before giving up.  The message never contains a secret.
    """

    def __init__(
        self, message: str, *, provider: str | None = None, status_code: int | None = None, attempts: int = 0
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.attempts = attempts

    @property
    def message(self) -> str:
        """The (secret-free) message."""
        return str(self.args[0]) if self.args else ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r})"


class ProviderUnavailable(LLMError):
    """Network error, timeout or HTTP 5xx, still failing after the retries."""


class RateLimited(LLMError):
    """HTTP 429 after the retries.  ``retry_after_s``: the provider's last Retry-After, in seconds."""

    def __init__(self, message: str, *, retry_after_s: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after_s = retry_after_s


class BadResponse(LLMError):
    """The provider answered 2xx but the body was not JSON or not of the expected shape.  Not retried."""


class AuthError(LLMError):
    """HTTP 401/403 or a missing key: the credentials are wrong.  Never retried."""


class ProviderNotConfigured(AuthError, ConfigError):
    """The chosen provider needs a setting that is not configured (an API key): a configuration
    error, raised when the provider is built, never a runtime failure to fall back from.  The
    message names the missing ``ARBOR_`` variable; ``setting`` holds that name."""

    def __init__(self, message: str, *, setting: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.setting = setting


class RequestRejected(LLMError):
    """Another HTTP 4xx (400, 404, 413, 422, ...): the provider refused this request.  Not retried."""


class CircuitOpen(LLMError):
    """The provider's circuit breaker is open (or its half-open probes are taken): the call was not made.

    ``retry_in_s``: seconds until the breaker lets a probe through (0.0 when half-open and busy).
    """

    def __init__(self, message: str, *, retry_in_s: float = 0.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_in_s = retry_in_s


class AllProvidersFailed(LLMError):
    """Every provider of a fallback chain failed or was skipped.

    ``errors``: ``(provider name, error)`` pairs in chain order.
    """

    def __init__(self, errors: Iterable[tuple[str, LLMError]]) -> None:
        self.errors: tuple[tuple[str, LLMError], ...] = tuple(errors)
        detail = "; ".join(f"{name}: {type(err).__name__}: {err.message}" for name, err in self.errors)
        super().__init__(f"all {len(self.errors)} LLM providers failed ({detail or 'no providers'})")
