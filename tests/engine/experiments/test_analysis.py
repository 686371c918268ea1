"""analyze() against figures worked out in Python from the rows written (numpy, scipy,
statsmodels), the SLO burn per variant by hand, the row path (as_of) against the sums path, and
the CLI: analyze --json's stable shape, report md/json, errors as one line."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from engine.experiments import assign, parse_spec, stats
from engine.experiments.analysis import analyze
from observability.slo.models import load_slos
from observability.store import Store

ROOT = Path(__file__).resolve().parents[3]
T0 = 1_800_000_000.0
SPEC_TEXT = """\
id: exp
hypothesis: b is better
variants:
  - {name: a, weight: 0.5, overrides: {mcts_iterations: 200}}
  - {name: b, weight: 0.5, overrides: {mcts_iterations: 1000}}
baseline: a
workload: {file: data/workloads/connect4_tactics.jsonl}
primary_metric: correctness
secondary_metrics: [latency]
guardrails:
  - {metric: errors}
  - {metric: slo_burn, slo: latency, max_burn_rate: 1.0}
target_mde: 0.1
cuped: false
"""
SPEC = parse_spec(SPEC_TEXT, slo_names=("latency",))


def _fill(path: Path, units: int = 400, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    requests, exposures = [], []
    for i in range(units):
        unit = f"u{i}"
        a = assign(SPEC.salt_value, SPEC.id, unit, SPEC.variant_names, SPEC.weights)
        t = T0 + i * 45.0
        exposures.append(
            {
                "experiment": "exp",
                "unit": unit,
                "variant": a.variant,
                "bucket": a.bucket,
                "request_id": f"{unit}-0",
                "ts": t,
            }
        )
        for k in range(int(rng.integers(1, 4))):
            good = rng.random() < (0.5 if a.variant == "a" else 0.65)
            requests.append(
                {
                    "request_id": f"{unit}-{k}",
                    "ts": t + k,
                    "experiment": "exp",
                    "variant": a.variant,
                    "user_id": unit,
                    "latency_ms": float(rng.lognormal(5.5 if a.variant == "a" else 6.2, 0.5)),
                    "verdict": "correct" if good else "incorrect",
                    "status": "error" if rng.random() < 0.05 else "ok",
                }
            )
    with Store(path, threaded=False) as store:
        store.submit("exposures", exposures)
        store.submit("requests", requests)
        store.flush()
    return requests


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("analysis") / "arbor.db"
    return path, _fill(path)


def _unit_values(rows: list[dict[str, Any]], variant: str, metric: str) -> np.ndarray:
    per: dict[str, list[float]] = {}
    for r in rows:
        if r["variant"] != variant:
            continue
        v = {
            "correctness": 1.0 if r["verdict"] == "correct" else 0.0,
            "latency": r["latency_ms"],
            "errors": 1.0 if r["status"] == "error" else 0.0,
        }[metric]
        per.setdefault(r["user_id"], []).append(v)
    return np.array([np.mean(v) for v in per.values()])


def test_results_match_python_scipy_statsmodels(filled: tuple[Path, list[dict[str, Any]]]) -> None:
    path, rows = filled
    with sqlite3.connect(path) as conn:
        an = analyze(conn, SPEC, slos=load_slos())
    assert an.source == "sums" and not an.srm.mismatch
    p_values = []
    for metric in ("correctness", "latency", "errors"):
        ya, yb = _unit_values(rows, "a", metric), _unit_values(rows, "b", metric)
        m = an.metric(metric)
        assert m is not None
        b = m.variant("b")
        assert b is not None and b.absolute is not None and b.absolute.ci is not None
        assert b.n == len(yb) and b.mean == pytest.approx(yb.mean(), rel=1e-9)
        welch = sps.ttest_ind(yb, ya, equal_var=False)
        assert b.p_value == pytest.approx(welch.pvalue, rel=1e-6)
        assert b.absolute.estimate == pytest.approx(yb.mean() - ya.mean(), rel=1e-9)
        assert not b.cuped_applied and b.cuped_reason == "CUPED is off in the spec"
        ref = stats.mean_test(stats.Summary.from_values(ya), stats.Summary.from_values(yb), relative=True)
        assert b.relative is not None and b.relative.estimate == pytest.approx(ref.estimate, rel=1e-9)
        p_values.append(welch.pvalue)
    holm = multipletests(p_values, method="holm")[1]
    for metric, adj in zip(("correctness", "latency", "errors"), holm, strict=True):
        got = an.metric(metric).variant("b").adjusted_p  # type: ignore[union-attr]
        assert got == pytest.approx(adj, rel=1e-6)
    # the 2 x k chi-square beside correctness, of the requests (not the units)
    table = [
        [
            sum(r["verdict"] == "correct" for r in rows if r["variant"] == v),
            sum(r["verdict"] == "incorrect" for r in rows if r["variant"] == v),
        ]
        for v in ("a", "b")
    ]
    chi = sps.chi2_contingency(np.array(table).T, correction=False)
    cs = an.metric("correctness").chi_square  # type: ignore[union-attr]
    assert cs is not None and cs.p_value == pytest.approx(chi.pvalue, rel=1e-9)


def test_slo_burn_per_variant_by_hand(filled: tuple[Path, list[dict[str, Any]]]) -> None:
    path, rows = filled
    slo = next(s for s in load_slos() if s.name == "latency")
    threshold = slo.threshold_seconds * 1000  # type: ignore[operator]
    with sqlite3.connect(path) as conn:
        an = analyze(conn, SPEC, slos=[slo])
    for burn in an.slo_burn:
        mine = [r for r in rows if r["variant"] == burn.variant]
        bad = sum(r["latency_ms"] > threshold for r in mine)
        assert (burn.total, burn.bad) == (len(mine), bad)
        assert burn.burn_rate == pytest.approx(bad / len(mine) / (1 - slo.objective), rel=1e-12)


def test_row_path_matches_sums_path(filled: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = filled
    with sqlite3.connect(path) as conn:
        fast = analyze(conn, SPEC, slos=load_slos())
        last = conn.execute("SELECT MAX(ts) FROM requests").fetchone()[0]
        early = analyze(conn, SPEC, as_of=last - 1.0, slos=load_slos())
        slow_all = analyze(conn, SPEC, as_of=last + 120, slos=load_slos())
    assert early.source == "rows" and early.notes
    assert slow_all.source == "sums"
    fb = fast.metric("latency").variant("b")  # type: ignore[union-attr]
    eb = early.metric("latency").variant("b")  # type: ignore[union-attr]
    assert eb is not None and fb is not None and eb.n <= fb.n
    series = fast.series["b"]
    assert series[-1].estimate == pytest.approx(fast.metric("correctness").variant("b").relative.estimate)  # type: ignore[union-attr]
    assert [p.ts for p in series] == sorted(p.ts for p in series)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "experiment", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )


def test_cli_analyze_json_shape_and_report(filled: tuple[Path, list[dict[str, Any]]], tmp_path: Path) -> None:
    path, _ = filled
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC_TEXT)
    done = _cli("analyze", str(spec), "--db", str(path), "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert set(out) == {
        "experiment",
        "as_of",
        "start_ts",
        "source",
        "baseline",
        "alpha",
        "target_mde",
        "sequential",
        "srm",
        "results",
        "chi_square",
        "slo_burn",
        "series",
        "decision",
        "notes",
    }
    assert set(out["results"][1]) == {
        "metric",
        "role",
        "variant",
        "baseline",
        "n",
        "mean",
        "lift",
        "lift_ci",
        "rel_lift",
        "rel_lift_ci",
        "p_value",
        "adjusted_p",
        "cuped",
        "cuped_reason",
        "achieved_mde",
        "mde_reached",
        "chance_to_win",
        "error",
    }
    assert out["decision"]["action"] in ("ship", "roll_back", "keep_running")
    assert [r["metric"] for r in out["results"]] == ["correctness"] * 2 + ["latency"] * 2 + ["errors"] * 2
    md = tmp_path / "report.md"
    done = _cli("report", str(spec), "--db", str(path), "--out", str(md))
    assert done.returncode == 0, done.stderr
    assert md.read_text().startswith("# Experiment exp") and "## Decision" in md.read_text()
    table = _cli("analyze", str(spec), "--db", str(path))
    assert "| correctness | b |" in table.stdout and "decision:" in table.stdout


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "exp.yaml"
    spec.write_text(SPEC_TEXT)
    missing = _cli("analyze", str(spec), "--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 4 and "Traceback" not in missing.stderr and "no store" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\n")
    invalid = _cli("analyze", str(bad), "--db", str(tmp_path / "nope.db"))
    assert invalid.returncode == 2 and "Traceback" not in invalid.stderr


def test_cuped_from_sums_equals_cuped_from_rows(tmp_path: Path) -> None:
    from engine.experiments import metric_summaries
    from tests.engine.experiments.test_aggregate import SPEC as HISTORY_SPEC
    from tests.engine.experiments.test_aggregate import _fill as fill_with_history

    path = tmp_path / "arbor.db"
    fill_with_history(path)
    with sqlite3.connect(path) as conn:
        an = analyze(conn, HISTORY_SPEC, slos=[])
        rows = metric_summaries(conn, "exp", "latency")
    ref = stats.cuped_test(rows["a"].covariate, rows["b"].covariate)
    got = an.metric("latency").variant("b")  # type: ignore[union-attr]
    assert got is not None and got.cuped_applied and ref.applied
    assert got.absolute is not None and got.absolute.estimate == pytest.approx(ref.test.estimate, rel=1e-9)
    assert got.p_value == pytest.approx(ref.test.p_value, rel=1e-6)
    assert got.variance_reduction == pytest.approx(ref.variance_reduction, rel=1e-6)


def test_cuped_off_with_the_reason_without_history(filled: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = filled
    with sqlite3.connect(path) as conn:
        an = analyze(conn, SPEC.model_copy(update={"cuped": True}), slos=[])
    b = an.metric("latency").variant("b")  # type: ignore[union-attr]
    assert b is not None and not b.cuped_applied
    assert b.cuped_reason == "no unit has history in the 7 days before the start"
