"""PromQL queries of the console against a real Prometheus scraping a real exporter.

Expected values are worked out by hand from what the test records, never read back from the
code under test.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from observability import promql
from observability.metrics import BUCKETS, METRIC_NAMES, Metrics, start_exporter, stop_exporter
from observability.promql import PromSource, PromSourceError, SourceStatus, render_query

from .conftest import PROMTOOL_BIN, PrometheusServer, free_port

SCRAPE_WAIT_S = 15.0
Scraped = tuple[PrometheusServer, Metrics]


def _instant(url: str, query: str) -> list[dict]:
    """Raw instant query over HTTP (independent of PromSource)."""
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(address, timeout=5) as response:
        return json.load(response)["data"]["result"]


def _wait_for(url: str, query: str, expected: float) -> None:
    """Poll until ``query`` returns exactly ``expected`` (i.e. Prometheus has scraped it); bounded."""
    deadline = time.monotonic() + SCRAPE_WAIT_S
    last: list[dict] = []
    while time.monotonic() < deadline:
        last = _instant(url, query)
        if last and float(last[0]["value"][1]) == expected:
            return
        time.sleep(0.2)
    pytest.fail(f"{query} did not reach {expected} within {SCRAPE_WAIT_S}s (last: {last})")


@pytest.fixture
def scraped(prometheus: PrometheusServer) -> Iterator[Scraped]:
    """Metrics on a fresh registry, served on the port the test Prometheus scrapes."""
    metrics = Metrics(CollectorRegistry())
    assert start_exporter(prometheus.exporter_port, registry=metrics.registry) == prometheus.exporter_port
    try:
        yield prometheus, metrics
    finally:
        stop_exporter(prometheus.exporter_port)


@pytest.mark.slow
def test_counts_and_ratios_from_promql_equal_what_was_recorded(scraped: Scraped) -> None:
    server, metrics = scraped
    # First batch: 12 game24 requests (2 failed) and 8 tictactoe (1 failed): 20 requests, 3 errors.
    for task, status, n in (("game24", "ok", 10), ("game24", "error", 2), ("tictactoe", "ok", 7)):
        for _ in range(n):
            metrics.observe_request(task, status, 0.01)
    metrics.observe_request("tictactoe", "error", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 20)

    source = PromSource(server.url)
    assert source.status() == SourceStatus(True, f"connected to Prometheus at {server.url}")
    assert source.request_count("5m") == 20
    assert source.error_ratio("5m") == pytest.approx(3 / 20, rel=1e-12)

    # Second batch on series that already exist, plus a new one: 10 more requests, 2 of them errors.
    for _ in range(6):
        metrics.observe_request("game24", "ok", 0.01)
    for _ in range(2):
        metrics.observe_request("game24", "error", 0.01)
    for _ in range(2):
        metrics.observe_request("connect4", "ok", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 30)
    assert source.request_count("5m") == 30
    assert source.error_ratio("5m") == pytest.approx(5 / 30, rel=1e-12)

    rate = source.request_rate("5m")
    assert rate is not None and rate > 0
    # Every request took 10 ms, in bucket (5 ms, 10 ms]: the median interpolates to 7.5 ms.
    assert source.latency_quantile(0.5, "5m") == pytest.approx(0.0075, rel=1e-9)


@pytest.mark.slow
def test_agent_mix_tokens_cost_and_iterations(scraped: Scraped) -> None:
    server, metrics = scraped
    for agent, n in (("hrm", 3), ("trm", 2), ("mcts", 1)):
        for _ in range(n):
            metrics.observe_agent(agent, "game24", 0.02, 0.5)
    metrics.observe_llm("offline", 0.001, input_tokens=100, output_tokens=40, cost_usd=0.25)
    metrics.observe_llm(
        "offline", 0.001, input_tokens=20, output_tokens=0, cost_usd=0.5, error_type="Timeout"
    )
    metrics.observe_search(300, "completed", 0.3)
    metrics.observe_search(200, "converged", 0.1)
    _wait_for(server.url, "sum(mcts_iterations_total)", 500)
    _wait_for(server.url, "sum(mcts_agent_requests_total)", 6)

    source = PromSource(server.url)
    assert source.agent_mix("5m") == {"hrm": 3, "mcts": 1, "trm": 2}
    assert source.tokens("5m") == {"input": 120, "output": 40}
    assert source.cost_usd("5m") == pytest.approx(0.75, rel=1e-12)
    assert source.iterations("5m") == 500
    # No request recorded: ratio and quantile have no data, they are not 0.
    assert source.error_ratio("5m") is None
    assert source.latency_quantile(0.95, "5m") is None
    assert source.request_count("5m") is None


@pytest.mark.slow
def test_generated_rules_load_and_evaluate_in_prometheus(scraped: Scraped) -> None:
    server, metrics = scraped
    metrics.observe_request("game24", "ok", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 1)
    expected_groups = {"slo-availability", "slo-latency", "slo-quality", "arbor-operational"}
    deadline = time.monotonic() + SCRAPE_WAIT_S
    rules: list[dict] = []
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{server.url}/api/v1/rules", timeout=5) as response:
            groups = json.load(response)["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if {g["name"] for g in groups} == expected_groups and all(r["health"] != "unknown" for r in rules):
            break
        time.sleep(0.2)
    assert {g["name"] for g in groups} == expected_groups
    assert [r["name"] for r in rules if r["health"] != "ok"] == []
    # Requests keep succeeding (the counter grows between scrapes) and none failed: the recorded
    # availability error ratio over 5m is 0 (not NaN, not missing for want of an error series).
    metrics.observe_request("game24", "ok", 0.01)
    _wait_for(server.url, "sum(mcts_requests_total)", 2)
    _wait_for(server.url, 'slo:sli_error:ratio_rate5m{slo="availability"}', 0)
    assert PromSource(server.url).error_ratio("5m") == 0


def test_unreachable_prometheus_is_a_status_not_an_exception() -> None:
    port = free_port()
    source = PromSource(f"http://127.0.0.1:{port}", timeout_s=1)
    started = time.monotonic()
    status = source.status()
    assert time.monotonic() - started < 5
    assert status.ok is False
    assert f"127.0.0.1:{port}" in status.message
    assert "unreachable" in status.message
    with pytest.raises(PromSourceError, match=r"Connection refused|connection failed"):
        source.request_count("5m")


def test_bad_arguments_are_rejected_before_any_request() -> None:
    with pytest.raises(ValueError, match="URL"):
        PromSource("localhost:9090")
    source = PromSource(f"http://127.0.0.1:{free_port()}")
    for window in ("", "5", "5 m", "0m", "1h]) or vector(1", "-5m"):
        with pytest.raises(ValueError, match="window"):
            source.request_count(window)
    for q in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="quantile"):
            source.latency_quantile(q, "5m")


def test_every_metric_in_the_queries_is_declared() -> None:
    assert promql.ALL_QUERIES, "no queries"
    for name, query in promql.ALL_QUERIES.items():
        assert getattr(promql, name) == query
        used = set(re.findall(r"\bmcts_[a-z_]+", query))
        assert used, name
        for metric in used:
            base = re.sub(r"_(bucket|count|sum)$", "", metric)
            assert metric in METRIC_NAMES or base in BUCKETS, f"{name} reads undeclared {metric}"


def test_window_counts_are_exact_with_new_series_and_resets(tmp_path: Path) -> None:
    """The count queries against hand-made series, evaluated by promtool (no server needed).

    At 20m over a 10m window: game24 ok grows 10/min (100); connect4 ok is born at 15m and
    reaches 35 (all 35 count); tictactoe ok resets at 15m, 50 -> 70, then 0 -> 25 (45); game24
    error grows 2/min (20). Total 200, error ratio 20/200. ``increase()`` would get connect4
    wrong (it cannot see the 7 the series was born with).
    """
    if not PROMTOOL_BIN.exists():
        pytest.skip(f"{PROMTOOL_BIN} is not installed")
    series = [
        ('mcts_requests_total{task="game24",status="ok"}', "0+10x20"),
        ('mcts_requests_total{task="connect4",status="ok"}', "_x15 7 10 20 30 35 35"),
        ('mcts_requests_total{task="tictactoe",status="ok"}', "0+5x14 0+5x5"),
        ('mcts_requests_total{task="game24",status="error"}', "0+2x20"),
    ]
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series],
                "promql_expr_test": [
                    {
                        "expr": render_query(promql.REQUEST_COUNT_QUERY, "10m"),
                        "eval_time": "20m",
                        "exp_samples": [{"labels": "{}", "value": 200}],
                    },
                    {
                        "expr": render_query(promql.ERROR_RATIO_QUERY, "10m"),
                        "eval_time": "20m",
                        "exp_samples": [{"labels": "{}", "value": 0.1}],
                    },
                ],
            }
        ],
    }
    path = tmp_path / "window_count_test.yaml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    run = subprocess.run(
        [str(PROMTOOL_BIN), "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout + run.stderr
