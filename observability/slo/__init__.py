"""Service level objectives: the SLO file, burn-rate math and the Prometheus rules made from it.

* :mod:`~observability.slo.models`: pydantic models of data/slos.yaml, :func:`load_slo_set`.
* :mod:`~observability.slo.selectors`: the PromQL selectors an SLO's ratio metric uses, checked
  against the metric catalogue.
* :mod:`~observability.slo.burn`: recorded windows and multi-window multi-burn-rate factors
  (factor = budget share x period / long window).
* :mod:`~observability.slo.math`: pure SLO math (SLI, budget remaining and consumed, burn rate,
  alert states, time to exhaustion, ideal line, budget over time, attribution shares) and its
  edge cases (no traffic, objective 1.0).
* :mod:`~observability.slo.sqlite_source`: exact event counts, budget buckets and attribution
  from the SQLite store (the SQL is in :mod:`observability.store.slo_reads`).
* :mod:`~observability.slo.prometheus_source`: the same from Prometheus (the counters' growth at
  ``as_of``; attribution by task), and its ``ALERTS``. Import these modules directly; this
  package's namespace keeps the SLO file and rules only.
* :mod:`~observability.slo.rules`: rule generation and the deterministic YAML of
  ``observability/rules/*.yml``.
* :mod:`~observability.slo.cli`: ``python -m observability.slo`` (``--check`` verifies the
  committed files); it replaced ``python -m observability.slo_rules`` (removed).

Durations are parsed by :mod:`observability.durations` (re-exported here for convenience).
"""

from observability.durations import format_duration, parse_duration
from observability.slo.burn import (
    BURN_RATE_POLICY,
    ERROR_RATIO_WINDOWS,
    BurnRatePolicy,
    BurnRateWindow,
    burn_rate_windows,
)
from observability.slo.cli import main
from observability.slo.models import (
    DEFAULT_SLOS_PATH,
    SLO,
    Indicator,
    Metadata,
    Operational,
    RatioMetric,
    SLOConfigError,
    SLOSet,
    load_slo_set,
    load_slos,
)
from observability.slo.rules import (
    DEFAULT_RULES_DIR,
    RULE_FILES,
    check_rules,
    error_ratio_expr,
    error_ratio_record,
    metric_names_in_rules,
    render_rules,
    write_rules,
)
from observability.slo.selectors import Selector, parse_selector

__all__ = [
    "BURN_RATE_POLICY",
    "DEFAULT_RULES_DIR",
    "DEFAULT_SLOS_PATH",
    "ERROR_RATIO_WINDOWS",
    "RULE_FILES",
    "SLO",
    "BurnRatePolicy",
    "BurnRateWindow",
    "Indicator",
    "Metadata",
    "Operational",
    "RatioMetric",
    "SLOConfigError",
    "SLOSet",
    "Selector",
    "burn_rate_windows",
    "check_rules",
    "error_ratio_expr",
    "error_ratio_record",
    "format_duration",
    "load_slo_set",
    "load_slos",
    "main",
    "metric_names_in_rules",
    "parse_duration",
    "parse_selector",
    "render_rules",
    "write_rules",
]
