"""A bad data/slos.yaml gets an error naming the file, the line and the field.

Each file below is written out by hand, so the line of every entry is read off the text (the
numbers in the comments), not computed by the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from observability.slo.models import SLOConfigError, load_slo_set, load_slos
from observability.slo.yaml_lines import YAMLSyntaxError, format_loc, line_of, load_with_lines

HEAD = """\
apiVersion: arbor/v1
kind: SLOSet
metadata:
  service: arbor-engine
slos:
"""  # lines 1-5

AVAILABILITY = """\
  - name: availability
    displayName: Availability
    kind: availability
    objective: 0.99
    timeWindow: 28d
    indicator:
      ratioMetric:
        bad: 'mcts_requests_total{status="error"}'
        total: mcts_requests_total
"""  # 9 lines: lines 6-14 after HEAD


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "slos.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path) -> str:
    with pytest.raises(SLOConfigError) as info:
        load_slos(path)
    return str(info.value)


def test_the_shipped_file_still_loads() -> None:
    assert [s.name for s in load_slos()] == ["availability", "latency", "quality"]


def test_objective_out_of_range_in_the_second_slo_names_its_line(tmp_path: Path) -> None:
    second = AVAILABILITY.replace("name: availability", "name: second").replace("0.99", "1.5")
    path = _write(tmp_path, HEAD + AVAILABILITY + second)  # second SLO: lines 15-23, objective on 18
    message = _error(path)
    assert f"{path}:18: slos[1].objective: Input should be less than 1" in message
    assert "slos[0]" not in message  # the first SLO is fine


def test_unknown_key_and_bad_selector_each_get_their_line(tmp_path: Path) -> None:
    kind = "    kind: availability\n"
    text = HEAD + AVAILABILITY.replace(kind, kind + "    colour: red\n")
    text = text.replace("bad: 'mcts_requests_total{status=\"error\"}'", "bad: mcts_nope_total")
    path = _write(tmp_path, text)  # colour on line 9; the ratioMetric moved down one: bad on line 14
    message = _error(path)
    assert f"{path}:9: slos[0].colour: Extra inputs are not permitted" in message
    assert f"{path}:14: slos[0].indicator.ratioMetric.bad: " in message
    assert "does not declare" in message
    assert "2 problem(s)" in message


def test_a_missing_field_names_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + AVAILABILITY.replace("    timeWindow: 28d\n", ""))
    # the first SLO's mapping starts on line 6 ("- name: availability")
    assert f"{path}:6: slos[0].timeWindow: Field required" in _error(path)


def test_a_model_level_rule_names_the_slo(tmp_path: Path) -> None:
    latency = AVAILABILITY.replace("kind: availability", "kind: latency")  # no thresholdSeconds
    path = _write(tmp_path, HEAD + latency)
    assert f"{path}:6: slos[0]: a latency SLO needs thresholdSeconds" in _error(path)


def test_top_level_problems_name_their_line(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD.replace("arbor/v1", "arbor/v2") + AVAILABILITY)
    assert f"{path}:1: apiVersion: Input should be 'arbor/v1'" in _error(path)
    path = _write(tmp_path, HEAD + "    []\n")  # slos is on line 5
    assert f"{path}:5: slos: List should have at least 1 item" in _error(path)


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    # an unclosed flow sequence opened on line 5: the parser gives up at the end (line 7)
    path = _write(tmp_path, HEAD + "  [\n  - a\n")
    message = _error(path)
    assert message.startswith(f"{path}:") and "not valid YAML" in message
    # a tab where indentation is expected, on line 7
    path = _write(tmp_path, HEAD + "  - name: a\n\t  kind: b\n")
    assert _error(path).startswith(f"{path}:7: not valid YAML")
    # a key whose value is a mapping and a scalar at once, line 4
    path = _write(tmp_path, "apiVersion: arbor/v1\nkind: SLOSet\nmetadata:\n  service: a: b\n")
    assert _error(path).startswith(f"{path}:4: not valid YAML")


def test_duplicate_keys_are_an_error_not_silently_the_last(tmp_path: Path) -> None:
    text = HEAD + AVAILABILITY.replace("    objective: 0.99\n", "    objective: 0.99\n    objective: 0.5\n")
    path = _write(tmp_path, text)  # the second objective is on line 10, the first on 9
    message = _error(path)
    assert message.startswith(f"{path}:10: not valid YAML: duplicate key 'objective' (first on line 9)")


def test_unsafe_tags_are_refused_with_their_line(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD.replace("service: arbor-engine", "service: !!python/name:os.system"))
    assert _error(path).startswith(f"{path}:4: not valid YAML")


def test_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "slos.yaml"
    path.write_bytes(b"apiVersion: \xff\xfe\n")
    with pytest.raises(SLOConfigError, match="cannot read"):
        load_slo_set(path)


def test_helpers() -> None:
    doc = load_with_lines("a:\n  - x: 1\n  - y:\n      z: 2\nb: 3\n")
    assert doc.value == {"a": [{"x": 1}, {"y": {"z": 2}}], "b": 3}
    assert doc.lines[("a", 1, "y", "z")] == 4 and doc.lines[("b",)] == 5
    assert line_of(doc.lines, ("a", 1, "w")) == 3  # missing key: the item holding it
    assert line_of(doc.lines, ("nope", 0)) == 1  # nothing on the path: the document's first line
    assert format_loc(("slos", 1, "indicator", "ratioMetric")) == "slos[1].indicator.ratioMetric"
    assert format_loc(()) == "(document)"
    assert load_with_lines("").value is None
    with pytest.raises(YAMLSyntaxError) as info:
        load_with_lines("a: 1\n---\nb: 2\n")  # two documents
    assert info.value.line == 2
