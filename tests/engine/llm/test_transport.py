"""Retry policy (full-jitter back-off), Retry-After parsing, redaction."""

from __future__ import annotations

import random
from email.utils import formatdate

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from engine.llm import RetryPolicy, parse_retry_after, redact
from engine.llm.transport import JsonHttp, safe_url
from engine.llm.types import AuthError, ProviderUnavailable

policies = st.builds(
    lambda base, factor, attempts: RetryPolicy(
        max_attempts=attempts, base_delay_s=base, max_delay_s=base * factor
    ),
    base=st.floats(0.001, 5.0),
    factor=st.floats(1.0, 100.0),
    attempts=st.integers(1, 12),
)


@settings(max_examples=200, deadline=None)
@given(policy=policies, seed=st.integers(0, 2**32 - 1))
def test_backoff_delays_within_full_jitter_bounds(policy: RetryPolicy, seed: int) -> None:
    rng = random.Random(seed)
    for attempt in range(1, 13):
        k = attempt - 1
        bound = min(policy.max_delay_s, policy.base_delay_s * 2**k)
        delay = policy.backoff_s(attempt, rng)
        assert 0.0 <= delay <= bound


@settings(max_examples=50, deadline=None)
@given(policy=policies, seed=st.integers(0, 2**32 - 1))
def test_backoff_reproducible_with_same_seed(policy: RetryPolicy, seed: int) -> None:
    rng1, rng2 = random.Random(seed), random.Random(seed)
    assert [policy.backoff_s(k, rng1) for k in range(1, 9)] == [
        policy.backoff_s(k, rng2) for k in range(1, 9)
    ]


def test_backoff_caps_by_hand() -> None:
    p = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0)
    assert [p.cap_s(k) for k in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert p.cap_s(10_000) == 8.0  # no overflow


def test_full_jitter_is_uniform_over_the_cap() -> None:
    """Mean of U(0, c) is c/2 and its variance c**2/12 (c = 4 for attempt 4 with base 0.5)."""
    p = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0)
    rng = random.Random(7)
    xs = [p.backoff_s(4, rng) for _ in range(20_000)]
    mean = sum(xs) / len(xs)
    var = sum((x - mean) ** 2 for x in xs) / len(xs)
    assert mean == pytest.approx(2.0, abs=0.05)
    assert var == pytest.approx(16 / 12, rel=0.05)
    assert min(xs) >= 0.0 and max(xs) <= 4.0


def test_different_seeds_give_different_delays() -> None:
    p = RetryPolicy()
    r1, r2 = random.Random(1), random.Random(2)
    assert [p.backoff_s(k, r1) for k in range(1, 6)] != [p.backoff_s(k, r2) for k in range(1, 6)]


def test_retry_after_replaces_backoff_and_is_capped() -> None:
    p = RetryPolicy(base_delay_s=0.5, max_delay_s=8.0)
    rng = random.Random(0)
    assert p.delay_s(1, rng, retry_after_s=1.0) == 1.0
    assert p.delay_s(1, rng, retry_after_s=120.0) == 8.0
    assert p.delay_s(1, rng, retry_after_s=0.0) == 0.0


@pytest.mark.parametrize(
    "bad", [{"max_attempts": 0}, {"base_delay_s": -1}, {"base_delay_s": 9, "max_delay_s": 8}]
)
def test_retry_policy_validation(bad: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("1", 1.0),
        ("2.5", 2.5),
        ("  7 ", 7.0),
        ("0", 0.0),
        ("-3", 0.0),
        (formatdate(NOW + 30, usegmt=True), 30.0),
        (formatdate(NOW - 30, usegmt=True), 0.0),  # a date in the past: retry now
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


def test_redact_known_secrets_and_key_like_strings() -> None:
    secret = SecretStr("very-private-value-123")
    text = "key very-private-value-123 and sk-abcdefghijklmnop and sk-ant-api03-XYZxyz123456 stay hidden"
    out = redact(text, [secret, None, "x"])
    assert "very-private-value-123" not in out
    assert "sk-abcdefghijklmnop" not in out and "XYZxyz123456" not in out
    assert out.count("[REDACTED]") == 3
    assert redact("plain text, nothing secret") == "plain text, nothing secret"


def test_safe_url_drops_user_info() -> None:
    assert safe_url("http://user:pw@host:1234/v1") == "http://host:1234/v1"
    assert safe_url("https://api.openai.com/v1") == "https://api.openai.com/v1"


def _failing_http(statuses: list[int], sleeps: list[float], rng_seed: int, attempts: int) -> JsonHttp:
    """A JsonHttp whose server answers ``statuses`` in turn (then 503), on an in-process transport."""
    replies = iter(statuses)

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(replies, 503)
        headers = {"retry-after": "3"} if status == 429 else {}
        return httpx.Response(status, json={"error": {"message": "down"}}, headers=headers)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    policy = RetryPolicy(max_attempts=attempts, base_delay_s=0.5, max_delay_s=8.0)
    return JsonHttp("p", client=client, retry=policy, sleep=sleeps.append, rng=random.Random(rng_seed))


def test_sleeps_draw_one_jitter_per_retry_from_the_seeded_rng() -> None:
    """Three calls that exhaust 3 attempts sleep twice each: caps 0.5 s and 1.0 s (worked out by
    hand from base 0.5), drawn in turn from the same seeded stream, none drawn after a last
    attempt (so the 4th..6th draws of a fresh Random(11) are the second call's)."""
    sleeps: list[float] = []
    http = _failing_http([], sleeps, rng_seed=11, attempts=3)
    for _ in range(3):
        with pytest.raises(ProviderUnavailable) as info:
            http.post_json("http://llm.test/v1", headers={}, body={})
        assert info.value.attempts == 3 and info.value.__context__ is None
    oracle = random.Random(11)
    expected = [oracle.uniform(0.0, cap) for _ in range(3) for cap in (0.5, 1.0)]
    assert sleeps == expected


def test_retry_after_is_slept_and_a_later_success_returns() -> None:
    sleeps: list[float] = []
    http = _failing_http([429, 200], sleeps, rng_seed=0, attempts=3)
    result = http.post_json("http://llm.test/v1", headers={}, body={})
    assert (result.attempts, result.status_code, sleeps) == (2, 200, [3.0])


def test_a_rejected_request_is_not_retried() -> None:
    sleeps: list[float] = []
    http = _failing_http([401], sleeps, rng_seed=0, attempts=3)
    with pytest.raises(AuthError) as info:
        http.post_json("http://llm.test/v1", headers={}, body={})
    assert (info.value.attempts, sleeps, info.value.__context__) == (1, [], None)
