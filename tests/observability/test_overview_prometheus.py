"""The Overview's Prometheus side: the chart grid and step, range queries (what is sent, what a reply
may hold), and a real Prometheus whose tiles must equal independent PromQL instant queries.

Expected values are worked out by hand (grids, steps) or asked of Prometheus directly over HTTP
with urllib (never through the code under test).
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from engine.faults import FaultPlan
from engine.workload import LoadConfig, run_load
from observability import promql
from observability.overview import (
    chart_step,
    load_overview,
    prometheus_grid,
    tiles,
    time_range,
)
from observability.promql import PromSource, PromSourceError, RangeGrid, parse_matrix
from observability.promql.reply import UnusableReply
from tests.observability.fake_prometheus import Reply, fake_prometheus, matrix_reply, vector_reply

# -- the grid ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("range_s", "step"),
    [
        (900, 30),  # 30 points
        (9000, 30),  # 300 points exactly: still 30 s
        (9001, 60),  # 301 points at 30 s: the next step
        (21600, 120),  # 6h: 1 min gives 360, 2 min gives 180
        (2419200, 10800),  # 28d: 2h gives 336, 3h gives 224
        (365 * 86400, 86400),  # a year: 1 day gives 365 > 300, but there is no longer step
    ],
)
def test_chart_step_by_hand(range_s: int, step: int) -> None:
    assert chart_step(range_s) == step
    assert chart_step(range_s, max_points=10**8) == 30


def test_chart_step_rejects_nonsense() -> None:
    for bad in (0, -5):
        with pytest.raises(ValueError):
            chart_step(bad)
    with pytest.raises(ValueError):
        chart_step(3600, max_points=0)


def test_prometheus_grid_by_hand() -> None:
    # now to the millisecond: 1000000.123; 15m in 30 s buckets: 30 points, the first evaluated at
    # the end of the first bucket (until - 900 + 30) and the last at until
    until, grid = prometheus_grid(time_range("15m"), 1_000_000.12345)
    assert until == 1_000_000.123
    assert (grid.step_s, grid.points) == (30, 30)
    assert grid.start == pytest.approx(1_000_000.123 - 870) and grid.end == pytest.approx(until)
    _, grid = prometheus_grid(time_range("28d"), 2_000_000_000.0)
    assert (grid.step_s, grid.points) == (10800, 224)


def test_range_grid_checks_its_values_and_places_times() -> None:
    grid = RangeGrid(start=100.0, step_s=30, points=4)
    assert grid.times == (100.0, 130.0, 160.0, 190.0) and grid.end == 190.0
    assert grid.index(160.0) == 2 and grid.index(160.0004) == 2  # Prometheus' millisecond
    for off in (145.0, 160.01, 70.0, 220.0):
        with pytest.raises(UnusableReply, match="not one of the times asked for"):
            grid.index(off)
    for kwargs in (
        {"step_s": 0},
        {"step_s": 1.5},
        {"step_s": True},
        {"points": 0},
        {"points": 10**6},
        {"start": math.nan},
    ):
        with pytest.raises(ValueError):
            RangeGrid(**{"start": 0.0, "step_s": 30, "points": 3, **kwargs})  # type: ignore[arg-type]


# -- parsing a range reply ---------------------------------------------------------------------------


def _body(reply: Reply) -> bytes:
    return reply.body


def test_a_matrix_is_parsed_and_placed_on_the_grid() -> None:
    grid = RangeGrid(start=100.0, step_s=30, points=4)
    body = _body(matrix_reply(({"job": "a"}, [(130, "1"), (190.0, "NaN")])))  # an int time is fine
    (series,) = parse_matrix(200, "application/json", body)
    assert series.metric == {"job": "a"}
    assert series.on_grid(grid) == (None, "1", None, "NaN")
    assert parse_matrix(200, "application/json", _body(matrix_reply())) == []


@pytest.mark.parametrize(
    ("body", "code", "content_type", "problem"),
    [
        (b"<html>oops</html>", 500, "text/html", "HTTP 500 with text/html, not JSON"),
        (_body(vector_reply(({}, "1"))), 200, "application/json", "not a range-query reply"),
        (
            b'{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000"}',
            400,
            "application/json",
            "HTTP 400 error bad_data: exceeded maximum resolution of 11,000",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}',
            200,
            "application/json",
            "not a number as Prometheus writes one",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["1","1"]]}]}}',
            200,
            "application/json",
            "not a range-query reply",
        ),
        (_body(matrix_reply(({}, [(1.0, "1")]))), 503, "application/json", "HTTP 503 with a success reply"),
    ],
    ids=["html", "vector", "prom-error", "value-x", "string-time", "success-503"],
)
def test_what_is_not_a_matrix_is_unusable(body: bytes, code: int, content_type: str, problem: str) -> None:
    with pytest.raises(UnusableReply) as caught:
        parse_matrix(code, content_type, body)
    assert problem in str(caught.value)


def test_too_many_points_or_disorder_are_unusable() -> None:
    grid = RangeGrid(start=0.0, step_s=1, points=5)
    too_many = _body(matrix_reply(({}, [(float(i), "1") for i in range(promql.matrix.MAX_POINTS + 1)])))
    with pytest.raises(UnusableReply, match="not a range-query reply"):
        parse_matrix(200, "application/json", too_many)
    for values in ([(2.0, "1"), (1.0, "1")], [(1.0, "1"), (1.0, "2")]):
        (series,) = parse_matrix(200, "application/json", _body(matrix_reply(({}, values))))
        with pytest.raises(UnusableReply, match="out of order or repeated"):
            series.on_grid(grid)


# -- range queries through PromSource, against a fake server ----------------------------------------


def test_range_values_sends_the_grid_and_reads_one_value_per_point() -> None:
    grid = RangeGrid(start=1_000.5, step_s=60, points=4)
    reply = matrix_reply(({}, [(1_060.5, "3"), (1_120.5, "NaN"), (1_180.5, "0")]))
    with fake_prometheus(reply) as fake:
        got = PromSource(fake.url).range_values("sum(up)", grid, "a count")
    assert got == (None, 3.0, None, 0.0)  # no sample and NaN are both "no data"
    (seen,) = fake.seen
    assert seen["path"] == "/api/v1/query_range"
    assert seen["params"] == {
        "query": ["sum(up)"],
        "start": ["1000.500"],
        "end": ["1180.500"],
        "step": ["60"],
    }


def test_instant_figures_are_evaluated_at_the_time_asked() -> None:
    with fake_prometheus(vector_reply(({}, "7"))) as fake:
        source = PromSource(fake.url)
        assert source.request_count("1h", at=1_234.5678) == 7.0
        assert source.request_count("1h") == 7.0
    assert fake.seen[0]["params"]["time"] == ["1234.568"]  # to the millisecond
    assert "time" not in fake.seen[1]["params"]  # the server's now


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (
            matrix_reply(({"a": "1"}, [(0.0, "1")]), ({"a": "2"}, [(0.0, "1")])),
            "2 series for a count, where the query gives at most one",
        ),
        (matrix_reply(({}, [(0.0, "-1")])), "a count of -1"),
        (matrix_reply(({}, [(0.0, "+Inf")])), "a count of +Inf"),
        (matrix_reply(({}, [(0.0, "1")])), None),  # fine: the control
        (matrix_reply(({}, [(15.0, "1")])), "a sample at 15.0, not one of the times asked for"),
        (vector_reply(({}, "1")), "HTTP 200 JSON that is not a range-query reply"),
        (replace(matrix_reply(), delay_s=3.0), "no complete reply within the 0.5s deadline"),
    ],
    ids=["two-series", "negative", "inf", "control", "off-grid", "vector", "slow"],
)
def test_range_replies_that_do_not_fit_are_unusable(reply: Reply, reason: str | None) -> None:
    grid = RangeGrid(start=0.0, step_s=30, points=3)
    with fake_prometheus(reply) as fake:
        source = PromSource(fake.url, timeout_s=0.5)
        if reason is None:
            assert source.range_values("q", grid, "a count") == (1.0, None, None)
            return
        with pytest.raises(PromSourceError) as caught:
            source.range_values("q", grid, "a count")
    assert str(caught.value).startswith(f"Prometheus at {fake.url} answered something unusable: {reason}")


def test_a_bad_range_request_is_refused_before_it_is_sent() -> None:
    source = PromSource("http://127.0.0.1:9")
    with pytest.raises(ValueError, match="step_s"):
        source._client.fetch_range("up", start=0.0, end=60.0, step_s=0)
    with pytest.raises(ValueError, match="start <= end"):
        source._client.fetch_range("up", start=60.0, end=0.0, step_s=30)


def test_a_slow_range_query_makes_the_page_fall_back_and_say_so(tmp_path: Path) -> None:
    """Instant queries answer at once, the range queries too late: nothing from Prometheus is shown
    (no tiles without their charts), the store's figures are, and the message says why."""

    def route(path: str, params: dict[str, list[str]]) -> Reply:
        if path == "/api/v1/query":
            return vector_reply(({}, "1"))
        return replace(matrix_reply(), delay_s=6.0)

    from observability.store import Store

    with Store(tmp_path / "a.db", threaded=False) as store, fake_prometheus() as fake:
        store.submit("requests", {"request_id": "x", "ts": 999_990.0, "status": "ok", "latency_ms": 5.0})
        fake.route = route
        view = load_overview("prometheus", "15m", store=store, prom=PromSource(fake.url, 2.0), now=1e6)
    assert not view.status_ok and view.source == "sqlite"
    assert view.message == (
        f"Prometheus at {fake.url} answered something unusable: no complete reply within the 2s "
        "deadline — showing SQLite figures"
    )
    assert view.stats is not None and view.stats.requests == 1
    assert view.series is not None and view.series.source == "sqlite"


# -- a real Prometheus -------------------------------------------------------------------------------

ROWS = [
    {"query": "24: 4 7 8 8"},
    {"query": "tictactoe: X.O/.X./..O"},
    {"query": "connect4: 4453"},
    {"query": "What is a burn rate?"},
]


def _api(url: str, query: str, at: float) -> list[dict]:
    """An instant query over plain HTTP (independent of PromSource), evaluated at ``at``."""
    params = urllib.parse.urlencode({"query": query, "time": f"{at:.3f}"})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=5) as response:
        return json.load(response)["data"]["result"]


def _one(url: str, query: str, at: float) -> float:
    (sample,) = _api(url, query, at)
    return float(sample["value"][1])


@pytest.mark.slow
def test_tiles_equal_independent_instant_queries_and_charts_sum_to_them(prometheus, scraped_engine) -> None:
    """A workload with injected errors through the real engine, scraped every second by a real
    Prometheus that started moments before.  All of Prometheus' data lies inside the last 15
    minutes, so over 15m the tiles must equal plain instant queries over the raw counters
    (``sum(mcts_requests_total)``, ``histogram_quantile`` over the raw cumulative buckets ...),
    the chart buckets must add up to the tiles' counts, and the rate must be over the buckets
    from the first one holding Prometheus' first sample (found from the raw samples)."""
    engine = scraped_engine
    report = run_load(
        engine,
        ROWS,
        LoadConfig(rate=40, duration_s=0.5, concurrency=4, faults=FaultPlan(error=0.3), seed=5),
    )
    engine.telemetry.flush()
    total = report.issued
    deadline = time.monotonic() + 30
    while (
        not (got := _api(prometheus.url, "sum(mcts_requests_total)", time.time()))
        or float(got[0]["value"][1]) != total
    ):
        assert time.monotonic() < deadline, "Prometheus never scraped the whole workload"
        time.sleep(0.2)
    # one more scrape of every family (agents, iterations ...) after the last request, and the
    # first sample at least 7 s old: the first-sample query looks every 5 s, at multiples of 5 s
    time.sleep(1.5)
    raw = _api(prometheus.url, "mcts_requests_total[15m]", time.time())
    first = min(float(v[0]) for s in raw for v in s["values"])
    time.sleep(max(0.0, first + 7 - time.time()))
    now = time.time()
    with PromSource(prometheus.url) as prom:
        view = load_overview("prometheus", "15m", store=engine.telemetry.store, prom=prom, now=now)
    store_view = load_overview("sqlite", "15m", store=engine.telemetry.store, prom=None, now=now)

    assert view.status_ok and view.source == "prometheus", view.message
    stats, series = view.stats, view.series
    assert stats is not None and series is not None and series.source == "prometheus"
    at = stats.until_ts
    url = prometheus.url
    # the tiles against independent instant queries at the same time
    count = _one(url, "sum(mcts_requests_total)", at)
    errors = _one(url, 'sum(mcts_requests_total{status="error"})', at)
    assert stats.requests == count == total and 0 < errors < count
    assert stats.error_ratio == pytest.approx(errors / count, rel=1e-12)
    for q, tile in ((0.5, stats.p50_ms), (0.95, stats.p95_ms), (0.99, stats.p99_ms)):
        raw = _one(url, f"histogram_quantile({q}, sum by (le) (mcts_request_duration_seconds_bucket))", at)
        assert tile == pytest.approx(raw * 1000, rel=1e-9)
    agents = {
        s["metric"]["agent"]: float(s["value"][1])
        for s in _api(url, "sum by (agent) (mcts_agent_requests_total)", at)
    }
    assert dict(stats.agent_mix) == agents and sum(agents.values()) > 0
    assert stats.mcts_iterations == _one(url, "sum(mcts_iterations_total)", at)
    # the same requests in the store
    assert store_view.stats is not None and store_view.stats.requests == total
    # the charts add up to the tiles (each bucket is its exact growth; no counter reset here)
    assert sum(n for n in series.requests if n is not None) == pytest.approx(count, abs=1e-9)
    assert sum(e for e in series.errors if e is not None) == pytest.approx(errors, abs=1e-9)
    assert any(p is not None for p in series.p95_ms)
    # the rate is over the data: from Prometheus' first sample of the counter (the raw samples say
    # when), looked for every 5 s (a tenth of the 30 s step), so found within 5 s after it
    assert stats.data_since_ts is not None and first <= stats.data_since_ts < first + 5
    assert stats.data_since_res_s == 5
    assert stats.rate_span_s == pytest.approx(max(at - stats.data_since_ts, 60)) and stats.rate_span_s < 900
    assert stats.rate_per_s == pytest.approx(count / stats.rate_span_s)
    # the charts' gaps: buckets before the one holding the first sample have no data
    since = at - 900
    bucket = math.ceil((first - since) / 30) - 1  # bucket i is evaluated at since + 30 (i + 1)
    assert series.data_from_ts == pytest.approx(since + 30 * bucket)
    rate_tile = next(t for t in tiles(stats) if t.label == "Request rate")
    assert rate_tile.value.endswith(" req/min") and "the part of the 15m range with data in Prometheus" in (
        rate_tile.help
    )


def test_the_first_sample_query_is_checked() -> None:
    assert promql.render_query(promql.FIRST_SAMPLE_QUERY, "28d", res="1080s") == (
        "min(min_over_time(timestamp(mcts_requests_total)[28d:1080s]))"
    )
    with pytest.raises(ValueError, match="res must be a Prometheus duration"):
        promql.render_query(promql.FIRST_SAMPLE_QUERY, "28d")
    with pytest.raises(ValueError, match="res must be a Prometheus duration"):
        promql.render_query(promql.FIRST_SAMPLE_QUERY, "28d", res="1080")
    with fake_prometheus(vector_reply(({}, "2000.5"))) as fake:
        source = PromSource(fake.url)
        assert source.first_sample("1h", "5s", at=2000.5) == 2000.5
        with pytest.raises(
            PromSourceError, match=r"a first-sample time of 2000.5, after the window's end 1999.0"
        ):
            source.first_sample("1h", "5s", at=1999.0)
    assert fake.seen[0]["params"]["query"] == ["min(min_over_time(timestamp(mcts_requests_total)[1h:5s]))"]
