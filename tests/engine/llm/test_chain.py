"""Fallback chain with breakers and accounting; make_provider wiring from Settings."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.llm import (
    Accounting,
    AllProvidersFailed,
    AnthropicProvider,
    AuthError,
    BadResponse,
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    FallbackChain,
    LLMRequest,
    LLMResponse,
    OfflineProvider,
    OpenAIProvider,
    ProviderUnavailable,
    RetryPolicy,
    make_provider,
)
from tests.engine.llm.helpers import (
    SECRET,
    FakeClock,
    FakeSleep,
    Reply,
    ScriptedServer,
    anthropic_ok,
    openai_ok,
)

PROMPT = (
    "[1] The Seine flows through Paris. Paris is the capital of France.\n"
    "[2] The Thames flows through London.\n"
    "Question: Which river flows through Paris?"
)
REQUEST = LLMRequest.from_prompt(PROMPT, system="Answer from the passages.")
# By hand: question terms {river, flow, paris}; N = 2 passages; idf = ln(3 / (1 + df)) + 1 gives
# flow 1.0 (in both), paris 1.405.  "The Seine flows through Paris." 2.405, "Paris is the capital of
# France." 1.405 (>= half the best: quoted), "The Thames flows through London." 1.0 (< 1.203: not).
OFFLINE_ANSWER = "The Seine flows through Paris. [1] Paris is the capital of France. [1]"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No ARBOR_* variables or .env from the caller's environment."""
    for key in list(os.environ):
        if key.upper().startswith("ARBOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def openai_chain(server: ScriptedServer, client, sleep: FakeSleep, clock: FakeClock, threshold: int = 3):
    primary = OpenAIProvider(
        SECRET,
        base_url=server.url + "/v1",
        client=client,
        sleep=sleep,
        clock=clock,
        retry=RetryPolicy(max_attempts=2),
    )
    breaker = CircuitBreaker(failure_threshold=threshold, reset_timeout_s=30.0, clock=clock, name="openai")
    return FallbackChain([primary, OfflineProvider()], [breaker, None])


class Failing:
    """A provider that always raises the given error."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error
        self.calls = 0

    def complete(self, request: LLMRequest) -> LLMResponse:
        self.calls += 1
        raise self.error


def test_primary_down_degrades_to_offline_honestly_labelled(server, client, fake_sleep, fake_clock) -> None:
    server.default = Reply(503, {"error": {"message": "overloaded"}})
    chain = openai_chain(server, client, fake_sleep, fake_clock)
    response = chain.complete(REQUEST)
    assert response.provider == "offline"
    assert response.extractive
    assert response.text == OFFLINE_ANSWER
    assert response.fallbacks == 1
    assert response.failed_providers == ("openai",)
    assert response.cost_usd == 0.0
    assert len(server.requests) == 2  # max_attempts=2


def test_breaker_opens_and_later_calls_skip_primary_without_network(
    server, client, fake_sleep, fake_clock
) -> None:
    server.default = Reply(500, {"error": {"message": "down"}})
    chain = openai_chain(server, client, fake_sleep, fake_clock, threshold=3)
    for _ in range(3):
        assert chain.complete(REQUEST).provider == "offline"
    assert chain.breaker("openai").state is BreakerState.OPEN
    assert len(server.requests) == 6  # 3 calls x 2 attempts

    for _ in range(4):
        response = chain.complete(REQUEST)
        assert response.provider == "offline" and response.failed_providers == ("openai",)
    assert len(server.requests) == 6  # skipped: no more requests reached the server

    snap = chain.accounting.snapshot()
    assert snap.requests == 7 and snap.answered == 7 and snap.fallbacks == 7 and snap.failed == 0
    assert snap.extractive == 7
    openai = snap.providers["openai"]
    assert openai.calls == 3 and openai.successes == 0 and openai.skipped == 4
    assert dict(openai.errors) == {"ProviderUnavailable": 3}
    assert snap.providers["offline"].successes == 7
    assert dict(snap.errors) == {"ProviderUnavailable": 3}

    # After the reset timeout one probe goes through; the provider has recovered: the breaker closes.
    server.default = Reply(200, openai_ok("Paris lies on the Seine."))
    fake_clock.advance(30.0)
    response = chain.complete(REQUEST)
    assert response.provider == "openai" and response.fallbacks == 0
    assert chain.breaker("openai").state is BreakerState.CLOSED
    assert len(server.requests) == 7
    snap = chain.accounting.snapshot()
    openai = snap.providers["openai"]
    assert (openai.input_tokens, openai.output_tokens, openai.successes) == (12, 3, 1)
    offline = snap.providers["offline"]
    assert snap.input_tokens == 12 + offline.input_tokens
    assert snap.output_tokens == 3 + offline.output_tokens
    assert snap.cost_usd == pytest.approx(12 * 0.15e-6 + 3 * 0.60e-6)  # offline is free


def test_half_open_probe_failure_reopens(server, client, fake_sleep, fake_clock) -> None:
    server.default = Reply(500, {})
    chain = openai_chain(server, client, fake_sleep, fake_clock, threshold=1)
    chain.complete(REQUEST)
    fake_clock.advance(30.0)
    chain.complete(REQUEST)  # the probe, fails again
    assert chain.breaker("openai").state is BreakerState.OPEN
    assert len(server.requests) == 4
    chain.complete(REQUEST)
    assert len(server.requests) == 4


def test_all_providers_failed_carries_each_error() -> None:
    a = Failing("a", ProviderUnavailable("a: HTTP 503", provider="a"))
    b = Failing("b", BadResponse("b: not JSON", provider="b"))
    chain = FallbackChain([a, b])
    with pytest.raises(AllProvidersFailed) as info:
        chain.complete(REQUEST)
    names = [name for name, _ in info.value.errors]
    kinds = [type(err) for _, err in info.value.errors]
    assert names == ["a", "b"]
    assert kinds == [ProviderUnavailable, BadResponse]
    assert "a: ProviderUnavailable: a: HTTP 503" in str(info.value)
    snap = chain.accounting.snapshot()
    assert snap.failed == 1 and snap.answered == 0


def test_open_breaker_error_is_reported_as_circuit_open(fake_clock: FakeClock) -> None:
    a = Failing("a", ProviderUnavailable("down", provider="a"))
    breaker = CircuitBreaker(failure_threshold=1, clock=fake_clock, name="a")
    chain = FallbackChain([a], {"a": breaker})
    with pytest.raises(AllProvidersFailed):
        chain.complete(REQUEST)
    with pytest.raises(AllProvidersFailed) as info:
        chain.complete(REQUEST)
    assert isinstance(info.value.errors[0][1], CircuitOpen)
    assert a.calls == 1


def test_programming_error_propagates_and_counts_as_breaker_failure(fake_clock: FakeClock) -> None:
    a = Failing("a", KeyError("bug"))
    breaker = CircuitBreaker(failure_threshold=1, clock=fake_clock, name="a")
    chain = FallbackChain([a, OfflineProvider()], [breaker, None])
    with pytest.raises(KeyError):
        chain.complete(REQUEST)
    assert breaker.state is BreakerState.OPEN


def test_chain_validation() -> None:
    with pytest.raises(ValueError):
        FallbackChain([])
    with pytest.raises(ValueError):
        FallbackChain([OfflineProvider(), OfflineProvider()])
    with pytest.raises(ValueError):
        FallbackChain([OfflineProvider()], [None, None])
    with pytest.raises(ValueError):
        FallbackChain([OfflineProvider()], {"nope": CircuitBreaker()})


def test_accounting_is_thread_safe() -> None:
    accounting = Accounting()
    chain = FallbackChain([OfflineProvider()], accounting=accounting)
    per_call = chain.complete(REQUEST)
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(200):
            chain.complete(REQUEST)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = accounting.snapshot()
    assert snap.requests == snap.answered == 1601
    assert snap.input_tokens == 1601 * per_call.input_tokens
    assert snap.output_tokens == 1601 * per_call.output_tokens
    assert snap.providers["offline"].estimated == 1601


# --- make_provider ----------------------------------------------------------------------------------


def test_make_provider_offline_default() -> None:
    chain = make_provider(load_settings())
    assert [p.name for p in chain.providers] == ["offline"]
    assert chain.breakers == (None,)
    response = chain.complete(REQUEST)
    assert response.text == OFFLINE_ANSWER and response.extractive


def test_make_provider_openai_needs_key() -> None:
    with pytest.raises(AuthError, match="ARBOR_OPENAI_API_KEY"):
        make_provider(load_settings(llm_provider="openai"))


def test_make_provider_unknown_name() -> None:
    with pytest.raises(ValueError, match="unknown LLM provider"):
        make_provider(load_settings(), provider="gemini")


def test_make_provider_openai_wiring(server, client, fake_sleep) -> None:
    settings = load_settings(llm_provider="openai", openai_api_key=SECRET, llm_timeout_s=12)
    chain = make_provider(
        settings,
        client=client,
        sleep=fake_sleep,
        openai_base_url=server.url + "/v1",
        breaker_failure_threshold=2,
    )
    assert [p.name for p in chain.providers] == ["openai", "offline"]
    primary = chain.primary
    assert isinstance(primary, OpenAIProvider)
    assert primary._http.timeout_s == 12.0
    assert primary.retry == RetryPolicy(3, 0.5, 8.0)
    assert chain.breakers[0].failure_threshold == 2 and chain.breakers[1] is None

    server.push(Reply(200, openai_ok("ok")))
    assert chain.complete(REQUEST).provider == "openai"
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


def test_make_provider_anthropic_and_lmstudio_against_local_server(server, client, fake_sleep) -> None:
    settings = load_settings(llm_provider="anthropic", anthropic_api_key="ak-local-test-key")
    chain = make_provider(settings, client=client, sleep=fake_sleep, anthropic_base_url=server.url)
    assert isinstance(chain.primary, AnthropicProvider)
    server.push(Reply(200, anthropic_ok("from anthropic")))
    assert chain.complete(REQUEST).text == "from anthropic"

    settings = load_settings(llm_provider="lmstudio", lmstudio_base_url=server.url + "/v1")
    chain = make_provider(settings, client=client, sleep=fake_sleep)
    server.push(Reply(200, openai_ok("from lmstudio")))
    response = chain.complete(REQUEST)
    assert (response.provider, response.text) == ("lmstudio", "from lmstudio")
    assert server.requests[-1].path == "/v1/chat/completions"


def test_make_provider_lmstudio_down_degrades_to_offline(client, fake_sleep) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(llm_provider="lmstudio", lmstudio_base_url=f"http://127.0.0.1:{port}/v1")
    chain = make_provider(settings, client=client, sleep=fake_sleep)
    response = chain.complete(REQUEST)
    assert response.provider == "offline" and response.failed_providers == ("lmstudio",)
    assert response.text == OFFLINE_ANSWER


# --- provider calls: failure records and per-call scopes ----------------------------------------


class _Scope:
    """A call scope recording, per provider call, its name, attributes and the exception leaving it."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def __call__(self, provider: str):
        import contextlib

        record: dict = {"provider": provider, "attributes": {}, "error": None}
        self.calls.append(record)

        class Value:
            def set_attributes(self, **kw) -> None:
                record["attributes"].update(kw)

        @contextlib.contextmanager
        def scope():
            try:
                yield Value()
            except BaseException as exc:
                record["error"] = type(exc).__name__
                raise

        return scope()


def test_fallback_answer_records_each_failure_and_each_call_gets_a_scope(
    server, client, fake_sleep, fake_clock
) -> None:
    server.push(Reply(500, {"error": {"message": "boom"}}), Reply(500, {"error": {"message": "boom again"}}))
    chain = openai_chain(server, client, fake_sleep, fake_clock)
    scope = _Scope()
    response = chain.complete(REQUEST, call_scope=scope)
    assert response.provider == "offline" and response.text == OFFLINE_ANSWER
    (failure,) = response.failures
    assert (failure.provider, failure.error_type, failure.status_code, failure.attempts) == (
        "openai",
        "ProviderUnavailable",
        500,
        2,
    )
    assert "HTTP 500" in failure.message and "boom again" in failure.message  # the last attempt's
    assert failure.describe().startswith("ProviderUnavailable: openai: HTTP 500")
    assert [c["provider"] for c in scope.calls] == ["openai", "offline"]
    assert scope.calls[0]["error"] == "ProviderUnavailable"
    assert scope.calls[0]["attributes"] == {"skipped": False, "attempts": 2, "status_code": 500}
    assert scope.calls[1]["error"] is None and scope.calls[1]["attributes"]["extractive"] is True


def test_a_skip_by_an_open_breaker_is_a_failed_call_scope_without_a_request(
    server, client, fake_sleep, fake_clock
) -> None:
    server.default = Reply(503, {"error": {"message": "down"}})
    chain = openai_chain(server, client, fake_sleep, fake_clock, threshold=1)
    chain.complete(REQUEST)  # opens the breaker
    seen = len(server.requests)
    scope = _Scope()
    response = chain.complete(REQUEST, call_scope=scope)
    assert len(server.requests) == seen  # no network call
    assert [f.error_type for f in response.failures] == ["CircuitOpen"]
    assert response.failures[0].attempts == 0
    assert scope.calls[0]["error"] == "CircuitOpen" and scope.calls[0]["attributes"]["skipped"] is True


def test_a_bug_in_a_provider_leaves_its_scope_as_an_error_and_propagates() -> None:
    class Buggy:
        name = "buggy"

        def complete(self, request):
            raise ZeroDivisionError("bug")

    scope = _Scope()
    with pytest.raises(ZeroDivisionError):
        FallbackChain([Buggy(), OfflineProvider()]).complete(REQUEST, call_scope=scope)
    assert [(c["provider"], c["error"]) for c in scope.calls] == [("buggy", "ZeroDivisionError")]


def test_missing_key_is_a_named_configuration_error() -> None:
    from engine.config import ConfigError
    from engine.llm import ProviderNotConfigured

    settings = load_settings(llm_provider="openai")
    with pytest.raises(ProviderNotConfigured) as info:
        make_provider(settings)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, AuthError)
    assert info.value.setting == "ARBOR_OPENAI_API_KEY" and "ARBOR_OPENAI_API_KEY" in str(info.value)
