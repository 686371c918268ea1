"""The Overview's figures: rows inserted by hand, expected values worked out by hand or by numpy.

Fixed clock: NOW = 1_000_000 s.  The 1 h window is [NOW - 3600, NOW).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from observability import promql
from observability.metrics import start_exporter, stop_exporter
from observability.overview import (
    PRESETS,
    OverviewStats,
    load_overview,
    overview_from_prometheus,
    overview_from_store,
    quantile,
    rate_over_data,
    series_from_store,
    tiles,
    time_range,
)
from observability.promql import PromSource, PromSourceError, SourceStatus, render_query
from observability.store import Store
from tests.observability.conftest import free_port
from tests.observability.fake_prometheus import Reply, fake_prometheus, matrix_reply, vector_reply

NOW = 1_000_000.0


def _req(rid: str, age_s: float, status: str, latency_ms: float | None, **extra: object) -> dict:
    return {"request_id": rid, "ts": NOW - age_s, "status": status, "latency_ms": latency_ms, **extra}


ROWS = [
    _req("r1", 100, "ok", 100.0, tokens=50, cost_usd=0.01, task="game24"),
    _req("r2", 200, "ok", 300.0, tokens=70, cost_usd=0.02, task="tictactoe"),
    _req("r3", 300, "error", 1000.0, task="game24"),
    _req("r4", 50, "invalid", 1.0),
    _req("r5", 60, "cancelled", 5000.0),
    _req("r6", 7200, "ok", 9999.0, tokens=1000, cost_usd=1.5),  # 2 h old: outside 1 h, inside 24 h
    _req("r7", 400, "ok", 200.0, simulated=1),
    _req("r8", 3600, "ok", 400.0),  # exactly on the window's start: inside
    _req("r9", 0, "ok", 7.0),  # ts == NOW: outside (the window is half-open)
]
DECISIONS = [
    {"request_id": "r1", "step": 0, "agent": "hrm"},
    {"request_id": "r1", "step": 1, "agent": "mcts"},
    {"request_id": "r2", "step": 0, "agent": "trm"},
    {"request_id": "r2", "step": 1, "agent": "mcts"},
    {"request_id": "r6", "step": 0, "agent": "hrm"},
]
RUNS = [
    {"run_id": "r1-mcts", "request_id": "r1", "ts": NOW - 100, "iterations": 500},
    {"run_id": "r2-mcts", "request_id": "r2", "ts": NOW - 200, "iterations": 250},
    {"run_id": "r6-mcts", "request_id": "r6", "ts": NOW - 7200, "iterations": 1000},
]


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "arbor.db", threaded=False)
    yield s
    s.close()


@pytest.fixture
def filled(store: Store) -> Store:
    store.submit("requests", ROWS)
    store.submit("routing_decisions", DECISIONS)
    store.submit("mcts_runs", RUNS)
    return store


# -- quantile ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 10, 101, 1000])
def test_quantile_matches_numpy_linear(n: int) -> None:
    values = np.sort(np.random.default_rng(n).lognormal(5, 1, size=n))
    for q in (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0):
        assert quantile(values.tolist(), q) == pytest.approx(np.percentile(values, q * 100, method="linear"))


def test_quantile_by_hand_and_edges() -> None:
    # [10, 20, 30, 40]: h = 3 * 0.5 = 1.5 -> 20 + 0.5 * 10 = 25
    assert quantile([10, 20, 30, 40], 0.5) == 25.0
    assert quantile([], 0.5) is None
    with pytest.raises(ValueError):
        quantile([1.0], 1.5)


# -- the store --------------------------------------------------------------------------------------


def test_one_hour_from_the_store_by_hand(filled: Store) -> None:
    s = overview_from_store(filled, 3600, NOW, label="1h")
    # served (ok + error) in [NOW-3600, NOW): r1 r2 r3 r7 r8; r3 failed
    assert s.source == "sqlite" and s.window == "1h"
    assert s.requests == 5 and s.errors == 1
    assert s.error_ratio == pytest.approx(1 / 5)
    assert s.rate_per_s == pytest.approx(5 / 3600)
    # latencies sorted [100, 200, 300, 400, 1000]; h = 4q
    assert s.p50_ms == pytest.approx(300.0)  # h = 2
    assert s.p95_ms == pytest.approx(400 + 0.8 * 600)  # h = 3.8
    assert s.p99_ms == pytest.approx(400 + 0.96 * 600)  # h = 3.96
    assert s.tokens_total == 120 and s.tokens_by_direction == ()
    assert s.cost_usd == pytest.approx(0.03)
    assert s.agent_mix == (("hrm", 1.0), ("mcts", 2.0), ("trm", 1.0))
    assert s.mcts_iterations == 750 and s.mcts_runs == 2
    assert (s.invalid, s.cancelled, s.simulated) == (1, 1, 1)


def test_a_day_takes_in_the_older_request(filled: Store) -> None:
    s = overview_from_store(filled, 86400, NOW)
    assert s.requests == 6 and s.errors == 1
    lat = np.array([100, 200, 300, 400, 1000, 9999.0])
    assert s.p99_ms == pytest.approx(np.percentile(lat, 99, method="linear"))
    assert s.tokens_total == 1120 and s.cost_usd == pytest.approx(1.53)
    assert dict(s.agent_mix)["hrm"] == 2
    assert s.mcts_iterations == 1750


def test_empty_window_is_unknown_not_zero(filled: Store) -> None:
    s = overview_from_store(filled, 10, NOW - 5000)  # nothing in [NOW-5010, NOW-5000)
    assert s.requests == 0 and s.rate_per_s == 0
    assert s.error_ratio is None and s.p50_ms is None and s.p95_ms is None and s.p99_ms is None
    assert s.tokens_total is None and s.cost_usd is None and s.mcts_iterations is None
    assert s.agent_mix == ()
    labels = {t.label: t.value for t in tiles(s)}
    assert labels["Error rate"] == labels["Latency p95"] == labels["Tokens"] == labels["Cost"] == "—"
    assert labels["MCTS iterations"] == "—" and labels["Requests"] == "0"


def test_requests_without_searches_have_zero_iterations(store: Store) -> None:
    store.submit("requests", [_req("a", 10, "ok", 5.0)])
    s = overview_from_store(store, 60, NOW)
    assert s.mcts_iterations == 0 and s.mcts_runs == 0


def test_series_buckets_by_hand(filled: Store) -> None:
    series = series_from_store(filled, 3600, 60, NOW)
    assert len(series.starts) == 60 and series.starts[0] == NOW - 3600 and series.starts[-1] == NOW - 60
    # bucket = floor((ts - (NOW - 3600)) / 60): r1 -> 58, r2 -> 56, r3 -> 55, r7 -> 53, r8 -> 0
    expected = {58: 1, 56: 1, 55: 1, 53: 1, 0: 1}
    assert {i: n for i, n in enumerate(series.requests) if n} == expected
    assert {i: n for i, n in enumerate(series.errors) if n} == {55: 1}
    assert series.p95_ms[58] == 100.0 and series.p95_ms[55] == 1000.0 and series.p95_ms[0] == 400.0
    assert series.p50_ms[58] == series.p99_ms[58] == 100.0  # one request: every quantile is it
    assert series.p95_ms[1] is None and series.requests[1] == 0  # r6 (2 h old) came first: a real 0
    assert series.data_from_ts == NOW - 3600
    assert (
        series.error_ratios[55] == 1.0 and series.error_ratios[58] == 0.0 and series.error_ratios[1] is None
    )
    with pytest.raises(ValueError):
        series_from_store(filled, 3600, 7, NOW)


def test_series_quantiles_of_a_busy_bucket(store: Store) -> None:
    latencies = [float(x) for x in np.random.default_rng(3).integers(1, 500, size=40)]
    store.submit("requests", [_req(f"b{i}", 30 + i * 0.1, "ok", v) for i, v in enumerate(latencies)])
    series = series_from_store(store, 120, 60, NOW)  # all in [NOW-60, NOW): the second bucket
    # the first bucket ends before the store's first request: no data (None), not 0
    assert series.requests == (None, 40) and series.errors == (None, 0)
    assert series.data_from_ts == NOW - 60 and series.source == "sqlite"
    for q, got in ((50, series.p50_ms), (95, series.p95_ms), (99, series.p99_ms)):
        assert got[0] is None and got[1] == pytest.approx(np.percentile(latencies, q))
    assert series.per_minute == ((None, 40.0), (None, 0.0))  # 40 in one minute
    assert series.error_ratios == (None, 0.0)


def test_presets_tile_their_window() -> None:
    assert [p.label for p in PRESETS] == ["15m", "1h", "6h", "24h", "7d", "28d"]
    assert time_range("7d").seconds == 7 * 86400 and time_range("28d").prom_window == "28d"
    assert all(p.seconds % p.bucket_s == 0 for p in PRESETS)
    # the shortest step of 30 s, 1 m, 2 m, 5 m, ..., 1 h, 2 h, 3 h, ... with at most 300 buckets:
    # 15m/30s = 30, 1h/30s = 120, 6h/1m = 360 > 300 so 2m (180), 24h/5m = 288,
    # 7d/30m = 336 > 300 so 1h (168), 28d/2h = 336 > 300 so 3h (224)
    assert [p.bucket_s for p in PRESETS] == [30, 30, 120, 300, 3600, 10800]
    with pytest.raises(ValueError, match="unknown time range"):
        time_range("2h")


def test_tiles_are_formatted_with_units(filled: Store) -> None:
    values = {t.label: t.value for t in tiles(overview_from_store(filled, 3600, NOW, label="1h"))}
    assert values["Requests"] == "5"
    assert values["Request rate"] == "0.0833 req/min"  # 5 per hour = 5/60 per minute
    assert values["Error rate"] == "20.00%"
    assert values["Latency p50"] == "300 ms" and values["Latency p95"] == "880 ms"
    assert values["Tokens"] == "120" and values["Cost"] == "$0.0300"
    assert values["MCTS iterations"] == "750"


# -- the loader and its fallbacks -------------------------------------------------------------------


class _BrokenMidway:
    """A Prometheus that answers status() but fails the first real query."""

    url = "http://prom.example:9090"

    def status(self) -> SourceStatus:
        return SourceStatus(True, f"connected to Prometheus at {self.url}")

    def request_count(self, window: str, *, at: float | None = None) -> float | None:
        raise PromSourceError(f"Prometheus at {self.url}: no answer within 2s")


def _store_stats(store: Store, label: str) -> OverviewStats:
    """What the page shows from the store for a preset: its stats with the rate over the data."""
    preset = time_range(label)
    return rate_over_data(overview_from_store(store, preset.seconds, NOW, label=label))


def test_sqlite_choice(filled: Store) -> None:
    view = load_overview("sqlite", "1h", store=filled, prom=None, now=NOW)
    assert view.status_ok and view.source == "sqlite" and str(filled.path) in view.message
    assert view.stats == _store_stats(filled, "1h")
    # the store's first request (r6) is 2 h old: the whole hour has data
    assert view.stats.rate_span_s == 3600 and view.stats.rate_per_s == pytest.approx(5 / 3600)
    assert view.store_requests == len(ROWS) and view.latest_ts == NOW
    assert view.series is not None and sum(view.series.requests) == 5


def test_prometheus_not_configured_falls_back(filled: Store) -> None:
    view = load_overview("prometheus", "1h", store=filled, prom=None, now=NOW)
    assert not view.status_ok and view.requested == "prometheus" and view.source == "sqlite"
    assert "not configured" in view.message and "ARBOR_PROMETHEUS_URL" in view.message
    assert view.stats is not None and view.stats.requests == 5


def test_unreachable_prometheus_falls_back_with_its_reason(filled: Store) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    with PromSource(url) as prom:
        view = load_overview("prometheus", "1h", store=filled, prom=prom, now=NOW)
    assert not view.status_ok and view.source == "sqlite"
    assert view.message.startswith(f"Prometheus at {url} is unreachable: ")
    assert "refused" in view.message.lower() and view.message.endswith("— showing SQLite figures")
    assert view.stats == _store_stats(filled, "1h")


def test_prometheus_failing_mid_way_falls_back(filled: Store) -> None:
    view = load_overview("prometheus", "6h", store=filled, prom=_BrokenMidway(), now=NOW)  # type: ignore[arg-type]
    assert not view.status_ok and view.source == "sqlite"
    assert (
        view.message == "Prometheus at http://prom.example:9090: no answer within 2s — showing SQLite figures"
    )
    assert view.stats is not None and view.stats.window == "6h"


def test_telemetry_off() -> None:
    view = load_overview("sqlite", "1h", store=None, prom=None, now=NOW)
    assert not view.status_ok and view.stats is None and view.series is None and view.store_requests is None
    view = load_overview("prometheus", "1h", store=None, prom=None, now=NOW)
    assert view.stats is None and "telemetry is off" in view.message


def test_bad_choices_raise(filled: Store) -> None:
    with pytest.raises(ValueError, match="unknown source"):
        load_overview("influx", "1h", store=filled, prom=None, now=NOW)
    with pytest.raises(ValueError, match="unknown time range"):
        load_overview("sqlite", "5y", store=filled, prom=None, now=NOW)


def test_prometheus_tiles_show_the_token_split() -> None:
    stats = OverviewStats(
        source="prometheus", window="1h", window_s=3600, until_ts=NOW, requests=None, rate_per_s=None,
        errors=None, error_ratio=None, p50_ms=None, p95_ms=None, p99_ms=0.5, tokens_total=30.0,
        tokens_by_direction=(("input", 20.0), ("output", 10.0)), cost_usd=0.0, agent_mix=(),
        mcts_iterations=None, mcts_runs=None, invalid=None, cancelled=None, simulated=None,
    )  # fmt: skip
    by_label = {t.label: t for t in tiles(stats)}
    assert by_label["Requests"].value == "—" and "no data" in by_label["Requests"].help
    assert by_label["Tokens"].value == "30" and by_label["Tokens"].help == "input 20 · output 10"
    assert by_label["Cost"].value == "$0.00" and by_label["Latency p99"].value == "0.5 ms"


# -- against a real Prometheus ----------------------------------------------------------------------


def _wait(check, timeout_s: float = 30.0):
    """Poll ``check`` until it returns something truthy (Prometheus scrapes every second)."""
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        assert time.monotonic() < deadline, "Prometheus never scraped the requests"
        time.sleep(0.3)
    return result


@pytest.mark.slow
def test_prometheus_figures_agree_with_the_store(prometheus, tmp_path: Path) -> None:
    engine = Engine(load_settings(db_path=tmp_path / "p.db", metrics_port=0))
    registry = engine.telemetry.metrics.registry
    assert start_exporter(prometheus.exporter_port, registry=registry) == prometheus.exporter_port
    # one task: rate() sees a series grow only after its first sample, and each task is a series
    queries = ["connect4: 4453", "connect4: 44", "connect4: 1"]
    store = engine.telemetry.store
    try:
        with PromSource(prometheus.url) as prom:
            # one request before Prometheus' first sample of the counters, two after: rate() and
            # histogram_quantile() need a counter to grow between two of its samples in the window
            engine.run(QueryRequest(query=queries[0], seed=0, mcts_iterations=200))
            engine.telemetry.flush()
            _wait(lambda: prom.request_count("15m") == 1)
            for seed, query in enumerate(queries[1:], start=1):
                engine.run(QueryRequest(query=query, seed=seed, mcts_iterations=200))
            engine.telemetry.flush()
            expected = overview_from_store(store, 900, time.time() + 1)
            assert expected.requests == 3
            got = _wait(
                lambda: (
                    (s := overview_from_prometheus(prom, time_range("15m"), time.time())[0]).requests == 3
                    and s.p95_ms is not None
                    and s
                ),
            )
            view = load_overview("prometheus", "15m", store=store, prom=prom, now=time.time() + 1)
        assert got.mcts_iterations == expected.mcts_iterations and got.agent_mix == expected.agent_mix
        assert got.error_ratio == 0.0 and got.rate_per_s is not None and got.rate_per_s > 0
        assert view.status_ok and view.source == "prometheus" and view.message.startswith("Connected")
        assert view.stats is not None and view.stats.requests == 3
        assert view.series is not None and sum(n for n in view.series.requests if n is not None) == 3
    finally:
        stop_exporter(prometheus.exporter_port)
        engine.close()


# -- Prometheus answering garbage: the Overview falls back, never raises ---------------------------


def test_garbage_from_a_real_http_server_falls_back_to_the_store(filled: Store) -> None:
    reply = Reply(b'{"status":"success","data":{"resultType":"vector","result":[{}]}}')
    with fake_prometheus(reply) as fake:
        view = load_overview("prometheus", "1h", store=filled, prom=PromSource(fake.url), now=NOW)
    assert not view.status_ok and view.requested == "prometheus" and view.source == "sqlite"
    assert view.message.startswith(f"Prometheus at {fake.url} answered something unusable: ")
    assert view.message.endswith("— showing SQLite figures")
    assert view.stats == _store_stats(filled, "1h")


class _Odd:
    """A source whose status is fine and whose every query returns what ``values`` says."""

    url = "http://prom.example:9090"

    def __init__(self, **values: object) -> None:
        self.values = {
            "request_count": 5.0, "latency_quantile": 0.1, "tokens": {"input": 3.0}, "request_rate": 0.1,
            "error_ratio": 0.2, "cost_usd": 0.5, "agent_mix": {"hrm": 1.0}, "iterations": 7.0,
            "range_values": (0.25,) * 120, "first_sample": NOW - 7200,  # 1h: 120 buckets of 30 s
            **values,
        }  # fmt: skip

    def status(self) -> SourceStatus:
        return SourceStatus(True, f"connected to Prometheus at {self.url}")

    def __getattr__(self, name: str):
        value = self.values[name]

        def query(*args: object, **kwargs: object) -> object:
            if isinstance(value, BaseException):
                raise value
            return value

        return query


def test_a_good_odd_source_is_shown_as_is(filled: Store) -> None:
    view = load_overview("prometheus", "1h", store=filled, prom=_Odd(), now=NOW)  # type: ignore[arg-type]
    assert view.status_ok and view.source == "prometheus"
    assert view.stats is not None and view.stats.p95_ms == 100.0 and view.stats.tokens_total == 3.0
    # the charts come from the same source: every bucket has data, so the rate is over the hour
    assert view.series is not None and view.series.source == "prometheus"
    assert view.series.requests == (0.25,) * 120 and view.series.p99_ms == (250.0,) * 120
    assert view.stats.rate_span_s == 3600 and view.stats.rate_per_s == pytest.approx(5 / 3600)


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"request_count": "abc"}, "a request count of type str"),
        ({"request_count": float("nan")}, "a request count of nan"),
        ({"latency_quantile": float("inf")}, "a p50 latency of inf"),
        ({"cost_usd": -1.0}, "a cost of -1.0"),
        ({"error_ratio": 1.5}, "an error ratio of 1.5"),
        ({"cost_usd": True}, "a cost of type bool"),
        ({"tokens": {"input": "3"}}, "a token count of type str"),
        ({"tokens": [("input", 3.0)]}, "a token count of type list"),
        ({"agent_mix": {"hrm": float("-inf")}}, "an agent invocation count of -inf"),
        ({"iterations": KeyError("value")}, "KeyError"),
        ({"iterations": ValueError("could not convert string to float: 'abc'")}, "ValueError"),
        ({"range_values": (1.0,) * 119}, "a request count that is not one value per bucket"),
        ({"range_values": [1.0] * 120}, "a request count that is not one value per bucket"),
        ({"range_values": ("1",) * 120}, "a request count of type str"),
        ({"range_values": (2.0, -1.0, *(1.0,) * 118)}, "a request count of -1.0"),
        ({"range_values": PromSourceError("Prometheus at x: slow")}, None),
    ],
)
def test_whatever_the_source_returns_never_raises(filled: Store, values: dict, reason: str) -> None:
    view = load_overview("prometheus", "1h", store=filled, prom=_Odd(**values), now=NOW)  # type: ignore[arg-type]
    assert not view.status_ok and view.source == "sqlite"
    prefix = "Prometheus at http://prom.example:9090 answered something unusable:"
    expected = "Prometheus at x: slow" if reason is None else f"{prefix} {reason}"
    assert view.message == f"{expected} — showing SQLite figures"
    assert view.series is not None and view.series.source == "sqlite"  # tiles and charts alike
    assert view.stats == _store_stats(filled, "1h")


def test_the_queries_run_at_once_and_each_figure_comes_from_its_own_query() -> None:
    """Every query answered after 0.3 s with its own value: the figures land where they belong,
    and the fake served several queries at the same time (one after another, never).

    1h ending at NOW: 120 buckets of 30 s, bucket i evaluated at its end NOW - 3600 + 30 (i + 1).
    Prometheus has request data from bucket 100 on (2 per bucket: 20 x 2 = 40, the instant count),
    and its first sample 600 s before NOW (looked for every 5 s, a tenth of the step), so the rate
    is 40 requests over the last 600 s: 4 req/min.
    """
    preset = time_range("1h")
    start = NOW - 3600 + 30
    grid = [start + 30 * i for i in range(120)]
    instant = {
        render_query(promql.REQUEST_COUNT_QUERY, "1h"): [({}, "40")],
        render_query(promql.ERROR_RATIO_QUERY, "1h"): [({}, "0.25")],
        render_query(promql.LATENCY_QUANTILE_QUERY, "1h", q=0.5): [({}, "0.1")],
        render_query(promql.LATENCY_QUANTILE_QUERY, "1h", q=0.95): [({}, "0.2")],
        render_query(promql.LATENCY_QUANTILE_QUERY, "1h", q=0.99): [({}, "NaN")],
        render_query(promql.TOKENS_QUERY, "1h"): [
            ({"direction": "output"}, "50"),
            ({"direction": "input"}, "100"),
        ],
        render_query(promql.COST_QUERY, "1h"): [({}, "1.25")],
        render_query(promql.AGENT_MIX_QUERY, "1h"): [({"agent": "mcts"}, "1"), ({"agent": "hrm"}, "3")],
        render_query(promql.ITERATIONS_QUERY, "1h"): [({}, "900")],
        render_query(promql.FIRST_SAMPLE_QUERY, "1h", res="5s"): [({}, repr(NOW - 600))],
    }
    ranged = {
        render_query(promql.REQUEST_COUNT_QUERY, "30s"): [(t, "2") for t in grid[100:]],
        render_query(promql.ERROR_COUNT_QUERY, "30s"): [(grid[110], "1")],
        render_query(promql.LATENCY_QUANTILE_QUERY, "30s", q=0.5): [(t, "0.05") for t in grid[100:]],
        render_query(promql.LATENCY_QUANTILE_QUERY, "30s", q=0.95): [(grid[100], "NaN"), (grid[101], "0.5")],
        render_query(promql.LATENCY_QUANTILE_QUERY, "30s", q=0.99): [],
    }

    def route(path: str, params: dict[str, list[str]]) -> Reply:
        (query,) = params["query"]
        if query == "vector(1)":  # the status check (load_overview)
            return vector_reply(({}, "1"))
        if path == "/api/v1/query":
            assert params["time"] == [f"{NOW:.3f}"]  # the tiles' window ends where the charts' does
            return replace(vector_reply(*instant[query]), delay_s=0.3)
        assert path == "/api/v1/query_range"
        assert params["start"] == [f"{start:.3f}"] and params["end"] == [f"{NOW:.3f}"]
        assert params["step"] == ["30"]
        values = ranged[query]
        return replace(matrix_reply(({}, values)) if values else matrix_reply(), delay_s=0.3)

    with fake_prometheus() as fake:
        fake.route = route
        stats, series = overview_from_prometheus(PromSource(fake.url), preset, NOW)
        view = load_overview("prometheus", "1h", store=None, prom=PromSource(fake.url), now=NOW)
    assert len(fake.seen) == 2 * (len(instant) + len(ranged)) + 1 and fake.max_in_flight > 1
    assert (stats.source, stats.window, stats.window_s, stats.until_ts) == ("prometheus", "1h", 3600, NOW)
    assert (stats.requests, stats.error_ratio) == (40.0, 0.25)
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == (100.0, 200.0, None)
    assert stats.tokens_by_direction == (("input", 100.0), ("output", 50.0)) and stats.tokens_total == 150.0
    assert stats.cost_usd == 1.25 and stats.mcts_iterations == 900.0
    assert stats.agent_mix == (("hrm", 3.0), ("mcts", 1.0))
    # the charts: bucket i starts at NOW - 3600 + 30 i
    assert series.source == "prometheus" and series.bucket_s == 30 and series.until_ts == NOW
    assert series.starts == tuple(NOW - 3600 + 30 * i for i in range(120))
    assert series.requests == (None,) * 100 + (2.0,) * 20 and sum(series.requests[100:]) == stats.requests
    assert series.errors == (None,) * 100 + (0.0,) * 10 + (1.0,) + (0.0,) * 9  # no error series: 0
    assert series.p50_ms == (None,) * 100 + (50.0,) * 20
    assert series.p95_ms == (None,) * 101 + (500.0,) + (None,) * 18
    assert series.p99_ms == (None,) * 120 and series.quantiles_from_buckets
    assert series.data_from_ts == NOW - 3600 + 3000
    # the page's view: the same figures, with the rate over the 600 s that have data
    assert view.status_ok and view.source == "prometheus" and view.series == series
    assert view.stats is not None and view.stats.rate_span_s == 600
    assert view.stats.rate_per_s == pytest.approx(40 / 600)
    assert view.rate_note is not None
    assert view.rate_note.startswith("Prometheus has data for the last 10 min of this range only (from ")
    assert view.rate_note.endswith(", to within 5 s): the request rate is over that span.")
    by_label = {t.label: t for t in tiles(view.stats)}
    assert by_label["Request rate"].value == "4.00 req/min"
    assert (
        "the last 10 min, the part of the 1h range with data in Prometheus" in by_label["Request rate"].help
    )
    assert by_label["Request rate"].help.endswith("to within 5 s); in req/min for every range")


def test_the_rate_is_over_the_data_that_exists(store: Store) -> None:
    """The store's first request is 10 min old: over 28 days, 3 requests are a rate over 600 s
    (0.3 req/min), not over 28 days, and the view says so; the chart is empty before its bucket."""
    store.submit(
        "requests", [_req("a", 600, "ok", 5.0), _req("b", 300, "error", 7.0), _req("c", 10, "ok", 9.0)]
    )
    view = load_overview("sqlite", "28d", store=store, prom=None, now=NOW)
    stats, series = view.stats, view.series
    assert stats is not None and series is not None
    assert stats.requests == 3 and stats.data_since_ts == NOW - 600 and stats.data_since_res_s == 0
    assert stats.rate_span_s == 600 and stats.rate_per_s == pytest.approx(3 / 600)
    assert {t.label: t.value for t in tiles(stats)}["Request rate"] == "0.3 req/min"
    # NOW = 1,000,000 s = 1970-01-12 13:46:40 UTC; 600 s earlier is 13:36:40
    assert view.rate_note == (
        "SQLite has data for the last 10 min of this range only (from 1970-01-12 13:36 UTC): "
        "the request rate is over that span."
    )
    assert series.bucket_s == 10800 and series.requests == (None,) * 223 + (3,)
    assert series.per_minute[0][-1] == pytest.approx(3 / 180)  # the bucket's own rate: 3 in 3 h
    # one request 10 s old: a rate over a minute at least (1 req/min), not over 10 s
    view = load_overview("sqlite", "1h", store=store, prom=None, now=NOW - 590 + 10)
    assert view.stats is not None and view.stats.requests == 1 and view.stats.rate_span_s == 60
    assert {t.label: t.value for t in tiles(view.stats)}["Request rate"] == "1.00 req/min"


def test_the_whole_range_with_data_has_no_note(filled: Store) -> None:
    view = load_overview("sqlite", "1h", store=filled, prom=None, now=NOW)
    assert view.rate_note is None and view.stats is not None and view.stats.rate_span_s == 3600
    help_text = {t.label: t.help for t in tiles(view.stats)}["Request rate"]
    assert help_text == "5 requests / the whole 1h (in req/min for every range)"
