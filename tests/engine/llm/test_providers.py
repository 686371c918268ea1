"""OpenAI, Anthropic and LM Studio providers against a real local HTTP server speaking their wire format.

Expected values are worked out by hand from the API references and the price table:
gpt-4o-mini costs 0.15 / 0.60 USD per 1M tokens, claude-3-5-haiku 0.80 / 4.00.
"""

from __future__ import annotations

import random
import socket
from email.utils import formatdate

import httpx
import pytest

from engine.llm import (
    AuthError,
    BadResponse,
    LLMRequest,
    Message,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
    RetryPolicy,
)
from tests.engine.llm.helpers import (
    ANTHROPIC_SECRET,
    CASES,
    SECRET,
    FakeSleep,
    ProviderCase,
    Reply,
    ScriptedServer,
    anthropic_ok,
    openai_ok,
)

REQUEST = LLMRequest(
    messages=(
        Message("system", "You are terse."),
        Message("user", "Say hello."),
    ),
    max_tokens=64,
    temperature=0.2,
)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> ProviderCase:
    return request.param


def build(case: ProviderCase, server: ScriptedServer, client: httpx.Client, sleep: FakeSleep, **kw):
    kw.setdefault("retry", RetryPolicy(max_attempts=3, base_delay_s=0.5, max_delay_s=8.0))
    return case.make(server.url, client=client, sleep=sleep, **kw)


# --- success paths: what the server received --------------------------------------------------------


def test_openai_success_request_and_response(server, client, fake_sleep) -> None:
    server.push(Reply(200, openai_ok("Hello there.")))
    provider = build(CASES[0], server, client, fake_sleep)
    response = provider.complete(REQUEST)

    [seen] = server.requests
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {SECRET}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello."},
        ],
        "max_tokens": 64,
        "temperature": 0.2,
    }
    assert response.text == "Hello there."
    assert response.provider == "openai"
    assert response.model == "gpt-4o-mini-2024-07-18"  # as reported by the server
    assert (response.input_tokens, response.output_tokens) == (12, 3)
    assert response.cost_usd == pytest.approx(12 * 0.15e-6 + 3 * 0.60e-6)  # 3.6e-6 USD
    assert response.priced and not response.tokens_estimated
    assert response.finish_reason == "stop"
    assert response.attempts == 1
    assert not response.extractive
    assert fake_sleep.calls == []


def test_openai_request_model_overrides_configured_model(server, client, fake_sleep) -> None:
    server.push(Reply(200, openai_ok(model="gpt-4o")))
    provider = build(CASES[0], server, client, fake_sleep)
    request = LLMRequest.from_prompt("hi", model="gpt-4o")
    response = provider.complete(request)
    assert server.requests[0].json["model"] == "gpt-4o"
    assert response.cost_usd == pytest.approx(12 * 2.50e-6 + 3 * 10.00e-6)


def test_anthropic_success_request_and_response(server, client, fake_sleep) -> None:
    body = anthropic_ok("Hi.")
    body["content"] = [{"type": "tool_use", "id": "t", "name": "x", "input": {}}, *body["content"]]
    server.push(Reply(200, body))
    provider = build(CASES[1], server, client, fake_sleep)
    response = provider.complete(REQUEST)

    [seen] = server.requests
    assert seen.path == "/v1/messages"
    assert seen.headers["x-api-key"] == ANTHROPIC_SECRET
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in seen.headers
    assert seen.json == {
        "model": "claude-3-5-haiku-latest",
        "max_tokens": 64,
        "temperature": 0.2,
        "system": "You are terse.",  # system is top level, not a message
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    assert response.text == "Hi."  # the text block, not the tool_use block
    assert response.provider == "anthropic"
    assert response.model == "claude-3-5-haiku-20241022"
    assert (response.input_tokens, response.output_tokens) == (12, 3)
    assert response.cost_usd == pytest.approx(12 * 0.80e-6 + 3 * 4.00e-6)  # 2.16e-5 USD
    assert response.finish_reason == "end_turn"


def test_anthropic_without_system_message_sends_no_system_field(server, client, fake_sleep) -> None:
    server.push(Reply(200, anthropic_ok()))
    provider = build(CASES[1], server, client, fake_sleep)
    provider.complete(LLMRequest.from_prompt("hi"))
    assert "system" not in server.requests[0].json


def test_lmstudio_success_without_key_and_without_usage(server, client, fake_sleep) -> None:
    server.push(Reply(200, openai_ok("Two words.", model="qwen2.5-7b-instruct", usage=False)))
    provider = build(CASES[2], server, client, fake_sleep)
    response = provider.complete(REQUEST)

    [seen] = server.requests
    assert seen.path == "/v1/chat/completions"
    assert "authorization" not in seen.headers
    assert seen.json["model"] == "local-model"
    assert response.provider == "lmstudio"
    assert response.text == "Two words."
    # No usage reported: approximate counts.  Input "You are terse." = 4 tokens, "Say hello." = 3.
    assert response.tokens_estimated
    assert (response.input_tokens, response.output_tokens) == (7, 3)
    assert response.cost_usd == 0.0 and response.priced  # local model: free, not "unknown"


# --- retries ----------------------------------------------------------------------------------------


def test_429_with_retry_after_then_success(case, server, client, fake_sleep) -> None:
    server.push(Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"}), Reply(200, case.ok()))
    response = build(case, server, client, fake_sleep).complete(REQUEST)
    assert fake_sleep.calls == [1.0]  # exactly the server's Retry-After, no jitter
    assert response.attempts == 2
    assert len(server.requests) == 2


def test_429_retry_after_http_date_and_cap(case, server, client, fake_sleep) -> None:
    now = 1_700_000_000.0
    server.push(
        Reply(429, {}, {"Retry-After": formatdate(now + 3, usegmt=True)}),
        Reply(503, {}, {"Retry-After": "100"}),  # longer than max_delay_s: capped
        Reply(200, case.ok()),
    )
    provider = build(case, server, client, fake_sleep, wall_clock=lambda: now)
    assert provider.complete(REQUEST).attempts == 3
    assert fake_sleep.calls == [3.0, 8.0]


def test_429_always_raises_rate_limited(case, server, client, fake_sleep) -> None:
    server.default = Reply(429, {"error": {"message": "quota"}}, {"Retry-After": "2"})
    with pytest.raises(RateLimited) as info:
        build(case, server, client, fake_sleep).complete(REQUEST)
    assert info.value.retry_after_s == 2.0
    assert info.value.status_code == 429 and info.value.attempts == 3
    assert fake_sleep.calls == [2.0, 2.0]
    assert len(server.requests) == 3


def test_500_twice_then_success(case, server, client, fake_sleep) -> None:
    server.push(Reply(500, {"error": {"message": "boom"}}), Reply(502, "bad gateway"), Reply(200, case.ok()))
    response = build(case, server, client, fake_sleep).complete(REQUEST)
    assert response.attempts == 3
    assert len(server.requests) == 3
    # Full jitter: after attempt k the delay lies in [0, min(8, 0.5 * 2**(k-1))] = [0, 0.5], [0, 1.0].
    assert len(fake_sleep.calls) == 2
    assert 0.0 <= fake_sleep.calls[0] <= 0.5
    assert 0.0 <= fake_sleep.calls[1] <= 1.0


def test_500_always_raises_provider_unavailable_after_max_attempts(case, server, client, fake_sleep) -> None:
    server.default = Reply(500, {"error": {"message": "internal"}})
    with pytest.raises(ProviderUnavailable) as info:
        build(case, server, client, fake_sleep, retry=RetryPolicy(max_attempts=4)).complete(REQUEST)
    assert info.value.status_code == 500
    assert info.value.attempts == 4
    assert len(server.requests) == 4
    assert len(fake_sleep.calls) == 3
    assert "HTTP 500" in str(info.value) and "internal" in str(info.value)


def test_read_timeout_is_retried_then_provider_unavailable(case, server, client, fake_sleep) -> None:
    server.default = Reply(200, case.ok(), delay_s=1.0)  # answers far too late
    provider = build(case, server, client, fake_sleep, timeout_s=0.1, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ProviderUnavailable) as info:
        provider.complete(REQUEST)
    assert "timed out" in str(info.value)
    assert info.value.attempts == 2
    assert len(server.requests) == 2
    assert len(fake_sleep.calls) == 1


def test_connection_refused_is_retried_then_provider_unavailable(case, client, fake_sleep) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = case.make(f"http://127.0.0.1:{port}", client=client, sleep=fake_sleep)
    with pytest.raises(ProviderUnavailable) as info:
        provider.complete(REQUEST)
    assert "ConnectError" in str(info.value)
    assert info.value.attempts == 3
    assert len(fake_sleep.calls) == 2


# --- not retried ------------------------------------------------------------------------------------


def test_malformed_json_is_bad_response_not_retried(case, server, client, fake_sleep) -> None:
    server.default = Reply(200, b'{"choices": [ {"message": ')
    with pytest.raises(BadResponse) as info:
        build(case, server, client, fake_sleep).complete(REQUEST)
    assert "not valid JSON" in str(info.value)
    assert len(server.requests) == 1
    assert fake_sleep.calls == []


@pytest.mark.parametrize(
    "body",
    [
        {"unexpected": True},
        {"choices": [], "content": []},
        {"choices": [{"message": {"content": None}}], "content": [{"type": "image"}]},
        [1, 2, 3],
        {
            "choices": [{"message": {"content": "x"}}],
            "content": [{"type": "text", "text": "x"}],
            "usage": {
                "prompt_tokens": -1,
                "completion_tokens": "3",
                "input_tokens": -1,
                "output_tokens": "3",
            },
        },
    ],
    ids=["no-fields", "empty", "no-text", "not-object", "bad-usage"],
)
def test_unexpected_shape_is_bad_response(case, server, client, fake_sleep, body) -> None:
    server.default = Reply(200, body)
    with pytest.raises(BadResponse) as info:
        build(case, server, client, fake_sleep).complete(REQUEST)
    assert info.value.attempts == 1
    assert len(server.requests) == 1


@pytest.mark.parametrize("status", [401, 403])
def test_auth_error_not_retried(case, server, client, fake_sleep, status) -> None:
    server.default = Reply(status, {"error": {"message": "invalid x-api-key"}})
    with pytest.raises(AuthError) as info:
        build(case, server, client, fake_sleep).complete(REQUEST)
    assert info.value.status_code == status
    assert len(server.requests) == 1
    assert fake_sleep.calls == []


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_rejected_not_retried(case, server, client, fake_sleep, status) -> None:
    server.default = Reply(status, {"error": {"message": "model not found"}})
    with pytest.raises(RequestRejected) as info:
        build(case, server, client, fake_sleep).complete(REQUEST)
    assert "model not found" in str(info.value)
    assert len(server.requests) == 1
    assert fake_sleep.calls == []


def test_missing_key_is_auth_error_at_construction() -> None:
    from engine.llm import AnthropicProvider, OpenAIProvider

    with pytest.raises(AuthError, match="ARBOR_OPENAI_API_KEY"):
        OpenAIProvider(None)
    with pytest.raises(AuthError, match="ARBOR_ANTHROPIC_API_KEY"):
        AnthropicProvider("   ")


def test_anthropic_without_user_message_rejected_without_network(server, client, fake_sleep) -> None:
    provider = build(CASES[1], server, client, fake_sleep)
    with pytest.raises(RequestRejected):
        provider.complete(LLMRequest(messages=(Message("system", "only a system prompt"),)))
    assert server.requests == []


def test_provider_owns_and_closes_its_client_when_none_injected(server, fake_sleep, monkeypatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    server.push(Reply(200, openai_ok()))
    provider = CASES[0].make(server.url, sleep=fake_sleep)
    assert provider.complete(REQUEST).text == "Hello there."
    provider.close()
    assert provider._http._client.is_closed


def test_jitter_is_reproducible_through_the_transport(server, client) -> None:
    """Same rng_seed -> same back-off sleeps; they are the policy's draws from random.Random(seed)."""
    server.default = Reply(500, {})
    policy = RetryPolicy(max_attempts=5, base_delay_s=0.5, max_delay_s=8.0)
    runs = []
    for _ in range(2):
        sleep = FakeSleep()
        provider = CASES[0].make(server.url, client=client, sleep=sleep, rng_seed=42, retry=policy)
        with pytest.raises(ProviderUnavailable):
            provider.complete(REQUEST)
        runs.append(sleep.calls)
    rng = random.Random(42)
    assert runs[0] == runs[1] == [rng.uniform(0.0, cap) for cap in (0.5, 1.0, 2.0, 4.0)]


def test_transport_errors_carry_no_chained_exception(case, client, fake_sleep) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ProviderUnavailable) as info:
        case.make(f"http://127.0.0.1:{port}", client=client, sleep=fake_sleep).complete(REQUEST)
    assert info.value.__context__ is None and info.value.__cause__ is None
