"""Price table lookups and cost arithmetic; request/response value types and error messages."""

from __future__ import annotations

import dataclasses

import pytest

from engine.llm import (
    AllProvidersFailed,
    BadResponse,
    Cost,
    LLMProvider,
    LLMRequest,
    LLMResponse,
    Message,
    OfflineProvider,
    Price,
    PriceTable,
    ProviderUnavailable,
    Usage,
    cost_usd,
    make_provider,
)

# --- cost ------------------------------------------------------------------------------------------


def test_cost_by_hand() -> None:
    # gpt-4o-mini: 0.15 USD / 1M input, 0.60 / 1M output -> 1M in + 1M out = 0.75 USD.
    assert cost_usd("gpt-4o-mini", 1_000_000, 1_000_000).usd == pytest.approx(0.75)
    # claude-3-5-haiku: 0.80 / 4.00 -> 2,000 in + 500 out = 0.0016 + 0.002 = 0.0036 USD.
    assert cost_usd("claude-3-5-haiku-latest", 2_000, 500).usd == pytest.approx(0.0036)


def test_prefix_lookup_uses_longest_dash_prefix() -> None:
    assert cost_usd("gpt-4o-mini-2024-07-18", 1, 0).price_key == "gpt-4o-mini"
    assert cost_usd("gpt-4o-2024-08-06", 1, 0).price_key == "gpt-4o"
    assert cost_usd("GPT-4o-Mini", 1, 0).price_key == "gpt-4o-mini"
    assert cost_usd("gpt-4omni", 1, 0).priced is False  # no "-" boundary: not gpt-4o


def test_unknown_model_is_unpriced_not_free() -> None:
    cost = cost_usd("some-new-model", 10_000, 10_000)
    assert cost == Cost(0.0, False, None)


def test_custom_and_free_tables() -> None:
    table = PriceTable({"mine": Price(1.0, 2.0)})
    assert table.cost("mine", 500_000, 250_000).usd == pytest.approx(1.0)
    free = PriceTable.free().cost("anything-local", 10**6, 10**6)
    assert free == Cost(0.0, True, None)
    with pytest.raises(ValueError):
        table.cost("mine", -1, 0)
    with pytest.raises(ValueError):
        Price(-1.0, 0.0)


# --- types -----------------------------------------------------------------------------------------


def test_request_validation_and_immutability() -> None:
    req = LLMRequest(messages=[Message("user", "hi")], metadata={"request_id": "r1"})  # type: ignore[arg-type]
    assert isinstance(req.messages, tuple)
    with pytest.raises(TypeError):
        req.metadata["x"] = 1  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        req.max_tokens = 5  # type: ignore[misc]
    assert hash(req) == hash(LLMRequest(messages=(Message("user", "hi"),)))
    for bad in (
        {"messages": ()},
        {"messages": (Message("user", "x"),), "max_tokens": 0},
        {"messages": (Message("user", "x"),), "temperature": 2.5},
        {"messages": (Message("user", "x"),), "model": " "},
        {"messages": ("not a message",)},
    ):
        with pytest.raises(ValueError):
            LLMRequest(**bad)
    with pytest.raises(ValueError):
        Message("tool", "x")  # type: ignore[arg-type]


def test_request_helpers() -> None:
    req = LLMRequest(
        messages=(
            Message("system", "a"),
            Message("user", "q"),
            Message("system", "b"),
            Message("assistant", "r"),
        )
    )
    assert req.system_text == "a\n\nb"
    assert [m.role for m in req.chat_messages] == ["user", "assistant"]
    assert LLMRequest.from_prompt("q").system_text is None


def test_usage_addition() -> None:
    assert Usage(3, 4) + Usage(1, 2, estimated=True) == Usage(4, 6, True)
    assert Usage(3, 4).total_tokens == 7


def test_response_usage_property() -> None:
    r = LLMResponse("t", "p", "m", 5, 6, 0.0, 0.1, tokens_estimated=True)
    assert r.usage == Usage(5, 6, True)


def test_all_providers_failed_message_names_each() -> None:
    err = AllProvidersFailed(
        [("openai", ProviderUnavailable("HTTP 503", provider="openai")), ("x", BadResponse("not JSON"))]
    )
    assert str(err) == (
        "all 2 LLM providers failed (openai: ProviderUnavailable: HTTP 503; x: BadResponse: not JSON)"
    )
    assert [n for n, _ in err.errors] == ["openai", "x"]


def test_providers_satisfy_protocol() -> None:
    assert isinstance(OfflineProvider(), LLMProvider)
    assert isinstance(make_provider(None, provider="offline"), LLMProvider)
