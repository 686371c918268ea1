"""The suite's latency verdict: one-sided Wilcoxon signed-rank p-values worked out by hand.

With n pairs, no ties and no zero differences, the exact null distribution puts probability 1/2^n
on every sign pattern; W+ (the sum of the ranks of the positive differences) is at its maximum
n(n+1)/2 only when every difference is positive, so P(W+ >= max) = 1/2^n.
"""

from __future__ import annotations

import pytest

from engine.golden import latency_verdict

GOLDEN = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def _verdict(replayed, golden=GOLDEN, tolerance=0.25, gated=True):
    return latency_verdict(
        list(zip(replayed, golden, strict=True)), tolerance=tolerance, alpha=0.05, gated=gated
    )


def test_every_trace_much_slower_is_a_regression() -> None:
    v = _verdict([g * 2 + i * 0.01 for i, g in enumerate(GOLDEN)])  # +100 % and more, distinct diffs
    assert v.p_value == pytest.approx(1 / 2**6)  # 0.015625 < 0.05
    # relative changes 1 + 0.01 i / g for i = 0..5: the middle two are 1 + 0.02/3 and 1 + 0.03/4
    assert v.median_change == pytest.approx(1 + (0.02 / 3 + 0.03 / 4) / 2)
    assert v.significant and v.regression and v.n == 6


def test_significant_but_small_slow_down_is_not_a_regression() -> None:
    v = _verdict([g * 1.01 + i * 1e-4 for i, g in enumerate(GOLDEN)])  # ~1 % slower everywhere
    assert v.p_value == pytest.approx(1 / 64)
    assert v.significant and not v.regression
    assert 0.01 <= v.median_change < 0.02


def test_faster_is_never_a_regression() -> None:
    v = _verdict([g * 0.5 - i * 0.01 for i, g in enumerate(GOLDEN)])
    assert v.p_value == pytest.approx(1.0)  # P(W+ >= 0) = 1
    assert not v.significant and not v.regression and v.median_change < 0


def test_large_but_inconsistent_change_is_not_significant() -> None:
    # differences +2, +4, +6, -2, -2.5, -3: mixed signs, far from significance
    v = _verdict([3.0, 6.0, 9.0, 2.0, 2.5, 3.0], golden=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert v.p_value is not None and v.p_value > 0.05 and not v.regression


def test_one_trace_or_no_change_has_no_test_and_gating_is_reported() -> None:
    assert _verdict([5.0], golden=[1.0]).p_value is None
    same = _verdict(GOLDEN)
    assert same.p_value is None and same.median_change == 0.0 and not same.regression
    ungated = _verdict([g * 3 + i * 0.01 for i, g in enumerate(GOLDEN)], gated=False)
    assert ungated.regression and not ungated.gated and ungated.detail.endswith("(not gated)")
    assert latency_verdict([], tolerance=0.25, alpha=0.05, gated=True).n == 0
