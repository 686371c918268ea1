"""Fault plans: parsing and seeded, plan-independent draws."""

from __future__ import annotations

import numpy as np
import pytest

from engine.faults import FaultPlan


def test_parse_the_issue_example():
    plan = FaultPlan.parse("provider_error=0.05,latency_ms=200@0.1")
    assert (plan.provider_error, plan.latency_ms, plan.latency_p, plan.error) == (0.05, 200.0, 0.1, 0.0)
    assert FaultPlan.parse("latency_ms=50").latency_p == 1.0
    assert FaultPlan.parse("") == FaultPlan()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x=1", "unknown fault 'x'"),
        ("error=abc", "not a number"),
        ("latency_ms", "expected key=value"),
        ("error=2", r"error=2: a probability must be in \[0, 1\]"),
        ("latency_ms=200@1.5", r"a probability must be in \[0, 1\]"),
        ("latency_ms=-1", r"a latency in ms must be in \[0, 60000\]"),
    ],
)
def test_bad_plans_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        FaultPlan.parse(text)


def test_draws_follow_the_probabilities_and_the_seed():
    plan = FaultPlan.parse("error=0.2,latency_ms=100@0.5")
    draws = [plan.draw(np.random.default_rng(7)) for _ in range(1)]
    rng = np.random.default_rng(1)
    many = [plan.draw(rng) for _ in range(20_000)]
    assert abs(np.mean([f.error for f in many]) - 0.2) < 0.015  # 5 sigma ~ 0.014
    assert abs(np.mean([f.extra_latency_s > 0 for f in many]) - 0.5) < 0.02
    assert not any(f.provider_error for f in many)
    assert draws == [plan.draw(np.random.default_rng(7))]
