"""``python -m engine flag ...``: changes with their actor, listing, and bad input as one line on
stderr with exit status 2 (never a traceback, nothing recorded)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.__main__ import main


def _audit(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT flag, actor, action FROM flag_changes ORDER BY id").fetchall()
    finally:
        conn.close()


def test_set_list_show_kill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = str(tmp_path / "a.db")
    monkeypatch.setenv("USER", "shell-user")
    assert main(["flag", "list", "--db", db]) == 0
    assert capsys.readouterr().out.strip() == "no flags"
    argv = ["flag", "set", "iter200", "--override", "mcts_iterations=200", "--rollout", "25",
            "--task", "connect4", "--unit", "u1", "--unit", "u2", "--prefix", "connect4:",
            "--db", db]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "iter200: mcts_iterations=200 to 25% of units" in out
    assert "task in connect4; unit in u1, u2; query starts with 'connect4:'" in out
    assert main(["flag", "set", "iter200", "--rollout", "30", "--db", db, "--actor", "bob"]) == 0
    assert main(["flag", "kill", "iter200", "--db", db, "--actor", "carol"]) == 0
    capsys.readouterr()
    assert main(["flag", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert "iter200: mcts_iterations=200 to 30% of units" in listed and "killed; updated by carol" in listed
    assert main(["flag", "show", "iter200", "--db", db]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert shown[1].endswith("carol  kill iter200") and shown[2].endswith(
        "bob  set iter200 -> mcts_iterations=200 at 30%"
    )
    assert _audit(Path(db)) == [
        ("iter200", "shell-user", "set"),
        ("iter200", "bob", "set"),
        ("iter200", "carol", "kill"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["set", "new", "--rollout", "5"], "flag 'new' is new: give --override KEY=VALUE and --rollout PCT"),
        (["set", "new", "--override", "seed=3", "--rollout", "5"], "unknown override key 'seed'"),
        (["set", "new", "--override", "use_mcts", "--rollout", "5"], "an override is key=value"),
        (["set", "new", "--override", "max_steps=99", "--rollout", "5"], "bad value '99' for max_steps"),
        (["set", "new", "--override", "use_mcts=false", "--rollout", "5.555"], "resolved to 0.01 %"),
        (["set", "new", "--override", "use_mcts=false", "--rollout", "101"], "out of range"),
        (["set", "new", "--override", "use_mcts=false", "--rollout", "lots"], "is not a number"),
        (["set", "New Flag", "--override", "use_mcts=false", "--rollout", "5"], "invalid flag: name"),
        (
            ["set", "new", "--override", "use_mcts=false", "--rollout", "5", "--task", "chess"],
            "invalid choice",
        ),
        (["set", "new", "--override", "use_mcts=false", "--rollout", "5", "--actor", " "], "--actor WHO"),
        (["kill", "ghost"], "no flag named 'ghost'"),
        (["unkill", "ghost"], "no flag named 'ghost'"),
        (["show", "ghost"], "no flag named 'ghost'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    db = tmp_path / "a.db"
    try:
        status = main(["flag", *argv, "--db", str(db)])
    except SystemExit as exc:  # argparse errors exit from the parser
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    if db.exists():
        assert _audit(db) == []


def test_an_invalid_row_in_the_store_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "a.db"
    assert main(["flag", "list", "--db", str(db)]) == 0  # creates the store
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO flags (flag, enabled, rollout_pct, kill_switch, override_key, override_value) "
        "VALUES ('broken', 1, 100, 0, 'seed', '7')"
    )
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert main(["flag", "show", "broken", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "flag 'broken' in the store is invalid: " in err and len(err.strip().splitlines()) == 1
    assert main(["flag", "list", "--db", str(db)]) == 0
    assert "broken: never applied: flag 'broken' in the store is invalid" in capsys.readouterr().out
