"""The decision on hand-made analyses, one per branch: SRM blocks, ship, roll back (loser,
guardrail, SLO burn, flat at the MDE), keep running (inconclusive, guardrail at risk)."""

from __future__ import annotations

from engine.experiments import stats
from engine.experiments.aggregate import SrmCheck
from engine.experiments.analysis import Analysis, MetricResult, SloBurn, VariantResult
from engine.experiments.decision import decide
from tests.engine.experiments.two_arms import two_arm_spec

SPEC = two_arm_spec(
    """\
primary_metric: correctness
guardrails:
  - {metric: latency, max_regression: 0.5}
  - {metric: slo_burn, slo: latency, max_burn_rate: 1.0}
target_mde: 0.1
""",
    slo_names=("latency",),
)
OK_SRM = SrmCheck({"a": 500, "b": 500}, {"a": 0.5, "b": 0.5}, 1.0)


def _t(estimate: float, lo: float, hi: float, p: float) -> stats.TestResult:
    return stats.TestResult(estimate, (lo, hi), p, 100.0, 0.01, 0.05, False, False)


def _variant(rel: tuple[float, float, float], p: float, adj: float, mde: bool) -> VariantResult:
    est, lo, hi = rel
    return VariantResult(
        "b",
        500,
        0.5,
        False,
        _t(est * 0.5, lo * 0.5, hi * 0.5, p),
        _t(est, lo, hi, p),
        p,
        adj,
        achieved_mde=0.05 if mde else 0.2,
        mde_reached=mde,
    )


def _analysis(
    primary: VariantResult, latency: VariantResult | None = None, burn: float = 0.5, srm: SrmCheck = OK_SRM
) -> Analysis:
    base = VariantResult("a", 500, 0.5, True)
    lat = latency or _variant((0.1, 0.0, 0.2), 0.05, 0.05, True)
    metrics = (
        MetricResult("correctness", "primary", True, "share", (base, primary)),
        MetricResult("latency", "guardrail", False, "ms", (VariantResult("a", 500, 100.0, True), lat)),
    )
    burns = (
        SloBurn("latency", "a", 1000, 1, 0.1, 1.0),
        SloBurn("latency", "b", 1000, int(burn * 10), burn, 1.0),
    )
    return Analysis(SPEC, None, 0.0, "sums", srm, metrics, {}, burns)


def test_srm_blocks_any_decision() -> None:
    bad = SrmCheck({"a": 5000, "b": 5400}, {"a": 0.5, "b": 0.5}, 8.8e-5)
    d = decide(_analysis(_variant((0.2, 0.1, 0.3), 1e-6, 1e-6, True), srm=bad))
    assert d.action == "keep_running" and d.variant is None
    assert "SRM p 8.8e-05 < 0.001" in d.reasons[0]


def test_ship_a_significant_winner_with_guardrails_holding() -> None:
    d = decide(_analysis(_variant((0.2, 0.1, 0.3), 1e-4, 2e-4, True)))
    assert (d.action, d.variant) == ("ship", "b")
    assert d.variants[0].outcome == "winner"
    assert any("Holm-adjusted p 0.0002" in r and "MDE 5.0% reached" in r for r in d.reasons)


def test_roll_back_a_significant_loser() -> None:
    d = decide(_analysis(_variant((-0.2, -0.3, -0.1), 1e-4, 2e-4, True)))
    assert d.action == "roll_back" and d.variants[0].outcome == "loser"


def test_roll_back_a_winner_failing_a_latency_guardrail() -> None:
    slower = _variant((0.9, 0.7, 1.1), 1e-9, 1e-9, True)  # +70 %..+110 % latency, 50 % tolerated
    d = decide(_analysis(_variant((0.2, 0.1, 0.3), 1e-4, 2e-4, True), latency=slower))
    assert d.action == "roll_back"
    assert d.variants[0].guardrails_failed == ("latency",)
    assert any("guardrail latency fails" in r for r in d.reasons)


def test_roll_back_a_winner_burning_the_slo() -> None:
    d = decide(_analysis(_variant((0.2, 0.1, 0.3), 1e-4, 2e-4, True), burn=2.5))
    assert d.action == "roll_back"
    assert d.variants[0].guardrails_failed == ("slo_burn(latency)",)
    assert any("burn rate 2.50" in r for r in d.reasons)


def test_keep_running_when_a_guardrail_is_at_risk() -> None:
    worse = _variant((0.6, -0.1, 1.3), 0.2, 0.2, False)  # +60 % point estimate, not significant
    d = decide(_analysis(_variant((0.2, 0.1, 0.3), 1e-4, 2e-4, True), latency=worse))
    assert d.action == "keep_running" and d.variants[0].guardrails_at_risk == ("latency",)


def test_keep_running_when_not_significant_and_mde_not_reached() -> None:
    d = decide(_analysis(_variant((0.05, -0.1, 0.2), 0.3, 0.6, False)))
    assert d.action == "keep_running" and d.variants[0].outcome == "inconclusive"
    assert "target MDE is not reached" in d.reasons[0]


def test_holm_adjusted_p_decides_not_the_raw_one() -> None:
    d = decide(_analysis(_variant((0.1, 0.01, 0.2), 0.03, 0.06, False)))  # raw p < alpha, adjusted not
    assert d.action == "keep_running"


def test_roll_back_when_flat_though_the_mde_was_reached() -> None:
    d = decide(_analysis(_variant((0.01, -0.02, 0.04), 0.5, 0.5, True)))
    assert d.action == "roll_back" and d.variants[0].outcome == "flat"
    assert "target MDE was reached" in d.reasons[0]
