"""AppTest: a trace's request details say how its confidence follows from its steps, as the engine
recorded it on the ``synthesise`` span."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from app.components import CONFIDENCE_RULE
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
