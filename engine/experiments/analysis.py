"""The analysis of an experiment from the store (issue 14, items 5 and 7): what the page, the
``analyze`` / ``report`` commands and :func:`engine.experiments.decision.decide` read.

``analyze(conn, spec, as_of=None)`` gives, per metric (primary, secondary, guardrail metrics) and
variant against the baseline: the unit mean, the absolute and relative lift with their intervals
(CUPED-adjusted when on and the units have pre-experiment history, else with the reason), the
p-value (of the absolute lift), the Holm-adjusted p-value over every (variant, metric) pair, the
MDE the data can detect and whether it reaches the spec's target, the Bayesian chance to win;
per proportion metric (correctness, errors) the chi-square test of the 2 x k table of requests;
the SRM check; the cumulative lift of the primary metric over time per variant; and per
``slo_burn`` guardrail each variant's SLO burn over the experiment (its own served requests).

Source of the sums (see :mod:`observability.store.experiment_sums`): with ``as_of`` None or past
the experiment's last request, the trigger-maintained tables (a few rows per variant and minute);
otherwise the exact row-based aggregation of :mod:`observability.store.experiment_reads` (slow on a
large store).  ``Analysis.source`` says which.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.experiments import stats
from engine.experiments.aggregate import SrmCheck, srm_check, srm_from_counts
from engine.experiments.specs import ExperimentSpec
from observability.slo.math import burn_rate
from observability.slo.models import SLO, load_slos
from observability.slo.sqlite_source import threshold_ms
from observability.store import experiment_sums
from observability.store.experiment_reads import (
    PRE_PERIOD_S,
    UNIT_METRICS,
    VariantSums,
    experiment_start,
    variant_sums,
)
from observability.store.rollups import BOUNDS_MS

__all__ = [
    "PROPORTION_METRICS",
    "Analysis",
    "MetricResult",
    "SeriesPoint",
    "SloBurn",
    "VariantResult",
    "analyze",
    "open_store",
]

#: Metrics whose per-request value is 0/1: the chi-square test of requests is reported beside them.
PROPORTION_METRICS: frozenset[str] = frozenset({"correctness", "errors"})
#: Points of the cumulative lift series at most.
MAX_SERIES_POINTS = 60


@dataclass(frozen=True, slots=True)
class VariantResult:
    """One variant on one metric.  ``absolute``/``relative``: the lift against the baseline
    (None for the baseline); ``p_value`` is the absolute test's, ``adjusted_p`` Holm's over every
    (variant, metric) pair; ``cuped_applied`` / ``cuped_reason`` / ``variance_reduction`` say
    whether CUPED adjusted the test; ``achieved_mde`` the relative MDE the data can detect
    (``mde_reached`` when it is no larger than the target); ``chance_to_win`` P(better than
    the baseline) on the relative lift; ``error`` why there is no test."""

    variant: str
    n: int
    mean: float
    is_baseline: bool
    absolute: stats.TestResult | None = None
    relative: stats.TestResult | None = None
    p_value: float | None = None
    adjusted_p: float | None = None
    cuped_applied: bool = False
    cuped_reason: str | None = None
    variance_reduction: float = 0.0
    achieved_mde: float | None = None
    mde_reached: bool = False
    chance_to_win: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric over the variants (spec order, the baseline first among them by role)."""

    metric: str
    role: str  # "primary", "secondary" or "guardrail"
    higher_is_better: bool
    unit: str
    variants: tuple[VariantResult, ...]
    chi_square: stats.ChiSquareResult | None = None

    def variant(self, name: str) -> VariantResult | None:
        return next((v for v in self.variants if v.variant == name), None)


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """The cumulative relative lift of a variant on the primary metric up to ``ts`` (unix s)."""

    ts: float
    n_baseline: int
    n_variant: int
    estimate: float | None
    ci: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class SloBurn:
    """A variant's burn of ``slo``'s error budget over the experiment: its served requests'
    ``total`` events and ``bad`` ones, the burn rate ``(bad/total)/(1 - objective)`` (None
    without events) and the guardrail's ``limit``."""

    slo: str
    variant: str
    total: int
    bad: int
    burn_rate: float | None
    limit: float


@dataclass(frozen=True, slots=True)
class Analysis:
    """Everything :func:`analyze` found (see the module docstring); ``as_of`` the time the data
    were read up to (None: everything), ``source`` ``"sums"`` or ``"rows"``, ``notes`` what was
    left out and why."""

    spec: ExperimentSpec
    as_of: float | None
    start_ts: float | None
    source: str
    srm: SrmCheck
    metrics: tuple[MetricResult, ...]
    series: dict[str, tuple[SeriesPoint, ...]]
    slo_burn: tuple[SloBurn, ...]
    notes: tuple[str, ...] = ()

    def metric(self, name: str) -> MetricResult | None:
        return next((m for m in self.metrics if m.metric == name), None)


def open_store(path: str | Path) -> sqlite3.Connection:
    """A read-only connection to the store file at ``path``.

    Raises:
        FileNotFoundError: there is no such file.
        sqlite3.Error: it cannot be opened.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no store at {file}")
    conn = sqlite3.connect(f"file:{file.resolve()}?mode=ro", uri=True, timeout=5.0)
    conn.execute("PRAGMA query_only = 1")
    return conn


def _metric_roles(spec: ExperimentSpec) -> list[tuple[str, str]]:
    roles: list[tuple[str, str]] = [(spec.primary_metric, "primary")]
    for m in spec.secondary_metrics:
        roles.append((m, "secondary"))
    for g in spec.guardrails:
        if g.metric != "slo_burn":
            roles.append((g.metric, "guardrail"))
    seen: set[str] = set()
    out: list[tuple[str, str]] = []
    for metric, role in roles:
        if metric not in seen:
            seen.add(metric)
            out.append((metric, role))
    return out


def _to_variant_sums(
    name: str, s: Sequence[float], cov: tuple[float, float, float, int] | None
) -> VariantSums:
    x, x2, xy, hist = cov if cov is not None else (0.0, 0.0, 0.0, 0)
    n, sum_y, sum_y2, sum_num, sum_num2, sum_den, sum_den2, sum_num_den = s
    return VariantSums(
        name, round(n), sum_y, sum_y2, sum_num, sum_num2, sum_den, sum_den2, sum_num_den, x, x2, xy, hist
    )


def _summaries(s: VariantSums) -> tuple[stats.Summary, stats.CovariateSummary]:
    cov = stats.CovariateSummary.from_sums(s.n, s.sum_y, s.sum_y2, s.sum_x, s.sum_x2, s.sum_xy)
    return cov.y, cov


def _compare(
    spec: ExperimentSpec, metric: str, base: VariantSums, other: VariantSums
) -> tuple[VariantResult, float | None]:
    a, cov_a = _summaries(base)
    b, cov_b = _summaries(other)
    higher = UNIT_METRICS[metric].higher_is_better
    cuped_reason = None if spec.cuped else "CUPED is off in the spec"
    if spec.cuped and (base.with_history + other.with_history) == 0:
        cuped_reason = "no unit has history in the 7 days before the start"
    if cuped_reason is None:
        abs_c = stats.cuped_test(cov_a, cov_b, spec.alpha, False, spec.sequential)
        rel_c = stats.cuped_test(cov_a, cov_b, spec.alpha, True, spec.sequential)
        absolute, relative = abs_c.test, rel_c.test
        applied, reason, reduction = abs_c.applied, abs_c.reason, abs_c.variance_reduction
    else:
        absolute = stats.mean_test(a, b, spec.alpha, False, spec.sequential)
        relative = stats.mean_test(a, b, spec.alpha, True, spec.sequential)
        applied, reason, reduction = False, cuped_reason, 0.0
    mde = stats.achieved_mde(a, b, spec.alpha, spec.power) if absolute.error is None else None
    bayes = stats.bayes_test(a, b, relative=True, higher_is_better=higher, alpha=spec.alpha)
    result = VariantResult(
        variant=other.variant,
        n=b.n,
        mean=b.mean,
        is_baseline=False,
        absolute=absolute,
        relative=relative,
        p_value=absolute.p_value,
        cuped_applied=applied,
        cuped_reason=reason,
        variance_reduction=reduction,
        achieved_mde=mde,
        mde_reached=mde is not None and mde <= spec.target_mde,
        chance_to_win=bayes.chance_to_win,
        error=absolute.error,
    )
    return result, absolute.p_value


def _chi_square(
    metric: str, sums: dict[str, VariantSums], names: Sequence[str]
) -> stats.ChiSquareResult | None:
    if metric not in PROPORTION_METRICS:
        return None
    present = [sums[n] for n in names if n in sums]
    if len(present) < 2:
        return None
    return stats.chi_square_test([round(s.sum_num) for s in present], [round(s.sum_den) for s in present])


def _series(
    spec: ExperimentSpec, minutes: dict[str, list[tuple[int, tuple[float, ...]]]]
) -> dict[str, tuple[SeriesPoint, ...]]:
    """Cumulative relative lift (no CUPED) of each variant against the baseline at up to
    :data:`MAX_SERIES_POINTS` minute ends, from the per-minute changes (numpy cumulative sums)."""
    base_name = spec.baseline_name
    all_minutes = np.unique(np.array([m for rows in minutes.values() for m, _ in rows], dtype=np.int64))
    if all_minutes.size == 0:
        return {}
    step = max(1, math.ceil(all_minutes.size / MAX_SERIES_POINTS))
    marks = all_minutes[step - 1 :: step]
    if marks.size == 0 or marks[-1] != all_minutes[-1]:
        marks = np.append(marks, all_minutes[-1])
    width = len(experiment_sums.SUM_COLUMNS)

    def cumulative(rows: list[tuple[int, tuple[float, ...]]]) -> np.ndarray:
        if not rows:
            return np.zeros((marks.size, width))
        keys = np.array([m for m, _ in rows], dtype=np.int64)
        cum = np.cumsum(np.array([d for _, d in rows], dtype=float), axis=0)
        idx = np.searchsorted(keys, marks, side="right") - 1  # last minute <= mark
        out = np.zeros((marks.size, width))
        ok = idx >= 0
        out[ok] = cum[idx[ok]]
        return out

    base = cumulative(minutes.get(base_name, []))
    result: dict[str, tuple[SeriesPoint, ...]] = {}
    for name in spec.variant_names:
        if name == base_name:
            continue
        other = cumulative(minutes.get(name, []))
        points = []
        for mark, sa, sb in zip(marks, base, other, strict=True):
            a = stats.Summary.from_sums(round(sa[0]), float(sa[1]), float(sa[2]))
            b = stats.Summary.from_sums(round(sb[0]), float(sb[1]), float(sb[2]))
            t = stats.mean_test(a, b, spec.alpha, True, spec.sequential)
            points.append(SeriesPoint(float(mark + 60), a.n, b.n, t.estimate, t.ci))
        result[name] = tuple(points)
    return result


def _slo_events(
    conn: sqlite3.Connection, experiment: str, slo: SLO, use_sums: bool, as_of: float | None
) -> dict[str, tuple[int, int]]:
    """(total, bad) of ``slo``'s events among each variant's served requests of the experiment."""
    thr = threshold_ms(slo)
    if use_sums and (slo.kind != "latency" or thr in BOUNDS_MS):
        out = {}
        for name, c in experiment_sums.event_counts(conn, experiment).items():
            if slo.kind == "availability":
                out[name] = (c.n, c.errors)
            elif slo.kind == "quality":
                out[name] = (c.judged, c.incorrect)
            else:
                out[name] = (c.lat_n, c.lat_n - c.le[float(thr or 0.0)])
        return out
    return experiment_sums.variant_event_rows(conn, experiment, slo.kind, thr, as_of)


def analyze(
    conn: sqlite3.Connection | str | Path,
    spec: ExperimentSpec,
    as_of: float | None = None,
    *,
    slos: Sequence[SLO] | None = None,
    pre_period_s: float = PRE_PERIOD_S,
) -> Analysis:
    """Analyse ``spec``'s experiment in the store behind ``conn`` (a connection, or the store
    file's path, opened read-only) up to ``as_of`` (unix s; None: everything recorded).
    ``slos``: the SLOs ``slo_burn`` guardrails name (None: data/slos.yaml).

    Raises:
        FileNotFoundError: ``conn`` is a path with no file.
        sqlite3.Error: the store cannot be read (or predates the experiment tables).
        observability.slo.models.SLOConfigError: ``slos`` is None and data/slos.yaml is invalid.
    """
    if not isinstance(conn, sqlite3.Connection):
        owned = open_store(conn)
        try:
            return analyze(owned, spec, as_of, slos=slos, pre_period_s=pre_period_s)
        finally:
            owned.close()
    start = experiment_start(conn, spec.id)
    exposed, end = experiment_sums.exposure_counts(conn, spec.id)
    use_sums = as_of is None or end is None or as_of >= end
    notes: list[str] = []
    names = spec.variant_names
    base_name = spec.baseline_name
    per_metric: list[tuple[str, str, dict[str, VariantSums]]] = []
    series: dict[str, tuple[SeriesPoint, ...]] = {}
    for metric, role in _metric_roles(spec):
        if use_sums:
            covs = experiment_sums.covariate_sums(conn, spec.id, metric, start, pre_period_s)
            sums = {
                name: _to_variant_sums(name, total, covs.get(name))
                for name, total in experiment_sums.variant_totals(conn, spec.id, metric).items()
                if round(total[0]) > 0
            }
            if role == "primary":
                series = _series(spec, experiment_sums.minute_sums(conn, spec.id, metric))
        else:
            sums = variant_sums(
                conn, spec.id, metric, until_ts=as_of, start_ts=start, pre_period_s=pre_period_s
            )
        per_metric.append((metric, role, sums))
    if not use_sums:
        notes.append(
            "as_of is inside the last minute of the experiment or before: sums read from the rows"
            " (exact, slower); no series"
        )

    raw: list[tuple[int, int, VariantResult]] = []  # (metric index, variant index, result)
    metrics_out: list[list[VariantResult]] = []
    for mi, (metric, _role, sums) in enumerate(per_metric):
        rows: list[VariantResult] = []
        base = sums.get(base_name)
        for vi, name in enumerate(names):
            s = sums.get(name)
            if name == base_name:
                summary = _summaries(s)[0] if s else stats.Summary(0, 0.0, 0.0)
                rows.append(VariantResult(name, summary.n, summary.mean, True))
                continue
            if s is None or base is None:
                n = s.n if s else 0
                mean = _summaries(s)[0].mean if s else 0.0
                missing = "the baseline" if base is None else "this variant"
                rows.append(VariantResult(name, n, mean, False, error=f"no unit of {missing} has a value"))
                continue
            result, p = _compare(spec, metric, base, s)
            rows.append(result)
            if p is not None:
                raw.append((mi, vi, result))
        metrics_out.append(rows)
    adjusted = stats.adjust_p_values([r.p_value for _, _, r in raw if r.p_value is not None], "holm")
    for (mi, vi, r), adj in zip(raw, adjusted, strict=True):
        metrics_out[mi][vi] = _replace_adjusted(r, adj)

    results = tuple(
        MetricResult(
            metric,
            role,
            UNIT_METRICS[metric].higher_is_better,
            UNIT_METRICS[metric].unit,
            tuple(metrics_out[mi]),
            _chi_square(metric, sums, names),
        )
        for mi, (metric, role, sums) in enumerate(per_metric)
    )
    burns = _burns(conn, spec, slos, use_sums, as_of, notes)
    srm = srm_from_counts(spec, exposed) if use_sums else srm_check(conn, spec)
    return Analysis(spec, as_of, start, "sums" if use_sums else "rows", srm, results,
                    series, burns, tuple(notes))  # fmt: skip


def _replace_adjusted(r: VariantResult, adjusted: float) -> VariantResult:
    from dataclasses import replace

    return replace(r, adjusted_p=adjusted)


def _burns(
    conn: sqlite3.Connection,
    spec: ExperimentSpec,
    slos: Sequence[SLO] | None,
    use_sums: bool,
    as_of: float | None,
    notes: list[str],
) -> tuple[SloBurn, ...]:
    guards = [g for g in spec.guardrails if g.metric == "slo_burn" and g.slo]
    if not guards:
        return ()
    known = {s.name: s for s in (load_slos() if slos is None else slos)}
    out: list[SloBurn] = []
    for g in guards:
        slo = known.get(str(g.slo))
        if slo is None:
            notes.append(f"SLO {g.slo!r} is not defined: its burn guardrail is not checked")
            continue
        events = _slo_events(conn, spec.id, slo, use_sums, as_of)
        for name in spec.variant_names:
            total, bad = events.get(name, (0, 0))
            out.append(
                SloBurn(slo.name, name, total, bad, burn_rate(bad, total, slo.objective), g.max_burn_rate)
            )
    return tuple(out)
