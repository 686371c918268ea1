"""The per-attempt timeout is a total deadline: a server that drips a byte every 0.7 s is cut.

httpx's timeouts are per phase and per socket read, so before the deadline an attempt against
:class:`DripServer` lasted as long as the server kept dripping (about 0.7 s x ~300 bytes).  The
test asserts that the client gave up while the server was still dripping (no stopwatch upper bound).
"""

from __future__ import annotations

import time

import httpx
import pytest

from engine.llm import OpenAIProvider, ProviderUnavailable, RetryPolicy
from engine.llm.types import LLMRequest
from tests.engine.llm.helpers import SECRET, DripServer, openai_ok


@pytest.fixture
def drip():
    server = DripServer(interval_s=0.7).start()
    try:
        yield server
    finally:
        server.stop()


def test_slow_drip_is_cut_at_the_total_deadline_of_each_attempt(drip: DripServer) -> None:
    timeout_s = 1.0
    policy = RetryPolicy(max_attempts=2, base_delay_s=0.05, max_delay_s=0.1)
    # Uncut, one attempt would last len(response) * 0.7 s.
    uncut_s = len(drip.response) * drip.interval_s
    bound = policy.worst_case_s(timeout_s)
    assert uncut_s > 20 * bound
    with httpx.Client(trust_env=False) as client:
        provider = OpenAIProvider(
            SECRET, base_url=drip.url + "/v1", timeout_s=timeout_s, retry=policy, client=client
        )
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable) as info:
            provider.complete(LLMRequest.from_prompt("hello"))
        elapsed = time.monotonic() - started
    assert "timed out" in info.value.message and "(total deadline)" in info.value.message
    assert info.value.attempts == 2
    assert drip.connections == 2
    # A deadline cannot fire early: both attempts waited their full budget.
    assert elapsed >= policy.max_attempts * timeout_s
    # No stopwatch for the upper side: a client without a total deadline would have waited for a
    # whole dripped reply; this one gave up while the server was still dripping both.
    assert drip.finished == 0


def test_body_larger_than_the_cap_is_a_bad_response(monkeypatch) -> None:
    import engine.llm.transport as transport
    from engine.llm import BadResponse

    monkeypatch.setattr(transport, "MAX_BODY_BYTES", 100)
    body = openai_ok("x" * 500)
    client = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=body)))
    provider = OpenAIProvider(SECRET, base_url="http://llm.test/v1", client=client)
    with pytest.raises(BadResponse, match="larger than 100 bytes"):
        provider.complete(LLMRequest.from_prompt("hello"))


def test_gzip_body_is_decoded_once() -> None:
    import gzip
    import json

    payload = gzip.compress(json.dumps(openai_ok("compressed answer")).encode())

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=payload, headers={"content-encoding": "gzip", "content-type": "application/json"}
        )

    client = httpx.Client(transport=httpx.MockTransport(handler))
    provider = OpenAIProvider(SECRET, base_url="http://llm.test/v1", client=client)
    assert provider.complete(LLMRequest.from_prompt("hello")).text == "compressed answer"
