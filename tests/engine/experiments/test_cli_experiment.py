"""``python -m engine experiment validate``: the shipped specs pass; bad ones exit 2 with one
``FILE:LINE: FIELD: message`` line per problem and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.__main__ import main
from engine.experiments.specs import DEFAULT_SPECS_DIR


def test_validate_shipped_specs(capsys: pytest.CaptureFixture[str]) -> None:
    # the folder and one of its files: each file is checked once (no false duplicate id)
    assert (
        main(
            [
                "experiment",
                "validate",
                str(DEFAULT_SPECS_DIR),
                str(DEFAULT_SPECS_DIR / "mcts_iterations.yaml"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(list(DEFAULT_SPECS_DIR.glob("*.yaml")))
    assert any(
        "experiment mcts-iterations: 2 variants [iter-200 50% (mcts_iterations=200, max_steps=1, "
        "confidence_threshold=1.0)" in line
        for line in out
    )


def test_validate_reports_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: x\nhypothesis: h\nvariants:\n  - {name: a, weight: 0.5}\n"
        "  - {name: b, weight: 0.5, overrides: {foo: 1}}\n",
        encoding="utf-8",
    )
    copy = tmp_path / "copy.yaml"
    copy.write_text(
        (DEFAULT_SPECS_DIR / "mcts_iterations.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    status = main(["experiment", "validate", str(bad), str(copy), str(DEFAULT_SPECS_DIR)])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert f"{bad}:5: variants.1.overrides.foo: unknown override 'foo'" in err
    assert f"{bad}:1: primary_metric: Field required" in err
    shipped = DEFAULT_SPECS_DIR / "mcts_iterations.yaml"  # its `id:` is on line 4
    assert f"{shipped}:4: id: duplicate experiment id 'mcts-iterations': {copy} uses it too" in err
    assert err.rstrip().endswith("problem(s) in experiment specs")


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", "validate", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read the spec" in capsys.readouterr().err
