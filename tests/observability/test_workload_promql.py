"""A real workload through the engine: PromQL's request count and error ratio equal SQLite's."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
import urllib.request

import pytest

from engine.faults import FaultPlan
from engine.workload import LoadConfig, run_load
from observability.promql import PromSource

ROWS = [
    {"query": "24: 4 7 8 8"},
    {"query": "tictactoe: X.O/.X./..O"},
    {"query": "connect4: 4453"},
    {"query": "What is a burn rate?"},
]


def _scalar(url: str, query: str) -> float | None:
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(address, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.mark.slow
def test_promql_agrees_with_sqlite_after_a_workload(prometheus, scraped_engine, tmp_path):
    engine = scraped_engine
    report = run_load(
        engine,
        ROWS,
        LoadConfig(rate=80, duration_s=0.5, concurrency=4, faults=FaultPlan(error=0.25), seed=11),
    )
    engine.telemetry.flush()
    with sqlite3.connect(tmp_path / "arbor.db") as con:
        total, errors = con.execute(
            "select count(*), sum(status = 'error') from requests where status in ('ok', 'error')"
        ).fetchone()
    assert total == report.issued == 40 and errors == report.errors > 0
    deadline = time.monotonic() + 20
    while _scalar(prometheus.url, "sum(mcts_requests_total)") != total:
        assert time.monotonic() < deadline, "Prometheus never scraped the whole workload"
        time.sleep(0.2)
    source = PromSource(prometheus.url)
    assert source.request_count("5m") == total
    assert source.error_ratio("5m") == pytest.approx(errors / total, rel=1e-12)
