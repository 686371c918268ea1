"""AppTest tests of the Experiments page (through the console's router).

The store is produced by running the real experiment runner with a few units against the real
engine.  Oracles: the results table's figures are compared with ``analysis.analyze`` of the same
store, and one lift (latency, CUPED off, fixed horizon) is recomputed independently with scipy's
Welch test from the per-unit means read with plain ``sqlite3``; the SRM banner is shown on a
mismatch built by inserting exposures by hand (chi-square by scipy); a hostile hypothesis stays
plain text; a bad spec in the editor is a message and writes nothing; a spec defined with the form
loads back (load_spec) with the variants and overrides entered, and weights not summing to 1 write
nothing.
"""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from urllib.parse import parse_qs

import pytest
import scipy.stats as sps
from streamlit.testing.v1 import AppTest

from engine import Engine
from engine.config import load_settings
from engine.experiments import load_spec
from engine.experiments.analysis import analyze
from engine.experiments.runner import run_experiment
from tests.app.shown import shown

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
PAGE = "../pages/experiments.py"
C4 = ROOT / "data" / "workloads" / "connect4_tactics.jsonl"
EXP = "page-test"
HOSTILE = (
    "Faster ![x](http://evil.example/p.png) <img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))"
)


def _spec_text(hypothesis: str = "a bigger budget is slower but more correct", exp_id: str = EXP) -> str:
    return f"""\
id: {exp_id}
hypothesis: {hypothesis!r}
variants:
  - name: small
    weight: 0.5
    overrides: {{mcts_iterations: 20, confidence_threshold: 1.0, max_steps: 1}}
  - name: big
    weight: 0.5
    overrides: {{mcts_iterations: 120, confidence_threshold: 1.0, max_steps: 1}}
workload: {{file: {C4}, queries_per_unit: 2, seed: 3}}
primary_metric: latency
secondary_metrics: [correctness]
target_mde: 0.1
cuped: false
"""


@pytest.fixture
def specs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The console's experiments directory (ARBOR_EXPERIMENTS_DIR) with one spec."""
    path = tmp_path / "experiments"
    path.mkdir()
    (path / f"{EXP}.yaml").write_text(_spec_text(), encoding="utf-8")
    monkeypatch.setenv("ARBOR_EXPERIMENTS_DIR", str(path))
    return path


def _run(specs: Path, tmp_path: Path, units: int) -> Path:
    """Run the spec with the real runner into the console's store; its path."""
    db = tmp_path / "arbor.db"  # ARBOR_DB_PATH (tests/app/conftest.py)
    spec = load_spec(specs / f"{EXP}.yaml", slo_names=())
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    try:
        report = run_experiment(engine, spec, units=units)
    finally:
        engine.close()
    assert report.units_complete == units
    return db


def open_page(params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=180)
    at.run()
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _frame(at: AppTest, column: str):
    return next(d.value for d in at.main.dataframe if column in d.value.columns)


def _unit_latencies(db: Path) -> dict[str, list[float]]:
    """Per variant, each exposed unit's mean latency over its served requests (plain SQL)."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT r.variant, r.user_id, AVG(r.latency_ms) FROM requests r "
            "JOIN exposures e ON e.experiment = r.experiment AND e.unit = r.user_id "
            "AND e.variant = r.variant "
            "WHERE r.experiment = ? AND r.status IN ('ok', 'error') GROUP BY r.variant, r.user_id",
            (EXP,),
        ).fetchall()
    finally:
        conn.close()
    out: dict[str, list[float]] = {}
    for variant, _unit, value in rows:
        out.setdefault(variant, []).append(float(value))
    return out


def test_results_table_equals_analysis_and_scipy_welch(specs: Path, tmp_path: Path) -> None:
    db = _run(specs, tmp_path, units=8)
    at = open_page()
    listing = _frame(at, "primary metric")
    row = listing[listing["id"] == EXP].iloc[0]
    assert (row["units"], row["requests"], row["primary metric"]) == (8, 16, "latency")

    spec = load_spec(specs / f"{EXP}.yaml", slo_names=())
    analysis = analyze(db, spec)
    table = _frame(at, "Holm p")
    for m in analysis.metrics:
        for v in m.variants:
            name = f"{v.variant} (baseline)" if v.is_baseline else v.variant
            shown_row = table[(table["metric"] == m.metric) & (table["variant"] == name)].iloc[0]
            assert shown_row["n"] == v.n
            assert shown_row["mean"] == format(v.mean, ".4g")
            if v.is_baseline:
                assert shown_row["p"] == "" and shown_row["lift"] == ""
                continue
            assert shown_row["p"] == ("" if v.p_value is None else format(v.p_value, ".3g"))
            assert shown_row["Holm p"] == ("" if v.adjusted_p is None else format(v.adjusted_p, ".3g"))
            if v.absolute is not None and v.absolute.estimate is not None:
                assert shown_row["lift"] == format(v.absolute.estimate, "+.4g")

    # independent oracle: Welch's t-test of the per-unit mean latencies, big against small
    units = _unit_latencies(db)
    small, big = units["small"], units["big"]
    welch = sps.ttest_ind(big, small, equal_var=False)
    lift = sum(big) / len(big) - sum(small) / len(small)
    low, high = welch.confidence_interval(0.95)
    latency = _frame(at, "Holm p")
    shown_big = latency[(latency["metric"] == "latency") & (latency["variant"] == "big")].iloc[0]
    assert shown_big["n"] == len(big)
    assert shown_big["lift"] == format(lift, "+.4g")
    assert shown_big["p"] == format(float(welch.pvalue), ".3g")
    assert shown_big["lift CI"] == f"{low:+.4g} .. {high:+.4g}"

    # decision panel: the action and every reason from decide()
    texts = [shown(m.value) for m in at.main.markdown]
    from engine.experiments.decision import decide

    decision = decide(analysis)
    for reason in decision.reasons:
        assert f"• {reason}" in texts
    # variant links to Traces
    links = {p.proto.label: parse_qs(p.proto.query_string) for p in at.main.get("page_link")}
    assert set(links) >= {"small", "big"}
    # this experiment's variant only: another experiment's "small" is not among its requests
    assert links["big"] == {"variant": ["big"], "experiment": [EXP]}
    assert not at.main.error


def test_srm_banner_on_a_constructed_mismatch(specs: Path, tmp_path: Path) -> None:
    db = _run(specs, tmp_path, units=4)
    conn = sqlite3.connect(db)
    try:
        counts = dict(
            conn.execute(
                "SELECT variant, COUNT(*) FROM exposures WHERE experiment = ? GROUP BY variant", (EXP,)
            ).fetchall()
        )
        # 60 more units exposed to "small" only: far from the 50/50 weights
        conn.executemany(
            "INSERT INTO exposures (experiment, request_id, variant, unit, bucket, ts) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(EXP, f"fake-{i}", "small", f"fake-unit-{i}", 0, 1.7e9 + i) for i in range(60)],
        )
        conn.commit()
    finally:
        conn.close()
    small, big = counts.get("small", 0) + 60, counts.get("big", 0)
    p = sps.chisquare([small, big], [(small + big) / 2] * 2).pvalue
    assert p < 0.001  # the oracle says this is a mismatch
    at = open_page()
    banners = [shown(e.value) for e in at.main.error]
    assert any(b.startswith("Sample ratio mismatch") and f"small: {small}" in b for b in banners), banners


def test_hostile_hypothesis_stays_plain(specs: Path) -> None:
    (specs / f"{EXP}.yaml").write_text(_spec_text(HOSTILE), encoding="utf-8")
    at = open_page()
    assert HOSTILE in [t.value for t in at.main.text]  # st.text: shown verbatim, never Markdown
    for element in [*at.main.markdown, *at.main.caption, *at.main.info, *at.main.error]:
        assert "![x](http" not in element.value and "<img" not in element.value


def test_bad_yaml_is_a_message_and_nothing_is_written(specs: Path) -> None:
    before = sorted(p.name for p in specs.iterdir())
    at = open_page()
    area = at.main.text_area(key=f"exp_yaml_{EXP}")
    area.set_value("id: Bad Id\nvariants: [\n").run()
    at.main.button(key="exp_save").click().run()
    errors = [shown(e.value) for e in at.main.error]
    assert any(e.startswith("The spec is invalid; nothing was written") for e in errors), errors
    assert sorted(p.name for p in specs.iterdir()) == before
    # a valid spec with a new id is written, and listed
    at.main.text_area(key=f"exp_yaml_{EXP}").set_value(_spec_text(exp_id="second-test")).run()
    at.main.button(key="exp_save").click().run()
    assert (specs / "second-test.yaml").is_file()
    assert [shown(s.value) for s in at.main.success] == ["Saved second-test.yaml."]


def test_bad_spec_file_is_listed_as_a_problem(specs: Path) -> None:
    (specs / "broken.yaml").write_text("id: x\nvariants: 3\n", encoding="utf-8")
    at = open_page()
    warnings = [shown(w.value) for w in at.main.warning]
    assert any("broken.yaml" in w for w in warnings), warnings
    assert list(_frame(at, "primary metric")["id"]) == [EXP]


def test_sample_size_rounds_up() -> None:
    at = open_page()
    at.main.number_input(key="exp_ss_mean").set_value(100.0)
    at.main.number_input(key="exp_ss_sd").set_value(30.0)
    at.main.number_input(key="exp_ss_mde").set_value(0.05).run()
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    expected = math.ceil(2 * z**2 * 30.0**2 / (0.05 * 100.0) ** 2)
    assert [m.value for m in at.main.metric] == [f"{expected:,}"]


def test_run_from_the_page_records_the_units(specs: Path, tmp_path: Path) -> None:
    at = open_page()
    at.main.number_input(key="exp_units").set_value(3)
    at.main.button(key="exp_run").click().run()
    assert not at.exception, at.exception
    done = [shown(s.value) for s in at.main.success]
    assert len(done) == 1 and done[0].startswith("3 of 3 units complete: 6 requests sent"), done
    conn = sqlite3.connect(tmp_path / "arbor.db")
    try:
        units = conn.execute("SELECT COUNT(*) FROM exposures WHERE experiment = ?", (EXP,)).fetchone()[0]
    finally:
        conn.close()
    assert units == 3
    at.run()
    row = _frame(at, "primary metric").iloc[0]
    assert (row["units"], row["requests"]) == (3, 6)


def test_run_refused_with_telemetry_off(specs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBOR_TELEMETRY", "off")
    at = open_page()
    assert at.main.button(key="exp_run").disabled
    assert any("Telemetry is off" in shown(c.value) for c in at.main.caption)


def _fill_form(at: AppTest, exp_id: str, weights: tuple[float, float]) -> None:
    at.main.text_input(key="exp_f_id").set_value(exp_id)
    at.main.text_area(key="exp_f_hypothesis").set_value("more iterations are more correct")
    at.main.selectbox(key="exp_f_workload").set_value("data/workloads/connect4_tactics.jsonl")
    at.main.selectbox(key="exp_f_metric").set_value("correctness")
    at.main.checkbox(key="exp_f_sequential").check()
    at.main.text_input(key="exp_f_v0_name").set_value("small")
    at.main.number_input(key="exp_f_v0_weight").set_value(weights[0])
    at.main.number_input(key="exp_f_v0_iter").set_value(20)
    at.main.selectbox(key="exp_f_v0_use_mcts").set_value("on")
    at.main.text_input(key="exp_f_v1_name").set_value("big")
    at.main.number_input(key="exp_f_v1_weight").set_value(weights[1])
    at.main.number_input(key="exp_f_v1_iter").set_value(120)
    at.main.selectbox(key="exp_f_v1_router").set_value("hybrid")
    at.main.number_input(key="exp_f_v1_conf").set_value(0.9)


def test_form_saves_a_spec_that_loads_back(specs: Path) -> None:
    at = open_page()
    _fill_form(at, "form-test", (0.25, 0.75))
    at.main.button(key="exp_f_save").click().run()
    assert not at.exception, at.exception
    assert [shown(s.value) for s in at.main.success] == ["Saved form-test.yaml."]
    spec = load_spec(specs / "form-test.yaml", slo_names=())
    assert spec.id == "form-test" and spec.primary_metric == "correctness" and spec.sequential
    assert spec.workload.file == "data/workloads/connect4_tactics.jsonl"
    assert [(v.name, v.weight, v.overrides.changes()) for v in spec.variants] == [
        ("small", 0.25, {"use_mcts": True, "mcts_iterations": 20}),
        ("big", 0.75, {"router": "hybrid", "mcts_iterations": 120, "confidence_threshold": 0.9}),
    ]


def test_form_weights_not_summing_to_one_write_nothing(specs: Path) -> None:
    before = sorted(p.name for p in specs.iterdir())
    at = open_page()
    _fill_form(at, "form-bad", (0.5, 0.3))
    at.main.button(key="exp_f_save").click().run()
    assert not at.exception, at.exception
    errors = [shown(e.value) for e in at.main.error]
    assert len(errors) == 1 and errors[0].startswith("The spec is invalid; nothing was written"), errors
    assert "variants" in errors[0] and "sum" in errors[0], errors
    assert sorted(p.name for p in specs.iterdir()) == before
