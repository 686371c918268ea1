"""The provider protocol every LLM backend (and the fallback chain) implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from engine.llm.types import LLMRequest, LLMResponse

__all__ = ["LLMProvider"]


@runtime_checkable
class LLMProvider(Protocol):
    """Something that completes an :class:`LLMRequest`.

    ``name``: a short stable identifier (``"openai"``, ``"anthropic"``, ``"lmstudio"``, ``"offline"``,
    ``"chain"``) used in responses, errors, accounting and metrics labels.

    ``complete`` blocks until the answer is ready; implementations must be safe to call from several
    threads at once.  It raises an :class:`engine.llm.types.LLMError` subclass on failure, never a raw
    ``httpx`` exception.
    """

    @property
    def name(self) -> str:
        """The provider's short stable identifier."""
        ...

    def complete(self, request: LLMRequest) -> LLMResponse:
        """Answer ``request``.  Raises LLMError (see :mod:`engine.llm.types`) on failure."""
        ...
