"""From the store to the statistics: per-variant :class:`~engine.experiments.stats.Summary`
values of a metric (aggregated in SQL by :mod:`observability.store.experiment_reads`) and the
SRM check of the exposures against a spec's weights.

Per variant and metric there are three views of the same units:

* ``unit``: the mean over units of each unit's mean value (every unit weighs the same), with
  its sample variance -- what :func:`~engine.experiments.stats.mean_test` compares;
* ``ratio``: Σ values / Σ requests over the variant (a request-weighted mean) with the
  delta-method variance (:func:`~engine.experiments.stats.ratio_summary`);
* ``covariate``: the unit values with the same metric over the pre-period, for CUPED.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from engine.experiments import stats
from engine.experiments.specs import ExperimentSpec
from observability.store.experiment_reads import PRE_PERIOD_S, exposure_counts, variant_sums

__all__ = ["MetricSummaries", "SrmCheck", "metric_summaries", "srm_check", "srm_from_counts"]


@dataclass(frozen=True, slots=True)
class MetricSummaries:
    """One variant's summaries of one metric (see the module docstring); ``ratio`` is None when
    the variant has no requests with a value."""

    variant: str
    unit: stats.Summary
    ratio: stats.Summary | None
    covariate: stats.CovariateSummary
    with_history: int


def metric_summaries(
    conn: sqlite3.Connection,
    experiment: str,
    metric: str,
    *,
    until_ts: float | None = None,
    start_ts: float | None = None,
    pre_period_s: float = PRE_PERIOD_S,
) -> dict[str, MetricSummaries]:
    """Summaries of ``metric`` per variant of ``experiment`` (variants with no unit value are absent).

    Raises:
        ValueError: an unknown metric.
        sqlite3.Error: the store cannot be read.
    """
    out: dict[str, MetricSummaries] = {}
    sums = variant_sums(
        conn, experiment, metric, until_ts=until_ts, start_ts=start_ts, pre_period_s=pre_period_s
    )
    for name, s in sums.items():
        unit = stats.Summary.from_sums(s.n, s.sum_y, s.sum_y2)
        ratio = None
        if s.sum_den > 0:
            num = stats.Summary.from_sums(s.n, s.sum_num, s.sum_num2)
            den = stats.Summary.from_sums(s.n, s.sum_den, s.sum_den2)
            cov = (s.sum_num_den - s.sum_num * s.sum_den / s.n) / (s.n - 1) if s.n > 1 else 0.0
            ratio = stats.ratio_summary(s.n, num.mean, num.var, den.mean, den.var, cov)
        covariate = stats.CovariateSummary.from_sums(s.n, s.sum_y, s.sum_y2, s.sum_x, s.sum_x2, s.sum_xy)
        out[name] = MetricSummaries(name, unit, ratio, covariate, s.with_history)
    return out


@dataclass(frozen=True, slots=True)
class SrmCheck:
    """Exposed units per variant (in the spec's order), the expected weights, and the SRM p-value;
    ``mismatch`` when p < ``threshold`` (0.001: a decision is blocked)."""

    counts: Mapping[str, int]
    weights: Mapping[str, float]
    p_value: float
    threshold: float = 0.001
    unknown_variants: tuple[str, ...] = ()

    @property
    def mismatch(self) -> bool:
        return self.p_value < self.threshold or bool(self.unknown_variants)


def srm_check(conn: sqlite3.Connection, spec: ExperimentSpec, threshold: float = 0.001) -> SrmCheck:
    """Compare the exposures recorded for ``spec`` with its weights (zero-weight variants left out).

    Exposures under a variant the spec does not name are reported in ``unknown_variants`` and
    count as a mismatch.

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    return srm_from_counts(spec, exposure_counts(conn, spec.id), threshold)


def srm_from_counts(spec: ExperimentSpec, recorded: Mapping[str, int], threshold: float = 0.001) -> SrmCheck:
    """:func:`srm_check` on exposure counts already read (``recorded``: exposures by variant
    name, from the ``exposures`` table or the experiment sums).  Raises nothing."""
    active = [v for v in spec.variants if v.weight > 0]
    counts = {v.name: recorded.get(v.name, 0) for v in active}
    weights = {v.name: v.weight for v in active}
    unknown = tuple(sorted(set(recorded) - set(spec.variant_names)))
    p = stats.srm_p_value(list(counts.values()), list(weights.values())) if len(active) > 1 else 1.0
    return SrmCheck(counts, weights, p, threshold, unknown)
