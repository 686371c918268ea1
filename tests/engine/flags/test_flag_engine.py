"""Flags through the real engine and store: a flag's override changes what the engine does and is
recorded on the request row; a kill takes effect on the very next request, also when another
process (the CLI) kills it; an experiment variant's settings win over a flag.

The oracle for "the override reached the engine": ``connect4: 4453`` is answered by HRM then MCTS
with the default settings and by HRM then TRM with ``use_mcts=false`` (checked in the first test
without any flag, so the test does not rely on the flag code to define it).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.flags import FlagSpec, FlagStore, Targeting
from engine.pipeline import QueryError

ROOT = Path(__file__).resolve().parents[3]
QUERY = "connect4: 4453"


def _engine(db: Path) -> Engine:
    return Engine(load_settings(db_path=db, metrics_port=0, durability="commit"))


def _request_rows(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT user_id, flags, request_json FROM requests ORDER BY ts, rowid").fetchall()
    finally:
        conn.close()


def _no_mcts(**kw: object) -> FlagSpec:
    data: dict[str, object] = {"name": "no-mcts", "key": "use_mcts", "value": False, "rollout_pct": 100.0}
    data.update(kw)
    return FlagSpec.model_validate(data)


def test_kill_switch_takes_effect_on_the_next_request(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with _engine(db) as engine:
        baseline = engine.run(QueryRequest(query=QUERY, seed=1, user_id="u1"))
        assert "mcts" in baseline.agents_used and baseline.flags == ()
        assert engine.run(QueryRequest(query=QUERY, seed=1, use_mcts=False)).agents_used == ["hrm", "trm"]
        flags = FlagStore(db)
        flags.set(_no_mcts(), "alice")
        on = engine.run(QueryRequest(query=QUERY, seed=1, user_id="u1"))
        flags.kill("no-mcts", "alice")
        off = engine.run(QueryRequest(query=QUERY, seed=1, user_id="u1"))
    assert on.flags == ("no-mcts",) and "mcts" not in on.agents_used
    assert off.flags == () and "mcts" in off.agents_used
    rows = _request_rows(db)
    assert [r[1] for r in rows] == [None, None, "no-mcts", None]
    assert json.loads(str(rows[2][2]))["use_mcts"] is False  # the request as the engine ran it
    assert json.loads(str(rows[3][2]))["use_mcts"] is True


def test_a_kill_from_another_process_is_seen_by_the_next_request(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ARBOR_METRICS_PORT": "0"}
    cli = [sys.executable, "-m", "engine", "flag"]
    with _engine(db) as engine:
        set_run = subprocess.run(
            [*cli, "set", "no-mcts", "--override", "use_mcts=false", "--rollout", "100",
             "--task", "connect4", "--db", str(db), "--actor", "proc-a"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert set_run.returncode == 0, set_run.stderr
        before = engine.run(QueryRequest(query=QUERY, seed=2, user_id="u9"))
        kill_run = subprocess.run(
            [*cli, "kill", "no-mcts", "--db", str(db), "--actor", "proc-b"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert kill_run.returncode == 0, kill_run.stderr
        after = engine.run(QueryRequest(query=QUERY, seed=2, user_id="u9"))
    assert before.flags == ("no-mcts",) and "mcts" not in before.agents_used
    assert after.flags == () and "mcts" in after.agents_used
    history = FlagStore(db).history("no-mcts")
    assert [(c.action, c.actor) for c in history] == [("kill", "proc-b"), ("set", "proc-a")]


def test_targeting_and_the_unit(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    FlagStore(db).set(_no_mcts(targeting=Targeting(units=("vip",))), "alice")
    with _engine(db) as engine:
        vip = engine.run(QueryRequest(query=QUERY, seed=1, user_id="vip"))
        other = engine.run(QueryRequest(query=QUERY, seed=1, user_id="someone"))
        anonymous = engine.run(QueryRequest(query=QUERY, seed=1))  # unit: the request id, not "vip"
    assert vip.flags == ("no-mcts",) and other.flags == () and anonymous.flags == ()


def test_experiment_variant_settings_win_over_flags(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    FlagStore(db).set(_no_mcts(), "alice")
    with _engine(db) as engine:
        request = QueryRequest(query=QUERY, seed=1, user_id="u1", use_mcts=True)
        events = list(engine.stream(request, live=False, experiment="e", variant="v", pinned=("use_mcts",)))
    result = events[-1].result  # type: ignore[attr-defined]
    assert result.flags == () and "mcts" in result.agents_used


def test_a_failed_request_records_its_flags(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    FlagStore(db).set(_no_mcts(), "alice")
    # column 9 does not exist: rejected, recorded as invalid
    with _engine(db) as engine, pytest.raises(QueryError):
        engine.run(QueryRequest(query="connect4: 9", seed=1, user_id="u1"))
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT status, flags FROM requests").fetchall()
    conn.close()
    assert rows == [("invalid", "no-mcts")]
