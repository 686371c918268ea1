"""AppTest tests of the Routing page, plus the pure routing chart builders."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app import charts, model_card, runtime
from engine import Engine
from engine.routing import FEATURE_NAMES, GRURouter, RouterUnavailable
from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
PAGE = "../pages/routing.py"
QUERY = "connect4: 4453"  # 14 characters


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


# The rules router's first step, by hand: every feature is 0 but query length, so
# z_hrm = 2 (first step), z_trm = 0, z_mcts = 0.5.
RULES_FIRST = dict(zip(("hrm", "trm", "mcts"), _softmax([2.0, 0.0, 0.5]), strict=True))


@pytest.fixture
def app(monkeypatch, tmp_path) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception
    return at


@pytest.fixture
def no_report(monkeypatch, tmp_path):
    monkeypatch.setattr(model_card, "ROUTER_REPORT", tmp_path / "absent.json")
    monkeypatch.setattr(model_card, "ROUTER_WEIGHTS", tmp_path / "absent.npz")


def _console_run(at: AppTest, query: str = QUERY, seed: int = 3) -> AppTest:
    at.text_area(key="query_text").set_value(query)
    at.number_input(key="query_seed").set_value(seed)
    at.number_input(key="query_iterations").set_value(300)
    at.selectbox(key="query_router").set_value("rules")
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.exception, at.exception
    return at


def _routing(at: AppTest) -> AppTest:
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _table(at: AppTest, first_column: str):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def _specs(at: AppTest) -> list[dict]:
    """The page's plotly figures as JSON."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _gru_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = {"W": (64, 10), "U": (64, 64), "b": (64,)}
    w = {f"{k}_{g}": rng.normal(0, 0.5, shapes[k]) for g in "zrh" for k in "WUb"}
    return {**w, "W_o": rng.normal(0, 1.0, (3, 64)), "b_o": rng.normal(0, 0.5, 3)}


def _gru_first_step(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The GRU's first step from h = 0, written out from its equations (independent of the engine)."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h0 = np.zeros(64)
    z = sig(w["W_z"] @ x + w["U_z"] @ h0 + w["b_z"])
    r = sig(w["W_r"] @ x + w["U_r"] @ h0 + w["b_r"])
    h = (1 - z) * h0 + z * np.tanh(w["W_h"] @ x + w["U_h"] @ (r * h0) + w["b_h"])
    logits = w["W_o"] @ h + w["b_o"]
    return np.exp(logits) / np.exp(logits).sum()


def test_without_a_run_the_page_says_what_to_do(app, no_report):
    at = _routing(app)
    assert at.title[0].value == "Routing"
    assert at.radio(key="routing_source").value == "Run a query here"
    at.radio(key="routing_source").set_value("Last Query console run").run()
    assert any("No Query console run" in i.value for i in at.info)
    assert any("No training report yet" in i.value for i in at.info)


def test_features_and_decisions_for_each_step_of_the_console_run(app, no_report):
    at = _routing(_console_run(app))
    result = at.session_state["query_result"]
    assert len(result.steps) >= 2 and result.steps[0].agent == "hrm"
    assert at.radio(key="routing_source").value == "Last Query console run"

    features = _table(at, "feature")
    assert list(features["feature"]) == list(FEATURE_NAMES)
    assert list(features.columns[1:]) == [f"step {i + 1}" for i in range(len(result.steps))]
    f1 = dict(zip(FEATURE_NAMES, features["step 1"], strict=True))
    # before step 1 nothing has run: only the query length (14 / 10000) is non-zero; games retrieve nothing
    assert f1 == pytest.approx({**dict.fromkeys(FEATURE_NAMES, 0.0), "query_length": 0.0014})
    f2 = dict(zip(FEATURE_NAMES, features["step 2"], strict=True))
    assert f2["last_agent_hrm"] == 1 and f2["last_agent_trm"] == f2["last_agent_mcts"] == 0
    assert f2["iteration"] == pytest.approx(1 / 20)
    assert f2["consensus_score"] == pytest.approx(1.0)  # one answer so far agrees with itself
    assert f2["hrm_confidence"] == pytest.approx(result.steps[0].confidence)

    decisions = _table(at, "step")
    assert list(decisions["chosen"]) == [s.agent for s in result.steps]
    first = decisions.iloc[0]
    for agent, p in RULES_FIRST.items():
        assert first[f"p({agent})"] == pytest.approx(p, abs=1e-4)
    assert first["reason"] == f"argmax: hrm at {RULES_FIRST['hrm']:.2f}"

    heatmap = next(spec for spec in _specs(at) if spec["data"][0]["type"] == "heatmap")
    assert heatmap["data"][0]["x"] == list(FEATURE_NAMES)
    assert len(heatmap["data"][0]["z"]) == len(result.steps)


def test_run_a_query_on_the_page(app, no_report):
    at = _routing(app)
    at.text_input(key="routing_text").set_value("24: 3 3 8 8")
    at.number_input(key="routing_seed").set_value(1)
    next(b for b in at.button if b.label == "Run query").click().run()
    assert not at.exception
    result = at.session_state["routing_result"]
    assert (result.answer, result.verdict) == ("8/(3-8/3)", "correct")
    assert list(_table(at, "feature").columns[1:]) == ["step 1"]


def test_routers_side_by_side(app, no_report, monkeypatch):
    weights = _gru_weights()
    engine = Engine(runtime.get_settings(), gru=GRURouter(weights))
    monkeypatch.setattr(runtime, "get_engine", lambda: engine)
    at = _routing(_console_run(app))
    at.button(key="routing_compare").click().run()
    assert not at.exception
    runs = {r.router: r for r in at.session_state["routing_comparison"][1]}
    assert list(runs) == ["rules", "gru", "hybrid"] and all(r.error is None for r in runs.values())
    assert all(r.result.seed == 3 and r.result.router == name for name, r in runs.items())
    headers = [m.value for m in at.markdown if m.value.startswith("####")]
    assert headers == ["#### rules", "#### gru", "#### hybrid"]
    # step 1 sees x = (0, ..., 0, query_length = 0.0014, 0): the hybrid is the mean of rules and gru
    x = np.zeros(10)
    x[8] = 14 / 10_000
    gru = dict(zip(("hrm", "trm", "mcts"), _gru_first_step(weights, x), strict=True))
    for agent in ("hrm", "trm", "mcts"):
        assert runs["rules"].result.steps[0].probabilities[agent] == pytest.approx(RULES_FIRST[agent])
        assert runs["gru"].result.steps[0].probabilities[agent] == pytest.approx(gru[agent])
        assert runs["hybrid"].result.steps[0].probabilities[agent] == pytest.approx(
            (RULES_FIRST[agent] + gru[agent]) / 2
        )
    assert sum("**Latency**" in m.value for m in at.markdown) == 3


def test_unavailable_routers_are_messages_beside_rules(app, no_report, monkeypatch):
    def no_weights(cls, path=None):
        raise RouterUnavailable("no trained GRU weights")

    monkeypatch.setattr(GRURouter, "load", classmethod(no_weights))
    engine = Engine(runtime.get_settings())
    monkeypatch.setattr(runtime, "get_engine", lambda: engine)
    at = _routing(_console_run(app))
    at.button(key="routing_compare").click().run()
    assert not at.exception
    assert [shown(w.value) for w in at.warning] == [
        "The gru router is unavailable: no trained GRU weights",
        "The hybrid router is unavailable: no trained GRU weights",
    ]
    rules = at.session_state["routing_comparison"][1][0]
    assert rules.router == "rules" and rules.result.answer == at.session_state["query_result"].answer


REPORT = {
    "model": {"architecture": "GRU 10->64, linear 3", "agents": ["hrm", "trm", "mcts"]},
    "data": {
        "queries": 100,
        "by_task": {"game24": 60, "tictactoe": 40},
        "train_queries": 80,
        "held_out_queries": 20,
        "train_steps": 120,
        "train_label_counts": {"hrm": 70, "trm": 40, "mcts": 10},
        "majority_class": "hrm",
    },
    "training": {"epochs": 10, "seed": 0},
    "held_out": {
        "steps": 30,
        "accuracy_gru": 0.8,
        "accuracy_rules": 0.5,
        "accuracy_majority": 0.6,
        "confusion_matrix": [[15, 2, 0], [3, 8, 0], [1, 0, 1]],
    },
}


def test_model_card_shows_the_training_report(app, monkeypatch, tmp_path):
    (tmp_path / "router_report.json").write_text(json.dumps(REPORT))
    (tmp_path / "router_report.md").write_text("# Router model card\n\nTrained on 100 queries.")
    (tmp_path / "router_gru.npz").write_bytes(b"")
    monkeypatch.setattr(model_card, "ROUTER_REPORT", tmp_path / "router_report.json")
    monkeypatch.setattr(model_card, "ROUTER_WEIGHTS", tmp_path / "router_gru.npz")
    at = _routing(app)
    metrics = {shown(m.label): m for m in at.metric}
    assert metrics["Queries"].value == "100"
    assert metrics["Train / held-out queries"].value == "80 / 20"
    assert metrics["Held-out steps"].value == "30"
    assert metrics["gru"].value == "80.0%" and metrics["gru"].delta == "+30.0 pp vs rules"
    assert metrics["rules"].value == "50.0%"
    assert metrics["majority class (hrm)"].value == "60.0%"
    confusion = next(spec["data"][0] for spec in _specs(at) if "confusion" in spec["layout"]["title"]["text"])
    assert confusion["z"] == [[15, 2, 0], [3, 8, 0], [1, 0, 1]]
    assert confusion["x"] == confusion["y"] == ["hrm", "trm", "mcts"]
    assert any("Router model card" in m.value for m in at.markdown)


E2E_ROW = {"n": 10, "correct": 7, "correct_share": 0.7, "mean_ms": 3.5, "p50_ms": 1.0, "p95_ms": 9.0,
            "mean_steps": 1.5, "missed": 2, "regret_ms": 0.4}  # fmt: skip


def test_model_card_puts_label_agreement_beside_end_to_end_results(app, monkeypatch, tmp_path):
    report = {
        **REPORT,
        "held_out": {
            **REPORT["held_out"],
            "accuracy_always_hrm": 0.75,
            "accuracy_always_trm": 0.2,
            "accuracy_always_mcts": 0.05,
            "by_task": {"game24": {"steps": 12, "accuracy_gru": 0.5, "accuracy_always_hrm": 0.9}},
        },
        "end_to_end": {
            "queries": 10,
            "latency": "sum of the agents' measured times",
            "routers": {
                "gru": E2E_ROW,
                "rules": {**E2E_ROW, "correct_share": 0.9, "missed": 0},
                "fixed:hrm": {**E2E_ROW, "correct_share": 0.6, "mean_steps": 1.0},
                "best": {**E2E_ROW, "correct_share": 0.9, "missed": 0, "regret_ms": 0.0},
            },
            "by_task": {"game24": {"gru": {**E2E_ROW, "n": 4, "correct_share": 0.25}}},
        },
    }
    (tmp_path / "router_report.json").write_text(json.dumps(report))
    monkeypatch.setattr(model_card, "ROUTER_REPORT", tmp_path / "router_report.json")
    monkeypatch.setattr(model_card, "ROUTER_WEIGHTS", tmp_path / "router_gru.npz")
    at = _routing(app)
    card = next(d.value for d in at.dataframe if "label agreement" in d.value.columns)
    rows = {r["router"]: r for r in card.to_dict("records")}
    assert list(rows) == ["gru", "rules", "fixed:hrm", "fixed:trm", "fixed:mcts", "best"]
    assert (rows["gru"]["label agreement"], rows["gru"]["correct share"]) == (0.8, 0.7)
    assert (rows["rules"]["label agreement"], rows["rules"]["correct share"]) == (0.5, 0.9)
    # always-HRM agrees with 75 % of the labels but ends correct on 60 % of the queries
    assert (rows["fixed:hrm"]["label agreement"], rows["fixed:hrm"]["correct share"]) == (0.75, 0.6)
    assert rows["fixed:hrm"]["mean steps"] == 1.0 and rows["gru"]["p95 ms"] == 9.0
    assert math.isnan(rows["fixed:trm"]["correct share"])  # not in the report: a blank, not a number
    assert math.isnan(rows["best"]["label agreement"]) and rows["best"]["missed"] == 0
    at.segmented_control(key="routing_card_task").set_value("game24").run()
    card = next(d.value for d in at.dataframe if "label agreement" in d.value.columns)
    rows = {r["router"]: r for r in card.to_dict("records")}
    assert list(rows) == ["gru", "fixed:hrm"]
    assert (rows["gru"]["label agreement"], rows["gru"]["correct share"], rows["gru"]["queries"]) == (
        0.5,
        0.25,
        4,
    )


def test_model_card_says_plainly_when_absent(app, no_report):
    at = _routing(app)
    info = next(i.value for i in at.info if "No training report yet" in i.value)
    assert "gru and hybrid routers are unavailable" in info


# -- pure chart builders ------------------------------------------------------------------------------


def _step(index: int, agent: str, probs: tuple[float, float, float]):
    from engine import StepRecord

    return StepRecord(
        index,
        agent,
        "rules",
        dict(zip(("hrm", "trm", "mcts"), probs, strict=True)),
        tuple(float(i == index) for i in range(10)),
        "argmax",
        "x",
        0.5,
        "",
        1.0,
    )


def test_probability_chart_marks_the_chosen_agent():
    steps = [_step(0, "hrm", (0.7, 0.1, 0.2)), _step(1, "mcts", (0.1, 0.3, 0.6))]
    fig = charts.routing_probabilities_figure(steps, threshold=0.4)
    assert [t.name for t in fig.data] == ["hrm", "trm", "mcts"]
    assert list(fig.data[0].y) == [0.7, 0.1] and list(fig.data[2].y) == [0.2, 0.6]
    assert list(fig.data[0].text) == ["chosen", ""] and list(fig.data[2].text) == ["", "chosen"]
    assert list(fig.data[0].x) == ["step 1", "step 2"]
    assert fig.layout.shapes[0].y0 == 0.4


def test_no_fallback_line_for_a_fixed_router():
    from dataclasses import replace

    rules = _step(0, "mcts", (0.0, 0.0, 1.0))
    fixed = replace(rules, router="fixed:mcts")
    assert not charts.routing_probabilities_figure([fixed], threshold=0.4).layout.shapes
    assert charts.routing_probabilities_figure([rules], threshold=0.4).layout.shapes


def test_features_heatmap_and_confusion_matrix_hold_the_values():
    steps = [_step(0, "hrm", (0.7, 0.1, 0.2)), _step(1, "mcts", (0.1, 0.3, 0.6))]
    heat = charts.features_heatmap(steps)
    assert list(heat.data[0].x) == list(FEATURE_NAMES)
    assert [list(r) for r in heat.data[0].z] == [list(s.features) for s in steps]
    cm = charts.confusion_matrix_figure([[3, 1], [0, 2]], ["hrm", "trm"])
    assert [list(r) for r in cm.data[0].z] == [[3, 1], [0, 2]]
    assert list(cm.data[0].text[0]) == ["3", "1"]


# -- compare routers over a workload -------------------------------------------------------------------


def _requests_by_router(db: Path) -> dict[str, list[tuple[str, str]]]:
    """The store's request rows (query, verdict) per router, read with sqlite3 directly."""
    import sqlite3

    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT router, query, verdict FROM requests WHERE status = 'ok'").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for router, query, verdict in rows:
        out.setdefault(router, []).append((query, verdict))
    return out


def test_compare_routers_over_a_tiny_workload(app, no_report, tmp_path):
    at = _routing(app)
    assert any("No comparison yet" in i.value for i in at.info)
    at.multiselect(key="routing_eval_routers").set_value(["rules", "fixed:hrm", "fixed:mcts"])
    at.number_input(key="routing_eval_per_task").set_value(1)
    at.number_input(key="routing_eval_seed").set_value(4)
    at.number_input(key="routing_eval_iterations").set_value(50)
    at.button(key="routing_eval_run").click().run()
    assert not at.exception, at.exception
    job = at.session_state["routing_eval_job"]
    assert job.wait(timeout=300) and job.error is None
    at.run()
    assert not at.exception, at.exception

    table = next(d.value for d in at.dataframe if list(d.value.columns[:2]) == ["router", "kind"])
    assert list(table["router"]) == ["rules", "fixed:hrm", "fixed:mcts"]  # one row per router
    assert list(table["kind"]) == ["default", "baseline", "baseline"]
    assert set(table["positions"]) == {3}  # one position for each of the three game tasks

    # Every figure comes from the runs the engine recorded: per router, three requests in the
    # store, and the share the verifier accepted matches the engine's own verdicts there.
    recorded = _requests_by_router(tmp_path / "arbor.db")
    for _, row in table.iterrows():
        runs = recorded[row["router"]]
        assert len(runs) == 3
        assert row["correct share"] == pytest.approx(sum(v == "correct" for _, v in runs) / 3)
    # the fixed baselines ran exactly one step each
    assert list(table.loc[table["router"] != "rules", "mean steps"]) == [1.0, 1.0]

    per_task = next(d.value for d in at.dataframe if d.value.columns[0] == "task")
    assert sorted(set(per_task["task"])) == ["connect4", "game24", "tictactoe"]
    assert len(per_task) == 9 and set(per_task["positions"]) == {1}
    # totals: the per-task correct shares add up to the overall share (one position per task)
    for router, group in per_task.groupby("router"):
        overall = table.loc[table["router"] == router, "correct share"].item()
        assert group["correct share"].sum() / 3 == pytest.approx(overall)

    pareto = next(s for s in _specs(at) if s["layout"]["title"]["text"].startswith("Correctness vs p95"))
    plotted = {t["name"].split(" · ")[0]: t for t in pareto["data"]}
    assert list(plotted)[-3:] == ["rules (default)", "fixed:hrm (baseline)", "fixed:mcts (baseline)"]
    for name, trace in plotted.items():
        if name == "Pareto front":
            continue
        row = table.loc[table["router"] == name.split(" ")[0]].iloc[0]
        assert trace["y"] == [row["correct share"]] and trace["x"] == [pytest.approx(row["p95 ms"])]
    assert plotted["rules (default)"]["marker"]["symbol"] == "star"

    # The result was saved beside the store; a new session shows it again.
    saved = json.loads((tmp_path / "router_evaluation.json").read_text())
    assert saved["spec"]["routers"] == ["rules", "fixed:hrm", "fixed:mcts"]
    assert [r["router"] for r in saved["evaluation"]["overall"]] == ["rules", "fixed:hrm", "fixed:mcts"]
    again = _routing(AppTest.from_file(MAIN, default_timeout=120))
    again.run()
    reloaded = next(d.value for d in again.dataframe if list(d.value.columns[:2]) == ["router", "kind"])
    assert reloaded.equals(table)
    assert any("the last saved comparison" in m.value for m in again.markdown)


def test_a_garbage_saved_comparison_is_a_warning(app, no_report, tmp_path):
    (tmp_path / "router_evaluation.json").write_text("{not json")
    at = _routing(app)
    assert any("cannot be read" in shown(w.value) for w in at.warning)
    assert any("No comparison yet" in i.value for i in at.info)


def test_an_empty_router_choice_is_an_error_not_a_run(app, no_report):
    at = _routing(app)
    at.multiselect(key="routing_eval_routers").set_value([])
    at.button(key="routing_eval_run").click().run()
    assert not at.exception
    assert "routing_eval_job" not in at.session_state
    assert any(shown(e.value).startswith("Routers: ") for e in at.error)  # the widget label names it
