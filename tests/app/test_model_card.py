"""app.model_card: the GRU router's training report, read tolerantly (no Streamlit)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from app import model_card
from app.model_card import parse_router_report, router_report, router_weights_present

RAW = {
    "model": {"architecture": "GRU(10 -> 16) + linear", "agents": ["hrm", "trm", "mcts"]},
    "data": {
        "queries": 100,
        "train_queries": 80,
        "held_out_queries": True,  # a bool is not a count
        "train_steps": "many",  # nor is a string
        "by_task": {"game24": 40, "connect4": 60, "tictactoe": "lots"},
        "train_label_counts": {"hrm": 30, "trm": 20.5},
        "majority_class": "hrm",
    },
    "held_out": {
        "steps": 30,
        "accuracy_gru": 0.8,
        "accuracy_rules": 1,
        "accuracy_majority": math.nan,  # not finite: left out
        "accuracy_hybrid": "0.7",  # not a number: left out
        "confusion_matrix": [[15, 2, 0], [3, 8, 0], [1, 0, 1]],
    },
    "train_fit": {"accuracy_gru": 0.9},
    "training": {"epochs": 40, "seed": 7},
}


def test_figures_by_name_and_junk_left_empty(tmp_path):
    report = parse_router_report(RAW, tmp_path / "r.json", "# card", weights_present=True)
    assert (report.architecture, report.markdown, report.weights_present) == (
        "GRU(10 -> 16) + linear",
        "# card",
        True,
    )
    assert (report.queries, report.train_queries, report.held_out_queries) == (100, 80, None)
    assert (report.train_steps, report.held_out_steps) == (None, 30)
    assert report.by_task == {"game24": 40, "connect4": 60}
    assert report.train_label_counts == {"hrm": 30}
    assert report.majority_class == "hrm"
    assert report.accuracy == {"gru": 0.8, "rules": 1.0}
    assert report.train_accuracy == {"gru": 0.9}
    assert report.confusion == [[15.0, 2.0, 0.0], [3.0, 8.0, 0.0], [1.0, 0.0, 1.0]]
    assert report.labels == ["hrm", "trm", "mcts"]
    assert report.training == {"epochs": 40, "seed": 7}


def test_an_empty_report_is_all_empty(tmp_path):
    report = parse_router_report({"model": [], "held_out": {"confusion_matrix": []}}, tmp_path / "r.json")
    assert report.queries is None and report.majority_class is None and report.architecture is None
    assert report.accuracy == {} and report.by_task == {} and report.training == {}
    assert report.confusion is None and report.weights_present is False
    assert report.labels == ["hrm", "trm", "mcts"]  # the engine's agents when the report names none


@pytest.fixture
def files(monkeypatch, tmp_path) -> Path:
    monkeypatch.setattr(model_card, "ROUTER_REPORT", tmp_path / "router_report.json")
    monkeypatch.setattr(model_card, "ROUTER_WEIGHTS", tmp_path / "router_gru.npz")
    return tmp_path


def test_reading_the_files(files):
    assert router_report() is None and router_weights_present() is False
    (files / "router_report.json").write_text(json.dumps({"data": {"queries": 12}}))
    report = router_report()
    assert (
        report is not None and report.queries == 12 and report.markdown is None and not report.weights_present
    )
    (files / "router_report.md").write_text("# Router model card")
    (files / "router_gru.npz").write_bytes(b"")
    report = router_report()
    assert report is not None and report.markdown == "# Router model card" and report.weights_present
    assert router_weights_present() is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "router_report.json is not valid JSON: "),
        ("[1, 2]", "router_report.json is not a JSON object"),
    ],
)
def test_a_broken_report_is_a_value_error(files, text, message):
    (files / "router_report.json").write_text(text)
    with pytest.raises(ValueError) as info:
        router_report()
    assert str(info.value).startswith(message)
