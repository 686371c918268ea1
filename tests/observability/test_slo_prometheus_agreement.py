"""The key acceptance test of the SLO sources: after a real-time workload with faults run through
the real engine, whose metrics a real Prometheus scrapes (every second, with the generated rule
files loaded and evaluated every second), the SQLite store and Prometheus agree on every SLO
and window that the run covers, on the attribution by task, on the budget buckets, and on
which burn-rate alerts fire.

Tolerance, and why. The store counts a request in a window ``(as_of - w, as_of]`` by its
timestamp; Prometheus counts it by the counters' values at the last scrapes at or before the two
edges (see observability/slo/prometheus_source.py). A request can therefore land on the other
side of an edge only if it was recorded within ``EDGE_S`` of it: one scrape interval (1 s), plus
the time from a request's timestamp to the exporter counting it (its latency, at most ~0.7 s
here with the 600 ms latency fault, plus the writer's commit), plus a margin: 2 s. So for every
window the allowed difference, in total and in bad events, is the number of requests the store
holds within ``EDGE_S`` of either edge; for windows with no request near an edge (every window
that holds the whole run, from 5m to the 28d period, at an ``as_of`` after the last scrape) that
is 0: the counts must be equal. ``increase()``'s extrapolation plays no part: the source uses the
counters' exact growth (value at as_of minus value a window earlier), which is why equality can
be asked for.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from engine import Engine
from engine.config import load_settings
from engine.faults import FaultPlan
from engine.slo_report import build_report
from engine.workload import LoadConfig, run_load
from observability.durations import duration_seconds
from observability.metrics import start_exporter, stop_exporter
from observability.promql.client import QueryClient
from observability.slo.burn import ERROR_RATIO_WINDOWS
from observability.slo.models import load_slos
from observability.slo.prometheus_source import PrometheusSLOSource
from observability.slo.sqlite_source import SqliteSLOSource, threshold_ms
from observability.store.reads import ReadModel

ROWS = [
    {"query": "24: 4 7 8 8"},
    {"query": "24: 1 1 1 1"},
    {"query": "tictactoe: X.O/.X./..O"},
    {"query": "connect4: 4453"},
    {"query": "What is a burn rate?"},
]
#: How close to a window edge (s) a request may be and still be counted on the other side.
EDGE_S = 2.0
#: Errors on 25 % of requests burn the availability budget at ~25x (every condition fires); 600 ms
#: on 30 % of them burn the latency budget at ~6x-9x (with the requests slow by themselves).
FAULTS = FaultPlan(error=0.25, latency_ms=600.0, latency_p=0.3)


def _scalar(url: str, query: str) -> float | None:
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(address, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _near(db: Path, slo_kind: str, threshold: float | None, edges: list[float]) -> tuple[int, int]:
    """(events, bad events) the store holds within EDGE_S of any of ``edges``: the tolerance."""
    eligible = {
        "availability": "1",
        "latency": "latency_ms IS NOT NULL",
        "quality": "verdict IN ('correct', 'incorrect')",
    }[slo_kind]
    bad = {
        "availability": "status = 'error'",
        "latency": f"latency_ms > {threshold or 0}",
        "quality": "verdict = 'incorrect'",
    }[slo_kind]
    near = " OR ".join("(ts > ? AND ts <= ?)" for _ in edges)
    params = [x for e in edges for x in (e - EDGE_S, e + EDGE_S)]
    with sqlite3.connect(db) as con:
        total, n_bad = con.execute(
            f"SELECT count(*), coalesce(sum({bad}), 0) FROM requests"
            f" WHERE status IN ('ok', 'error') AND {eligible} AND ({near})",
            params,
        ).fetchone()
    return int(total), int(n_bad)


@pytest.mark.slow
def test_sqlite_and_prometheus_agree_after_a_workload_with_faults(prometheus, tmp_path):
    db = tmp_path / "arbor.db"
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    registry = engine.telemetry.metrics.registry
    assert start_exporter(prometheus.exporter_port, registry=registry) == prometheus.exporter_port
    slos = load_slos()
    try:
        # Prometheus must scrape the exporter before the run starts: a series it first scrapes
        # mid-run would look, to a window starting before that scrape, as if born in the window
        deadline = time.monotonic() + 30
        while _scalar(prometheus.url, f'up{{job="{prometheus.job}"}}') != 1.0:
            assert time.monotonic() < deadline, "Prometheus never scraped the exporter"
            time.sleep(0.2)
        report = run_load(
            engine, ROWS, LoadConfig(rate=12, duration_s=12, concurrency=4, faults=FAULTS, seed=5)
        )
        engine.telemetry.flush()
        with sqlite3.connect(db) as con:
            served, first_ts, last_ts = con.execute(
                "select count(*), min(ts), max(ts) from requests where status in ('ok', 'error')"
            ).fetchone()
        assert served == report.issued == 144 and report.errors > 0
        deadline = time.monotonic() + 30
        while _scalar(prometheus.url, "sum(mcts_requests_total)") != served:
            assert time.monotonic() < deadline, "Prometheus never scraped the whole workload"
            time.sleep(0.2)
        # two more evaluations of the rules over the complete counts, then as_of after them
        time.sleep(2.5)
        end = time.time()

        sqlite = SqliteSLOSource(ReadModel(db))
        prom = PrometheusSLOSource(QueryClient(prometheus.url, timeout_s=10))
        standard = [duration_seconds(w) for w in ERROR_RATIO_WINDOWS] + [28 * 86400.0]
        checked = exact = 0
        # as_of after the run (every window holds all of it) and at points inside the run; the
        # short windows (5 s .. 20 s) cut the run at both edges.
        for as_of in [end, *(first_ts + k * (last_ts - first_ts) / 4 for k in (1, 2, 3))]:
            windows = [5.0, 10.0, 20.0, *standard]
            for slo in slos:
                ours = sqlite.counts(slo, as_of, windows)
                theirs = prom.counts(slo, as_of, windows)
                for w, a, b in zip(windows, ours, theirs, strict=True):
                    tol_total, tol_bad = _near(db, slo.kind, threshold_ms(slo), [as_of, as_of - w])
                    where = f"{slo.name} over {w:g}s at {as_of:.3f}"
                    assert abs(a.total - b.total) <= tol_total, (where, a, b, tol_total)
                    assert abs(a.bad - b.bad) <= tol_bad, (where, a, b, tol_bad)
                    checked += 1
                    if tol_total == 0:
                        assert (a.total, a.bad) == (b.total, b.bad), where
                        exact += 1
        assert checked == 4 * 3 * 10
        # every standard window at `end` holds the whole run with no request near an edge
        assert exact >= 3 * len(standard)
        for slo in slos:
            whole = sqlite.counts(slo, end, [3600.0])[0]
            assert whole.total > 0, slo.name
        availability = sqlite.counts(slos[0], end, [3600.0])[0]
        assert availability.bad == report.errors

        # attribution by task over the hour: the same shares (the whole run, exactly)
        for slo in slos:
            assert prom.attribution(slo, end, 3600.0) == {
                "task": sqlite.attribution(slo, end, 3600.0)["task"]
            }
            assert set(prom.unattributable(slo)) == {"agent", "provider", "router", "variant"}

        # budget buckets of 5 s over the last minute: each within its edges' tolerance, same sums
        for slo in slos:
            ours_b = sqlite.buckets(slo, end, 60.0, 5.0)
            theirs_b = prom.buckets(slo, end, 60.0, 5.0)
            assert [b.end_ts for b in ours_b] == pytest.approx([b.end_ts for b in theirs_b])
            for a, b in zip(ours_b, theirs_b, strict=True):
                tol_total, tol_bad = _near(db, slo.kind, threshold_ms(slo), [a.end_ts, a.end_ts - 5.0])
                assert abs(a.total - b.total) <= tol_total, (slo.name, a, b)
                assert abs(a.bad - b.bad) <= tol_bad, (slo.name, a, b)
            assert sum(b.total for b in theirs_b) == sum(b.total for b in ours_b) > 0

        # the burn-rate alerts: Prometheus' ALERTS (the generated rules, over rate() ratios)
        # fire the conditions the report computes from the store; compared where the store's
        # burns are more than 10 % away from the factor (rate()'s extrapolation moves a ratio a
        # little, so a burn right at the factor could go either way)
        review = build_report(slos, sqlite, end)
        firing = {(a.slo, a.severity, a.long_window, a.short_window) for a in prom.alerts(end) if a.firing}
        compared = set()
        for f in review.slos:
            for a in f.alerts:
                burns = (a.long_burn, a.short_burn)
                if all(b is not None and abs(b - a.factor) > 0.1 * a.factor for b in burns):
                    key = (f.name, a.severity, a.long, a.short)
                    compared.add(key)
                    assert (key in firing) == a.firing, (key, burns)
        assert {("availability", "page", "1h", "5m"), ("quality", "page", "1h", "5m")} <= compared
        assert ("availability", "page", "1h", "5m") in firing

        # and the whole review from Prometheus equals the store's on every count
        prom_review = build_report(slos, PrometheusSLOSource(QueryClient(prometheus.url, timeout_s=10)), end)
        assert prom_review.source == "prometheus"
        for a_fig, b_fig in zip(review.slos, prom_review.slos, strict=True):
            assert (a_fig.total, a_fig.bad, a_fig.burn_rates) == (b_fig.total, b_fig.bad, b_fig.burn_rates)
            assert [x.firing for x in a_fig.alerts] == [x.firing for x in b_fig.alerts]
    finally:
        stop_exporter(prometheus.exporter_port)
        engine.close()
