"""The SLO review (engine/slo_report.py) and ``python -m engine slo report``, on a store whose
counts are known; expected figures are worked out by hand in the comments.

The store (``_fill``), for as_of = AS_OF:

* 1000 ok requests ten days back (``AS_OF - 10d + i x 60 s``, i = 0..999): in the 28d period only;
* 20 requests in the last ten minutes, at ``AS_OF - 30 s x k`` (k = 1..20), two of them errors
  (k = 1 and k = 15); every request takes 100 ms and has no verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.slo_report import build_report, render_markdown, report_json
from observability.slo.models import load_slos
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import ReadModel, RequestRow, Store

ROOT = Path(__file__).resolve().parents[2]
AS_OF = 1_800_000_000.0
D = 86400.0
SLO_KEYS = {
    "name", "kind", "objective", "window_s", "threshold_s", "total", "bad", "sli", "budget_remaining",
    "burn_rates", "alerts", "time_to_exhaustion_s", "attribution",
}  # fmt: skip
DIMENSIONS = {"task", "agent", "provider", "router", "variant"}


def _fill(path: Path) -> None:
    with Store(path, threaded=False) as s:
        rows = [
            RequestRow(f"old{i}", ts=AS_OF - 10 * D + i * 60, status="ok", latency_ms=100.0, task="game24")
            for i in range(1000)
        ]
        for k in range(1, 21):
            error = k in (1, 15)
            rows.append(
                RequestRow(
                    f"new{k}",
                    ts=AS_OF - 30.0 * k,
                    status="error" if error else "ok",
                    latency_ms=100.0,
                    task="tictactoe" if k == 15 else "game24",
                    agents_used=["trm"] if k == 15 else ["hrm", "mcts"],
                    provider=None if k == 15 else "mock",
                    router="rules",
                    variant=None if k == 15 else "A",
                )
            )
        s.submit("requests", [r._asdict() for r in rows])
        s.flush()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slo_report") / "arbor.db"
    _fill(path)
    return path


def _availability(report_dict: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in report_dict["slos"] if s["name"] == "availability")


def test_report_figures_by_hand(db: Path) -> None:
    report = build_report(load_slos(), SqliteSLOSource(ReadModel(db)), AS_OF)
    out = report_json(report)
    assert out["as_of"] == AS_OF and out["source"] == "sqlite"
    assert out["period_s"] == 28 * D  # every SLO of data/slos.yaml has a 28d window
    a = _availability(out)
    # 28d period: 1000 + 20 = 1020 served, 2 errors. SLI 1018/1020; budget remaining
    # 1 - (2/1020)/0.01 = 1 - 0.196078 = 0.803922.
    assert (a["total"], a["bad"]) == (1020, 2)
    assert a["sli"] == pytest.approx(1018 / 1020)
    assert a["budget_remaining"] == pytest.approx(0.8039216, rel=1e-6)
    # 5m: k = 1..9 (k = 10 sits exactly at as_of - 300 s: out), 1 error: (1/9)/0.01 = 11.11.
    # 30m .. 3d: all 20 recent ones, 2 errors: (2/20)/0.01 = 10.
    assert a["burn_rates"] == pytest.approx(
        {"5m": 100 / 9, "30m": 10.0, "1h": 10.0, "6h": 10.0, "1d": 10.0, "3d": 10.0}
    )
    # 28d factors 13.44, 5.6, 0.9333333333: page 1h/5m (10, 11.1) no; page 6h/30m (10, 10) fires;
    # ticket 3d/6h (10, 10) fires.
    assert a["alerts"] == [
        {"severity": "page", "long": "1h", "short": "5m", "factor": 13.44, "firing": False},
        {"severity": "page", "long": "6h", "short": "30m", "factor": 5.6, "firing": True},
        {"severity": "ticket", "long": "3d", "short": "6h", "factor": 0.9333333333, "firing": True},
    ]
    # Exhaustion at the 1h burn 10: 0.8039216 x 2419200 s / 10 = 0.8039216 x 241920 = 194484.7 s
    # (2 d 6 h 1 m).
    assert a["time_to_exhaustion_s"] == pytest.approx(194484.7, rel=1e-6)
    # The two errors: k = 1 (game24, last agent mcts, mock, rules, A), k = 15 (tictactoe, trm,
    # no provider, rules, no variant).
    assert a["attribution"] == {
        "task": {"game24": 0.5, "tictactoe": 0.5},
        "agent": {"mcts": 0.5, "trm": 0.5},
        "provider": {"(none)": 0.5, "mock": 0.5},
        "router": {"rules": 1.0},
        "variant": {"(none)": 0.5, "A": 0.5},
    }
    by_name = {s["name"]: s for s in out["slos"]}
    # Latency: every request 100 ms < 500 ms: no bad event, burn 0 -> no time to exhaustion.
    lat = by_name["latency"]
    assert (lat["total"], lat["bad"], lat["budget_remaining"], lat["threshold_s"]) == (1020, 0, 1.0, 0.5)
    assert lat["time_to_exhaustion_s"] is None
    assert lat["attribution"] == {d: {} for d in DIMENSIONS}
    # Quality: no verdicts at all -> no traffic: null, not 0 or 1.
    q = by_name["quality"]
    assert (q["total"], q["bad"], q["sli"], q["budget_remaining"]) == (0, 0, None, None)
    assert q["burn_rates"] == dict.fromkeys(("5m", "30m", "1h", "6h", "1d", "3d"))
    assert not any(alert["firing"] for alert in q["alerts"])


def test_report_over_a_shorter_period(db: Path) -> None:
    # --period 1h: the 20 recent requests, 2 errors: remaining 1 - 10 = -9, spent: no exhaustion.
    report = build_report(load_slos(), SqliteSLOSource(ReadModel(db)), AS_OF, timedelta(hours=1))
    a = _availability(report_json(report))
    assert report.period_s == 3600.0
    assert (a["total"], a["bad"]) == (20, 2)
    assert a["budget_remaining"] == pytest.approx(-9.0)
    assert a["time_to_exhaustion_s"] is None
    # The alert factors still come from the SLO's 28d window.
    assert [x["factor"] for x in a["alerts"]] == [13.44, 5.6, 0.9333333333]


def test_markdown(db: Path) -> None:
    text = render_markdown(build_report(load_slos(), SqliteSLOSource(ReadModel(db)), AS_OF))
    assert text.startswith("# SLO review, as of 2027-01-15 08:00 UTC")
    assert (
        "| Availability | 99.000 % | 99.804 % | 1,020 | 2 | 80.4 % | met | page 6h/30m, ticket 3d/6h |"
        in text
    )
    assert "| page | 6h / 30m | 5.6 | 10.00 | 10.00 | **firing** |" in text
    assert "time to exhaustion at the 1h burn rate: 2d 6h." in text  # 194484.7 s = 2 d 6 h 1 m
    assert "| task | game24 50.0 %, tictactoe 50.0 % |" in text
    assert "No events in the period: nothing to judge." in text  # quality


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARBOR_METRICS_PORT": "0"}
    return subprocess.run(
        [sys.executable, "-m", "engine", "slo", "report", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_cli_json_shape(db: Path, tmp_path: Path) -> None:
    out = _cli("--db", str(db), "--as-of", str(AS_OF), "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert set(doc) == {"as_of", "period_s", "source", "golden", "slos"}
    assert doc["golden"] is None  # no golden-suite run recorded in this store
    assert (doc["as_of"], doc["period_s"], doc["source"]) == (AS_OF, 28 * D, "sqlite")
    assert [s["name"] for s in doc["slos"]] == ["availability", "latency", "quality"]
    for slo in doc["slos"]:
        assert set(slo) == SLO_KEYS
        assert list(slo["burn_rates"]) == ["5m", "30m", "1h", "6h", "1d", "3d"]
        assert all(set(a) == {"severity", "long", "short", "factor", "firing"} for a in slo["alerts"])
        assert set(slo["attribution"]) == DIMENSIONS
    assert _availability(doc)["bad"] == 2
    # --period and --out: the file gets the document, stdout says where it went.
    target = tmp_path / "review.json"
    out = _cli(
        "--db",
        str(db),
        "--as-of",
        str(AS_OF),
        "--period",
        "1h",
        "--format",
        "json",
        "--out",
        str(target),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert str(target) in out.stdout
    assert json.loads(target.read_text())["period_s"] == 3600.0


def test_cli_markdown(db: Path, tmp_path: Path) -> None:
    out = _cli("--db", str(db), "--as-of", str(AS_OF), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("# SLO review")
    assert "| Availability |" in out.stdout


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--source", "prometheus"], 2, "--source prometheus is not yet available"),
        (["--period", "4x"], 2, "argument --period: not a Prometheus duration"),
        (["--as-of", "soon"], 2, "argument --as-of"),
        (["--db", "missing.db"], 4, "no telemetry store at missing.db"),
        (["--out", "no/such/dir/review.md"], 2, "cannot write no/such/dir/review.md"),
    ],
)
def test_cli_errors(db: Path, tmp_path: Path, args: list[str], status: int, message: str) -> None:
    full = (
        ["--db", str(db), "--as-of", str(AS_OF), *args]
        if "--db" not in args
        else ["--as-of", str(AS_OF), *args]
    )
    out = _cli(*full, cwd=tmp_path)
    assert out.returncode == status
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_cli_bad_slo_file_names_the_field(db: Path, tmp_path: Path) -> None:
    bad = tmp_path / "slos.yaml"
    text = (ROOT / "data" / "slos.yaml").read_text().replace("objective: 0.99", "objective: 1.0", 1)
    bad.write_text(text)
    out = _cli("--db", str(db), "--slos", str(bad), cwd=tmp_path)
    assert out.returncode == 2
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "objective: 1.0" in t)
    assert f"{bad}:{line}: slos[0].objective: Input should be less than 1" in out.stderr
    assert "Traceback" not in out.stderr


def test_markdown_compares_with_the_period_before(db: Path) -> None:
    # --period 5m: now k = 1..9, 1 error: remaining 1 - (1/9)/0.01 = -10.111 (-1011.1 %);
    # the 5m before, (as_of - 600, as_of - 300]: k = 10..19 (k = 20 sits exactly at as_of - 600:
    # out), 10 requests, 1 error (k = 15): 1 - (1/10)/0.01 = -9 (-900.0 %).
    report = build_report(load_slos(), SqliteSLOSource(ReadModel(db)), AS_OF, timedelta(minutes=5))
    assert report.slos[0].previous_budget_remaining == pytest.approx(-9.0)
    text = render_markdown(report)
    assert "-1011.1 % remaining, 1111.1 % consumed (the 5m before: -900.0 % remaining)" in text
    # Nothing before the 28d period: unknown.
    full = render_markdown(build_report(load_slos(), SqliteSLOSource(ReadModel(db)), AS_OF))
    assert "(the 28d before: n/a remaining)" in full


def test_report_on_engine_traffic_matches_the_load_summary(tmp_path: Path) -> None:
    # The real engine on a simulated clock with injected errors; the load summary's own counts
    # (ok, errors) are the oracle for the availability SLO over a period covering the whole run.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "ARBOR_METRICS_PORT": "0",
        "ARBOR_DB_PATH": str(tmp_path / "a.db"),
    }
    load = subprocess.run(
        [sys.executable, "-m", "engine", "load", "--clock", "simulated", "--days", "2", "--requests", "120",
         "--faults", "error=0.1", "--seed", "3", "--workload", str(ROOT / "data/workloads/mixed.jsonl")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert load.returncode == 0, load.stderr
    summary = json.loads(load.stdout.strip().splitlines()[-1])
    assert summary["errors"] > 0
    out = subprocess.run(
        [sys.executable, "-m", "engine", "slo", "report", "--format", "json", "--period", "3d",
         "--as-of", str(summary["last_ts"])],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    a = _availability(json.loads(out.stdout))
    assert (a["total"], a["bad"]) == (summary["ok"] + summary["errors"], summary["errors"])
    assert sum(a["attribution"]["task"].values()) == pytest.approx(1.0)


def test_each_slo_over_its_own_window_when_windows_differ(db: Path, tmp_path: Path) -> None:
    # The latency SLO on a 7d window, the others 28d, no --period: period_s is null and each SLO
    # is over its own window: latency 7d holds only the 20 recent requests (the 1000 old ones are
    # 10 days back), availability 28d all 1020.
    slos = tmp_path / "slos.yaml"
    text = (ROOT / "data" / "slos.yaml").read_text()
    head, latency, tail = text.partition("  - name: latency")
    slos.write_text(head + latency + tail.replace("timeWindow: 28d", "timeWindow: 7d", 1))
    out = _cli("--db", str(db), "--as-of", str(AS_OF), "--format", "json", "--slos", str(slos), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["period_s"] is None
    by_name = {s["name"]: s for s in doc["slos"]}
    assert (by_name["latency"]["window_s"], by_name["latency"]["total"]) == (7 * D, 20)
    assert (by_name["availability"]["window_s"], by_name["availability"]["total"]) == (28 * D, 1020)
    # The 7d window's alert factors: 0.02 x 168 = 3.36, 0.05 x 28 = 1.4, 0.1 x 168/72 = 0.2333333333.
    assert [a["factor"] for a in by_name["latency"]["alerts"]] == [3.36, 1.4, 0.2333333333]


def test_cli_store_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not a database\n" * 100)
    out = _cli("--db", str(junk), "--as-of", str(AS_OF), cwd=tmp_path)
    assert out.returncode == 4
    assert "the telemetry store failed" in out.stderr
    assert "Traceback" not in out.stderr
    assert junk.read_text() == "not a database\n" * 100  # read only: untouched
