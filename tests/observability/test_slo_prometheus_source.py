"""The Prometheus SLO source against a fake Prometheus: what it asks (instant queries at
``as_of``, range queries at the bucket ends), how it reads the answers (values worked out by
hand), and every kind of bad answer (garbage, slow, down) as a PromSourceError with a message,
never a traceback or an invented figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from observability.promql.client import QueryClient
from observability.promql.reply import PromSourceError
from observability.slo.models import load_slos
from observability.slo.prometheus_source import PrometheusSLOSource, window_text
from tests.observability.conftest import free_port
from tests.observability.fake_prometheus import Reply, fake_prometheus, matrix_reply, vector_reply

ROOT = Path(__file__).resolve().parents[2]
AS_OF = 1_800_000_000.25
SLOS = {s.name: s for s in load_slos()}


def _source(url: str, **kw: object) -> PrometheusSLOSource:
    return PrometheusSLOSource(QueryClient(url, timeout_s=kw.pop("timeout_s", 5.0)), **kw)  # type: ignore[arg-type]


def _parts(**values: str) -> Reply:
    return vector_reply(*(({"arbor_part": k}, v) for k, v in values.items()))


def _matrix(*series: tuple[dict[str, str], list[tuple[float, str]]]) -> Reply:
    result = [{"metric": m, "values": [[t, v] for t, v in points]} for m, points in series]
    return Reply(
        json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()
    )


def test_window_text() -> None:
    assert [window_text(w) for w in (300.0, 3600.0, 2419200.0, 5.0, 0.5, 90.0)] == [
        "5m", "1h", "28d", "5s", "500ms", "90s",
    ]  # fmt: skip
    for bad in (0.0, -5.0, 0.0001, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="window"):
            window_text(bad)


def test_counts_availability_and_latency_by_hand() -> None:
    with fake_prometheus(_parts(t0="120", o0="3", t1="40")) as fake:
        src = _source(fake.url)
        # availability counts bad events: window 0 is 120 / 3, window 1 has no bad series: 40 / 0
        got = src.counts(SLOS["availability"], AS_OF, [3600.0, 300.0])
        assert [(c.window_s, c.total, c.bad) for c in got] == [(3600.0, 120, 3), (300.0, 40, 0)]
        # latency counts good events (le="0.5"): bad = total - good; no good series = all bad
        got = src.counts(SLOS["latency"], AS_OF, [3600.0, 300.0])
        assert [(c.total, c.bad) for c in got] == [(120, 117), (40, 40)]
    seen = fake.seen[0]
    assert seen["path"] == "/api/v1/query"
    assert seen["params"]["time"] == ["1800000000.250"]
    query = seen["params"]["query"][0]
    # the exact-growth form per window, the availability selectors, tagged parts joined by "or"
    assert 'mcts_requests_total{status="error"} offset 1h' in query and "offset 5m" in query
    assert query.count("label_replace(") == 4 and '"arbor_part", "t1"' in query
    latency = fake.seen[1]["params"]["query"][0]
    assert 'mcts_request_duration_seconds_bucket{le="0.5"}' in latency


def test_counts_round_extrapolated_growth() -> None:
    # increase() (a counter reset in the window) gives fractional growth: rounded to whole events
    with fake_prometheus(_parts(t0="10.4", o0="2.6")) as fake:
        (c,) = _source(fake.url).counts(SLOS["availability"], AS_OF, [300.0])
    assert (c.total, c.bad) == (10, 3)


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(b"<html>oops</html>", content_type="text/html"), "not JSON"),
        (_parts(t0="-1"), "of -1"),
        (_parts(t0="+Inf"), "of +Inf"),
        (_parts(t0="NaN"), "of NaN"),
        (_parts(t0="5", o0="6"), "6 bad events but only 5 in total"),
        (vector_reply(({"arbor_part": "t0"}, "1"), ({"arbor_part": "t0"}, "2")), "unexpected series"),
        (vector_reply(({"job": "x"}, "1")), "unexpected series"),
        (Reply(b'{"status":"error","errorType":"bad_data","error":"parse error"}', status=400), "bad_data"),
        (Reply(b'{"status":"success","data":{"resultType":"matrix","result":[]}}'), "not a query reply"),
    ],
)
def test_garbage_is_a_clear_error(reply: Reply, problem: str) -> None:
    with fake_prometheus(reply) as fake, pytest.raises(PromSourceError) as err:
        _source(fake.url).counts(SLOS["availability"], AS_OF, [300.0])
    assert "answered something unusable" in str(err.value) and problem in str(err.value)
    assert err.value.reachable


def test_slow_and_down() -> None:
    with fake_prometheus(Reply(b"{}", delay_s=5.0)) as fake, pytest.raises(PromSourceError) as err:
        _source(fake.url, timeout_s=0.3).counts(SLOS["availability"], AS_OF, [300.0])
    assert "no complete reply within the 0.3s deadline" in str(err.value)
    with pytest.raises(PromSourceError) as err:
        _source(f"http://127.0.0.1:{free_port()}").counts(SLOS["availability"], AS_OF, [300.0])
    assert "is unreachable" in str(err.value) and not err.value.reachable


def test_total_deadline_stops_further_queries() -> None:
    now = [0.0]
    with fake_prometheus(_parts(t0="1")) as fake:
        src = _source(fake.url, total_timeout_s=10.0, clock=lambda: now[0])
        src.counts(SLOS["availability"], AS_OF, [300.0])
        now[0] = 10.5
        with pytest.raises(PromSourceError, match="total deadline of 10s"):
            src.counts(SLOS["availability"], AS_OF, [300.0])
    assert len(fake.seen) == 1  # the second query was never sent


def test_buckets_land_on_the_store_bucket_ends() -> None:
    # 1h in 15m buckets ending at as_of: ends as_of - 45m, -30m, -15m, as_of. Points for the 2nd
    # and 4th only; the 1st and 3rd are empty.
    ends = [AS_OF - 2700, AS_OF - 1800, AS_OF - 900, AS_OF]
    reply = _matrix(
        ({"arbor_part": "t"}, [(round(ends[1], 3), "10"), (round(ends[3], 3), "4")]),
        ({"arbor_part": "o"}, [(round(ends[1], 3), "2")]),
    )
    with fake_prometheus(reply) as fake:
        got = _source(fake.url).buckets(SLOS["availability"], AS_OF, 3600.0, 900.0)
    assert [(b.end_ts, b.total, b.bad) for b in got] == [
        (ends[0], 0, 0), (ends[1], 10, 2), (ends[2], 0, 0), (ends[3], 4, 0),
    ]  # fmt: skip
    params = fake.seen[0]["params"]
    assert fake.seen[0]["path"] == "/api/v1/query_range"
    assert (params["start"], params["end"], params["step"]) == (
        [f"{ends[0]:.3f}"], [f"{AS_OF:.3f}"], ["900"],
    )  # fmt: skip
    assert "offset 15m" in params["query"][0]


def test_buckets_reject_points_off_the_steps() -> None:
    off = _matrix(({"arbor_part": "t"}, [(AS_OF - 450, "1")]))
    with fake_prometheus(off) as fake, pytest.raises(PromSourceError, match="not one of the times asked for"):
        _source(fake.url).buckets(SLOS["availability"], AS_OF, 3600.0, 900.0)


def test_attribution_by_task_only_and_says_why() -> None:
    reply = vector_reply(
        ({"arbor_part": "t", "task": "game24"}, "50"),
        ({"arbor_part": "t", "task": "connect4"}, "30"),
        ({"arbor_part": "o", "task": "game24"}, "45"),
        ({"arbor_part": "o", "task": "connect4"}, "15"),
    )
    with fake_prometheus(reply) as fake:
        src = _source(fake.url)
        # latency: bad = total - good per task: game24 5, connect4 15 -> 0.25 / 0.75
        assert src.attribution(SLOS["latency"], AS_OF, 3600.0) == {"task": {"connect4": 0.75, "game24": 0.25}}
    assert "sum by (task)" in fake.seen[0]["params"]["query"][0]
    reasons = src.unattributable(SLOS["latency"])
    assert set(reasons) == {"agent", "provider", "router", "variant"}
    assert reasons["agent"] == (
        "the SLO's metrics (mcts_request_duration_seconds) carry only the labels task"
    )
    with fake_prometheus(vector_reply()) as fake:
        assert _source(fake.url).attribution(SLOS["quality"], AS_OF, 3600.0) == {"task": {}}


def test_alerts_from_the_alerts_series() -> None:
    def labels(state: str, slo: str, severity: str, long: str, short: str, rate: str) -> dict[str, str]:
        return {
            "__name__": "ALERTS", "alertname": "SLOErrorBudgetBurn", "alertstate": state, "slo": slo,
            "severity": severity, "long_window": long, "short_window": short, "burn_rate": rate,
        }  # fmt: skip

    reply = vector_reply(
        (labels("pending", "latency", "ticket", "3d", "6h", "0.9333333333"), "1"),
        (labels("firing", "availability", "page", "1h", "5m", "13.44"), "1"),
        (labels("firing", "availability", "page", "6h", "30m", "garbage"), "1"),
    )
    with fake_prometheus(reply) as fake:
        got = _source(fake.url).alerts(AS_OF)
    assert fake.seen[0]["params"]["query"] == ['ALERTS{alertname="SLOErrorBudgetBurn"}']
    assert [(a.slo, a.state, a.long_window, a.factor) for a in got] == [
        ("availability", "firing", "1h", 13.44),
        ("availability", "firing", "6h", None),  # a factor that is not a number is unknown
        ("latency", "pending", "3d", 0.9333333333),
    ]
    assert [a.firing for a in got] == [True, True, False]
    weird = vector_reply((labels("weird", "x", "page", "1h", "5m", "1"), "1"))
    with fake_prometheus(weird) as fake, pytest.raises(PromSourceError, match="alertstate 'weird'"):
        _source(fake.url).alerts(AS_OF)


def _cli(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "ARBOR_METRICS_PORT": "0", "ARBOR_PROMETHEUS_URL": url,
        "ARBOR_PROMETHEUS_TIMEOUT_S": "2",
    }  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "engine", "slo", "report", "--source", "prometheus", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip


def test_cli_report_from_prometheus(tmp_path: Path) -> None:
    def answer(query: str) -> Reply:
        if "sum by (task)" in query:
            return vector_reply(
                ({"arbor_part": "t", "task": "game24"}, "200"), ({"arbor_part": "o", "task": "game24"}, "4")
            )
        return _parts(**{f"t{i}": "200" for i in range(7)}, **{f"o{i}": "4" for i in range(7)})

    with fake_prometheus() as fake:
        fake.reply = answer
        out = _cli("--as-of", str(AS_OF), "--format", "json", url=fake.url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["source"] == "prometheus" and doc["as_of"] == AS_OF
    a = next(s for s in doc["slos"] if s["name"] == "availability")
    # 4 bad of 200 in every window: burn (4/200)/0.01 = 2; budget remaining 1 - 2 = -1
    assert (a["total"], a["bad"], a["budget_remaining"]) == (200, 4, pytest.approx(-1.0))
    assert list(a["burn_rates"].values()) == pytest.approx([2.0] * 6)
    assert a["attribution"] == {"task": {"game24": 1.0}}
    assert set(a["attribution_unavailable"]) == {"agent", "provider", "router", "variant"}


def test_cli_html_from_prometheus_draws_its_charts_from_prometheus(tmp_path: Path) -> None:
    def route(path: str, params: dict[str, list[str]]) -> Reply:
        query = params["query"][0]
        if path.endswith("/query_range"):
            start, end, step = (float(params[k][0]) for k in ("start", "end", "step"))
            times = [round(start + k * step, 3) for k in range(round((end - start) / step) + 1)]
            return matrix_reply(({"arbor_part": "t"}, [(t, "10") for t in times]))
        if "sum by (task)" in query:
            return vector_reply(({"arbor_part": "t", "task": "game24"}, "200"))
        return _parts(**{f"t{i}": "200" for i in range(7)})

    with fake_prometheus() as fake:
        fake.route = route
        out = _cli("--as-of", str(AS_OF), "--format", "html", url=fake.url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert sum(s["path"] == "/api/v1/query_range" for s in fake.seen) >= 3  # each SLO's charts
    start = out.stdout.index('<script type="application/json" id="review-data">')
    data = out.stdout[start:].split(">", 1)[1].split("</script>", 1)[0]
    doc = json.loads(data)
    assert doc["source"] == "prometheus" and doc["golden"] is None  # no store here: no golden status
    assert [s["total"] for s in doc["slos"]] == [200, 200, 200]


def test_cli_prometheus_down_is_one_line(tmp_path: Path) -> None:
    out = _cli("--as-of", str(AS_OF), url=f"http://127.0.0.1:{free_port()}", cwd=tmp_path)
    assert out.returncode == 5
    assert "is unreachable" in out.stderr and "nothing to report" in out.stderr
    assert "Traceback" not in out.stderr


def test_scrape_status() -> None:
    with fake_prometheus(_parts(ts="1800000001.5", up="0")) as fake:
        status = _source(fake.url).scrape_status("arbor", AS_OF)
    assert (status.job, status.last_scrape_ts, status.up) == ("arbor", 1800000001.5, False)
    assert 'timestamp(up{job="arbor"})' in fake.seen[0]["params"]["query"][0]
    with fake_prometheus(vector_reply()) as fake:  # never scraped (in the lookback)
        status = _source(fake.url).scrape_status("arbor", AS_OF)
    assert (status.last_scrape_ts, status.up) == (None, None)
    with fake_prometheus(_parts(up="2")) as fake, pytest.raises(PromSourceError, match=r"up of 2\.0"):
        _source(fake.url).scrape_status("arbor", AS_OF)
    with pytest.raises(ValueError, match="not a scrape job name"):
        _source("http://127.0.0.1:9").scrape_status('arbor"} or vector(1) or {x="', AS_OF)
