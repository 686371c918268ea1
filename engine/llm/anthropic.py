"""Anthropic Messages API provider.

``POST {base_url}/v1/messages`` with headers ``x-api-key: <key>`` and ``anthropic-version:
2023-06-01``; body ``{"model", "max_tokens", "temperature", "messages", "system"?}`` where the system
messages are joined into the top-level ``system`` string and ``messages`` holds only user/assistant
turns.  The answer is the text of the ``content`` blocks of ``type == "text"`` (joined when there are
several), the usage ``usage.input_tokens`` / ``usage.output_tokens``, the finish reason
``stop_reason`` (``"end_turn"``, ``"max_tokens"``, ...).

``base_url`` is the host root without ``/v1`` (default ``https://api.anthropic.com``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.llm.remote import ParsedReply, RemoteProvider, token_count
from engine.llm.types import BadResponse, LLMRequest, RequestRejected

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_ANTHROPIC_BASE_URL", "DEFAULT_ANTHROPIC_MODEL", "AnthropicProvider"]

DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"
DEFAULT_ANTHROPIC_MODEL = "claude-3-5-haiku-latest"
ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider(RemoteProvider):
    """Anthropic Messages.  ``api_key`` is required (ARBOR_ANTHROPIC_API_KEY); see
    :class:`~engine.llm.remote.RemoteProvider` for the other parameters.

    ``complete`` raises ProviderUnavailable, RateLimited, AuthError, RequestRejected (also, without a
    network call, for a request with no user/assistant message) or BadResponse.
    """

    name = "anthropic"
    default_model = DEFAULT_ANTHROPIC_MODEL
    default_base_url = DEFAULT_ANTHROPIC_BASE_URL
    requires_key = True
    key_setting = "ARBOR_ANTHROPIC_API_KEY"

    def _endpoint(self) -> str:
        return f"{self.base_url}/v1/messages"

    def _headers(self) -> Mapping[str, str]:
        assert self._api_key is not None  # enforced by the constructor
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "anthropic-version": ANTHROPIC_VERSION,
            "x-api-key": self._api_key.get_secret_value(),
        }

    def _body(self, request: LLMRequest, model: str) -> dict[str, Any]:
        turns = request.chat_messages
        if not turns:
            raise RequestRejected(
                f"{self.name}: the Messages API needs at least one user message", provider=self.name
            )
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "temperature": min(request.temperature, 1.0),  # Anthropic accepts 0..1
            "messages": [{"role": m.role, "content": m.content} for m in turns],
        }
        system = request.system_text
        if system is not None:
            body["system"] = system
        return body

    def _parse(self, data: dict[str, Any]) -> ParsedReply:
        content = data.get("content")
        if not isinstance(content, list):
            raise BadResponse(f"{self.name}: response has no content list", provider=self.name)
        texts = [
            block["text"]
            for block in content
            if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str)
        ]
        if not texts:
            raise BadResponse(f"{self.name}: response has no text content block", provider=self.name)
        usage = data.get("usage")
        in_tok = out_tok = None
        if isinstance(usage, dict):
            if usage.get("input_tokens") is not None:
                in_tok = token_count(usage["input_tokens"], "input_tokens", self.name)
            if usage.get("output_tokens") is not None:
                out_tok = token_count(usage["output_tokens"], "output_tokens", self.name)
        model = data.get("model")
        stop = data.get("stop_reason")
        return ParsedReply(
            text="".join(texts),
            model=model if isinstance(model, str) and model else None,
            input_tokens=in_tok,
            output_tokens=out_tok,
            finish_reason=stop if isinstance(stop, str) else None,
        )
