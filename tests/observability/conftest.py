"""Fixtures for the observability tests: free loopback ports and a real Prometheus server.

``prometheus`` starts Debian's ``/usr/bin/prometheus`` on a free loopback port with a temporary
config (scrape and rule evaluation every second, scraping the exporter port the test will use,
loading the generated rules of observability/rules) and a temporary TSDB directory; it waits
for ``/-/ready`` and stops the server by its pid afterwards (terminate, then kill).
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

__all__ = ["PROMETHEUS_BIN", "PROMTOOL_BIN", "PrometheusServer", "free_port"]

PROMETHEUS_BIN = Path("/usr/bin/prometheus")
PROMTOOL_BIN = Path("/usr/bin/promtool")
RULES_DIR = Path(__file__).resolve().parents[2] / "observability" / "rules"
READY_TIMEOUT_S = 20.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to 0, read it, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class PrometheusServer:
    """A running test Prometheus: its URL, the exporter port it scrapes, its scrape job."""

    url: str
    exporter_port: int
    job: str
    pid: int
    log_path: Path


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll ``/-/ready`` until Prometheus answers 200; fail with its log if it exits or times out."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"prometheus exited with {process.returncode}:\n{log_path.read_text(errors='replace')}"
            )
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"prometheus not ready after {READY_TIMEOUT_S}s:\n{log_path.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server we started, by its pid: SIGTERM, then SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A real Prometheus on a free loopback port, scraping ``127.0.0.1:<exporter_port>`` every second."""
    if not PROMETHEUS_BIN.exists():
        pytest.skip(f"{PROMETHEUS_BIN} is not installed (make test installs Debian's prometheus)")
    exporter_port = free_port()
    port = free_port()
    job = "arbor"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in sorted(RULES_DIR.glob("*.yml"))],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}]},
        ],
    }
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    data_dir = tmp_path / "tsdb"
    log_path = tmp_path / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                str(PROMETHEUS_BIN),
                f"--config.file={config_path}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_ready(url, process, log_path)
        yield PrometheusServer(
            url=url, exporter_port=exporter_port, job=job, pid=process.pid, log_path=log_path
        )
    finally:
        _stop(process)


@pytest.fixture
def scraped_engine(prometheus: PrometheusServer, tmp_path: Path) -> Iterator[Any]:
    """An :class:`engine.Engine` on ``tmp_path/arbor.db`` (no metrics port of its own) whose
    metrics registry is exported on the port ``prometheus`` scrapes; the exporter is stopped
    afterwards and the engine closed."""
    from engine import Engine
    from engine.config import load_settings
    from observability.metrics import start_exporter, stop_exporter

    engine = Engine(load_settings(db_path=tmp_path / "arbor.db", metrics_port=0))
    registry = engine.telemetry.metrics.registry
    assert start_exporter(prometheus.exporter_port, registry=registry) == prometheus.exporter_port
    try:
        yield engine
    finally:
        stop_exporter(prometheus.exporter_port)
        engine.close()


@pytest.fixture
def mem():
    """An in-memory span exporter."""
    from observability.exporters import InMemoryExporter

    return InMemoryExporter()


@pytest.fixture
def perf():
    """A monotonic clock that moves only when told to (span_helpers.FakePerf)."""
    from tests.observability.span_helpers import FakePerf

    return FakePerf()


@pytest.fixture
def tracer(mem, perf):
    """A tracer on the fake clocks with counting ids, exporting to ``mem``."""
    from observability.tracing import Tracer
    from tests.observability.span_helpers import WALL0, CountingIds

    return Tracer([mem], clock=lambda: WALL0, perf=perf, id_factory=CountingIds())
