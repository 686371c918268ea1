"""The metric catalogue is the one declaration: Metrics, docs/metrics.md and the multiprocess
contract follow it; no module state to reset."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from observability.metrics import (
    BUCKETS,
    CATALOGUE,
    METRIC_NAMES,
    MULTIPROC_ENV,
    Metrics,
    MetricSpec,
    catalogue_markdown,
    running_exporters,
    start_exporter,
)

from .conftest import free_port

ROOT = Path(__file__).resolve().parents[2]


def _record_everything(m: Metrics) -> None:
    m.observe_request("game24", "ok", 0.2)
    m.observe_verdict("game24", "correct")
    m.observe_agent("hrm", "game24", 0.05, 0.8)
    m.observe_search(100, "completed", 0.05)
    m.observe_llm("offline", 0.01, 10, 5, 0.0, error_type="RateLimited")
    m.observe_rag(0.003, 4)
    m.observe_routing("gru", "hrm", "router")
    with m.track_active("search"):
        pass


def test_exposition_matches_the_catalogue_row_by_row() -> None:
    """Kind, help, labels and buckets of every emitted family are the catalogue's."""
    metrics = Metrics()
    _record_everything(metrics)
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    for row in CATALOGUE:
        # The parser names counters without their _total suffix.
        family = families[row.name.removesuffix("_total") if row.kind == "counter" else row.name]
        assert family.type == row.kind, row.name
        assert family.documentation == row.help, row.name
        labels = {k for s in family.samples for k in s.labels} - {"le"}
        assert labels == set(row.labels), row.name
        if row.kind == "histogram":
            les = [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
            assert [float(le) for le in dict.fromkeys(les)] == [*row.buckets, float("inf")], row.name
    assert set(metrics.families) == set(METRIC_NAMES)


def test_hand_checked_rows() -> None:
    """A few facts written out by hand, so a wrong catalogue edit cannot pass unnoticed."""
    rows = {row.name: row for row in CATALOGUE}
    assert len(rows) == 17
    assert rows["mcts_requests_total"].labels == ("task", "status")
    assert rows["mcts_active_operations"].kind == "gauge"
    assert rows["mcts_active_operations"].multiprocess_mode == "livesum"
    assert 0.5 in BUCKETS["mcts_request_duration_seconds"]  # the latency SLO's threshold
    assert BUCKETS["mcts_rag_documents_retrieved"] == (0, 1, 2, 3, 5, 8, 10, 20, 50)
    assert set(BUCKETS) == {r.name for r in CATALOGUE if r.kind == "histogram"} and len(BUCKETS) == 7


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "requests_total", "kind": "counter"}, "mcts_"),
        ({"name": "mcts_requests", "kind": "counter"}, "_total"),
        ({"name": "mcts_queue_total", "kind": "gauge"}, "_total"),
        ({"name": "mcts_latency_seconds", "kind": "histogram"}, "buckets"),
        ({"name": "mcts_depth", "kind": "gauge", "buckets": (1.0,)}, "buckets"),
        ({"name": "mcts_latency_seconds", "kind": "histogram", "buckets": (1.0, 0.5)}, "increasing"),
        ({"name": "mcts_x_total", "kind": "counter", "multiprocess_mode": "livesum"}, "gauges only"),
    ],
)
def test_bad_catalogue_rows_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MetricSpec(help="h", **kwargs)


def test_docs_metrics_md_is_the_rendered_catalogue() -> None:
    text = (ROOT / "docs" / "metrics.md").read_text(encoding="utf-8")
    assert text == catalogue_markdown(), "regenerate docs/metrics.md from catalogue_markdown()"
    table = [line for line in text.splitlines() if line.startswith("| `mcts_")]
    assert [line.split("`")[1] for line in table] == list(METRIC_NAMES)
    # Every row has five cells: a '|' inside a help text is escaped.
    assert all(line.replace("\\|", "").count("|") == 6 for line in table)


# -- multiprocess contract -----------------------------------------------------------------


def _python(code: str, env_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    env["PYTHONPATH"] = str(ROOT)
    if env_dir is not None:
        env[MULTIPROC_ENV] = str(env_dir)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_importing_the_metrics_package_does_not_import_prometheus_client() -> None:
    run = _python(
        """
        import sys
        import observability, observability.metrics, observability.slo
        print("prometheus_client" in sys.modules)
        """
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "False"


def test_enable_multiprocess_too_late_is_a_clear_error_not_silent_single_process(tmp_path: Path) -> None:
    run = _python(
        f"""
        import prometheus_client
        from observability.metrics import MultiprocessError, enable_multiprocess
        try:
            enable_multiprocess({str(tmp_path)!r})
        except MultiprocessError as exc:
            print(exc)
        """
    )
    assert run.returncode == 0, run.stderr
    assert "single-process mode" in run.stdout and f"{MULTIPROC_ENV}={tmp_path}" in run.stdout


def test_enable_multiprocess_refuses_a_directory_other_than_the_environment(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    run = _python(
        f"""
        from observability.metrics import MultiprocessError, enable_multiprocess
        print(enable_multiprocess({str(tmp_path / "a")!r}))
        try:
            enable_multiprocess({str(tmp_path / "b")!r})
        except MultiprocessError as exc:
            print("refused:", exc)
        """,
        env_dir=tmp_path / "a",
    )
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.splitlines()
    assert first == str(tmp_path / "a")
    assert second.startswith("refused:") and "same directory" in second
    assert not (tmp_path / "b").exists()


# -- exporter: the running threads are the only record --------------------------------------


def test_exporters_are_found_by_their_threads_and_a_taken_port_is_an_oserror() -> None:
    metrics = Metrics()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            start_exporter(port, registry=metrics.registry)
        assert ("127.0.0.1", port) not in running_exporters()
    other = free_port()
    run = _python(
        f"""
        from observability.metrics import Metrics, running_exporters, start_exporter, stop_exporter
        import threading
        m = Metrics()
        assert start_exporter({other}, registry=m.registry) == {other}
        assert start_exporter({other}, registry=m.registry) == {other}
        names = [t.name for t in threading.enumerate() if t.name.startswith("metrics-exporter")]
        print(running_exporters(), names)
        print(stop_exporter({other}), running_exporters(), stop_exporter({other}))
        """
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == [
        f"[('127.0.0.1', {other})] ['metrics-exporter 127.0.0.1:{other}']",
        "True [] False",
    ]
