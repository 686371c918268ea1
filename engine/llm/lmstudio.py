"""LM Studio provider: its local server speaks the OpenAI Chat Completions wire format.

Default base URL ``http://127.0.0.1:1234/v1`` (``ARBOR_LMSTUDIO_BASE_URL``); no key is required (an
optional one is sent as a Bearer token, for a server behind an authenticating proxy).  Local models
have no per-token charge, so the default price table prices every model at 0 USD (``priced=True``).
If the server reports no usage, token counts are approximations (``tokens_estimated=True``).
"""

from __future__ import annotations

from typing import Any

from engine.llm.cost import PriceTable
from engine.llm.openai import OpenAIProvider

__all__ = ["DEFAULT_LMSTUDIO_BASE_URL", "DEFAULT_LMSTUDIO_MODEL", "LMStudioProvider"]

DEFAULT_LMSTUDIO_BASE_URL = "http://127.0.0.1:1234/v1"
# LM Studio answers with the model that is loaded; this name is what its own examples send.
DEFAULT_LMSTUDIO_MODEL = "local-model"


class LMStudioProvider(OpenAIProvider):
    """LM Studio's OpenAI-compatible server.  Same parameters as
    :class:`~engine.llm.openai.OpenAIProvider`, but ``api_key`` is optional and ``prices`` defaults to
    :meth:`PriceTable.free`."""

    name = "lmstudio"
    default_model = DEFAULT_LMSTUDIO_MODEL
    default_base_url = DEFAULT_LMSTUDIO_BASE_URL
    requires_key = False
    key_setting = ""

    def __init__(self, api_key: Any = None, *, prices: PriceTable | None = None, **kwargs: Any) -> None:
        super().__init__(api_key, prices=prices if prices is not None else PriceTable.free(), **kwargs)
