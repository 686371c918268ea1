"""OpenAI Chat Completions provider (also the wire format of LM Studio and other compatible servers).

``POST {base_url}/chat/completions`` with ``Authorization: Bearer <key>`` and a JSON body
``{"model", "messages": [{"role", "content"}...], "max_tokens", "temperature"}``; the answer is
``choices[0].message.content``, the usage ``usage.prompt_tokens`` / ``usage.completion_tokens``, the
finish reason ``choices[0].finish_reason`` (``"stop"``, ``"length"``, ...).  System messages are sent
in place, as ``role: "system"`` messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.llm.remote import ParsedReply, RemoteProvider, token_count
from engine.llm.types import BadResponse, LLMRequest

__all__ = ["DEFAULT_OPENAI_BASE_URL", "DEFAULT_OPENAI_MODEL", "OpenAIProvider"]

DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-4o-mini"


class OpenAIProvider(RemoteProvider):
    """OpenAI Chat Completions.  ``api_key`` is required (ARBOR_OPENAI_API_KEY); see
    :class:`~engine.llm.remote.RemoteProvider` for the other parameters.

    ``complete`` raises ProviderUnavailable, RateLimited, AuthError, RequestRejected or BadResponse.
    """

    name = "openai"
    default_model = DEFAULT_OPENAI_MODEL
    default_base_url = DEFAULT_OPENAI_BASE_URL
    requires_key = True
    key_setting = "ARBOR_OPENAI_API_KEY"

    def _endpoint(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _headers(self) -> Mapping[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
        return headers

    def _body(self, request: LLMRequest, model: str) -> dict[str, Any]:
        return {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }

    def _parse(self, data: dict[str, Any]) -> ParsedReply:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise BadResponse(f"{self.name}: response has no choices", provider=self.name)
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise BadResponse(f"{self.name}: choices[0].message.content is not text", provider=self.name)
        usage = data.get("usage")
        in_tok = out_tok = None
        if isinstance(usage, dict):
            if usage.get("prompt_tokens") is not None:
                in_tok = token_count(usage["prompt_tokens"], "prompt_tokens", self.name)
            if usage.get("completion_tokens") is not None:
                out_tok = token_count(usage["completion_tokens"], "completion_tokens", self.name)
        model = data.get("model")
        finish = choices[0].get("finish_reason")
        return ParsedReply(
            text=content,
            model=model if isinstance(model, str) and model else None,
            input_tokens=in_tok,
            output_tokens=out_tok,
            finish_reason=finish if isinstance(finish, str) else None,
        )
