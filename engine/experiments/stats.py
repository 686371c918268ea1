"""A/B statistics from per-variant summary statistics (pure: numbers in, frozen results out).

The stable interface (issue 14, item 4; ``docs`` in :mod:`engine.experiments`)::

    a = Summary(n=1000, mean=2.1, var=0.8)          # var: sample variance (ddof=1)
    r = mean_test(a, b, alpha=0.05, relative=False, sequential=False)
    r.estimate, r.ci, r.p_value, r.df               # b against a; ci = (low, high)
    proportion_test(x_a, n_a, x_b, n_b, alpha=0.05, relative=False)
    srm_p_value(counts, weights)                    # chi-square goodness of fit, df = k - 1
    adjust_p_values(p_values, method="holm")        # or "bh"; same order as given
    sample_size(baseline_mean=..., baseline_sd=..., mde=0.05, alpha=0.05, power=0.8)

Methods (the formulas GrowthBook's gbstats uses, written from the papers and its docs):

* Welch's t test with the Welch-Satterthwaite degrees of freedom and the t distribution,
  two-sided.  Relative lift ``(mean_b - mean_a) / mean_a`` has the delta-method variance
  ``var_b/(mean_a² n_b) + var_a mean_b²/(mean_a⁴ n_a)`` and the same degrees of freedom.
* Sequential (``sequential=True``): the asymptotic confidence sequence of Waudby-Smith et al.
  (2023, "Time-uniform central limit theory and asymptotic confidence sequences", eq. 9) with
  N = n_a + n_b, the per-observation variance ``s² = se² N`` and the mixing parameter
  ``ρ = sqrt((-2 ln α + ln(1 - 2 ln α)) / N*)`` for the tuning N* (5000 by default); the
  p-value is the always-valid one of the same paper (eq. 155): ``min(1, 1/E)`` with the
  mixture e-value ``E = exp(ρ² N z² / (2 (N ρ² + 1))) / sqrt(N ρ² + 1)``, ``z = estimate/se``.
  It is the dual of the sequence: p < α exactly when 0 is outside the interval.
* Proportions: exactly :func:`mean_test` with means p and the population variances p(1-p)
  (unpooled), as GrowthBook does; :func:`chi_square_test` gives the 2 x k table's test beside it.
* SRM: Pearson's chi-square goodness of fit of the observed counts to the configured weights.
* Holm's step-down and Benjamini-Hochberg's step-up adjusted p-values.
* CUPED (:func:`cuped_test`): θ = pooled cov(y, x) / pooled var(x) over both arms, each arm's
  mean ``ȳ - θ x̄`` and variance ``var_y + θ² var_x - 2 θ cov``; the relative lift divides by
  the baseline's unadjusted mean (delta method over all three means).  Off, with the reason,
  when the covariate has no variance (no pre-experiment history).
* Ratio metrics (:func:`ratio_summary`): the per-unit delta-method variance of
  ``mean_num / mean_den``, ``var_n/d̄² + var_d n̄²/d̄⁴ - 2 cov n̄/d̄³``.
* Bayesian (:func:`bayes_test`): a Gaussian posterior for the lift (flat or Gaussian prior)
  giving the chance to win, a credible interval and the expected loss (risk).

Data that cannot be analysed (an arm with fewer than two units, no variance at all, a zero
baseline for a relative lift) gives a result whose ``estimate`` is None and whose ``error``
says why; no exception.  Arguments out of their domain (alpha outside (0, 1), a negative
count, weights that do not match the counts ...) raise :class:`ValueError` with a message
naming the argument.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

__all__ = [
    "DEFAULT_SEQUENTIAL_TUNING",
    "BayesResult",
    "ChiSquareResult",
    "CovariateSummary",
    "CupedResult",
    "Summary",
    "TestResult",
    "achieved_mde",
    "adjust_p_values",
    "bayes_test",
    "chi_square_test",
    "cuped_test",
    "mean_test",
    "power",
    "proportion_test",
    "ratio_summary",
    "sample_size",
    "sequential_rho",
    "srm_p_value",
    "welch_df",
]

#: N*, the sample size (both arms together) at which the confidence sequence is tightest.
DEFAULT_SEQUENTIAL_TUNING = 5000.0


def _check_alpha(alpha: float, name: str = "alpha") -> float:
    if not isinstance(alpha, int | float) or isinstance(alpha, bool) or not 0.0 < alpha < 1.0:
        raise ValueError(f"{name} must be a number strictly between 0 and 1, got {alpha!r}")
    return float(alpha)


def _finite(value: float, name: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _count(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- summaries


@dataclass(frozen=True, slots=True)
class Summary:
    """One variant's metric over its units: count ``n``, ``mean`` and sample variance ``var`` (ddof=1).

    Raises:
        ValueError: ``n`` is not a non-negative integer, ``mean`` or ``var`` is not finite, or
            ``var`` is negative.
    """

    n: int
    mean: float
    var: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", _count(self.n, "n"))
        object.__setattr__(self, "mean", _finite(self.mean, "mean"))
        var = _finite(self.var, "var")
        if var < 0:
            # Sums of squares computed in SQL can land a hair below zero for constant data.
            if var > -1e-9 * max(1.0, self.mean * self.mean):
                var = 0.0
            else:
                raise ValueError(f"var must be >= 0, got {var!r}")
        object.__setattr__(self, "var", var)

    @classmethod
    def from_values(cls, values: Sequence[float] | np.ndarray) -> Summary:
        """The summary of raw per-unit values (sample variance, ddof=1; 0 for fewer than 2 values)."""
        arr = np.asarray(values, dtype=float)
        if arr.ndim != 1:
            raise ValueError("values must be one-dimensional")
        n = int(arr.size)
        if n == 0:
            return cls(0, 0.0, 0.0)
        return cls(n, float(arr.mean()), float(arr.var(ddof=1)) if n > 1 else 0.0)

    @classmethod
    def from_sums(cls, n: int, total: float, sum_squares: float) -> Summary:
        """The summary from ``n``, ``Σ y`` and ``Σ y²`` (what SQL aggregates give)."""
        n = _count(n, "n")
        total = _finite(total, "total")
        sum_squares = _finite(sum_squares, "sum_squares")
        if n == 0:
            return cls(0, 0.0, 0.0)
        mean = total / n
        var = (sum_squares - total * mean) / (n - 1) if n > 1 else 0.0
        return cls(n, mean, var)

    @classmethod
    def from_proportion(cls, successes: int, n: int) -> Summary:
        """A binary metric: mean p = successes/n and the population variance p(1 - p), as GrowthBook.

        Raises:
            ValueError: a count is negative or not an integer, or ``successes > n``.
        """
        successes = _count(successes, "successes")
        n = _count(n, "n")
        if successes > n:
            raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
        if n == 0:
            return cls(0, 0.0, 0.0)
        p = successes / n
        return cls(n, p, p * (1.0 - p))


@dataclass(frozen=True, slots=True)
class CovariateSummary:
    """One variant's metric ``y`` and its pre-experiment covariate ``x`` over the same ``n`` units.

    ``y`` and ``x`` are :class:`Summary` values (sample variances), ``cov`` the sample
    covariance of (y, x) with ddof=1.
    """

    y: Summary
    x: Summary
    cov: float

    def __post_init__(self) -> None:
        if self.y.n != self.x.n:
            raise ValueError(f"y and x must cover the same units (n {self.y.n} vs {self.x.n})")
        object.__setattr__(self, "cov", _finite(self.cov, "cov"))

    @classmethod
    def from_values(
        cls, y: Sequence[float] | np.ndarray, x: Sequence[float] | np.ndarray
    ) -> CovariateSummary:
        """From paired raw per-unit values (y: the metric, x: the same metric before the experiment)."""
        ya, xa = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
        if ya.shape != xa.shape or ya.ndim != 1:
            raise ValueError("y and x must be one-dimensional and of the same length")
        cov = float(np.cov(ya, xa, ddof=1)[0, 1]) if ya.size > 1 else 0.0
        return cls(Summary.from_values(ya), Summary.from_values(xa), cov)

    @classmethod
    def from_sums(
        cls, n: int, sum_y: float, sum_y2: float, sum_x: float, sum_x2: float, sum_xy: float
    ) -> CovariateSummary:
        """From ``n`` and the sums Σy, Σy², Σx, Σx², Σxy (what SQL aggregates give)."""
        y = Summary.from_sums(n, sum_y, sum_y2)
        x = Summary.from_sums(n, sum_x, sum_x2)
        cov = (sum_xy - sum_x * sum_y / n) / (n - 1) if n > 1 else 0.0
        return cls(y, x, cov)


def ratio_summary(
    n: int, mean_num: float, var_num: float, mean_den: float, var_den: float, cov: float
) -> Summary:
    """A ratio metric (Σ numerator / Σ denominator over a variant's units) as a :class:`Summary`.

    ``mean`` is ``mean_num / mean_den``; ``var`` is the per-unit delta-method variance
    ``var_num/mean_den² + var_den mean_num²/mean_den⁴ - 2 cov mean_num/mean_den³`` (sample
    variances and covariance, ddof=1), so that ``var / n`` is the variance of the ratio, and
    :func:`mean_test` compares two ratio metrics as it compares two means.

    Raises:
        ValueError: ``mean_den`` is 0 (the ratio is undefined) or an argument is not finite.
    """
    n = _count(n, "n")
    mn, vn = _finite(mean_num, "mean_num"), _finite(var_num, "var_num")
    md, vd = _finite(mean_den, "mean_den"), _finite(var_den, "var_den")
    cv = _finite(cov, "cov")
    if md == 0:
        raise ValueError("the ratio is undefined: the denominator's mean is 0")
    var = vn / md**2 + vd * mn**2 / md**4 - 2.0 * cv * mn / md**3
    return Summary(n, mn / md, max(var, 0.0))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class TestResult:
    """A comparison of variant b against baseline a.

    ``estimate``: b - a (absolute) or (b - a)/a (relative, a fraction: 0.05 is +5 %);
    ``ci``: the two-sided 1 - alpha interval (a confidence sequence when sequential);
    ``p_value``: two-sided (always-valid when sequential); ``df``: the Welch-Satterthwaite
    degrees of freedom (None when sequential: the confidence sequence does not use them);
    ``se``: the standard error of the estimate.  When the data cannot be analysed every
    number is None and ``error`` says why.
    """

    __test__ = False  # not a pytest test class

    estimate: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    df: float | None
    se: float | None
    alpha: float
    relative: bool
    sequential: bool
    error: str | None = None

    @property
    def significant(self) -> bool:
        """True when the p-value is below alpha (False when there is no result)."""
        return self.p_value is not None and self.p_value < self.alpha


def _failed(reason: str, alpha: float, relative: bool, sequential: bool) -> TestResult:
    return TestResult(None, None, None, None, None, alpha, relative, sequential, reason)


def welch_df(a: Summary, b: Summary) -> float:
    """Welch-Satterthwaite degrees of freedom of ``mean_b - mean_a`` (needs n >= 2 in each arm
    and some variance)."""
    va, vb = a.var / a.n, b.var / b.n
    return (va + vb) ** 2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))


def sequential_rho(alpha: float, tuning: float = DEFAULT_SEQUENTIAL_TUNING) -> float:
    """The mixing parameter ρ of the two-sided asymptotic confidence sequence that is tightest
    near ``tuning`` observations: ``sqrt((-2 ln α + ln(1 - 2 ln α)) / tuning)``.

    Raises:
        ValueError: alpha outside (0, 1) or tuning not positive.
    """
    alpha = _check_alpha(alpha)
    if not tuning > 0:
        raise ValueError(f"the sequential tuning N* must be positive, got {tuning!r}")
    la = math.log(alpha)
    return math.sqrt((-2.0 * la + math.log(1.0 - 2.0 * la)) / tuning)


def _finish(
    estimate: float,
    se: float,
    df: float,
    n_total: int,
    alpha: float,
    relative: bool,
    sequential: bool,
    tuning: float,
) -> TestResult:
    """The interval and p-value of ``estimate`` with standard error ``se`` (fixed or sequential)."""
    if sequential:
        rho = sequential_rho(alpha, tuning)
        nr2 = n_total * rho * rho  # N ρ²
        s2 = se * se * n_total  # the per-observation variance of the paper
        # eq. 9: half-width = sqrt(s² · 2 (Nρ² + 1) ln(sqrt(Nρ² + 1) / α) / (Nρ)²)
        log_term = math.log(math.sqrt(nr2 + 1.0) / alpha)
        half = math.sqrt(s2 * 2.0 * (nr2 + 1.0) * log_term / (n_total * rho) ** 2)
        # eq. 155: ln E = ρ² N z² / (2 (Nρ² + 1)) - ln sqrt(Nρ² + 1); p = min(1, 1/E)
        z2 = (estimate / se) ** 2
        log_e = rho * rho * n_total * z2 / (2.0 * (nr2 + 1.0)) - 0.5 * math.log(nr2 + 1.0)
        p = 1.0 if log_e <= 0 else math.exp(-log_e)
        return TestResult(estimate, (estimate - half, estimate + half), p, None, se, alpha, relative, True)
    tcrit = float(sps.t.ppf(1.0 - alpha / 2.0, df))
    p = min(float(2.0 * sps.t.sf(abs(estimate) / se, df)), 1.0)
    half = tcrit * se
    return TestResult(estimate, (estimate - half, estimate + half), p, df, se, alpha, relative, False)


def _usable(a: Summary, b: Summary) -> str | None:
    for name, s in (("a", a), ("b", b)):
        if s.n < 2:
            return f"variant {name} has {s.n} unit(s); a test needs at least 2 in each variant"
    if a.var == 0 and b.var == 0:
        return "both variants have zero variance: there is no spread to test against"
    return None


def mean_test(
    a: Summary,
    b: Summary,
    alpha: float = 0.05,
    relative: bool = False,
    sequential: bool = False,
    tuning: float = DEFAULT_SEQUENTIAL_TUNING,
) -> TestResult:
    """Welch's two-sided t test of ``mean_b - mean_a`` (or the relative lift), b against baseline a.

    Args:
        a: the baseline (control) variant's summary.
        b: the treatment variant's summary.
        alpha: 1 - the interval's coverage, and the significance level.
        relative: test ``(mean_b - mean_a) / mean_a`` (delta-method variance) instead of the difference.
        sequential: give the always-valid confidence sequence and p-value (Waudby-Smith et al.).
        tuning: N* of the sequential test (both arms together).

    Returns:
        A :class:`TestResult`; when the data cannot be tested (fewer than 2 units in an arm, no
        variance, ``mean_a == 0`` with ``relative``) its numbers are None and ``error`` says why.

    Raises:
        ValueError: alpha outside (0, 1) or a non-positive tuning.
    """
    alpha = _check_alpha(alpha)
    if sequential:
        sequential_rho(alpha, tuning)  # validates tuning
    problem = _usable(a, b)
    if problem:
        return _failed(problem, alpha, relative, sequential)
    df = welch_df(a, b)
    if relative:
        if a.mean == 0:
            return _failed(
                "the relative lift is undefined: the baseline's mean is 0", alpha, relative, sequential
            )
        estimate = (b.mean - a.mean) / a.mean
        var = b.var / (a.mean**2 * b.n) + a.var * b.mean**2 / (a.mean**4 * a.n)
    else:
        estimate = b.mean - a.mean
        var = b.var / b.n + a.var / a.n
    if not var > 0:  # e.g. relative with the treatment's mean 0 and no spread: the delta variance is 0
        return _failed(
            "the lift's estimated variance is 0 (the variant's mean is 0 with no spread)",
            alpha,
            relative,
            sequential,
        )
    return _finish(estimate, math.sqrt(var), df, a.n + b.n, alpha, relative, sequential, tuning)


def proportion_test(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    alpha: float = 0.05,
    relative: bool = False,
    sequential: bool = False,
    tuning: float = DEFAULT_SEQUENTIAL_TUNING,
) -> TestResult:
    """Two-proportion test (unpooled): :func:`mean_test` on means p and variances p(1 - p).

    Raises:
        ValueError: a count is negative or not an integer, successes exceed n, or alpha is bad.
    """
    a = Summary.from_proportion(successes_a, n_a)
    b = Summary.from_proportion(successes_b, n_b)
    return mean_test(a, b, alpha=alpha, relative=relative, sequential=sequential, tuning=tuning)


@dataclass(frozen=True, slots=True)
class ChiSquareResult:
    """Pearson's chi-square test of independence of a 2 x k table (no continuity correction)."""

    statistic: float
    df: int
    p_value: float


def chi_square_test(successes: Sequence[int], totals: Sequence[int]) -> ChiSquareResult | None:
    """Chi-square test that the success rate is the same in every variant (2 x k table).

    Returns None when the table has a zero margin (no successes or no failures at all, or a
    variant with no units): the test is undefined there.

    Raises:
        ValueError: fewer than two variants, lengths differ, or a count is negative / too large.
    """
    if len(successes) != len(totals) or len(totals) < 2:
        raise ValueError("successes and totals must have the same length, at least 2")
    x = np.array([_count(v, "successes") for v in successes], dtype=float)
    n = np.array([_count(v, "totals") for v in totals], dtype=float)
    if np.any(x > n):
        raise ValueError("a variant has more successes than units")
    table = np.vstack([x, n - x])
    rows, cols, total = table.sum(axis=1), table.sum(axis=0), table.sum()
    if total == 0 or np.any(rows == 0) or np.any(cols == 0):
        return None
    expected = np.outer(rows, cols) / total
    stat = float(((table - expected) ** 2 / expected).sum())
    df = len(totals) - 1
    return ChiSquareResult(stat, df, float(sps.chi2.sf(stat, df)))


# --------------------------------------------------------------------------- SRM and corrections


def srm_p_value(counts: Sequence[int], weights: Sequence[float]) -> float:
    """Sample-ratio-mismatch p-value: Pearson's chi-square goodness of fit of the observed unit
    ``counts`` per variant to the expected split ``weights`` (normalised), df = k - 1.

    A tiny p-value (the decision rule uses < 0.001) says the assignment or the exposure logging
    is broken.  No units at all gives 1.0 (no evidence of a mismatch).

    Raises:
        ValueError: fewer than two variants, lengths differ, a negative count, or a weight that
            is not positive and finite.
    """
    if len(counts) != len(weights):
        raise ValueError(f"counts ({len(counts)}) and weights ({len(weights)}) differ in length")
    if len(counts) < 2:
        raise ValueError("an SRM check needs at least two variants")
    obs = np.array([_count(c, "counts") for c in counts], dtype=float)
    w = np.array([_finite(x, "weights") for x in weights], dtype=float)
    if np.any(w <= 0):
        raise ValueError("every weight must be positive")
    total = obs.sum()
    if total == 0:
        return 1.0
    expected = w / w.sum() * total
    stat = float(((obs - expected) ** 2 / expected).sum())
    return float(sps.chi2.sf(stat, len(counts) - 1))


def adjust_p_values(p_values: Sequence[float], method: Literal["holm", "bh"] = "holm") -> list[float]:
    """Multiple-comparison adjusted p-values, in the order given.

    ``holm``: Holm's step-down (family-wise error rate); ``bh``: Benjamini-Hochberg's step-up
    (false discovery rate).  Adjusted values are capped at 1.

    Raises:
        ValueError: an unknown method or a p-value outside [0, 1].
    """
    if method not in ("holm", "bh"):
        raise ValueError(f"unknown method {method!r}: use 'holm' or 'bh'")
    p = np.array([_finite(v, "p_values") for v in p_values], dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    if m == 0:
        return []
    out = np.empty(m)
    if method == "holm":
        order = np.argsort(p, kind="stable")
        steps = (m - np.arange(m)) * p[order]  # (m - i) p_(i), i from 0
        out[order] = np.minimum(np.maximum.accumulate(steps), 1.0)
    else:
        order = np.argsort(p, kind="stable")[::-1]  # largest first
        ranks = m - np.arange(m)  # rank (1-based) of each in ascending order
        steps = p[order] * m / ranks
        out[order] = np.minimum(np.minimum.accumulate(steps), 1.0)
    return [float(v) for v in out]


# --------------------------------------------------------------------------- power


def _z(q: float) -> float:
    return float(sps.norm.ppf(q))


def sample_size(
    baseline_mean: float, baseline_sd: float, mde: float = 0.05, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Units per arm to detect a relative change ``mde`` of the mean (two-sided, equal arms,
    normal approximation): ``2 (z_{1-α/2} + z_{power})² sd² / (mde · mean)²``, unrounded.

    Raises:
        ValueError: a zero or non-finite mean, a non-positive sd or mde, alpha or power outside (0, 1).
    """
    mean = _finite(baseline_mean, "baseline_mean")
    sd = _finite(baseline_sd, "baseline_sd")
    mde = _finite(mde, "mde")
    alpha = _check_alpha(alpha)
    power = _check_alpha(power, "power")
    if mean == 0:
        raise ValueError("baseline_mean must not be 0: a relative MDE of a zero mean is no change")
    if sd <= 0 or mde <= 0:
        raise ValueError("baseline_sd and mde must be positive")
    z = _z(1 - alpha / 2) + _z(power)
    return 2.0 * z * z * sd * sd / (mde * mean) ** 2


def power(
    n_per_arm: float, baseline_mean: float, baseline_sd: float, mde: float, alpha: float = 0.05
) -> float:
    """Power to detect a relative change ``mde`` with ``n_per_arm`` units per arm (the inverse of
    :func:`sample_size`): ``Φ(|mde · mean| / (sd sqrt(2/n)) - z_{1-α/2})``.

    Raises:
        ValueError: as :func:`sample_size`, or a non-positive ``n_per_arm``.
    """
    mean = _finite(baseline_mean, "baseline_mean")
    sd = _finite(baseline_sd, "baseline_sd")
    alpha = _check_alpha(alpha)
    if not _finite(n_per_arm, "n_per_arm") > 0 or sd <= 0:
        raise ValueError("n_per_arm and baseline_sd must be positive")
    se = sd * math.sqrt(2.0 / n_per_arm)
    return float(sps.norm.cdf(abs(_finite(mde, "mde") * mean) / se - _z(1 - alpha / 2)))


def achieved_mde(a: Summary, b: Summary, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The relative MDE the data at hand can detect with the given power:
    ``(z_{1-α/2} + z_{power}) · se / |mean_a|`` with ``se`` the standard error of the difference
    (``sqrt(var_a/n_a + var_b/n_b)``).  The target MDE is reached when this is no larger.

    Returns None when an arm has no units or the baseline mean is 0.
    """
    alpha = _check_alpha(alpha)
    power = _check_alpha(power, "power")
    if a.n == 0 or b.n == 0 or a.mean == 0:
        return None
    se = math.sqrt(a.var / a.n + b.var / b.n)
    return (_z(1 - alpha / 2) + _z(power)) * se / abs(a.mean)


# --------------------------------------------------------------------------- CUPED


@dataclass(frozen=True, slots=True)
class CupedResult:
    """A CUPED-adjusted comparison: ``test`` (adjusted when ``applied``), ``theta``, the adjusted
    summaries, the share of variance removed, and ``reason`` when it was not applied."""

    test: TestResult
    applied: bool
    theta: float
    a: Summary
    b: Summary
    variance_reduction: float
    reason: str | None = None


def _adjusted(s: CovariateSummary, theta: float) -> Summary:
    var = s.y.var + theta * theta * s.x.var - 2.0 * theta * s.cov
    return Summary(s.y.n, s.y.mean - theta * s.x.mean, max(var, 0.0))


def cuped_test(
    a: CovariateSummary,
    b: CovariateSummary,
    alpha: float = 0.05,
    relative: bool = False,
    sequential: bool = False,
    tuning: float = DEFAULT_SEQUENTIAL_TUNING,
) -> CupedResult:
    """:func:`mean_test` with CUPED variance reduction by the pre-experiment covariate.

    θ is the pooled cov(y, x) / var(x) of both arms taken as one sample (as GrowthBook);
    each arm's adjusted mean is ``ȳ - θ x̄`` with variance ``var_y + θ² var_x - 2θ cov``.
    The absolute lift is the difference of adjusted means (Welch df of the adjusted summaries);
    the relative lift divides it by the baseline's unadjusted mean ȳ_a, with the delta-method
    variance over (adjusted a, unadjusted a, adjusted b).  When the pooled covariate has no
    variance (units have no history) CUPED is off: the plain test, ``applied`` False and the reason.

    Raises:
        ValueError: alpha outside (0, 1).
    """
    alpha = _check_alpha(alpha)
    n = a.y.n + b.y.n
    pooled_x = _pooled(a.x, b.x)
    if n < 2 or pooled_x.var <= 0:
        reason = "the pre-experiment covariate has no variance (units have no history before the start)"
        plain = mean_test(a.y, b.y, alpha, relative, sequential, tuning)
        return CupedResult(plain, False, 0.0, a.y, b.y, 0.0, reason)
    pooled_y = _pooled(a.y, b.y)
    sum_xy = sum(s.cov * (s.y.n - 1) + s.y.n * s.y.mean * s.x.mean for s in (a, b) if s.y.n > 0)
    cov = (sum_xy - n * pooled_y.mean * pooled_x.mean) / (n - 1)
    theta = cov / pooled_x.var
    adj_a, adj_b = _adjusted(a, theta), _adjusted(b, theta)
    raw_var = a.y.var / max(a.y.n, 1) + b.y.var / max(b.y.n, 1)
    adj_var = adj_a.var / max(a.y.n, 1) + adj_b.var / max(b.y.n, 1)
    reduction = 1.0 - adj_var / raw_var if raw_var > 0 else 0.0
    if not relative:
        test = mean_test(adj_a, adj_b, alpha, False, sequential, tuning)
        return CupedResult(test, True, theta, adj_a, adj_b, reduction)
    problem = _usable(adj_a, adj_b)
    if problem:
        return CupedResult(_failed(problem, alpha, True, sequential), True, theta, adj_a, adj_b, reduction)
    m_a = a.y.mean
    if m_a == 0:
        failed = _failed("the relative lift is undefined: the baseline's mean is 0", alpha, True, sequential)
        return CupedResult(failed, True, theta, adj_a, adj_b, reduction)
    diff = adj_b.mean - adj_a.mean
    estimate = diff / m_a
    # f(A, M, B) = (B - A) / M with A = adjusted mean a, M = unadjusted mean a, B = adjusted mean b;
    # gradient (-1/M, -(B - A)/M², 1/M); Cov(A, M) = (var_y - θ cov) / n_a, B independent of both.
    cov_am = (a.y.var - theta * a.cov) / a.y.n
    var = (
        adj_a.var / a.y.n / m_a**2
        + diff**2 * a.y.var / a.y.n / m_a**4
        + 2.0 * diff / m_a**3 * cov_am
        + adj_b.var / b.y.n / m_a**2
    )
    test = _finish(estimate, math.sqrt(var), welch_df(adj_a, adj_b), n, alpha, True, sequential, tuning)
    return CupedResult(test, True, theta, adj_a, adj_b, reduction)


def _pooled(a: Summary, b: Summary) -> Summary:
    """Both arms' values taken as one sample."""
    n = a.n + b.n
    if n == 0:
        return Summary(0, 0.0, 0.0)
    mean = (a.n * a.mean + b.n * b.mean) / n
    ss = sum((s.n - 1) * s.var + s.n * (s.mean - mean) ** 2 for s in (a, b) if s.n > 0)
    return Summary(n, mean, ss / (n - 1) if n > 1 else 0.0)


# --------------------------------------------------------------------------- Bayesian


@dataclass(frozen=True, slots=True)
class BayesResult:
    """A Gaussian posterior for the lift of b over a.

    ``chance_to_win``: P(lift > 0), or P(lift < 0) when lower is better; ``mean`` and ``sd``
    of the posterior; ``ci`` its central 1 - alpha credible interval; ``risk``: the expected
    loss of choosing b (E[max(0, -lift)], sign flipped when lower is better), in the lift's units.
    """

    chance_to_win: float | None
    mean: float | None
    sd: float | None
    ci: tuple[float, float] | None
    risk: float | None
    relative: bool
    error: str | None = None


def bayes_test(
    a: Summary,
    b: Summary,
    relative: bool = True,
    higher_is_better: bool = True,
    prior_mean: float = 0.0,
    prior_var: float | None = None,
    alpha: float = 0.05,
) -> BayesResult:
    """Bayesian comparison of b against a on the normal approximation of the lift.

    The data give the lift's estimate and standard error as in :func:`mean_test`; with a flat
    prior (``prior_var`` None) that is the posterior, with a Gaussian prior N(prior_mean,
    prior_var) the conjugate update (precisions add, means weighted by precision).

    Raises:
        ValueError: alpha outside (0, 1) or a non-positive ``prior_var``.
    """
    alpha = _check_alpha(alpha)
    if prior_var is not None and not _finite(prior_var, "prior_var") > 0:
        raise ValueError("prior_var must be positive (or None for a flat prior)")
    t = mean_test(a, b, alpha=alpha, relative=relative)
    if t.estimate is None or t.se is None:
        return BayesResult(None, None, None, None, None, relative, t.error)
    mean, var = t.estimate, t.se**2
    if prior_var is not None:
        precision = 1.0 / var + 1.0 / prior_var
        mean = (t.estimate / var + _finite(prior_mean, "prior_mean") / prior_var) / precision
        var = 1.0 / precision
    sd = math.sqrt(var)
    good = mean if higher_is_better else -mean  # the posterior mean of the improvement
    chance = float(sps.norm.cdf(good / sd))
    risk = sd * float(sps.norm.pdf(good / sd)) - good * float(sps.norm.cdf(-good / sd))
    zq = _z(1 - alpha / 2)
    return BayesResult(chance, mean, sd, (mean - zq * sd, mean + zq * sd), risk, relative)
