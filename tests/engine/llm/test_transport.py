"""Retry policy (full-jitter back-off), Retry-After parsing, redaction."""

from __future__ import annotations

import random
from email.utils import formatdate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from engine.llm import RetryPolicy, parse_retry_after, redact
from engine.llm.transport import safe_url

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
