"""AppTest of the SLO page with the Prometheus source: a fake Prometheus answers the source's
queries with counts chosen here, and the page's tiles, charts, alert table and sidebar badge
show them (worked out by hand below); garbage and an unreachable server are messages.

The fake answers every window of every SLO with 2000 events, 20 on the SLO's bad (or, for
latency, good) side:

* availability (99 %, bad = 20): SLI 99 %, burn (20 / 2000) / 0.01 = 1, budget remaining 0.00 %;
* latency (95 %, good = 20): bad 1980, SLI 1 %, burn 0.99 / 0.05 = 19.8, remaining -1880.00 %;
* quality (98 %, bad = 20): SLI 99 %, burn 0.01 / 0.02 = 0.5, remaining 50.00 %.

The store (tests/app/test_slo_page.py's) holds 10 simulated requests in the period, which the
page must say exist only in SQLite.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.console import open_page
from tests.app.shown import shown
from tests.app.test_slo_page import AS_OF, _fill
from tests.observability.conftest import free_port
from tests.observability.fake_prometheus import Reply, fake_prometheus, matrix_reply, vector_reply

PAGE = "../pages/slos.py"
SCRAPED = 1_800_000_100.0  # 2027-01-15 08:01:40 UTC


def _parts(**values: str) -> Reply:
    return vector_reply(*(({"arbor_part": k}, v) for k, v in values.items()))


def _alert(state: str, slo: str, severity: str, long: str, short: str, factor: str) -> dict[str, str]:
    return {
        "__name__": "ALERTS", "alertname": "SLOErrorBudgetBurn", "alertstate": state, "slo": slo,
        "severity": severity, "long_window": long, "short_window": short, "burn_rate": factor,
    }  # fmt: skip


def _route(path: str, params: dict[str, list[str]]) -> Reply:
    query = params["query"][0]
    if path.endswith("/query_range"):
        start, end, step = (float(params[k][0]) for k in ("start", "end", "step"))
        points = [(round(start + k * step, 3), "") for k in range(round((end - start) / step) + 1)]
        return matrix_reply(
            ({"arbor_part": "t"}, [(t, "10") for t, _ in points]),
            ({"arbor_part": "o"}, [(t, "1") for t, _ in points]),
        )
    if query == "vector(1)":
        return vector_reply(({}, "1"))
    if query.startswith("ALERTS{"):
        return vector_reply(
            (_alert("firing", "latency", "page", "1h", "5m", "13.44"), "1"),
            (_alert("pending", "latency", "ticket", "3d", "6h", "0.9333333333"), "1"),
        )
    if "timestamp(up" in query:
        return _parts(ts=str(SCRAPED), up="1")
    if "sum by (task)" in query:
        return vector_reply(
            ({"arbor_part": "t", "task": "game24"}, "1500"),
            ({"arbor_part": "t", "task": "connect4"}, "500"),
            ({"arbor_part": "o", "task": "game24"}, "15"),
            ({"arbor_part": "o", "task": "connect4"}, "5"),
        )
    return _parts(**{f"t{i}": "2000" for i in range(7)}, **{f"o{i}": "20" for i in range(7)})


def _open(params: dict[str, str]) -> AppTest:
    at = open_page(PAGE, params)
    at.radio(key="slo_source").set_value("prometheus").run()
    assert not at.exception, at.exception
    return at


def _tiles(at: AppTest) -> list[dict[str, str]]:
    metrics = [(m.label, m.value) for m in at.metric][:12]
    return [dict(metrics[k : k + 4]) for k in range(0, 12, 4)]


def test_prometheus_source_tiles_alerts_and_badge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fill(tmp_path / "arbor.db")
    with fake_prometheus() as fake:
        fake.route = _route
        monkeypatch.setenv("ARBOR_PROMETHEUS_URL", fake.url)
        at = _open({"slo": "latency", "as_of": str(int(AS_OF))})
        seen = [s["params"].get("time", [""])[0] for s in fake.seen if s["path"] == "/api/v1/query"]
    keys = ("Objective", "SLI", "Budget remaining", "Events / bad")
    assert _tiles(at) == [
        dict(zip(keys, ("95 %", "1 %", "-1880.00 %", "2,000 / 1,980"), strict=True)),
        dict(zip(keys, ("99 %", "99 %", "0.00 %", "2,000 / 20"), strict=True)),
        dict(zip(keys, ("98 %", "99 %", "50.00 %", "2,000 / 20"), strict=True)),
    ]
    assert f"{AS_OF:.3f}" in seen  # the figures were asked for at as_of
    captions = " ".join(shown(c.value) for c in at.caption).replace("**", "")
    assert (
        f"Source: Prometheus at `{fake.url}`: reachable; last scrape of job `arbor` at 2027-01-15 08:01:40"
        in captions
    )
    assert "Every figure comes from Prometheus" in captions
    assert "10 simulated requests" in captions and "simulated data exists only in SQLite" in captions
    assert (
        "No attribution by agent, provider, router, variant from this source: the SLO's metrics" in captions
    )
    # the Prometheus alerts of the chosen SLO, each with its runbook link
    table = next(
        d.value
        for d in at.dataframe
        if {"state", "runbook"} <= set(d.value.columns) and "long burn" not in d.value.columns
    )  # the burn-rate table has a runbook column too
    fast, slow = (
        "runbooks?name=runbook-error-budget-fast-burn",
        "runbooks?name=runbook-error-budget-slow-burn",
    )
    assert table.to_dict("records") == [
        {"severity": "page", "windows (long / short)": "1h / 5m", "factor": 13.44, "state": "firing",
         "runbook": fast},
        {"severity": "ticket", "windows (long / short)": "3d / 6h", "factor": 0.9333333333,
         "state": "pending", "runbook": slow},
    ]  # fmt: skip
    # the badge counts Prometheus' firing alerts (one) and says so
    badges = [e.value for e in at.sidebar.error if "firing" in e.value]
    assert badges == ["1 alert firing in Prometheus: see the alerts on the SLOs page."]
    # the burn chart's series come from the range queries: 10 events, 1 bad... of the good side
    # for latency: bad 9 of 10 per bucket -> burn 0.9 / 0.05 = 18 at every point
    burn = next(c for c in at.get("plotly_chart") if "Burn rate" in c.proto.spec)
    data = json.loads(burn.proto.spec)["data"]
    assert {round(y, 6) for y in data[0]["y"]} == {18.0}


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (Reply(b"<html>", content_type="text/html"), "answered something unusable"),
        (None, "is unreachable"),
    ],
)
def test_prometheus_trouble_is_a_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reply: Reply | None, problem: str
) -> None:
    _fill(tmp_path / "arbor.db")
    monkeypatch.setenv("ARBOR_PROMETHEUS_TIMEOUT_S", "2")
    if reply is None:
        monkeypatch.setenv("ARBOR_PROMETHEUS_URL", f"http://127.0.0.1:{free_port()}")
        at = _open({"as_of": str(int(AS_OF))})
    else:
        with fake_prometheus(reply) as fake:
            monkeypatch.setenv("ARBOR_PROMETHEUS_URL", fake.url)
            at = _open({"as_of": str(int(AS_OF))})
    warnings = " ".join(shown(w.value) for w in at.warning)
    assert problem in warnings
    assert not at.metric  # no figure shown, none invented
    # switching back to SQLite shows the store's exact figures
    at.radio(key="slo_source").set_value("sqlite").run()
    assert not at.exception, at.exception
    assert [m.value for m in at.metric][3] == "100 / 10"
