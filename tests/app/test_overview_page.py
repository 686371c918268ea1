"""AppTest tests of the Overview page, through the console's router.

Rows are written to the store before the page opens, at ages relative to the wall clock far from
every window edge; the expected tiles are worked out by hand from those rows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from observability.store import Store
from tests.app.shown import shown
from tests.observability.conftest import free_port

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
PAGE = "../pages/overview.py"
HOUR, DAY = 3600, 86400


def _rows(now: float) -> dict[str, list[dict]]:
    """Three requests in the last hour (one failed), one invalid, one 2 h old, one 3 days old."""

    def req(rid: str, age: float, status: str, latency: float, **extra: object) -> dict:
        return {"request_id": rid, "ts": now - age, "status": status, "latency_ms": latency, **extra}

    return {
        "requests": [
            req("a", 100, "ok", 120.0, tokens=40, cost_usd=0.5),
            req("b", 200, "ok", 80.0, tokens=60, cost_usd=0.25),
            req("c", 300, "error", 400.0),
            req("d", 500, "invalid", 2.0),
            req("e", 2 * HOUR, "ok", 1000.0, tokens=900),
            req("f", 3 * DAY, "ok", 50.0),
        ],
        "routing_decisions": [
            {"request_id": "a", "step": 0, "agent": "hrm"},
            {"request_id": "a", "step": 1, "agent": "mcts"},
            {"request_id": "b", "step": 0, "agent": "hrm"},
            {"request_id": "e", "step": 0, "agent": "trm"},
        ],
        "mcts_runs": [
            {"run_id": "a-mcts", "request_id": "a", "ts": now - 100, "iterations": 300},
            {"run_id": "e-mcts", "request_id": "e", "ts": now - 2 * HOUR, "iterations": 700},
        ],
    }


def _open(monkeypatch, tmp_path: Path, *, rows: bool, prometheus_url: str | None = None) -> AppTest:
    db = tmp_path / "arbor.db"
    monkeypatch.setenv("ARBOR_DB_PATH", str(db))
    if prometheus_url is None:
        monkeypatch.delenv("ARBOR_PROMETHEUS_URL", raising=False)
    else:
        monkeypatch.setenv("ARBOR_PROMETHEUS_URL", prometheus_url)
    if rows:
        with Store(db, threaded=False) as store:
            for table, table_rows in _rows(time.time()).items():
                store.submit(table, table_rows)
    st.cache_resource.clear()  # settings, engine and Prometheus source follow this test's variables
    st.cache_data.clear()
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _tiles(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _charts(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures by the first word of their title."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {s["layout"]["title"]["text"].split()[0]: s for s in specs}


def test_empty_store_says_how_to_get_data(monkeypatch, tmp_path):
    at = _open(monkeypatch, tmp_path, rows=False)
    assert at.title[0].value == "Overview"
    assert any("No data yet" in i.value and "python -m engine load" in i.value for i in at.info)
    assert not at.metric


def test_last_hour_figures_from_the_store(monkeypatch, tmp_path):
    at = _open(monkeypatch, tmp_path, rows=True)
    assert any("SQLite store at" in shown(s.value) for s in at.success)
    tiles = _tiles(at)
    # last hour: a (120 ms), b (80 ms), c (error, 400 ms); d is invalid and left out
    assert tiles["Requests"] == "3"
    assert tiles["Request rate"] == "3.00 req/h"
    assert tiles["Error rate"] == "33.33%"
    assert tiles["Latency p50"] == "120 ms"  # sorted [80, 120, 400], h = 1
    assert tiles["Latency p95"] == "372 ms"  # h = 1.9: 120 + 0.9 * 280
    assert tiles["Tokens"] == "100" and tiles["Cost"] == "$0.7500"
    assert tiles["MCTS iterations"] == "300"
    charts = _charts(at)
    traffic, latency, agents = charts["requests"], charts["latency"], charts["agent"]
    assert sum(traffic["data"][0]["y"]) == 3 and sum(traffic["data"][1]["y"]) == 1
    assert sorted(v for v in latency["data"][0]["y"] if v is not None) == [80.0, 120.0, 400.0]
    assert dict(zip(agents["data"][0]["y"], agents["data"][0]["x"], strict=True)) == {"hrm": 2, "mcts": 1}


def test_a_longer_range_takes_in_older_requests(monkeypatch, tmp_path):
    at = _open(monkeypatch, tmp_path, rows=True)
    at.button_group(key="overview_preset").set_value("24h").run()
    tiles = _tiles(at)
    assert tiles["Requests"] == "4" and tiles["Error rate"] == "25.00%"
    assert tiles["Tokens"] == "1,000" and tiles["MCTS iterations"] == "1,000"
    at.button_group(key="overview_preset").set_value("7d").run()
    assert _tiles(at)["Requests"] == "5"
    at.button_group(key="overview_preset").set_value("15m").run()
    assert _tiles(at)["Requests"] == "3"


def test_an_empty_range_is_unknown_and_points_to_the_latest_request(monkeypatch, tmp_path):
    db = tmp_path / "arbor.db"
    with Store(db, threaded=False) as store:
        store.submit("requests", {"request_id": "old", "ts": time.time() - 2 * DAY, "latency_ms": 9.0})
    at = _open(monkeypatch, tmp_path, rows=False)
    tiles = _tiles(at)
    assert tiles["Requests"] == "0"
    assert tiles["Error rate"] == tiles["Latency p95"] == tiles["Tokens"] == "—"
    assert any("latest was at" in c.value for c in at.caption)


def test_prometheus_not_configured_falls_back_to_sqlite(monkeypatch, tmp_path):
    at = _open(monkeypatch, tmp_path, rows=True)
    at.radio(key="overview_source").set_value("prometheus").run()
    assert not at.exception
    assert any("not configured" in shown(w.value) and "showing SQLite figures" in w.value for w in at.warning)
    assert _tiles(at)["Requests"] == "3"


def test_unreachable_prometheus_warns_and_shows_sqlite_figures(monkeypatch, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    at = _open(monkeypatch, tmp_path, rows=True, prometheus_url=url)
    at.radio(key="overview_source").set_value("prometheus").run()
    assert not at.exception
    warnings = [shown(w.value) for w in at.warning]
    assert any(f"Prometheus at {url} is unreachable" in w and "showing SQLite figures" in w for w in warnings)
    assert _tiles(at)["Requests"] == "3" and _tiles(at)["Error rate"] == "33.33%"
    assert len(at.get("plotly_chart")) == 3
    at.radio(key="overview_source").set_value("sqlite").run()
    assert not any("showing SQLite figures" in w.value for w in at.warning)  # the sidebar may still warn
    assert any("SQLite store at" in shown(s.value) for s in at.success) and _tiles(at)["Requests"] == "3"


def test_live_refresh_keeps_rendering(monkeypatch, tmp_path):
    at = _open(monkeypatch, tmp_path, rows=True)
    assert at.selectbox(key="overview_interval").disabled
    at.toggle(key="overview_live").set_value(True).run()
    assert not at.exception
    assert not at.selectbox(key="overview_interval").disabled
    assert _tiles(at)["Requests"] == "3"


def test_telemetry_off_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("ARBOR_TELEMETRY", "off")
    at = _open(monkeypatch, tmp_path, rows=False)
    assert any("Telemetry is off" in i.value for i in at.info)
    assert not at.metric
