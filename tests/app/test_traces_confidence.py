"""A trace's request details say how its confidence follows from its steps, recomputed by the rule
from the trace's agent spans (AppTest on a real run; the pure helper on hand-made spans)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.components import CONFIDENCE_RULE
from app.confidence import steps_from_spans, trace_confidence
from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.loop import final_confidence
from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def test_trace_shows_the_confidence_arithmetic(tmp_path, monkeypatch):
    db = tmp_path / "traces.db"
    monkeypatch.setenv("ARBOR_DB_PATH", str(db))
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    try:
        result = engine.run(QueryRequest(query="connect4: ", seed=2, router="rules"))
    finally:
        engine.close()
    explained = final_confidence(result.steps)
    assert explained.repeats  # TRM repeated MCTS's move: the note must say it was not counted
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    at.query_params["trace"] = result.trace_id
    at.switch_page("../pages/traces.py").run()
    assert not at.exception, at.exception
    captions = [shown(c.value) for c in at.caption]
    assert f"**How the confidence follows from the steps:** {explained.text}" in captions
    assert f"The rule: {CONFIDENCE_RULE}" in captions
    assert explained.text.startswith(f"{result.confidence:.2f} = agreement")


@dataclass(frozen=True)
class FakeSpan:
    name: str
    attributes: dict | None


def _agent(step: int, agent: str, answer: str | None, confidence: float, exact: bool = False) -> FakeSpan:
    attrs = {"step": step, "reason": "r", "answer": answer, "confidence": confidence, "exact": exact}
    return FakeSpan(f"agent.{agent}", attrs)


def test_steps_from_spans_infers_trms_candidate_and_the_rule_by_hand():
    spans = [
        FakeSpan("query", {}),
        _agent(2, "trm", "3", 0.0),  # out of order on purpose: steps are sorted by number
        _agent(0, "hrm", "4", 0.25),
        _agent(1, "mcts", "3", 0.5),
    ]
    steps = steps_from_spans(spans)
    assert steps is not None
    assert [(s.agent, s.refined_from) for s in steps] == [("hrm", None), ("mcts", None), ("trm", "3")]
    # by hand: TRM repeats "3" (not counted); A = 0.5 / 0.75, C = 0.5 -> 1/3
    explained, note = trace_confidence(spans, 1 / 3)
    assert explained is not None and explained.value == pytest.approx(1 / 3)
    assert note == explained.text and "trm (step 3)" in note


def test_trace_confidence_says_why_it_cannot_recompute():
    explained, note = trace_confidence([FakeSpan("agent.hrm", {"answer": "4"})], 0.5)
    assert explained is None and "incomplete" in note
    assert steps_from_spans([FakeSpan("agent.hrm", {"step": True, "confidence": 0.5})]) is None
    assert steps_from_spans([FakeSpan("query", None)]) is None
    explained, note = trace_confidence([_agent(0, "hrm", "4", 0.5)], 0.75)
    assert explained is not None and "gives 0.50, not the recorded 0.75" in note
    explained, note = trace_confidence([_agent(0, "hrm", "4", 7.0)], 0.5)
    assert explained is None and "not valid confidences" in note
