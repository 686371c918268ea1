"""Redaction: credential-named keys, registered secrets and key-shaped strings never reach a span."""

from __future__ import annotations

import pytest

from observability.exporters import InMemoryExporter
from observability.redaction import (
    MASK,
    is_sensitive_key,
    normalise_secrets,
    redact_text,
    redact_url,
    url_secrets,
)
from observability.tracing import Tracer

SECRET = "sk-test-SECRET123"


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("api_key", True),
        ("OPENAI_API_KEY", True),
        ("x-api-key", True),
        ("Authorization", True),
        ("db_password", True),
        ("client_secret", True),
        ("access_token", True),
        ("token", True),
        ("llm.token", True),
        ("tokens_in", False),
        ("prompt_tokens", False),
        ("token_count", False),
        ("max_tokens", False),
        ("llm.tokens.output", False),
        ("task", False),
        ("keyword", False),
    ],
)
def test_sensitive_keys(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_span_attributes_are_redacted_at_record_time(mem: InMemoryExporter) -> None:
    tracer = Tracer([mem], secrets=[SECRET, "hunter2-horse"])
    with tracer.span("s", api_key="plain-visible-key", prompt=f"use {SECRET} now") as s:
        assert s.attributes["api_key"] == MASK and s.attributes["prompt"] == f"use {MASK} now"
        s.set_attribute("nested", {"headers": {"Authorization": "Bearer x"}, "list": ["hunter2-horse", 1]})
        s.set_attribute("unknown_key_shape", "sk-abcdefghijklmnop")
        s.record_error(PermissionError(f"rejected key {SECRET} / hunter2-horse"))
    with tracer.span("tok", tokens_in=12, token_count=3):
        pass
    rec, tok = mem.records
    assert rec.attributes == {
        "api_key": MASK,
        "prompt": f"use {MASK} now",
        "nested": {"headers": {"Authorization": MASK}, "list": [MASK, 1]},
        "unknown_key_shape": MASK,
        "exception.type": "PermissionError",
    }
    assert rec.error == f"PermissionError: rejected key {MASK} / {MASK}"
    assert tok.attributes == {"tokens_in": 12, "token_count": 3}
    assert "SECRET123" not in repr(mem.records) and "hunter2" not in repr(mem.records)


def test_normalise_secrets_ignores_short_and_empty_and_accepts_secretstr_like() -> None:
    class Secretish:
        def get_secret_value(self) -> str:
            return "opaque-value-42"

    secrets = normalise_secrets(["", "ab", None, Secretish()])
    assert secrets == ("opaque-value-42",)
    assert redact_text("ab opaque-value-42", secrets) == f"ab {MASK}"
    assert redact_text("ab opaque-value-42") == "ab opaque-value-42"  # nothing is masked by default
    assert redact_text("overlap", ["overl", "overlap"]) == MASK  # longest secret first


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://admin:s3cretPW@host:9090", "http://admin:**********@host:9090"),
        ("http://admin:@host", "http://admin:**********@host"),
        ("https://glpat-TOKEN123@host/prom", "https://**********@host/prom"),
        (
            "http://host:9090/?access_token=abc123&org=7&api_key=k&X-Auth=z&key=q",
            "http://host:9090/?access_token=**********&org=7&api_key=**********&X-Auth=z&key=**********",
        ),
        ("http://host/?auth=x&sig=y&tokens=5", "http://host/?auth=**********&sig=**********&tokens=5"),
        ("http://host/#access_token=abc", "http://host/#**********"),
        ("http://host:9090/prefix?query=up", "http://host:9090/prefix?query=up"),
        ("http://[::1]:9090", "http://[::1]:9090"),
        ("http://[::1:9090", MASK),  # does not parse: it might hold anything
    ],
)
def test_redact_url_masks_userinfo_token_parameters_and_fragments(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_secrets_are_what_redact_url_masks_raw_and_decoded() -> None:
    url = "http://admin:s3cr%40tPW@host:9090/?token=a%2Bbc&org=7#frag"
    assert set(url_secrets(url)) == {"s3cr%40tPW", "s3cr@tPW", "a%2Bbc", "a+bc", "frag"}
    assert url_secrets("http://TOKEN123@host") == ("TOKEN123",)
    assert url_secrets("http://host:9090") == ()
    # given as secrets, they are masked in any text, e.g. a log line quoting the decoded password
    text = "login as admin with s3cr@tPW failed"
    assert redact_text(text, url_secrets(url)) == f"login as admin with {MASK} failed"
