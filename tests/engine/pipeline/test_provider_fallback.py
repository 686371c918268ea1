"""Provider failures are visible everywhere: metrics, spans, the request row, and config errors.

The OpenAI provider points at a local scripted server (tests/engine/llm/helpers.py) that answers
every call with HTTP 500, so each provider call fails and the chain's offline provider answers.
The oracle for "how many provider calls failed" is the server's own count of requests it received
(one attempt per call here), not anything the engine reports.
"""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from pydantic import SecretStr

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.llm import ProviderNotConfigured
from observability.tracing import ERROR_KEY
from tests.engine.llm.helpers import SECRET, Reply, ScriptedServer

QUERY = "What does the error budget fast-burn alert mean and how do I respond?"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    for key in list(os.environ):
        if key.upper().startswith("ARBOR_"):
            monkeypatch.delenv(key)


@pytest.fixture
def server():
    srv = ScriptedServer()
    srv.default = Reply(500, {"error": {"message": "upstream exploded"}})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _engine(tmp_path, server: ScriptedServer, **overrides) -> Engine:
    settings = load_settings(
        db_path=tmp_path / "arbor.db",
        metrics_port=0,
        openai_api_key=SecretStr(SECRET),
        openai_base_url=server.url + "/v1",
        llm_max_attempts=1,
        **overrides,
    )
    return Engine(settings)


def _rows(db, sql):
    with sqlite3.connect(db) as con:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql)]


def _spans(db, name):
    """The spans named ``name``; the error text is kept in the attributes (ERROR_KEY)."""
    rows = _rows(db, f"select status, attributes from spans where name = '{name}'")
    for r in rows:
        r["attributes"] = json.loads(r["attributes"] or "{}")
        r["error"] = r["attributes"].pop(ERROR_KEY, None)
    return rows


def _sample(engine: Engine, name: str, **labels) -> float:
    value = engine.telemetry.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_every_failed_provider_call_is_counted_traced_and_recorded(tmp_path, server) -> None:
    engine = _engine(tmp_path, server, llm_breaker_failure_threshold=1000)
    try:
        result = engine.run(QueryRequest(query=QUERY, provider="openai", seed=1))
        engine.telemetry.flush()
        failed_calls = len(server.requests)
        assert failed_calls >= 2  # HRM and TRM each asked at least once
        # The answer and its record name the provider that answered and the one that failed.
        assert (result.provider, result.fallback_from) == ("offline", "openai")
        assert result.fallback_error.startswith("ProviderUnavailable: openai: HTTP 500")
        (row,) = _rows(tmp_path / "arbor.db", "select * from requests")
        assert (row["status"], row["provider"], row["fallback_from"]) == ("ok", "offline", "openai")
        assert "HTTP 500" in row["fallback_error"] and "upstream exploded" in row["fallback_error"]
        assert SECRET not in json.dumps(row)

        # One llm.call span per provider call: every openai call failed, every offline call answered.
        calls = _spans(tmp_path / "arbor.db", "llm.call")
        openai = [c for c in calls if c["attributes"]["provider"] == "openai"]
        offline = [c for c in calls if c["attributes"]["provider"] == "offline"]
        assert len(openai) == len(offline) == failed_calls and len(calls) == 2 * failed_calls
        for c in openai:
            assert c["status"] == "error" and c["attributes"]["exception.type"] == "ProviderUnavailable"
            assert c["attributes"]["status_code"] == 500 and c["error"].startswith("ProviderUnavailable:")
        assert all(c["status"] == "ok" for c in offline)
        # The whole completion is not shown as a clean one.
        for whole in _spans(tmp_path / "arbor.db", "llm.complete"):
            assert whole["status"] == "error" and whole["attributes"]["fallback_from"] == "openai"
            assert whole["error"].startswith("answered by the offline fallback after openai failed: ")

        labels = {"provider": "openai", "error_type": "ProviderUnavailable"}
        assert _sample(engine, "mcts_llm_request_errors_total", **labels) == failed_calls
        assert _sample(engine, "mcts_llm_request_latency_seconds_count", provider="openai") == failed_calls
        assert _sample(engine, "mcts_llm_request_latency_seconds_count", provider="offline") == failed_calls
        errors = "mcts_llm_request_errors_total"
        assert _sample(engine, errors, provider="offline", error_type="LLMError") == 0
    finally:
        engine.close()


def test_calls_skipped_by_the_open_breaker_count_as_circuit_open_errors(tmp_path, server) -> None:
    # the breaker opens after the first failure: every later call of the request is skipped
    # (how many calls a freeform request makes depends on its answers, so only ">= 2" is assumed)
    engine = _engine(tmp_path, server, llm_breaker_failure_threshold=1)
    try:
        result = engine.run(QueryRequest(query=QUERY, provider="openai", seed=1))
        engine.telemetry.flush()
        total = len(_spans(tmp_path / "arbor.db", "llm.complete"))
        assert len(server.requests) == 1 and total >= 2
        assert result.provider == "offline" and result.fallback_from == "openai"
        errors = "mcts_llm_request_errors_total"
        assert _sample(engine, errors, provider="openai", error_type="ProviderUnavailable") == 1
        assert _sample(engine, errors, provider="openai", error_type="CircuitOpen") == total - 1
        assert _sample(engine, "mcts_llm_request_latency_seconds_count", provider="openai") == total
    finally:
        engine.close()


def test_a_provider_that_answers_is_recorded_without_a_fallback(tmp_path, server) -> None:
    from tests.engine.llm.helpers import openai_ok

    server.default = Reply(200, openai_ok("The fast-burn alert pages the on-call [1]."))
    engine = _engine(tmp_path, server)
    try:
        result = engine.run(QueryRequest(query=QUERY, provider="openai", seed=1))
        engine.telemetry.flush()
        assert (result.provider, result.fallback_from, result.fallback_error) == ("openai", None, None)
        (row,) = _rows(tmp_path / "arbor.db", "select provider, fallback_from from requests")
        assert row == {"provider": "openai", "fallback_from": None}
        assert all(s["status"] == "ok" for s in _spans(tmp_path / "arbor.db", "llm.complete"))
        assert _sample(engine, "mcts_llm_request_errors_total", provider="openai", error_type="LLMError") == 0
    finally:
        engine.close()


@pytest.mark.parametrize("explicit", [True, False])
def test_a_provider_without_its_key_is_a_configuration_error(tmp_path, explicit: bool) -> None:
    settings = load_settings(
        db_path=tmp_path / "arbor.db", metrics_port=0, llm_provider="offline" if explicit else "openai"
    )
    engine = Engine(settings)
    try:
        with pytest.raises(ProviderNotConfigured, match="ARBOR_OPENAI_API_KEY"):
            engine.run(QueryRequest(query=QUERY, provider="openai" if explicit else None, seed=1))
        engine.telemetry.flush()
        (row,) = _rows(tmp_path / "arbor.db", "select status, error, provider from requests")
        assert row["status"] == "invalid" and "ARBOR_OPENAI_API_KEY" in row["error"]
        assert _rows(tmp_path / "arbor.db", "select * from spans where name like 'llm.%'") == []
        # A game task does not use the LLM: the provider choice does not stop it.
        assert engine.run(QueryRequest(query="24: 4 7 8 8", provider="openai", seed=1)).provider == "none"
    finally:
        engine.close()


def test_cli_query_without_the_key_exits_2_naming_the_setting(tmp_path, monkeypatch, capsys) -> None:
    from engine.__main__ import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARBOR_DB_PATH", str(tmp_path / "arbor.db"))
    monkeypatch.setenv("ARBOR_METRICS_PORT", "0")
    with pytest.raises(SystemExit) as info:
        main(["query", "--provider", "openai", QUERY])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "ARBOR_OPENAI_API_KEY" in err and "Traceback" not in err
