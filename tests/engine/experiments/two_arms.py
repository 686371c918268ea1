"""The experiment spec the experiment tests share: ``exp``, variants ``a`` (200 MCTS iterations)
and ``b`` (1000) at half the traffic each, on the connect4 tactics workload."""

from __future__ import annotations

from collections.abc import Sequence

from engine.experiments import parse_spec
from engine.experiments.specs import ExperimentSpec

TWO_ARMS = """\
id: exp
hypothesis: b is better
variants:
  - {name: a, weight: 0.5, overrides: {mcts_iterations: 200}}
  - {name: b, weight: 0.5, overrides: {mcts_iterations: 1000}}
workload: {file: data/workloads/connect4_tactics.jsonl}
"""


def two_arm_spec(rest: str, slo_names: Sequence[str] = ()) -> ExperimentSpec:
    """The spec of :data:`TWO_ARMS` followed by the YAML lines ``rest`` (primary metric,
    guardrails, ...), parsed against the SLOs ``slo_names``."""
    return parse_spec(TWO_ARMS + rest, slo_names=tuple(slo_names))
