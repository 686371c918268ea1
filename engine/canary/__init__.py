"""Canary releases (issue 15): a candidate configuration ramped over traffic steps and promoted
or rolled back by guardrails (error ratio, p95 latency, correctness, the canary arm's SLO burn).

``spec`` (YAML specs in data/canaries/), ``guardrails`` (pure guardrail math), ``runner``
(:func:`run_canary`, persisting to the store's canary tables).
"""

from engine.canary.guardrails import GuardrailResult
from engine.canary.runner import CanaryProgress, CanaryReport, RunConfigError, run_canary
from engine.canary.spec import DEFAULT_STEPS, CanarySpec, load_canary_spec, parse_canary_spec

__all__ = [
    "DEFAULT_STEPS",
    "CanaryProgress",
    "CanaryReport",
    "CanarySpec",
    "GuardrailResult",
    "RunConfigError",
    "load_canary_spec",
    "parse_canary_spec",
    "run_canary",
]
