"""Guardrail math against values worked out by hand (and the Waudby-Smith formula written out
here with ``math``, independently of engine.experiments.stats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as sps

from engine.canary.guardrails import correctness_guard, error_ratio_guard, p95_latency_guard, slo_burn_guard
from observability.slo.models import load_slos


def test_error_ratio_needs_both_margins() -> None:
    # baseline 1 % (2/200), canary 2 % (4/200): threshold max(1.5 %, 1.5 %) = 1.5 %: fails
    r = error_ratio_guard(2, 200, 4, 200)
    assert r.verdict == "fail" and r.value == pytest.approx(0.02) and r.threshold == pytest.approx(0.015)
    # baseline 0.2 % (1/500), canary 0.6 % (3/500): x1.5 gives 0.3 % but +0.5 points 0.7 %: holds
    r = error_ratio_guard(1, 500, 3, 500)
    assert r.verdict == "pass" and r.threshold == pytest.approx(0.007)
    # baseline 4 % (8/200), canary 5 % (10/200): +1 point but under x1.5 = 6 %: holds
    r = error_ratio_guard(8, 200, 10, 200)
    assert r.verdict == "pass" and r.threshold == pytest.approx(0.06)
    # custom margins: x2 and +1 point over a 1 % baseline -> 2 %; 2.5 % fails
    assert error_ratio_guard(2, 200, 5, 200, relative=2.0, absolute_points=1.0).verdict == "fail"
    assert error_ratio_guard(2, 200, 4, 200, relative=2.0, absolute_points=1.0).verdict == "pass"  # 2 % = 2 %
    assert error_ratio_guard(0, 10, 5, 10, min_n=20).verdict == "waiting"
    with pytest.raises(ValueError):
        error_ratio_guard(3, 2, 0, 10)


def test_p95_latency_against_linear_percentile_by_hand_confirmed_by_a_binomial_test() -> None:
    base = [float(x) for x in range(1, 101)]  # p95: rank 0.95 x 99 = 94.05 -> 95 + 0.05 x 1 = 95.05
    ok = [float(x) for x in range(11, 111)]  # 105.05 <= 1.2 x 95.05 = 114.06
    r = p95_latency_guard(base, ok)
    assert r.value == pytest.approx(105.05) and r.threshold == pytest.approx(114.06) and r.verdict == "pass"
    # 21..120: p95 115.05 > 114.06, but only 6 of 100 requests (115..120) are slower than the
    # threshold: P(X >= 6 | n=100, p=0.05) = 0.38 does not confirm it
    edge = [float(x) for x in range(21, 121)]
    r = p95_latency_guard(base, edge)
    assert r.value == pytest.approx(115.05) and r.verdict == "pass"
    assert f"binomial p = {sps.binom.sf(5, 100, 0.05):.3g} (not confirmed" in r.detail
    # 1.5x slower everywhere: 1.5k > 114.06 for k >= 77, 24 of 100: P(X >= 24) is tiny -> fails
    slow = [1.5 * x for x in range(1, 101)]
    r = p95_latency_guard(base, slow)
    assert r.value == pytest.approx(1.5 * 95.05) and r.verdict == "fail"
    assert (
        f"24/100 canary requests slower than the threshold, binomial p = {sps.binom.sf(23, 100, 0.05):.3g}"
        in r.detail
    )
    assert p95_latency_guard(base, slow, relative=1.6).verdict == "pass"  # 142.575 <= 152.08
    assert p95_latency_guard([], slow).verdict == "waiting"


def _always_valid_p(x_a: int, n_a: int, x_b: int, n_b: int, alpha: float, n_star: float = 5000.0) -> float:
    pa, pb = x_a / n_a, x_b / n_b
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    n = n_a + n_b
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / n_star
    z2 = ((pb - pa) / se) ** 2
    log_e = rho2 * n * z2 / (2 * (n * rho2 + 1)) - 0.5 * math.log(n * rho2 + 1)
    return min(1.0, math.exp(-log_e))


def test_correctness_sequential_test() -> None:
    # baseline 180/200 correct, canary 140/200: clearly worse
    r = correctness_guard(180, 200, 140, 200, alpha=0.05)
    assert r.value == pytest.approx(_always_valid_p(180, 200, 140, 200, 0.05), rel=1e-9)
    assert r.value < 0.05 and r.verdict == "fail" and r.threshold == 0.05
    # the canary better by as much: significant but not a regression
    r = correctness_guard(140, 200, 180, 200, alpha=0.05)
    assert r.value < 0.05 and r.verdict == "pass"
    # -15 points (180 -> 150 of 200) is not yet enough for the always-valid test (p = 0.055)
    r = correctness_guard(180, 200, 150, 200, alpha=0.05)
    assert r.value == pytest.approx(_always_valid_p(180, 200, 150, 200, 0.05), rel=1e-9)
    assert 0.05 < r.value < 0.06 and r.verdict == "pass"
    # a small dip is not significant under the always-valid p-value
    r = correctness_guard(180, 200, 175, 200, alpha=0.05)
    assert r.value == pytest.approx(_always_valid_p(180, 200, 175, 200, 0.05), rel=1e-9)
    assert r.value > 0.05 and r.verdict == "pass"
    # no spread: all correct vs all wrong is a regression, all correct in both is not
    assert correctness_guard(50, 50, 0, 50).verdict == "fail"
    assert correctness_guard(50, 50, 50, 50).verdict == "pass"
    assert correctness_guard(1, 1, 1, 1).verdict == "waiting"


def test_slo_burn_page_rule_on_both_window_pairs() -> None:
    availability = {s.name: s for s in load_slos()}["availability"]  # objective 0.99, 28 days
    as_of = 1_000_000.0
    # 600 events over the last hour (one every 6 s); the 50 of the last 5 minutes are all bad
    ts = [as_of - 6.0 * i for i in range(600)]  # as_of, as_of-6, ..., as_of-3594
    bad = [as_of - t < 300 for t in ts]  # 50 events: t in (as_of-300, as_of]
    assert sum(bad) == 50
    r = slo_burn_guard(availability, ts, bad, as_of)
    # 1h: 50/600/0.01 = 8.33 <= 13.44 (1h/5m quiet); 30m: 50/300/0.01 = 16.7 and 6h: 8.33 > 5.6 -> fires
    assert r.verdict == "fail"
    assert r.threshold == pytest.approx(5.6) and r.value == pytest.approx(50 / 600 / 0.01)
    # the same bad events 40 minutes ago: 5m and 30m windows are clean -> no page
    old = [30 * 60 < as_of - t <= 30 * 60 + 300 for t in ts]
    assert slo_burn_guard(availability, ts, old, as_of).verdict == "pass"
    # 20 % bad everywhere: 20 > 13.44 on 1h/5m and > 5.6 on 6h/30m
    every5 = [i % 5 == 0 for i in range(600)]
    r = slo_burn_guard(availability, ts, every5, as_of)
    assert r.verdict == "fail" and r.value == pytest.approx(20.0)
    assert slo_burn_guard(availability, [], [], as_of, min_n=0).verdict == "pass"  # no traffic never pages
    assert slo_burn_guard(availability, ts[:3], bad[:3], as_of, min_n=10).verdict == "waiting"
    assert np.isclose(13.44, 0.02 * 28 * 24)  # the page factor for a 28-day SLO, by hand
