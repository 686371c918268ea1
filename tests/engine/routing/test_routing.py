"""Routers: the numpy GRU against a hand computation, the trainer's gradients
against finite differences, the shipped model against the majority baseline."""

from __future__ import annotations

import json
from math import exp, tanh
from pathlib import Path

import numpy as np
import pytest

from engine.routing import (
    DEFAULT_WEIGHTS,
    FEATURE_NAMES,
    GRURouter,
    RouterUnavailable,
    RoutingState,
    RulesRouter,
    decide,
)
from engine.routing.gru_train import init_weights, loss_and_grads

MODELS = DEFAULT_WEIGHTS.parent


def _sig(a: float) -> float:
    return 1 / (1 + exp(-a))


def test_gru_cell_matches_a_hand_computed_case():
    # one input, one hidden unit, two outputs' worth of head (3 agents)
    w = {
        "W_z": np.array([[0.5]]),
        "U_z": np.array([[-1.0]]),
        "b_z": np.array([0.1]),
        "W_r": np.array([[1.0]]),
        "U_r": np.array([[0.5]]),
        "b_r": np.array([0.0]),
        "W_h": np.array([[2.0]]),
        "U_h": np.array([[1.0]]),
        "b_h": np.array([-0.5]),
        "W_o": np.array([[1.0], [-1.0], [0.0]]),
        "b_o": np.array([0.0, 0.0, 0.2]),
    }
    router = GRURouter(w)
    x, h = 0.8, 0.3
    z = _sig(0.5 * x - 1.0 * h + 0.1)
    r = _sig(1.0 * x + 0.5 * h)
    cand = tanh(2.0 * x + 1.0 * (r * h) - 0.5)
    expected_h = (1 - z) * h + z * cand
    assert router.cell(np.array([x]), np.array([h]))[0] == pytest.approx(expected_h, abs=1e-12)
    probs, _ = router.step(np.array([x]), np.array([True, True, False]), np.array([h]))
    e1, e2 = exp(expected_h), exp(-expected_h)
    assert probs == pytest.approx([e1 / (e1 + e2), e2 / (e1 + e2), 0.0], abs=1e-12)


def test_backprop_through_time_matches_finite_differences():
    rng = np.random.default_rng(0)
    w = init_weights(rng, 4, 5, 3)
    X = rng.normal(size=(3, 4, 4))
    y = rng.integers(0, 2, size=(3, 4))
    valid = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=float)
    allowed = np.ones((3, 4, 3), dtype=bool)
    allowed[0, :, 2] = False
    _, grads = loss_and_grads(w, X, y, valid, allowed, l2=1e-3)
    for key in ("W_z", "U_r", "b_h", "W_o"):
        for idx in list(np.ndindex(w[key].shape))[:6]:
            old = w[key][idx]
            w[key][idx] = old + 1e-6
            up, _ = loss_and_grads(w, X, y, valid, allowed, l2=1e-3)
            w[key][idx] = old - 1e-6
            down, _ = loss_and_grads(w, X, y, valid, allowed, l2=1e-3)
            w[key][idx] = old
            assert grads[key][idx] == pytest.approx((up - down) / 2e-6, abs=1e-7)


def test_shipped_model_matches_its_report_and_predicts_mcts_where_mcts_is_the_label():
    """Recompute the shipped GRU's held-out predictions step by step with the inference router
    (not the training code's batched forward) and check the report's agreement and confusion
    matrix; labels come from end-to-end outcomes, so the check is that the GRU picks MCTS on some
    states where MCTS is the labelled choice (the old per-step labels left that column empty)."""
    router = GRURouter.load()
    data = np.load(MODELS / "router_heldout.npz")
    X, y, valid, allowed = data["X"], data["y"], data["valid"], data["allowed"]
    confusion = np.zeros((3, 3), dtype=int)
    for b in range(len(X)):
        h = router.start()
        for t in range(X.shape[1]):
            probs, h = router.step(X[b, t], allowed[b, t], h)
            if valid[b, t]:
                confusion[y[b, t], int(np.argmax(probs))] += 1
    total = int(confusion.sum())
    assert total >= 100
    report = json.loads((MODELS / "router_report.json").read_text())
    assert report["held_out"]["steps"] == total
    assert report["held_out"]["confusion_matrix"] == confusion.tolist()
    assert report["held_out"]["accuracy_gru"] == pytest.approx(np.trace(confusion) / total, abs=1e-4)
    assert confusion[2, 2] > 0  # MCTS predicted where MCTS is the label


def test_missing_weights_are_a_named_error(tmp_path: Path):
    with pytest.raises(RouterUnavailable, match="train-router"):
        GRURouter.load(tmp_path / "none.npz")


def test_features_are_the_ten_named_ones_in_range():
    x = RoutingState(
        hrm_confidence=0.5,
        mcts_value=1.0,
        consensus_score=0.25,
        last_agent="trm",
        iteration=30,
        query_length=25_000,
        has_rag_context=True,
    ).vector()
    assert len(FEATURE_NAMES) == 10 and x.shape == (10,)
    assert x.tolist() == [0.5, 0.0, 1.0, 0.25, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0]


def test_rules_router_masks_and_normalises():
    probs, _ = RulesRouter().step(RoutingState().vector(), np.array([True, True, False]), None)
    assert probs.sum() == pytest.approx(1.0) and probs[2] == 0.0 and np.argmax(probs) == 0


def test_decide_records_fallback_and_override():
    probs = np.array([0.36, 0.30, 0.34])
    assert decide(probs, ("hrm", "trm", "mcts"), set(), 0.4) == (
        "mcts",
        "fallback: top probability 0.36 (hrm) < threshold 0.40, so mcts",
    )
    agent, reason = decide(np.array([0.7, 0.2, 0.1]), ("hrm", "trm", "mcts"), {"hrm"}, 0.4)
    assert agent == "trm" and reason.startswith("override: hrm already ran")
    with pytest.raises(ValueError):
        decide(probs, ("hrm",), {"hrm"}, 0.4)
