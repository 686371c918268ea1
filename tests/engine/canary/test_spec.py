"""Canary spec validation: defaults from issue 15, and every problem as ``FILE:LINE: FIELD: message``."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.canary.spec import DEFAULT_CANARIES_DIR, load_canary_spec, parse_canary_spec
from engine.experiments.specs import SpecError

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_specs_load_with_the_issue_defaults() -> None:
    specs = {p.name: load_canary_spec(p) for p in sorted(DEFAULT_CANARIES_DIR.glob("*.yaml"))}
    assert {"mcts_fast.yaml", "drill_errors.yaml"} <= set(specs)
    drill = specs["drill_errors.yaml"]
    assert drill.steps == [1, 5, 10, 25, 50, 100]
    g = drill.guardrails
    assert (g.error_ratio.relative, g.error_ratio.absolute_points, g.p95_latency.relative) == (1.5, 0.5, 1.2)
    assert g.correctness.alpha == 0.05 and g.slo_burn.enabled and g.slo_burn.slos == []
    assert drill.faults.plan("canary") is not None and drill.faults.plan("baseline") is None


def test_every_problem_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    text = (
        "id: Bad Id\n"  # 1
        "candidate:\n"  # 2
        "  mcts_iterations: 50\n"  # 3
        "  warp: 9\n"  # 4
        "workload: {file: data/workloads/tictactoe_tactics.jsonl}\n"  # 5
        "steps: [5, 1, 100]\n"  # 6
        "color: blue\n"  # 7
    )
    with pytest.raises(SpecError) as err:
        parse_canary_spec(text, "c.yaml")
    lines = str(err.value).splitlines()
    assert "c.yaml:1: id: String should match pattern '^[a-z0-9][a-z0-9_-]{0,63}$'" in lines
    assert any(line.startswith("c.yaml:4: candidate.warp: unknown override 'warp'") for line in lines)
    assert "c.yaml:7: color: unknown field" in lines


def test_semantic_problems(tmp_path: Path) -> None:
    text = (
        "id: c1\n"
        "candidate: {mcts_iterations: 50}\n"
        "workload: {file: data/workloads/nope.jsonl}\n"
        "steps: [5, 1, 50]\n"
        "window_requests: 20\n"
        "min_requests: 30\n"
        "faults: {canary: 'error=2'}\n"
        "guardrails:\n"
        "  slo_burn: {slos: [availability, uptime]}\n"
    )
    with pytest.raises(SpecError) as err:
        parse_canary_spec(text, "c.yaml", slo_names=["availability", "latency"])
    msg = str(err.value)
    assert "c.yaml:4: steps: steps must increase strictly" in msg
    assert "c.yaml:4: steps: the last step must be 100 (full rollout), got 50" in msg
    assert "c.yaml:6: min_requests: min_requests (30) cannot exceed window_requests (20)" in msg
    assert "c.yaml:7: faults.canary: error=2: a probability must be in [0, 1]" in msg
    assert "c.yaml:9: guardrails.slo_burn.slos.1: unknown SLO 'uptime'" in msg
    assert "c.yaml:3: workload.file: workload file 'data/workloads/nope.jsonl' does not exist" in msg


def test_nothing_to_compare_and_not_yaml(tmp_path: Path) -> None:
    same = "id: c2\ncandidate: {}\nworkload: {file: data/workloads/tictactoe_tactics.jsonl}\n"
    with pytest.raises(SpecError, match=r"c\.yaml:2: candidate: the candidate has the baseline's settings"):
        parse_canary_spec(same, "c.yaml")
    # the same settings with faults on the canary arm are a drill: valid
    drill = same + "faults: {canary: 'latency_ms=100'}\n"
    assert parse_canary_spec(drill, "c.yaml").faults.canary == "latency_ms=100"
    with pytest.raises(SpecError, match=r"c.yaml:2: \(document\): not valid YAML"):
        parse_canary_spec("id: [\n", "c.yaml")
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_canary_spec(tmp_path / "missing.yaml")
