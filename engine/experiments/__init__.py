"""A/B experiments on engine configurations (issue 14): specs, sticky assignment, statistics.

Pure modules, no streamlit:

* :mod:`.specs` -- experiment specs, YAML files in ``data/experiments/`` validated by pydantic::

      spec = load_spec("data/experiments/mcts_iterations.yaml")   # or load_specs() for the folder
      spec.id, spec.variants, spec.baseline_name, spec.primary_metric, spec.guardrails
      spec.variant("iter-1000").overrides.apply(request)            # a QueryRequest with its settings

  Bad specs raise :class:`SpecError`, one ``FILE:LINE: FIELD: message`` line per problem.

* :mod:`.assignment` -- ``bucket = first 8 bytes of SHA-256("{salt}:{experiment}:{unit}")``
  (unsigned, big-endian) ``mod 10000``, mapped to variants by cumulative weight::

      a = assign(spec.salt_value, spec.id, unit, spec.variant_names, spec.weights)
      a.bucket, a.variant                                           # sticky across processes

* :mod:`.stats` -- the stable statistics interface::

      from engine.experiments import stats
      a = stats.Summary(n=1000, mean=2.1, var=0.8)                 # var: sample variance (ddof=1)
      r = stats.mean_test(a, b, alpha=0.05, relative=False, sequential=False)
      r.estimate, r.ci, r.p_value, r.df, r.error                    # b against a; ci = (low, high)
      stats.proportion_test(x_a, n_a, x_b, n_b, alpha=0.05, relative=False)
      stats.srm_p_value(counts, weights)                            # chi-square, df = k - 1
      stats.adjust_p_values(p_values, method="holm")                # or "bh"; same order
      stats.sample_size(baseline_mean=..., baseline_sd=..., mde=0.05, alpha=0.05, power=0.8)
      stats.cuped_test(cov_a, cov_b, ...), stats.ratio_summary(...), stats.bayes_test(a, b)
      stats.chi_square_test(successes, totals), stats.power(...), stats.achieved_mde(a, b)

* :mod:`.aggregate` -- per-variant summaries of a metric from the store (SQL aggregation over
  ``exposures`` and ``requests``) and the SRM check of a spec's exposures::

      metric_summaries(conn, spec.id, "latency")["iter-200"].unit   # a stats.Summary
      srm_check(conn, spec).p_value

* :mod:`.analysis` -- ``analyze(conn_or_path, spec, as_of=None) -> Analysis``: per metric and
  variant the lift (absolute, relative, CI), p, Holm-adjusted p, CUPED, MDE reached, chance to
  win, chi-square, SRM, the cumulative lift series, SLO burn per variant; read from the
  trigger-maintained sums (:mod:`observability.store.experiment_sums`).
* :mod:`.decision` -- ``decide(analysis) -> Decision``: ship / roll back / keep running with
  every reason.  :mod:`.report` -- ``to_json`` (the CLI's stable shape) and ``to_markdown``.
* :mod:`.runner` -- ``run_experiment(engine, spec, units=N, seed=None, concurrency=1,
  progress=..., stop=...) -> RunReport``: each unit's queries through the real engine with its
  variant's overrides; resumable (deterministic request ids per experiment, unit and query).
"""

from engine.experiments import stats
from engine.experiments.aggregate import MetricSummaries, SrmCheck, metric_summaries, srm_check
from engine.experiments.assignment import BUCKETS, Assignment, assign, bucket, variant_for_bucket
from engine.experiments.specs import (
    DEFAULT_SPECS_DIR,
    GUARDRAIL_METRICS,
    METRICS,
    ExperimentSpec,
    Guardrail,
    SpecError,
    SpecProblem,
    Variant,
    VariantOverrides,
    Workload,
    load_spec,
    load_specs,
    parse_spec,
)

__all__ = [
    "BUCKETS",
    "DEFAULT_SPECS_DIR",
    "GUARDRAIL_METRICS",
    "METRICS",
    "Assignment",
    "ExperimentSpec",
    "Guardrail",
    "MetricSummaries",
    "SpecError",
    "SpecProblem",
    "SrmCheck",
    "Variant",
    "VariantOverrides",
    "Workload",
    "assign",
    "bucket",
    "load_spec",
    "load_specs",
    "metric_summaries",
    "parse_spec",
    "srm_check",
    "stats",
    "variant_for_bucket",
]
