"""The LLM error-ratio alert (ArborLLMErrorRatioHigh) fires on real engine counts.

Before provider failures were counted, a provider answering HTTP 500 left
``mcts_llm_request_errors_total`` without a series, so the alert could never fire.  Here a real
engine sends freeform queries to an OpenAI provider on a local server that answers every call with
HTTP 500 (one attempt per call, the breaker kept closed), and:

* a real Prometheus scraping the engine's exporter evaluates the shipped rule file: the alert's
  expression for ``provider="openai"`` is 1.0 (every call to openai failed; by hand: the error and
  call counters rise by the same amount, the server's own request count), and the alert becomes
  active (pending: its ``for: 5m`` is not waited out here);
* ``promtool test rules`` replays the per-query counts measured from a real engine run, one query a
  minute, against the same rule file: the alert fires after its 5 minutes, and does not fire when
  only one call in twenty fails (5% < 10%).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from engine import Engine, QueryRequest
from engine.config import load_settings
from observability.metrics import start_exporter, stop_exporter
from tests.engine.llm.helpers import SECRET, Reply, ScriptedServer

from .conftest import PROMTOOL_BIN, RULES_DIR

ALERT = "ArborLLMErrorRatioHigh"
QUERIES = [
    "What does the error budget fast-burn alert mean?",
    "How does UCB1 balance exploration and exploitation?",
    "What is a burn rate?",
]


def _rule() -> tuple[Path, dict]:
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == ALERT:
                    return path, rule
    raise AssertionError(f"{ALERT} is not in {RULES_DIR}")


def _get(url: str, path: str, **params: str) -> dict:
    address = f"{url}{path}?{urllib.parse.urlencode(params)}" if params else f"{url}{path}"
    with urllib.request.urlopen(address, timeout=5) as response:
        return json.load(response)["data"]


def _value(url: str, query: str, **labels: str) -> float | None:
    for item in _get(url, "/api/v1/query", query=query)["result"]:
        if all(item["metric"].get(k) == v for k, v in labels.items()):
            return float(item["value"][1])
    return None


def _wait(what: str, check, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


@pytest.fixture
def failing_server():
    srv = ScriptedServer()
    srv.default = Reply(500, {"error": {"message": "upstream exploded"}})
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def engine(tmp_path, failing_server, monkeypatch):
    for key in list(os.environ):
        if key.upper().startswith("ARBOR_"):
            monkeypatch.delenv(key)
    settings = load_settings(
        db_path=tmp_path / "arbor.db",
        metrics_port=0,
        openai_api_key=SecretStr(SECRET),
        openai_base_url=failing_server.url + "/v1",
        llm_max_attempts=1,
        llm_breaker_failure_threshold=1000,
    )
    e = Engine(settings)
    yield e
    e.close()


def _run(engine: Engine, query: str, seed: int) -> None:
    result = engine.run(QueryRequest(query=query, provider="openai", seed=seed))
    assert (result.provider, result.fallback_from) == ("offline", "openai")
    engine.telemetry.flush()


@pytest.mark.slow
def test_llm_error_ratio_alert_is_active_in_a_real_prometheus(prometheus, engine, failing_server) -> None:
    _, rule = _rule()
    registry = engine.telemetry.metrics.registry
    assert start_exporter(prometheus.exporter_port, registry=registry) == prometheus.exporter_port
    errors = 'sum(mcts_llm_request_errors_total{provider="openai"})'
    try:
        # rate() ignores a series' first sample: let Prometheus see the series before it grows.
        _run(engine, QUERIES[0], 0)
        first = len(failing_server.requests)
        _wait("the first scrape", lambda: _value(prometheus.url, errors) == first)
        for seed, query in enumerate(QUERIES[1:], 1):
            _run(engine, query, seed)
        total = len(failing_server.requests)
        assert total > first
        _wait("the later failures", lambda: _value(prometheus.url, errors) == total)
        calls = 'sum(mcts_llm_request_latency_seconds_count{provider="openai"})'
        assert _value(prometheus.url, calls) == total
        # Every openai call failed: the error ratio of the alert's expression is exactly 1.
        ratio = _value(prometheus.url, rule["expr"], provider="openai")
        assert ratio == pytest.approx(1.0, rel=1e-9)
        assert _value(prometheus.url, rule["expr"], provider="offline") is None  # offline never failed

        def active() -> list[dict]:
            return [
                a
                for a in _get(prometheus.url, "/api/v1/alerts")["alerts"]
                if a["labels"].get("alertname") == ALERT and a["labels"].get("provider") == "openai"
            ]

        (alert,) = _wait(f"{ALERT} to become active", active)
        assert alert["state"] in ("pending", "firing")
        assert float(alert["value"]) == pytest.approx(1.0, rel=1e-9)
    finally:
        stop_exporter(prometheus.exporter_port)


def test_llm_error_ratio_alert_fires_in_promtool_on_counts_from_a_real_run(tmp_path, engine) -> None:
    if not PROMTOOL_BIN.exists():
        pytest.skip(f"{PROMTOOL_BIN} is not installed")
    rule_path, rule = _rule()
    _run(engine, QUERIES[0], 0)
    reg = engine.telemetry.metrics.registry

    def sample(name: str, **labels: str) -> int:
        return int(reg.get_sample_value(name, labels) or 0)

    failed = sample("mcts_llm_request_errors_total", provider="openai", error_type="ProviderUnavailable")
    calls = sample("mcts_llm_request_latency_seconds_count", provider="openai")
    fallback = sample("mcts_llm_request_latency_seconds_count", provider="offline")
    assert failed == calls == fallback > 0  # one query's real counts: every openai call failed

    def series(metric: str, per_minute: int) -> dict:
        return {"series": metric, "values": f"0+{per_minute}x20"}

    errors = 'mcts_llm_request_errors_total{provider="openai",error_type="ProviderUnavailable"}'
    outage = [
        series(errors, failed),
        series('mcts_llm_request_latency_seconds_count{provider="openai"}', calls),
        series('mcts_llm_request_latency_seconds_count{provider="offline"}', fallback),
    ]
    # One failed call in twenty: 5%, under the 10% threshold.
    healthy = [
        series(errors, 1),
        series('mcts_llm_request_latency_seconds_count{provider="openai"}', 20),
    ]
    fired = {
        "exp_labels": {"severity": rule["labels"]["severity"], "provider": "openai"},
        "exp_annotations": {
            "summary": "LLM provider openai fails often",
            "description": "100% of calls to openai failed over 5m (threshold 10%).",
        },
    }
    tests = {
        "rule_files": [str(rule_path)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": outage,
                "alert_rule_test": [
                    {"eval_time": "3m", "alertname": ALERT, "exp_alerts": []},  # for: 5m not yet held
                    {"eval_time": "10m", "alertname": ALERT, "exp_alerts": [fired]},
                ],
            },
            {
                "interval": "1m",
                "input_series": healthy,
                "alert_rule_test": [{"eval_time": "10m", "alertname": ALERT, "exp_alerts": []}],
            },
        ],
    }
    path = tmp_path / "llm_alert_test.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    run = subprocess.run(
        [str(PROMTOOL_BIN), "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
