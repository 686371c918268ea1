"""engine.experiments.stats against independent oracles: scipy.stats and statsmodels on the raw
data (1e-9 where they compute the same thing), numerical integration, and values worked out by
hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.stats.multitest as smm
from scipy import integrate
from scipy import stats as sps
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from engine.experiments import stats
from engine.experiments.stats import CovariateSummary, Summary

RTOL = 1e-9


def _samples(seed: int, n_a: int = 60, n_b: int = 75) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(2.0, 1.0, n_a), rng.normal(2.3, 1.6, n_b)


# --------------------------------------------------------------------------- summaries


def test_summary_from_values_and_sums_agree_with_numpy() -> None:
    x, _ = _samples(1)
    s = Summary.from_values(x)
    assert s.n == 60
    assert s.mean == pytest.approx(x.mean(), rel=RTOL)
    assert s.var == pytest.approx(x.var(ddof=1), rel=RTOL)
    t = Summary.from_sums(len(x), float(x.sum()), float((x * x).sum()))
    assert t.mean == pytest.approx(s.mean, rel=RTOL) and t.var == pytest.approx(s.var, rel=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1, "mean": 0.0, "var": 1.0}, "n must be a non-negative integer"),
        ({"n": 3, "mean": float("nan"), "var": 1.0}, "mean must be a finite number"),
        ({"n": 3, "mean": 1.0, "var": -2.0}, "var must be >= 0"),
        ({"n": 2.5, "mean": 1.0, "var": 1.0}, "n must be a non-negative integer"),
    ],
)
def test_summary_rejects_bad_values(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Summary(**kwargs)  # type: ignore[arg-type]


def test_proportion_summary_uses_population_variance() -> None:
    # 30 of 120: p = 0.25, var = 0.25 x 0.75 = 0.1875 (population form, not n/(n-1) x that)
    s = Summary.from_proportion(30, 120)
    assert (s.n, s.mean, s.var) == (120, 0.25, 0.1875)
    with pytest.raises(ValueError, match="cannot exceed"):
        Summary.from_proportion(5, 4)


# --------------------------------------------------------------------------- Welch t


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mean_test_matches_scipy_and_statsmodels(seed: int) -> None:
    x, y = _samples(seed)
    r = stats.mean_test(Summary.from_values(x), Summary.from_values(y), alpha=0.05)
    ref = sps.ttest_ind(y, x, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert r.estimate == pytest.approx(y.mean() - x.mean(), rel=RTOL)
    assert r.p_value == pytest.approx(ref.pvalue, rel=RTOL)
    assert r.df == pytest.approx(ref.df, rel=RTOL)
    assert r.ci is not None
    assert r.ci[0] == pytest.approx(ci.low, rel=RTOL) and r.ci[1] == pytest.approx(ci.high, rel=RTOL)
    cm = CompareMeans(DescrStatsW(y), DescrStatsW(x))
    _tstat, p, df = cm.ttest_ind(usevar="unequal")
    assert p == pytest.approx(r.p_value, rel=RTOL) and df == pytest.approx(r.df, rel=RTOL)
    low, high = cm.tconfint_diff(alpha=0.05, usevar="unequal")
    assert (low, high) == (pytest.approx(r.ci[0], rel=RTOL), pytest.approx(r.ci[1], rel=RTOL))
    # other alpha: the 90 % interval
    r90 = stats.mean_test(Summary.from_values(x), Summary.from_values(y), alpha=0.10)
    assert r90.ci is not None
    assert r90.ci[0] == pytest.approx(cm.tconfint_diff(alpha=0.10, usevar="unequal")[0], rel=RTOL)


def test_mean_test_from_stats_matches_scipy_ttest_ind_from_stats() -> None:
    a, b = Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0)
    r = stats.mean_test(a, b)
    ref = sps.ttest_ind_from_stats(11.0, 3.0, 100, 10.0, 2.0, 100, equal_var=False)
    assert r.p_value == pytest.approx(ref.pvalue, rel=RTOL)


def test_mean_test_hand_worked() -> None:
    # a: n=100, mean 10, var 4; b: n=100, mean 11, var 9.
    # estimate = 11 - 10 = 1; se² = 9/100 + 4/100 = 0.13, se = 0.360555127546399
    # df = 0.13² / ((0.09² + 0.04²)/99) = 0.0169 x 99 / 0.0097 = 172.484536082474
    # t = 1/0.360555 = 2.773501; two-sided p = 0.00615617404; t_{0.975, 172.48} = 1.973812885
    # ci = 1 ± 1.973812885 x 0.360555128 = (0.288330, 1.711670)
    r = stats.mean_test(Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0))
    assert r.estimate == 1.0
    assert r.se == pytest.approx(0.360555127546399, rel=1e-12)
    assert r.df == pytest.approx(172.48453608247425, rel=1e-12)
    assert r.p_value == pytest.approx(0.006156174040327585, rel=1e-9)
    assert r.ci == (pytest.approx(1 - 1.9738128853236956 * 0.360555127546399, rel=1e-9),
                    pytest.approx(1 + 1.9738128853236956 * 0.360555127546399, rel=1e-9))  # fmt: skip
    assert r.significant and r.error is None


def test_relative_lift_delta_method_hand_worked() -> None:
    # estimate = (11 - 10)/10 = 0.1
    # var = var_b/(mean_a² n_b) + var_a mean_b²/(mean_a⁴ n_a)
    #     = 9/(100 x 100) + 4 x 121/(10⁴ x 100) = 0.0009 + 0.000484 = 0.001384; se = 0.0372021505
    # the same df as the absolute test: 172.484536; t = 0.1/0.0372021505 = 2.68801
    r = stats.mean_test(Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0), relative=True)
    assert r.estimate == pytest.approx(0.1, rel=1e-12)
    assert r.se == pytest.approx(math.sqrt(0.001384), rel=1e-12)
    assert r.df == pytest.approx(172.48453608247425, rel=1e-12)
    assert r.p_value == pytest.approx(2 * sps.t.sf(0.1 / math.sqrt(0.001384), 172.48453608247425), rel=1e-9)


def test_relative_lift_with_zero_baseline_is_an_error_not_an_exception() -> None:
    r = stats.mean_test(Summary(50, 0.0, 1.0), Summary(50, 0.5, 1.0), relative=True)
    assert r.estimate is None and r.ci is None and r.p_value is None
    assert r.error is not None and "baseline's mean is 0" in r.error
    assert not r.significant


@pytest.mark.parametrize("sequential", [False, True])
def test_relative_lift_of_a_zero_treatment_without_spread_is_an_error_not_an_exception(
    sequential: bool,
) -> None:
    # Delta method by hand: var = b.var / (a.mean² b.n) + a.var b.mean² / (a.mean⁴ a.n) = 0 + 0.25 * 0 = 0,
    # so the standard error is 0 and there is no interval (it used to raise ZeroDivisionError; an early
    # point of the page's cumulative lift, two units of the treatment both incorrect, hits it).
    r = stats.mean_test(Summary(4, 0.5, 1 / 3), Summary(2, 0.0, 0.0), relative=True, sequential=sequential)
    assert r.estimate is None and r.ci is None and r.p_value is None
    assert r.error is not None and "variance is 0" in r.error
    assert not r.significant


@pytest.mark.parametrize(
    ("a", "b", "fragment"),
    [
        (Summary(1, 1.0, 0.0), Summary(10, 1.0, 1.0), "variant a has 1 unit"),
        (Summary(10, 1.0, 1.0), Summary(0, 0.0, 0.0), "variant b has 0 unit"),
        (Summary(10, 1.0, 0.0), Summary(10, 2.0, 0.0), "zero variance"),
    ],
)
def test_untestable_data_gives_error(a: Summary, b: Summary, fragment: str) -> None:
    r = stats.mean_test(a, b)
    assert r.estimate is None and r.error is not None and fragment in r.error


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, float("nan"), True])
def test_bad_alpha_raises_clear_error(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be a number strictly between 0 and 1"):
        stats.mean_test(Summary(10, 1.0, 1.0), Summary(10, 2.0, 1.0), alpha=alpha)


# --------------------------------------------------------------------------- sequential


def test_sequential_hand_worked() -> None:
    # Waudby-Smith et al. eq. 9 with α = 0.05, N* = 5000, N = n_a + n_b = 200:
    #   ρ² = (-2 ln 0.05 + ln(1 - 2 ln 0.05)) / 5000 = (5.991465 + ln 6.991465) / 5000
    #      = (5.991465 + 1.944691) / 5000 = 0.00158723092
    #   Nρ² = 0.317446184;  s² = se² N = 0.13 x 200 = 26
    #   half = sqrt(26 x 2 x 1.317446184 x ln(sqrt(1.317446184)/0.05) / (200² ρ²))
    #        = sqrt(26 x 2 x 1.317446 x 3.133579 / 63.489237) = 1.83881672
    # eq. 155: z² = 1/0.13 = 7.692308; ln E = Nρ² z² / (2 (Nρ² + 1)) - ln sqrt(Nρ² + 1)
    #        = 0.317446 x 7.692308 / 2.634892 - 0.137823 = 0.78890516;  p = e^-0.78890516 = 0.454342
    r = stats.mean_test(Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0), sequential=True)
    assert stats.sequential_rho(0.05, 5000) ** 2 == pytest.approx(0.001587230920347513, rel=1e-12)
    assert r.ci is not None
    assert r.ci[1] - 1.0 == pytest.approx(1.8388167174279018, rel=1e-9)
    assert r.p_value == pytest.approx(0.45434195305178343, rel=1e-9)
    assert r.df is None and r.sequential


def test_sequential_p_value_is_dual_to_the_confidence_sequence() -> None:
    # Put b's mean exactly on the sequence's boundary: 0 is then the interval's edge, and the
    # always-valid p-value must be alpha (the e-value is 1/alpha there).
    a, b0 = Summary(400, 5.0, 2.0), Summary(380, 5.0, 3.0)
    r0 = stats.mean_test(a, b0, sequential=True, alpha=0.1)
    assert r0.ci is not None and r0.p_value == 1.0
    half = r0.ci[1]  # estimate 0: the interval is (-half, half)
    edge = stats.mean_test(a, Summary(380, 5.0 + half, 3.0), sequential=True, alpha=0.1)
    assert edge.p_value == pytest.approx(0.1, rel=1e-9)
    assert edge.ci is not None and edge.ci[0] == pytest.approx(0.0, abs=1e-12)
    inside = stats.mean_test(a, Summary(380, 5.0 + 0.9 * half, 3.0), sequential=True, alpha=0.1)
    outside = stats.mean_test(a, Summary(380, 5.0 + 1.1 * half, 3.0), sequential=True, alpha=0.1)
    assert inside.p_value is not None and inside.p_value > 0.1 and not inside.significant
    assert outside.p_value is not None and outside.p_value < 0.1 and outside.significant


def test_sequential_interval_is_wider_than_fixed_horizon() -> None:
    x, y = _samples(4, 300, 300)
    fixed = stats.mean_test(Summary.from_values(x), Summary.from_values(y))
    seq = stats.mean_test(Summary.from_values(x), Summary.from_values(y), sequential=True)
    assert fixed.ci is not None and seq.ci is not None and fixed.p_value is not None
    assert seq.ci[1] - seq.ci[0] > fixed.ci[1] - fixed.ci[0]
    assert seq.p_value is not None and seq.p_value >= fixed.p_value


def test_sequential_relative_uses_the_delta_standard_error() -> None:
    a, b = Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0)
    r = stats.mean_test(a, b, relative=True, sequential=True)
    rho2 = 0.001587230920347513
    s2 = 0.001384 * 200
    half = math.sqrt(s2 * 2 * (200 * rho2 + 1) * math.log(math.sqrt(200 * rho2 + 1) / 0.05) / (200**2 * rho2))
    assert r.ci is not None and r.ci[1] - 0.1 == pytest.approx(half, rel=1e-9)


# The values GrowthBook's gbstats publishes in its own test suite (packages/stats/tests/frequentist/
# test_tests.py of growthbook/growthbook), rounded there to 5 decimals: inputs as (n, Σy, Σy²)
# or counts, expected (estimate, ci low, ci high, se, p).  gbstats' default lift is relative.
GB_A = (3407, 1396.87, 52377.9767)
GB_B = (3461, 2422.7, 134698.29)


@pytest.mark.parametrize(
    ("a", "b", "kwargs", "expected"),
    [
        (GB_A, GB_B, {"relative": True}, (0.70732, -0.03526, 1.44989, 0.37879, 0.06191)),
        (GB_A, GB_B, {"relative": False}, (0.29, 0.04538, 0.53462, 0.12478, 0.02016)),
        ((3000, *GB_A[1:]), GB_B, {"relative": True, "sequential": True, "tuning": 1000},
         (0.50336, -0.55844, 1.56516, 0.33341, 1.0)),
    ],
)  # fmt: skip
def test_matches_growthbook_published_values(
    a: tuple[int, float, float],
    b: tuple[int, float, float],
    kwargs: dict[str, object],
    expected: tuple[float, ...],
) -> None:
    r = stats.mean_test(Summary.from_sums(*a), Summary.from_sums(*b), **kwargs)  # type: ignore[arg-type]
    assert r.ci is not None
    got = (r.estimate, r.ci[0], r.ci[1], r.se, r.p_value)
    assert got == pytest.approx(expected, abs=5e-6)


def test_matches_growthbook_published_proportion_values() -> None:
    fixed = stats.proportion_test(14, 28, 16, 30, relative=True)
    assert fixed.ci is not None
    assert (fixed.estimate, *fixed.ci, fixed.se, fixed.p_value) == pytest.approx(
        (0.06667, -0.47767, 0.61101, 0.2717, 0.80707), abs=5e-6
    )
    seq = stats.proportion_test(1396, 3000, 2422, 3461, relative=True, sequential=True)  # N* = 5000
    assert seq.ci is not None
    assert (seq.estimate, *seq.ci, seq.se, seq.p_value) == pytest.approx(
        (0.50386, 0.40098, 0.60675, 0.03386, 0.0), abs=5e-6
    )


def test_sequential_tuning_near_n_is_tightest() -> None:
    # as in gbstats' tuning test: N* far below or above N = 6461 gives a wider sequence
    a, b = Summary.from_sums(3000, *GB_A[1:]), Summary.from_sums(*GB_B)
    width = {}
    for tuning in (10, 6461, 10_000):
        r = stats.mean_test(a, b, relative=True, sequential=True, tuning=tuning)
        assert r.ci is not None
        width[tuning] = r.ci[1] - r.ci[0]
    assert width[6461] < width[10_000] < width[10]


# --------------------------------------------------------------------------- proportions


def test_proportion_test_hand_worked_and_equals_mean_test() -> None:
    # p_a = 50/200 = 0.25, p_b = 70/200 = 0.35; var p(1-p): 0.1875, 0.2275
    # se² = 0.1875/200 + 0.2275/200 = 0.002075; estimate 0.1
    # df = 0.002075² / ((0.0009375² + 0.0011375²)/199) = 394.336545; p = 0.0287252796
    r = stats.proportion_test(50, 200, 70, 200)
    assert r.estimate == pytest.approx(0.1, rel=1e-12)
    assert r.se == pytest.approx(math.sqrt(0.002075), rel=1e-12)
    assert r.df == pytest.approx(394.3365453760965, rel=1e-12)
    assert r.p_value == pytest.approx(0.028725279625620437, rel=1e-9)
    same = stats.mean_test(Summary(200, 0.25, 0.1875), Summary(200, 0.35, 0.2275))
    assert same.p_value == pytest.approx(r.p_value, rel=1e-12) and same.ci == pytest.approx(r.ci, rel=1e-12)
    rel = stats.proportion_test(50, 200, 70, 200, relative=True)
    assert rel.estimate == pytest.approx(0.4, rel=1e-12)  # 0.35/0.25 - 1


def test_chi_square_matches_scipy() -> None:
    successes, totals = [50, 70, 61], [200, 200, 190]
    r = stats.chi_square_test(successes, totals)
    table = np.array([successes, [t - s for s, t in zip(successes, totals, strict=True)]])
    chi2, p, dof, _ = sps.chi2_contingency(table, correction=False)
    assert r is not None
    assert r.statistic == pytest.approx(chi2, rel=RTOL) and r.p_value == pytest.approx(p, rel=RTOL)
    assert r.df == dof == 2
    assert stats.chi_square_test([0, 0], [10, 10]) is None  # no successes anywhere: undefined


# --------------------------------------------------------------------------- SRM


def test_srm_matches_scipy_chisquare() -> None:
    counts, weights = [5100, 2400, 2500], [0.5, 0.25, 0.25]
    expected = np.array(weights) * sum(counts)
    assert stats.srm_p_value(counts, weights) == pytest.approx(
        sps.chisquare(counts, expected).pvalue, rel=RTOL
    )


def test_srm_catches_a_constructed_mismatch() -> None:
    # 50/50 split; 5000 vs 5400 units: expected 5200 each, χ² = 2 x 200²/5200 = 15.3846 (df 1),
    # p = 8.8e-5 < 0.001: flagged.  5010 vs 4990: χ² = 2 x 10²/5000 = 0.04, p = 0.84.
    bad = stats.srm_p_value([5000, 5400], [0.5, 0.5])
    assert bad == pytest.approx(sps.chi2.sf(2 * 200**2 / 5200, 1), rel=RTOL)
    assert bad < 0.001
    assert stats.srm_p_value([5010, 4990], [0.5, 0.5]) == pytest.approx(sps.chi2.sf(0.04, 1), rel=RTOL)
    # unnormalised weights are normalised: 2:1 is 2/3, 1/3
    assert stats.srm_p_value([200, 100], [2, 1]) == pytest.approx(1.0)
    assert stats.srm_p_value([0, 0], [0.5, 0.5]) == 1.0


@pytest.mark.parametrize(
    ("counts", "weights", "message"),
    [
        ([1, 2], [0.5], "differ in length"),
        ([1], [1.0], "at least two"),
        ([1, -2], [0.5, 0.5], "non-negative integer"),
        ([1, 2], [0.5, 0.0], "positive"),
    ],
)
def test_srm_rejects_bad_input(counts: list[int], weights: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.srm_p_value(counts, weights)


# --------------------------------------------------------------------------- corrections


@pytest.mark.parametrize(("method", "sm_method"), [("holm", "holm"), ("bh", "fdr_bh")])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adjust_p_values_matches_statsmodels(method: str, sm_method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(0, 0.06, 6), rng.uniform(0, 1, 6), [0.03, 0.03]])  # with ties
    rng.shuffle(p)
    ours = stats.adjust_p_values(list(p), method=method)  # type: ignore[arg-type]
    ref = smm.multipletests(p, method=sm_method)[1]
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=0)


def test_adjust_p_values_hand_worked_in_given_order() -> None:
    # p = (0.01, 0.04, 0.03, 0.2); sorted 0.01, 0.03, 0.04, 0.2
    # holm: 4 x 0.01 = 0.04; 3 x 0.03 = 0.09; max(2 x 0.04, 0.09) = 0.09; max(1 x 0.2, 0.09) = 0.2
    # bh:   0.2 x 4/4 = 0.2; 0.04 x 4/3 = 0.05333; min(0.03 x 4/2 = 0.06, 0.05333); 0.01 x 4 = 0.04
    p = [0.01, 0.04, 0.03, 0.2]
    assert stats.adjust_p_values(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.2], rel=1e-12)
    assert stats.adjust_p_values(p, "bh") == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2], rel=1e-12)
    assert stats.adjust_p_values([], "holm") == []
    with pytest.raises(ValueError, match="unknown method"):
        stats.adjust_p_values(p, "bonferroni")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.adjust_p_values([0.5, 1.5])


# --------------------------------------------------------------------------- power


def test_sample_size_hand_worked_and_statsmodels() -> None:
    # z_0.975 = 1.959963984540054, z_0.8 = 0.8416212335729143, sum 2.801585218112968
    # n = 2 x 2.801585218² x 1² / (0.05 x 2)² = 2 x 7.848879734 / 0.01 = 1569.77594687
    n = stats.sample_size(baseline_mean=2.0, baseline_sd=1.0, mde=0.05, alpha=0.05, power=0.8)
    assert n == pytest.approx(1569.7759468698177, rel=1e-12)
    # statsmodels also counts the far tail's tiny power (Φ(-4.76) ~ 1e-6), hence 1e-5
    ref = NormalIndPower().solve_power(effect_size=0.1, alpha=0.05, power=0.8, ratio=1.0)
    assert n == pytest.approx(ref, rel=1e-5)
    assert stats.power(n, 2.0, 1.0, 0.05) == pytest.approx(0.8, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline_mean": 0.0, "baseline_sd": 1.0}, "must not be 0"),
        ({"baseline_mean": 1.0, "baseline_sd": 0.0}, "positive"),
        ({"baseline_mean": 1.0, "baseline_sd": 1.0, "power": 1.0}, "power must be"),
    ],
)
def test_sample_size_rejects_bad_input(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        stats.sample_size(**kwargs)


def test_achieved_mde() -> None:
    # se = sqrt(4/100 + 9/100) = 0.360555; (1.959964 + 0.841621) x 0.360555 / 10 = 0.1010126
    mde = stats.achieved_mde(Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0))
    assert mde == pytest.approx(2.8015852181129683 * math.sqrt(0.13) / 10, rel=1e-12)
    assert stats.achieved_mde(Summary(0, 0.0, 0.0), Summary(5, 1.0, 1.0)) is None


# --------------------------------------------------------------------------- ratio metrics


def test_ratio_summary_equals_linearised_variance() -> None:
    # The delta-method variance of n̄/d̄ equals the sample variance of the linearised values
    # (n_i - R d_i)/d̄ with R = n̄/d̄ (an algebraic identity), computed here by numpy.
    rng = np.random.default_rng(7)
    den = rng.integers(1, 6, 200).astype(float)  # requests per unit
    num = den * rng.normal(300, 40, 200) + rng.normal(0, 30, 200)  # total latency per unit
    r = num.mean() / den.mean()
    s = stats.ratio_summary(
        200, num.mean(), num.var(ddof=1), den.mean(), den.var(ddof=1), float(np.cov(num, den)[0, 1])
    )
    assert s.mean == pytest.approx(num.sum() / den.sum(), rel=RTOL)
    assert s.var == pytest.approx(np.var((num - r * den) / den.mean(), ddof=1), rel=1e-9)
    with pytest.raises(ValueError, match="denominator's mean is 0"):
        stats.ratio_summary(3, 1.0, 1.0, 0.0, 1.0, 0.0)


# --------------------------------------------------------------------------- CUPED


def _cuped_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xa, xb = rng.normal(10, 3, 150), rng.normal(10, 3, 170)
    ya = 0.8 * xa + rng.normal(0, 1, 150)
    yb = 0.8 * xb + 0.4 + rng.normal(0, 1, 170)
    return ya, xa, yb, xb


def test_cuped_absolute_matches_welch_on_adjusted_raw_values() -> None:
    ya, xa, yb, xb = _cuped_data(11)
    # θ over both arms as one sample, then each unit's y - θ x and scipy's Welch test on them
    theta = np.cov(np.concatenate([ya, yb]), np.concatenate([xa, xb]))[0, 1] / np.var(
        np.concatenate([xa, xb]), ddof=1
    )
    ref = sps.ttest_ind(yb - theta * xb, ya - theta * xa, equal_var=False)
    res = stats.cuped_test(CovariateSummary.from_values(ya, xa), CovariateSummary.from_values(yb, xb))
    assert res.applied and res.theta == pytest.approx(theta, rel=RTOL)
    assert res.test.p_value == pytest.approx(ref.pvalue, rel=1e-8)
    assert res.test.df == pytest.approx(ref.df, rel=RTOL)
    plain = stats.mean_test(Summary.from_values(ya), Summary.from_values(yb))
    assert res.test.se is not None and plain.se is not None and res.test.se < 0.5 * plain.se
    assert 0.5 < res.variance_reduction < 1.0


def test_cuped_relative_delta_method_matches_numerical_gradient() -> None:
    ya, xa, yb, xb = _cuped_data(12)
    res = stats.cuped_test(
        CovariateSummary.from_values(ya, xa), CovariateSummary.from_values(yb, xb), relative=True
    )
    theta = res.theta
    adj_a, adj_b = ya - theta * xa, yb - theta * xb
    means = np.array([adj_a.mean(), ya.mean(), adj_b.mean()])

    def f(v: np.ndarray) -> float:
        return float((v[2] - v[0]) / v[1])

    cov = np.zeros((3, 3))
    cov[:2, :2] = np.cov(np.vstack([adj_a, ya])) / len(ya)
    cov[2, 2] = adj_b.var(ddof=1) / len(yb)
    h = 1e-6
    grad = np.array([(f(means + h * e) - f(means - h * e)) / (2 * h) for e in np.eye(3)])
    assert res.test.estimate == pytest.approx(f(means), rel=1e-9)
    assert res.test.se == pytest.approx(math.sqrt(grad @ cov @ grad), rel=1e-6)


def test_cuped_off_without_history() -> None:
    ya, _, yb, _ = _cuped_data(13)
    res = stats.cuped_test(
        CovariateSummary.from_values(ya, np.zeros_like(ya)),
        CovariateSummary.from_values(yb, np.zeros_like(yb)),
    )
    assert not res.applied and res.reason is not None and "no history" in res.reason
    assert res.test == stats.mean_test(Summary.from_values(ya), Summary.from_values(yb))


def test_covariate_summary_from_sums() -> None:
    ya, xa, _, _ = _cuped_data(14)
    s = CovariateSummary.from_sums(
        len(ya), ya.sum(), (ya * ya).sum(), xa.sum(), (xa * xa).sum(), (xa * ya).sum()
    )
    assert s.cov == pytest.approx(np.cov(ya, xa)[0, 1], rel=1e-9)


# --------------------------------------------------------------------------- Bayesian


def test_bayes_flat_prior_chance_to_win() -> None:
    # flat prior: posterior N(0.1, 0.001384) for the relative lift; P(lift > 0) = Φ(0.1/0.0372022)
    r = stats.bayes_test(Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0))
    assert r.chance_to_win == pytest.approx(sps.norm.cdf(0.1 / math.sqrt(0.001384)), rel=1e-12)
    lower = stats.bayes_test(Summary(100, 10.0, 4.0), Summary(100, 11.0, 9.0), higher_is_better=False)
    assert lower.chance_to_win is not None and r.chance_to_win is not None
    assert lower.chance_to_win == pytest.approx(1 - r.chance_to_win, rel=1e-9)


def test_bayes_gaussian_prior_matches_numerical_integration() -> None:
    a, b = Summary(40, 10.0, 16.0), Summary(40, 10.8, 25.0)
    prior_mean, prior_var = -0.02, 0.05**2
    r = stats.bayes_test(a, b, prior_mean=prior_mean, prior_var=prior_var)
    t = stats.mean_test(a, b, relative=True)
    assert t.estimate is not None and t.se is not None

    def unnorm(d: float) -> float:  # likelihood x prior
        return float(sps.norm.pdf(d, t.estimate, t.se) * sps.norm.pdf(d, prior_mean, math.sqrt(prior_var)))

    total = integrate.quad(unnorm, -2, 2, points=[0.0], epsabs=0, epsrel=1e-12)[0]
    win = integrate.quad(unnorm, 0, 2, epsabs=0, epsrel=1e-12)[0] / total
    loss = integrate.quad(lambda d: -d * unnorm(d), -2, 0, epsabs=0, epsrel=1e-12)[0] / total
    mean = integrate.quad(lambda d: d * unnorm(d), -2, 2, points=[0.0], epsabs=0, epsrel=1e-12)[0] / total
    assert r.chance_to_win == pytest.approx(win, rel=1e-8)
    assert r.risk == pytest.approx(loss, rel=1e-7)
    assert r.mean == pytest.approx(mean, rel=1e-8)


def test_bayes_untestable_gives_error() -> None:
    r = stats.bayes_test(Summary(1, 1.0, 0.0), Summary(5, 1.0, 1.0))
    assert r.chance_to_win is None and r.error is not None
