"""The golden file format: canonical JSON, span paths, and errors that name the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.golden import GoldenError, GoldenFile, GoldenSpan, dumps, parse_golden, read_golden, span_paths
from tests.engine.golden.conftest import SHIPPED

ONE = SHIPPED / "game24-solvable-rules.json"


def test_shipped_goldens_are_canonical_and_cover_the_issue_matrix() -> None:
    files = sorted(SHIPPED.glob("*.json"))
    assert len(files) >= 24
    goldens = [read_golden(p) for p in files]
    for path, g in zip(files, goldens, strict=True):
        assert path.read_text(encoding="utf-8") == dumps(g), f"{path.name} is not in canonical form"
        assert g.request.seed is not None and g.engine_version and g.captured_at
    reqs = [g.request for g in goldens]
    tasks = {r.query_request().resolved_task() for r in reqs}
    assert tasks == {"game24", "tictactoe", "connect4", "freeform"}
    assert {r.router for r in reqs} == {"rules", "gru", "hybrid"}
    assert {r.use_mcts for r in reqs} == {True, False} and {r.use_rag for r in reqs} == {True, False}
    game24 = [g for g in goldens if g.request.query.startswith("24:")]
    assert {g.answer == "no solution" for g in game24} == {True, False}  # solvable and unsolvable
    assert {g.verdict for g in goldens} == {"correct", "incorrect", "unknown"}
    assert any("mcts" in {s.agent for s in g.routing} for g in goldens)


def test_top_level_keys_are_the_documented_ones() -> None:
    data = json.loads(ONE.read_text(encoding="utf-8"))
    assert {"request", "answer", "verdict", "quality", "routing", "spans", "latency_ms", "engine_version",
            "captured_at"} <= set(data)  # fmt: skip
    assert set(data["request"]) >= {"query", "task", "seed", "router", "provider", "use_mcts", "use_rag",
                                    "mcts_iterations", "max_steps", "overrides", "settings"}  # fmt: skip
    assert set(data["routing"][0]) == {"step", "agent", "probabilities", "reason"}
    assert set(data["latency_ms"]) == {"total", "samples", "spans"}
    # no ids or timestamps in the span tree
    text = json.dumps(data["spans"])
    assert "request_id" not in text and "trace_id" not in text and "start_ts" not in text


def test_span_paths_number_repeated_names_under_one_parent() -> None:
    tree = [
        GoldenSpan(
            name="query",
            children=[
                GoldenSpan(
                    name="agent.trm",
                    children=[GoldenSpan(name="llm.complete"), GoldenSpan(name="llm.complete")],
                ),
                GoldenSpan(name="synthesise"),
            ],
        )
    ]
    assert [p for p, _ in span_paths(tree)] == [
        "query",
        "query/agent.trm",
        "query/agent.trm/llm.complete",
        "query/agent.trm/llm.complete#2",
        "query/synthesise",
    ]


def test_round_trip_is_byte_identical() -> None:
    text = ONE.read_text(encoding="utf-8")
    assert dumps(parse_golden(text, "x")) == text


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.pop("answer"), "field answer is missing"),
        (lambda d: d["request"].pop("seed"), "field request.seed is missing"),
        (lambda d: d["request"].update(task="chess"), "field request.task: Input should be"),
        (lambda d: d["routing"][0].update(agent="oracle"), "field routing[0].agent"),
        (lambda d: d.update(verdict="maybe"), "field verdict"),
        (lambda d: d["request"].update(surprise=1), "field request.surprise"),
    ],
)
def test_invalid_fields_are_named_with_the_file(tmp_path: Path, mutate, expected: str) -> None:
    data = json.loads(ONE.read_text(encoding="utf-8"))
    mutate(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(GoldenError) as info:
        read_golden(bad)
    assert str(info.value).startswith(f"{bad}: ")
    assert expected in str(info.value)


def test_invalid_json_names_the_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{\n  "answer": "4",\n  oops\n}', encoding="utf-8")
    with pytest.raises(GoldenError, match=r"broken\.json: invalid JSON at line 3 column 3"):
        read_golden(bad)


@pytest.mark.parametrize(
    ("content", "expected"), [(b"[1, 2]", "a JSON object, not list"), (b"\xff\xfe", "not UTF-8")]
)
def test_non_object_and_non_utf8_files(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "odd.json"
    bad.write_bytes(content)
    with pytest.raises(GoldenError, match=expected):
        read_golden(bad)


def test_golden_models_are_frozen() -> None:
    g = read_golden(ONE)
    assert isinstance(g, GoldenFile)
    with pytest.raises(Exception, match="frozen"):
        g.answer = "x"  # type: ignore[misc]


def test_an_oversized_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    import engine.golden.format as fmt

    monkeypatch.setattr(fmt, "MAX_FILE_BYTES", 100)
    big = tmp_path / "big.json"
    big.write_text(ONE.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(
        GoldenError, match=r"big\.json: [0-9,]+ bytes, more than a golden file may have \(100\)"
    ):
        read_golden(big)
