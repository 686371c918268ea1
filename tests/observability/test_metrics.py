"""Prometheus metrics: recording, exposition of every family, exporter, multiprocess aggregation."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from observability.activity import Activity
from observability.metrics import (
    BUCKETS,
    METRIC_NAMES,
    MULTIPROC_ENV,
    Metrics,
    exporter_registry,
    running_exporters,
    start_exporter,
    stop_exporter,
)

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def metrics() -> Metrics:
    """Metrics on a registry of their own."""
    return Metrics(CollectorRegistry())


def _value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Exposition text -> {(sample name, sorted labels): value}."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _record_one_of_each(m: Metrics) -> None:
    m.observe_request("game24", "ok", 0.2)
    m.observe_verdict("game24", "correct")
    m.observe_agent("hrm", "game24", 0.05, 0.8)
    m.observe_search(100, "completed", 0.05)
    m.observe_llm("offline", 0.01, 10, 5, 0.0, error_type="RateLimited")
    m.observe_rag(0.003, 4)
    with m.track_active("search"):
        pass
    m.observe_routing("rules", "mcts", "router")


# -- recording -----------------------------------------------------------------------------


def test_observe_request_counts_by_task_and_status_and_buckets_latency(metrics: Metrics) -> None:
    metrics.observe_request("game24", "ok", 0.2)
    metrics.observe_request("game24", "ok", 0.7)
    metrics.observe_request("game24", "error", 3.0)
    metrics.observe_request("tictactoe", "ok", 0.0005)
    assert _value(metrics, "mcts_requests_total", task="game24", status="ok") == 2
    assert _value(metrics, "mcts_requests_total", task="game24", status="error") == 1
    assert _value(metrics, "mcts_requests_total", task="tictactoe", status="ok") == 1
    assert _value(metrics, "mcts_request_duration_seconds_count", task="game24") == 3
    assert _value(metrics, "mcts_request_duration_seconds_sum", task="game24") == pytest.approx(3.9)
    # 0.2 s is under the SLO's 0.5 s bucket; 0.7 s and 3 s are not; all three are under +Inf.
    assert _value(metrics, "mcts_request_duration_seconds_bucket", task="game24", le="0.5") == 1
    assert _value(metrics, "mcts_request_duration_seconds_bucket", task="game24", le="1.0") == 2
    assert _value(metrics, "mcts_request_duration_seconds_bucket", task="game24", le="5.0") == 3
    assert _value(metrics, "mcts_request_duration_seconds_bucket", task="game24", le="+Inf") == 3
    assert _value(metrics, "mcts_request_duration_seconds_bucket", task="tictactoe", le="0.001") == 1


def test_observe_verdict_and_agent(metrics: Metrics) -> None:
    for verdict in ("correct", "correct", "incorrect", "unknown"):
        metrics.observe_verdict("game24", verdict)
    assert _value(metrics, "mcts_verdicts_total", task="game24", verdict="correct") == 2
    assert _value(metrics, "mcts_verdicts_total", task="game24", verdict="incorrect") == 1
    assert _value(metrics, "mcts_verdicts_total", task="game24", verdict="unknown") == 1

    metrics.observe_agent("hrm", "game24", 0.04, 0.35)
    metrics.observe_agent("hrm", "tictactoe", 0.06, 1.0)
    assert _value(metrics, "mcts_agent_requests_total", agent="hrm", task="game24") == 1
    assert _value(metrics, "mcts_agent_requests_total", agent="hrm", task="tictactoe") == 1
    assert _value(metrics, "mcts_agent_request_latency_seconds_count", agent="hrm") == 2
    assert _value(metrics, "mcts_agent_request_latency_seconds_sum", agent="hrm") == pytest.approx(0.1)
    # confidences 0.35 and 1.0: one at or below 0.4, both at or below 1.0
    assert _value(metrics, "mcts_agent_confidence_score_bucket", agent="hrm", le="0.3") == 0
    assert _value(metrics, "mcts_agent_confidence_score_bucket", agent="hrm", le="0.4") == 1
    assert _value(metrics, "mcts_agent_confidence_score_bucket", agent="hrm", le="1.0") == 2
    assert _value(metrics, "mcts_agent_confidence_score_sum", agent="hrm") == pytest.approx(1.35)


def test_observe_search_counts_iterations_and_per_iteration_latency(metrics: Metrics) -> None:
    metrics.observe_search(100, "completed", 0.3)  # 3 ms per iteration
    metrics.observe_search(50, "converged", 0.0005)  # 10 µs per iteration
    metrics.observe_search(0, "error", 0.01)  # no iteration: counted as 0, no latency sample
    assert _value(metrics, "mcts_iterations_total", outcome="completed") == 100
    assert _value(metrics, "mcts_iterations_total", outcome="converged") == 50
    assert _value(metrics, "mcts_iterations_total", outcome="error") == 0
    assert _value(metrics, "mcts_iteration_latency_seconds_count") == 2
    assert _value(metrics, "mcts_iteration_latency_seconds_sum") == pytest.approx(0.003 + 0.00001)
    assert _value(metrics, "mcts_iteration_latency_seconds_bucket", le="1e-05") == 1
    assert _value(metrics, "mcts_iteration_latency_seconds_bucket", le="0.0025") == 1
    assert _value(metrics, "mcts_iteration_latency_seconds_bucket", le="0.005") == 2


def test_observe_llm_latency_tokens_cost_and_errors(metrics: Metrics) -> None:
    metrics.observe_llm("openai", 1.2, input_tokens=300, output_tokens=120, cost_usd=0.0042)
    metrics.observe_llm(
        "openai", 0.3, input_tokens=50, output_tokens=0, cost_usd=0.0005, error_type="RateLimited"
    )
    metrics.observe_llm("openai", 0.1, 0, 0, 0.0, error_type="RateLimited")
    assert _value(metrics, "mcts_llm_request_latency_seconds_count", provider="openai") == 3
    assert _value(metrics, "mcts_llm_request_latency_seconds_sum", provider="openai") == pytest.approx(1.6)
    assert _value(metrics, "mcts_llm_tokens_total", provider="openai", direction="input") == 350
    assert _value(metrics, "mcts_llm_tokens_total", provider="openai", direction="output") == 120
    assert _value(metrics, "mcts_llm_cost_usd_total", provider="openai") == pytest.approx(0.0047)
    assert _value(metrics, "mcts_llm_request_errors_total", provider="openai", error_type="RateLimited") == 2


def test_observe_rag_routing_and_active_operations(metrics: Metrics) -> None:
    metrics.observe_rag(0.004, 3)
    metrics.observe_rag(0.02, 0)
    assert _value(metrics, "mcts_rag_queries_total") == 2
    assert _value(metrics, "mcts_rag_retrieval_latency_seconds_count") == 2
    assert _value(metrics, "mcts_rag_retrieval_latency_seconds_bucket", le="0.005") == 1
    assert _value(metrics, "mcts_rag_documents_retrieved_bucket", le="0.0") == 1
    assert _value(metrics, "mcts_rag_documents_retrieved_bucket", le="3.0") == 2
    assert _value(metrics, "mcts_rag_documents_retrieved_sum") == 3

    metrics.observe_routing("gru", "mcts", "router")
    metrics.observe_routing("gru", "mcts", "router")
    metrics.observe_routing("gru", "hrm", "fallback")
    assert (
        _value(metrics, "mcts_routing_decisions_total", router="gru", agent="mcts", reason_kind="router") == 2
    )
    assert (
        _value(metrics, "mcts_routing_decisions_total", router="gru", agent="hrm", reason_kind="fallback")
        == 1
    )

    with metrics.track_active("search"):
        with metrics.track_active("search"):
            assert _value(metrics, "mcts_active_operations", operation="search") == 2
        assert _value(metrics, "mcts_active_operations", operation="search") == 1
    with pytest.raises(RuntimeError), metrics.track_active("search"):
        raise RuntimeError("boom")
    assert _value(metrics, "mcts_active_operations", operation="search") == 0


def test_queries_in_flight_are_read_from_the_activity_or_counted_in_multiprocess_mode(
    metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single process: the gauge reads the activity's count when scraped (nothing per request);
    multiprocess mode (no function gauges there): the activity counts it up and down."""
    activity = Activity()
    metrics.count_in_flight("query", activity)
    with activity.running(), activity.running():
        assert _value(metrics, "mcts_active_operations", operation="query") == 2
    assert _value(metrics, "mcts_active_operations", operation="query") == 0
    import observability.metrics.recorder as recorder

    monkeypatch.setattr(recorder, "multiprocess_active", lambda: True)
    counted = Metrics(CollectorRegistry())
    other = Activity()
    counted.count_in_flight("query", other)
    with other.running():
        assert _value(counted, "mcts_active_operations", operation="query") == 1
        with pytest.raises(RuntimeError), other.running():
            assert _value(counted, "mcts_active_operations", operation="query") == 2
            raise RuntimeError("a failed request still ends")
    assert _value(counted, "mcts_active_operations", operation="query") == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.observe_request("game24", "timeout", 0.1), "status"),
        (lambda m: m.observe_request("", "ok", 0.1), "task"),
        (lambda m: m.observe_request("game24", "ok", -1), "duration"),
        (lambda m: m.observe_request("game24", "ok", float("nan")), "duration"),
        (lambda m: m.observe_verdict("game24", "maybe"), "verdict"),
        (lambda m: m.observe_agent("hrm", "game24", 0.1, 1.2), "confidence"),
        (lambda m: m.observe_agent("hrm", "game24", 0.1, float("nan")), "confidence"),
        (lambda m: m.observe_search(2.5, "completed", 0.1), "iterations"),
        (lambda m: m.observe_search(-1, "completed", 0.1), "iterations"),
        (lambda m: m.observe_llm("openai", 0.1, -5, 0, 0.0), "input_tokens"),
        (lambda m: m.observe_llm("openai", 0.1, 0, 0, float("inf")), "cost_usd"),
        (lambda m: m.observe_rag(0.1, -1), "n_docs"),
        (lambda m: m.observe_routing("rules", "", "router"), "agent"),
    ],
)
def test_bad_input_is_rejected_and_records_nothing(call, message: str, metrics: Metrics) -> None:
    before = generate_latest(metrics.registry)
    with pytest.raises(ValueError, match=message):
        call(metrics)
    assert generate_latest(metrics.registry) == before


def test_every_declared_family_is_emitted_after_one_call_of_each_method(metrics: Metrics) -> None:
    _record_one_of_each(metrics)
    samples = {name for name, _ in _samples(generate_latest(metrics.registry).decode())}
    for name in METRIC_NAMES:
        expected = {f"{name}_bucket", f"{name}_count", f"{name}_sum"} if name in BUCKETS else {name}
        assert expected <= samples, f"{name} not emitted"
    # ... and nothing undeclared is (counters also expose <name>_created, without _total).
    for name in samples:
        base = re.sub(r"_(bucket|count|sum|created)$", "", name)
        assert name in METRIC_NAMES or base in METRIC_NAMES or f"{base}_total" in METRIC_NAMES, name
    assert len(METRIC_NAMES) == len(set(METRIC_NAMES))
    assert all(n == n.lower() and n.startswith("mcts_") for n in METRIC_NAMES)


def test_two_instances_on_their_own_registries_do_not_collide() -> None:
    a, b = Metrics(), Metrics()
    a.observe_request("game24", "ok", 0.1)
    assert a.registry is not b.registry
    assert _value(b, "mcts_requests_total", task="game24", status="ok") is None


# -- exporter ------------------------------------------------------------------------------


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def test_exporter_serves_the_registry_once_per_port_and_port_0_disables(metrics: Metrics) -> None:
    assert start_exporter(0, registry=metrics.registry) is None
    assert metrics.serve(0) is None
    port = free_port()
    try:
        assert start_exporter(port, registry=metrics.registry) == port
        # Idempotent: a second start (a Streamlit rerun) reuses the running server.
        assert start_exporter(port, registry=metrics.registry) == port
        assert metrics.serve(port) == port
        assert running_exporters().count(("127.0.0.1", port)) == 1
        metrics.observe_request("connect4", "error", 0.25)
        samples = _samples(_scrape(port))
        assert samples[("mcts_requests_total", (("status", "error"), ("task", "connect4")))] == 1
    finally:
        assert stop_exporter(port) is True
    assert stop_exporter(port) is False
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        _scrape(port)


def test_exporter_rejects_bad_ports(metrics: Metrics) -> None:
    for port in (-1, 70000, True, "9464"):
        with pytest.raises(ValueError, match="port"):
            start_exporter(port, registry=metrics.registry)  # type: ignore[arg-type]


# -- multiprocess --------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import os, sys
    mode, path, n_ok, n_err = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    from observability.metrics import Metrics, enable_multiprocess
    if mode == "late":
        # The directory becomes known after observability.metrics is imported (at settings time);
        # that package does not import prometheus_client, so enabling it now is still in time.
        enable_multiprocess(path)
    m = Metrics()
    for _ in range(n_ok):
        m.observe_request("game24", "ok", 0.1)
    for _ in range(n_err):
        m.observe_request("game24", "error", 2.0)
    m.observe_llm("offline", 0.01, 7, 3, 0.0)
    if mode == "killed":
        with m.track_active("search"):
            os._exit(0)  # no atexit: the live gauge file stays behind, as after kill -9
    with m.track_active("search"):
        pass
    """
)


def _child(mode: str, directory: Path, n_ok: int, n_err: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if mode != "late":
        env[MULTIPROC_ENV] = str(directory)
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(directory), str(n_ok), str(n_err)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr


def test_multiprocess_mode_sums_the_counters_of_child_processes(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    _child("env", directory, n_ok=3, n_err=1)  # PROMETHEUS_MULTIPROC_DIR set in its environment
    _child("late", directory, n_ok=5, n_err=2)  # enable_multiprocess() after importing the package
    _child("killed", directory, n_ok=1, n_err=0)  # dies inside track_active without cleaning up
    assert len(list(directory.glob("counter_*.db"))) == 3

    port = free_port()
    try:
        assert start_exporter(port, registry=None, multiproc_dir=directory) == port
        samples = _samples(_scrape(port))
    finally:
        stop_exporter(port)
    assert samples[("mcts_requests_total", (("status", "ok"), ("task", "game24")))] == 3 + 5 + 1
    assert samples[("mcts_requests_total", (("status", "error"), ("task", "game24")))] == 1 + 2
    assert samples[("mcts_request_duration_seconds_count", (("task", "game24"),))] == 12
    # 9 requests took 0.1 s (under 0.5 s), 3 took 2 s.
    assert samples[("mcts_request_duration_seconds_bucket", (("le", "0.5"), ("task", "game24")))] == 9
    assert samples[("mcts_request_duration_seconds_sum", (("task", "game24"),))] == pytest.approx(
        9 * 0.1 + 3 * 2.0
    )
    assert samples[("mcts_llm_tokens_total", (("direction", "input"), ("provider", "offline")))] == 21
    # The killed child's "search" operation is not counted as still active.
    assert samples.get(("mcts_active_operations", (("operation", "search"),)), 0.0) == 0
    assert list(directory.glob("gauge_live*")) == []


def test_exporter_registry_single_and_multiprocess(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    registry = CollectorRegistry()
    assert exporter_registry(registry) is registry
    with pytest.raises(ValueError, match="does not exist"):
        exporter_registry(None, tmp_path / "missing")
    # With the environment variable set, the aggregate is served instead of the given registry.
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    served = exporter_registry(registry)
    assert served is not registry
    assert generate_latest(served) == b""
