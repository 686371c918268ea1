"""Common base of the HTTP providers (OpenAI, LM Studio, Anthropic): wiring, pricing, safe repr.

A subclass supplies the wire format: :meth:`RemoteProvider._endpoint`, :meth:`_headers`,
:meth:`_body` and :meth:`_parse`; this class does the POST (with retries, via
:class:`~engine.llm.transport.JsonHttp`), prices the usage and builds the
:class:`~engine.llm.types.LLMResponse`.  The API key is kept as a ``SecretStr`` and read with
``get_secret_value()`` only inside ``_headers``; ``repr()`` shows it masked.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from engine.llm.cost import PriceTable
from engine.llm.text import count_tokens
from engine.llm.transport import DEFAULT_TIMEOUT_S, JsonHttp, RetryPolicy, safe_url
from engine.llm.types import BadResponse, LLMRequest, LLMResponse, ProviderNotConfigured

__all__ = ["ParsedReply", "RemoteProvider", "token_count"]

_MASK = "**********"


@dataclass(frozen=True, slots=True)
class ParsedReply:
    """What a wire format yields from a response body.  Token counts are None when not reported."""

    text: str
    model: str | None
    input_tokens: int | None
    output_tokens: int | None
    finish_reason: str | None


def _as_secret(key: SecretStr | str | None) -> SecretStr | None:
    if key is None:
        return None
    secret = key if isinstance(key, SecretStr) else SecretStr(key)
    return secret if secret.get_secret_value().strip() else None


def token_count(value: Any, field: str, provider: str) -> int:
    """A non-negative int token count from a usage field, else BadResponse."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadResponse(f"{provider}: usage.{field} is not a non-negative integer", provider=provider)
    return value


class RemoteProvider:
    """Base for providers reached over HTTP.  Not used directly.

    ``api_key``: SecretStr (a plain str is wrapped); required unless the class sets ``requires_key =
    False``.  ``model``: default model (a request's ``model`` overrides it).  ``base_url``: without a
    trailing slash.  ``timeout_s``: total time budget of each attempt (connect, send and every read
    together), seconds.  ``retry``, ``client``, ``sleep``, ``clock``, ``wall_clock``, ``rng_seed``:
    see :class:`JsonHttp`.
    ``prices``: price table (default: :data:`engine.llm.cost.DEFAULT_PRICES`, unknown models
    unpriced).  ``name``: provider name in responses, errors and accounting.

    Raises ProviderNotConfigured (an AuthError and a ConfigError) at construction when a required key
    is missing (the message names the setting).
    """

    name: str = "remote"
    default_model: str = ""
    default_base_url: str = ""
    requires_key: bool = True
    key_setting: str = ""

    def __init__(
        self,
        api_key: SecretStr | str | None = None,
        *,
        model: str | None = None,
        base_url: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        client: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng_seed: int = 0,
        rng: random.Random | None = None,
        prices: PriceTable | None = None,
        name: str | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        self._api_key = _as_secret(api_key)
        if self.requires_key and self._api_key is None:
            setting = self.key_setting or "the API key"
            raise ProviderNotConfigured(
                f"{self.name}: no API key configured (set {setting})", provider=self.name, setting=setting
            )
        self.model = (model or self.default_model).strip()
        if not self.model:
            raise ValueError(f"{self.name}: model must be a non-empty name")
        self.base_url = (base_url or self.default_base_url).strip().rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"{self.name}: base_url must be an http:// or https:// URL")
        self.prices = prices if prices is not None else PriceTable()
        self._clock = clock
        self._http = JsonHttp(
            self.name,
            client=client,
            timeout_s=timeout_s,
            retry=retry,
            sleep=sleep,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
            rng_seed=rng_seed,
            secrets=(self._api_key,),
        )

    def __repr__(self) -> str:
        key = f"SecretStr('{_MASK}')" if self._api_key is not None else "None"
        return (
            f"{type(self).__name__}(name={self.name!r}, model={self.model!r}, "
            f"base_url={safe_url(self.base_url)!r}, api_key={key}, timeout_s={self._http.timeout_s:g}, "
            f"retry={self._http.retry!r})"
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy in use."""
        return self._http.retry

    def close(self) -> None:
        """Release the HTTP client if this provider created it."""
        self._http.close()

    # --- the wire format, supplied by subclasses -------------------------------------------------
    def _endpoint(self) -> str:
        raise NotImplementedError

    def _headers(self) -> Mapping[str, str]:
        raise NotImplementedError

    def _body(self, request: LLMRequest, model: str) -> dict[str, Any]:
        raise NotImplementedError

    def _parse(self, data: dict[str, Any]) -> ParsedReply:
        raise NotImplementedError

    # --- the call --------------------------------------------------------------------------------
    def complete(self, request: LLMRequest) -> LLMResponse:
        """POST the request and return the answer.

        Raises ProviderUnavailable, RateLimited, AuthError, RequestRejected or BadResponse (see
        :meth:`JsonHttp.post_json`); BadResponse also when the JSON has an unexpected shape.
        """
        started = self._clock()
        model = request.model or self.model
        body = self._body(request, model)
        result = self._http.post_json(self._endpoint(), headers=self._headers(), body=body)
        reply: ParsedReply | None = None
        try:
            reply = self._parse(result.data)
        except BadResponse as exc:
            exc.attempts = result.attempts
            exc.status_code = result.status_code
            raise
        except (KeyError, IndexError, TypeError, AttributeError, ValueError):
            pass  # raised below, outside the handler, so the error carries no __context__
        if reply is None:
            raise BadResponse(
                f"{self.name}: response JSON does not have the expected shape",
                provider=self.name,
                status_code=result.status_code,
                attempts=result.attempts,
            )
        used_model = reply.model or model
        # A server that reports no usage (some local servers) gets the approximate offline count.
        estimated = reply.input_tokens is None or reply.output_tokens is None
        in_tok = reply.input_tokens
        if in_tok is None:
            in_tok = sum(count_tokens(m.content) for m in request.messages)
        out_tok = reply.output_tokens if reply.output_tokens is not None else count_tokens(reply.text)
        cost = self.prices.cost(used_model, in_tok, out_tok)
        return LLMResponse(
            text=reply.text,
            provider=self.name,
            model=used_model,
            input_tokens=in_tok,
            output_tokens=out_tok,
            cost_usd=cost.usd,
            latency_s=self._clock() - started,
            attempts=result.attempts,
            extractive=False,
            finish_reason=reply.finish_reason,
            priced=cost.priced,
            tokens_estimated=estimated,
        )
