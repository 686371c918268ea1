"""Moved: the SLO models, burn-rate math and rule generator are the ``observability.slo`` package.

This module only re-exports its names for importers not yet switched (delete it once nothing
imports ``observability.slo_rules``). The CLI is now ``python -m observability.slo``.
"""

from __future__ import annotations

import sys

from observability.slo import (
    BURN_RATE_POLICY,
    DEFAULT_RULES_DIR,
    DEFAULT_SLOS_PATH,
    ERROR_RATIO_WINDOWS,
    RULE_FILES,
    SLO,
    BurnRatePolicy,
    BurnRateWindow,
    Indicator,
    Metadata,
    Operational,
    RatioMetric,
    Selector,
    SLOConfigError,
    SLOSet,
    burn_rate_windows,
    check_rules,
    error_ratio_expr,
    error_ratio_record,
    format_duration,
    load_slo_set,
    load_slos,
    main,
    metric_names_in_rules,
    parse_duration,
    parse_selector,
    render_rules,
    write_rules,
)

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

if __name__ == "__main__":
    print("moved: run `python -m observability.slo` (same options)", file=sys.stderr)
    raise SystemExit(2)
