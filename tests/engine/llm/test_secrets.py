"""API keys never appear in exception messages, reprs or log records, even when a server echoes them."""

from __future__ import annotations

import logging
import os
import traceback
from pathlib import Path

import pytest

from engine.config import load_settings
from engine.llm import (
    AllProvidersFailed,
    AnthropicProvider,
    FallbackChain,
    LLMError,
    LLMRequest,
    OfflineProvider,
    OpenAIProvider,
    RetryPolicy,
    make_provider,
)
from tests.engine.llm.helpers import ANTHROPIC_SECRET, SECRET, Reply

REQUEST = LLMRequest.from_prompt("[1] Keys are secret.\nQuestion: Are keys secret?", system="Be brief.")
KEYS = (SECRET, ANTHROPIC_SECRET)
# A key a server might echo back that does not look like an sk- key: only exact redaction catches it.
ODD_SECRET = "opaque-credential-7Hq2Zr9Lm4"


def echoing_replies(key: str) -> list[Reply]:
    """Every error a server can give, each quoting the key back."""
    return [
        Reply(401, {"error": {"message": f"Incorrect API key provided: {key}"}}),
        Reply(403, f"forbidden for {key}"),
        Reply(400, {"error": {"message": f"bad request from key {key}"}}),
        Reply(429, {"error": f"rate limit for {key}"}, {"Retry-After": "0"}),
        Reply(500, {"detail": f"stack trace mentions {key}"}),
        Reply(200, f"not json {key}".encode()),
        Reply(200, {"unexpected": key}),
    ]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ARBOR_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def providers(base: str, client, sleep):
    common = {"client": client, "sleep": sleep, "retry": RetryPolicy(max_attempts=1)}
    return [
        OpenAIProvider(SECRET, base_url=base + "/v1", **common),
        AnthropicProvider(ANTHROPIC_SECRET, base_url=base, **common),
        OpenAIProvider(ODD_SECRET, base_url=base + "/v1", name="odd", **common),
    ]


def assert_clean(text: str) -> None:
    for key in (*KEYS, ODD_SECRET):
        assert key not in text, f"secret leaked in: {text[:200]}"


def test_no_secret_in_errors_reprs_or_logs(server, client, fake_sleep, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    built = providers(server.url, client, fake_sleep)
    for provider in built:
        key = {"openai": SECRET, "anthropic": ANTHROPIC_SECRET, "odd": ODD_SECRET}[provider.name]
        for reply in echoing_replies(key):
            server.push(reply)
            with pytest.raises(LLMError) as info:
                provider.complete(REQUEST)
            errors.append(info.value)
        # Through a chain too, so the chain's warnings and AllProvidersFailed are covered.
        server.push(Reply(500, {"error": {"message": f"down {key}"}}))
        with pytest.raises(AllProvidersFailed) as info:
            FallbackChain([provider]).complete(REQUEST)
        errors.append(info.value)
        # And a chain that degrades to offline.
        server.push(Reply(401, {"error": {"message": key}}))
        chain = FallbackChain([provider, OfflineProvider()])
        assert chain.complete(REQUEST).provider == "offline"
        assert_clean(repr(chain.accounting.snapshot()))
        assert_clean(repr(chain))

    assert len(errors) == 3 * (7 + 1)
    for err in errors:
        assert_clean(str(err))
        assert_clean(repr(err))
        assert_clean(repr(err.args))
        assert_clean(repr(vars(err)))
        assert_clean("".join(traceback.format_exception(err)))
        # No path from the error to the httpx request (headers hold the key) or a decode error (quotes
        # the body): nothing chained, also inside AllProvidersFailed.
        inner = [e for _, e in err.errors] if isinstance(err, AllProvidersFailed) else []
        for e in (err, *inner):
            assert e.__cause__ is None and e.__context__ is None
            assert_clean(str(e))
    # The redaction happened (the message is still informative, minus the key).
    assert any("[REDACTED]" in str(e) for e in errors)
    for provider in built:
        assert_clean(repr(provider))
        assert_clean(str(provider))
        assert_clean(repr(provider._http))
        assert "**********" in repr(provider)
    for record in caplog.records:
        assert_clean(record.getMessage())
        assert_clean(logging.Formatter("%(message)s %(exc_info)s").format(record))


def test_make_provider_chain_repr_hides_keys(client) -> None:
    settings = load_settings(llm_provider="openai", openai_api_key=SECRET, anthropic_api_key=ANTHROPIC_SECRET)
    chain = make_provider(settings, client=client)
    assert_clean(repr(chain))
    assert_clean(repr(chain.providers))
    assert_clean(repr(chain.breakers))


def test_url_credentials_are_not_shown(server, client, fake_sleep) -> None:
    base = server.url.replace("http://", f"http://user:{ODD_SECRET}@") + "/v1"
    provider = OpenAIProvider(SECRET, base_url=base, client=client, sleep=fake_sleep, retry=RetryPolicy(1))
    server.push(Reply(500, {}))
    with pytest.raises(LLMError) as info:
        provider.complete(REQUEST)
    assert_clean(str(info.value))
    assert_clean(repr(provider))
