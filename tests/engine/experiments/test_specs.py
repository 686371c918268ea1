"""Experiment specs: the shipped files load; bad specs are reported with file, line and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine import QueryRequest
from engine.experiments import SpecError, load_spec, load_specs, parse_spec
from engine.experiments.specs import DEFAULT_SPECS_DIR

GOOD = textwrap.dedent(
    """\
    id: demo
    hypothesis: more iterations answer better
    variants:
      - name: a
        weight: 0.5
        overrides:
          mcts_iterations: 200
      - name: b
        weight: 0.5
        overrides:
          mcts_iterations: 1000
          mcts_c: 2.0
    workload:
      file: data/workloads/connect4_tactics.jsonl
    primary_metric: correctness
    guardrails:
      - metric: latency
        max_regression: 1.0
    target_mde: 0.1
    """
)


def _problems(text: str, source: str = "spec.yaml") -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source, slo_names={"latency", "availability"})
    return [str(p) for p in info.value.problems]


def test_shipped_specs_load() -> None:
    specs = {s.id: s for s in load_specs(DEFAULT_SPECS_DIR)}
    assert {"mcts-iterations", "router-comparison"} <= set(specs)
    mcts = specs["mcts-iterations"]
    assert mcts.baseline_name == "iter-200" and mcts.weights == (0.5, 0.5)
    assert [v.overrides.mcts_iterations for v in mcts.variants] == [200, 1000]
    routers = specs["router-comparison"]
    assert [v.overrides.router for v in routers.variants] == ["rules", "gru", "hybrid"]
    assert routers.sequential


def test_good_spec_defaults_and_overrides_apply_to_a_request() -> None:
    spec = parse_spec(GOOD)
    assert spec.salt_value == "demo" and spec.baseline_name == "a" and spec.alpha == 0.05
    base = QueryRequest(query="connect4: 4453", seed=3, user_id="u1")
    req = spec.variant("b").overrides.apply(base)
    assert req.mcts_iterations == 1000 and req.overrides.mcts_c == 2.0
    assert (req.query, req.seed, req.user_id, req.router) == ("connect4: 4453", 3, "u1", "rules")
    routed = parse_spec(GOOD.replace("mcts_c: 2.0", "router: hybrid\n      hybrid_weight: 0.3"))
    req2 = routed.variant("b").overrides.apply(base)
    assert req2.router == "hybrid" and req2.overrides.hybrid_weight == 0.3
    with pytest.raises(KeyError, match="no variant 'c'"):
        spec.variant("c")


def test_weights_not_summing_to_one_name_the_line_of_variants() -> None:
    b_arm = "weight: 0.5\n    overrides:\n      mcts_iterations: 1000"
    text = GOOD.replace(b_arm, b_arm.replace("0.5", "0.4"))
    assert _problems(text) == [
        "spec.yaml:3: variants: variant weights must sum to 1; they sum to 0.9 (0.5 + 0.4)"
    ]


def test_unknown_override_key_names_its_line_and_the_allowed_keys() -> None:
    text = GOOD.replace("mcts_c: 2.0", "mcts_cc: 2.0")
    (problem,) = _problems(text)
    # line 12 of GOOD holds `mcts_c: 2.0`
    assert problem.startswith("spec.yaml:12: variants.1.overrides.mcts_cc: unknown override 'mcts_cc'")
    assert "mcts_iterations" in problem and "hybrid_weight" in problem


def test_unknown_metric_and_bad_values() -> None:
    text = GOOD.replace("primary_metric: correctness", "primary_metric: happiness").replace(
        "target_mde: 0.1", "target_mde: -1"
    )
    problems = _problems(text)
    assert problems[0].startswith(
        "spec.yaml:15: primary_metric: unknown metric 'happiness'; known: correctness"
    )
    assert problems[1].startswith("spec.yaml:19: target_mde: Input should be greater than 0")
    bad_guard = GOOD.replace("- metric: latency", "- metric: speed")
    assert _problems(bad_guard)[0].startswith("spec.yaml:17: guardrails.0.metric: unknown metric 'speed'")


def test_duplicate_variant_names_missing_fields_and_duplicate_keys() -> None:
    dup = GOOD.replace("- name: b", "- name: a")
    assert _problems(dup) == ["spec.yaml:8: variants.1.name: duplicate variant name 'a' (also variant 0)"]
    missing = GOOD.replace("hypothesis: more iterations answer better\n", "")
    assert _problems(missing) == ["spec.yaml:1: hypothesis: Field required"]
    twice = GOOD + "alpha: 0.1\nalpha: 0.2\n"
    assert _problems(twice) == ["spec.yaml:21: alpha: key written twice"]


def test_guardrail_slo_and_workload_checks() -> None:
    no_slo = GOOD.replace("- metric: latency\n    max_regression: 1.0", "- metric: slo_burn")
    assert _problems(no_slo) == [
        "spec.yaml:17: guardrails.0: an slo_burn guardrail needs 'slo: <name of an SLO>'"
    ]
    unknown = GOOD.replace("- metric: latency\n    max_regression: 1.0", "- metric: slo_burn\n    slo: nope")
    assert _problems(unknown)[0].startswith("spec.yaml:18: guardrails.0.slo: unknown SLO 'nope'")
    no_file = GOOD.replace("connect4_tactics.jsonl", "missing.jsonl")
    assert _problems(no_file) == [
        "spec.yaml:14: workload.file: workload file 'data/workloads/missing.jsonl' does not exist"
    ]
    same = GOOD.replace("mcts_iterations: 1000\n      mcts_c: 2.0", "mcts_iterations: 200")
    assert _problems(same) == [
        "spec.yaml:3: variants: every variant has the same engine settings: there is nothing to compare"
    ]
    nothing = GOOD.replace("\n    overrides:\n      mcts_iterations: 200", "").replace(
        "\n    overrides:\n      mcts_iterations: 1000\n      mcts_c: 2.0", ""
    )
    assert _problems(nothing) == [
        "spec.yaml:3: variants: every variant has the same engine settings: there is nothing to compare"
    ]


def test_not_yaml_and_not_a_mapping() -> None:
    assert _problems("id: [unclosed\n")[0].startswith("spec.yaml:2: (document): not valid YAML")
    assert _problems("- a\n- b\n") == [
        "spec.yaml:1: (document): a spec must be a YAML mapping (id, hypothesis, variants, ...)"
    ]


def test_duplicate_ids_across_files_name_both(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text("# the same experiment again\n" + GOOD, encoding="utf-8")
    (tmp_path / "c.yaml").write_text(GOOD.replace("id: demo", "id: Bad Id"), encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_specs(tmp_path)
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"{tmp_path / 'c.yaml'}:1: id: String should match pattern")
    assert (
        lines[1]
        == f"{tmp_path / 'b.yaml'}:2: id: duplicate experiment id 'demo': {tmp_path / 'a.yaml'}:1 uses it too"
    )


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.yaml: \(document\): cannot read the spec"):
        load_spec(tmp_path / "nope.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "bin.yaml")


def test_weights_are_reported_beside_other_field_problems() -> None:
    a_arm = "weight: 0.5\n    overrides:\n      mcts_iterations: 200"
    text = GOOD.replace(a_arm, a_arm.replace("0.5", "0.7")).replace("mcts_c: 2.0", "mcts_cc: 2.0")
    problems = _problems(text)
    assert len(problems) == 2
    assert problems[0].startswith("spec.yaml:12: variants.1.overrides.mcts_cc: unknown override")
    assert problems[1] == "spec.yaml:3: variants: variant weights must sum to 1; they sum to 1.2 (0.7 + 0.5)"


def test_hostile_yaml_is_refused_unread() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    assert _problems(bomb) == ["spec.yaml: (document): the spec uses 72 YAML aliases (at most 50)"]
    assert _problems("x" * (300 * 1024)) == ["spec.yaml: (document): the spec is larger than 256 KiB"]
