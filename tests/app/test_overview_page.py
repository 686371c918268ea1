"""AppTest tests of the Overview page, through the console's router.

Rows are written to the store before the page opens, at ages relative to the wall clock far from
every window edge; the expected tiles are worked out by hand from those rows.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from observability import promql
from observability.promql import render_query
from observability.store import Store
from tests.app.shown import shown
from tests.observability.conftest import free_port
from tests.observability.fake_prometheus import Reply, fake_prometheus, matrix_reply, vector_reply

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


def _chart_titles(at: AppTest) -> list[str]:
    return [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]


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
    assert tiles["Request rate"] == "0.05 req/min"  # 3 in the hour (the store's data goes back 3 days)
    assert tiles["Error rate"] == "33.33%"
    assert tiles["Latency p50"] == "120 ms"  # sorted [80, 120, 400], h = 1
    assert tiles["Latency p95"] == "372 ms"  # h = 1.9: 120 + 0.9 * 280
    assert tiles["Tokens"] == "100" and tiles["Cost"] == "$0.7500"
    assert tiles["MCTS iterations"] == "300"
    charts = _charts(at)
    assert set(charts) == {"request", "error", "latency", "agent"}
    traffic, errors, latency, agents = charts["request"], charts["error"], charts["latency"], charts["agent"]
    assert all("· SQLite" in c["layout"]["title"]["text"] for c in (traffic, errors, latency))
    # 30 s buckets: one request in a bucket is 2 req/min; three requests, one error
    assert traffic["layout"]["yaxis"]["title"]["text"] == "req/min"
    assert sorted(v for v in traffic["data"][0]["y"] if v) == [2.0, 2.0, 2.0]
    assert sorted(v for v in traffic["data"][1]["y"] if v) == [2.0]
    assert sorted(v for v in errors["data"][0]["y"] if v is not None) == [0.0, 0.0, 100.0]
    # p50, p95 and p99 lines (one request per bucket: each line goes through its latency)
    assert [d["name"] for d in latency["data"]] == ["p50", "p95", "p99"]
    for line in latency["data"]:
        assert line["type"] == "scatter" and sorted(v for v in line["y"] if v is not None) == [
            80.0,
            120.0,
            400.0,
        ]
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
    assert len(at.get("plotly_chart")) == 4
    assert all("· SQLite" in t for t in _chart_titles(at)[:3])  # the charts fell back too
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


def _fake_prometheus_route(path: str, params: dict[str, list[str]]) -> Reply:
    """A Prometheus whose data began ten 30 s buckets ago: 3 requests per bucket (30 in all), one
    failed in the last bucket; latencies 50 / 200 / 800 ms at p50 / p95 / p99; 2 hrm and 1 trm
    invocations, 40 tokens in, 10 out, $0.02, 900 MCTS iterations."""
    (query,) = params["query"]
    if path == "/api/v1/query":
        instant = {
            "vector(1)": "1",
            render_query(promql.REQUEST_COUNT_QUERY, "1h"): "30",
            render_query(promql.ERROR_RATIO_QUERY, "1h"): str(1 / 30),
            render_query(promql.LATENCY_QUANTILE_QUERY, "1h", q=0.5): "0.05",
            render_query(promql.LATENCY_QUANTILE_QUERY, "1h", q=0.95): "0.2",
            render_query(promql.LATENCY_QUANTILE_QUERY, "1h", q=0.99): "0.8",
            render_query(promql.COST_QUERY, "1h"): "0.02",
            render_query(promql.ITERATIONS_QUERY, "1h"): "900",
        }
        if query == render_query(promql.FIRST_SAMPLE_QUERY, "1h", res="5s"):
            return vector_reply(({}, repr(float(params["time"][0]) - 300)))
        by_label = {
            render_query(promql.AGENT_MIX_QUERY, "1h"): [({"agent": "hrm"}, "2"), ({"agent": "trm"}, "1")],
            render_query(promql.TOKENS_QUERY, "1h"): [
                ({"direction": "input"}, "40"),
                ({"direction": "output"}, "10"),
            ],
        }
        if query in by_label:
            return vector_reply(*by_label[query])
        return vector_reply(({}, instant[query]))
    start, end, step = float(params["start"][0]), float(params["end"][0]), int(params["step"][0])
    assert step == 30 and round((end - start) / step) + 1 == 120  # 1h in 30 s buckets
    times = [end - step * i for i in range(9, -1, -1)]  # the last ten evaluation times
    ranged = {
        render_query(promql.REQUEST_COUNT_QUERY, "30s"): [(t, "3") for t in times],
        render_query(promql.ERROR_COUNT_QUERY, "30s"): [(times[-1], "1")],
        render_query(promql.LATENCY_QUANTILE_QUERY, "30s", q=0.5): [(t, "0.05") for t in times],
        render_query(promql.LATENCY_QUANTILE_QUERY, "30s", q=0.95): [(t, "0.2") for t in times],
        render_query(promql.LATENCY_QUANTILE_QUERY, "30s", q=0.99): [(t, "0.8") for t in times],
    }
    return matrix_reply(({}, ranged[query]))


def test_prometheus_tiles_and_charts_both_come_from_prometheus(monkeypatch, tmp_path):
    with fake_prometheus() as fake:
        fake.route = _fake_prometheus_route
        at = _open(monkeypatch, tmp_path, rows=True, prometheus_url=fake.url)
        at.radio(key="overview_source").set_value("prometheus").run()
        assert not at.exception, at.exception
        assert any(f"Connected to Prometheus at {fake.url}" in shown(s.value) for s in at.success)
        tiles = _tiles(at)
        # Prometheus' figures, not the store's (which holds 3 requests in the hour)
        assert tiles["Requests"] == "30" and tiles["Error rate"] == "3.33%"
        # 30 requests over the ten buckets with data (300 s): 0.1/s = 6 req/min
        assert tiles["Request rate"] == "6.00 req/min"
        assert (tiles["Latency p50"], tiles["Latency p95"], tiles["Latency p99"]) == (
            "50.0 ms",
            "200 ms",
            "800 ms",
        )
        assert tiles["Tokens"] == "50" and tiles["Cost"] == "$0.0200" and tiles["MCTS iterations"] == "900"
        captions = " ".join(c.value for c in at.caption)
        assert "tiles and charts from **Prometheus**" in captions
        assert "Prometheus has data for the last 5 min of this range only" in captions
        charts = _charts(at)
        traffic, errors, latency = charts["request"], charts["error"], charts["latency"]
        assert all("· Prometheus" in c["layout"]["title"]["text"] for c in (traffic, errors, latency))
        # 3 requests per 30 s bucket = 6 req/min in the last ten buckets, gaps before
        assert traffic["data"][0]["y"] == [None] * 110 + [6.0] * 10
        assert traffic["data"][1]["y"] == [None] * 110 + [0.0] * 9 + [2.0]
        assert errors["data"][0]["y"][-1] == pytest.approx(100 / 3) and errors["data"][0]["y"][-2] == 0.0
        lines = {d["name"]: d["y"] for d in latency["data"]}
        assert lines == {
            "p50": [None] * 110 + [50.0] * 10,
            "p95": [None] * 110 + [200.0] * 10,
            "p99": [None] * 110 + [800.0] * 10,
        }
        assert dict(zip(charts["agent"]["data"][0]["y"], charts["agent"]["data"][0]["x"], strict=True)) == {
            "hrm": 2,
            "trm": 1,
        }
        seen = {r["path"] for r in fake.seen}
    assert seen == {"/api/v1/query", "/api/v1/query_range"}
