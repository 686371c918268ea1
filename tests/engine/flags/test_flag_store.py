"""The flag store: every change one audited row (actor, ts from the injected clock, before and
after), kill keeps the rest of the flag, set keeps the kill switch, unknown flags record nothing,
invalid rows are skipped by the engine's source, and the source re-reads only after a change.
Rows are read back with plain ``sqlite3``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine.flags import FlagNotFound, FlagSource, FlagSpec, FlagStore, Targeting
from engine.flags.source import RECHECK_S
from engine.models import QueryRequest


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _spec(**kw: object) -> FlagSpec:
    data: dict[str, object] = {"name": "no-mcts", "key": "use_mcts", "value": False, "rollout_pct": 25.0}
    data.update(kw)
    return FlagSpec.model_validate(data)


def test_changes_are_audited_with_actor_and_ts(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    clock = Clock()
    store = FlagStore(db, clock=clock)
    targeting = Targeting(tasks=("connect4",), units=("u1", "u2"), prefixes=("connect4:",))
    t0 = 1_700_000_000.0
    steps = (
        lambda: store.set(_spec(targeting=targeting, description="try without MCTS"), "alice"),
        lambda: store.set(_spec(rollout_pct=50.0, targeting=targeting), "bob"),
        lambda: store.kill("no-mcts", "carol"),
        lambda: store.unkill("no-mcts", "dave"),
        lambda: store.delete("no-mcts", "erin"),
    )
    for i, step in enumerate(steps, start=1):
        clock.t = t0 + 10 * i
        step()
    audit = _rows(db, "SELECT id, flag, ts, actor, action, before, after FROM flag_changes ORDER BY id")
    assert [(a[1], a[2], a[3], a[4]) for a in audit] == [
        ("no-mcts", t0 + 10, "alice", "set"),
        ("no-mcts", t0 + 20, "bob", "set"),
        ("no-mcts", t0 + 30, "carol", "kill"),
        ("no-mcts", t0 + 40, "dave", "unkill"),
        ("no-mcts", t0 + 50, "erin", "delete"),
    ]
    first_after = json.loads(str(audit[0][6]))
    assert audit[0][5] is None
    assert first_after["override_key"] == "use_mcts" and first_after["override_value"] is False
    assert first_after["rollout_pct"] == 25.0 and first_after["updated_by"] == "alice"
    assert first_after["targeting"] == {
        "units": ["u1", "u2"],
        "tasks": ["connect4"],
        "prefixes": ["connect4:"],
    }
    assert (
        json.loads(str(audit[1][5]))["rollout_pct"] == 25.0
        and json.loads(str(audit[1][6]))["rollout_pct"] == 50.0
    )
    killed = json.loads(str(audit[2][6]))
    assert killed["kill_switch"] == 1 and killed["rollout_pct"] == 50.0 and killed["created_ts"] == t0 + 10
    assert json.loads(str(audit[3][6]))["kill_switch"] == 0
    assert audit[4][6] is None and json.loads(str(audit[4][5]))["flag"] == "no-mcts"
    assert _rows(db, "SELECT COUNT(*) FROM flags") == [(0,)]
    history = store.history("no-mcts")
    assert [c.action for c in history] == ["delete", "unkill", "kill", "set", "set"]
    assert history[0].actor == "erin" and history[0].ts == t0 + 50


def test_set_keeps_the_kill_switch_and_unknown_flags_record_nothing(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store = FlagStore(db)
    store.set(_spec(), "alice")
    store.kill("no-mcts", "alice")
    store.set(_spec(rollout_pct=75.0), "bob")
    got = store.get("no-mcts")
    assert got.killed and got.rollout_pct == 75.0
    for change in (store.kill, store.unkill, store.delete):
        with pytest.raises(FlagNotFound, match="no flag named 'ghost'"):
            change("ghost", "alice")
    with pytest.raises(FlagNotFound):
        store.get("ghost")
    with pytest.raises(ValueError, match="actor"):
        store.kill("no-mcts", "  ")
    assert _rows(db, "SELECT COUNT(*) FROM flag_changes") == [(3,)]


def test_source_rereads_on_change_and_skips_invalid_rows(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    store = FlagStore(db)
    source = FlagSource(db)
    assert source.current() == ()
    store.set(_spec(rollout_pct=100.0), "alice")
    assert [f.name for f in source.current()] == ["no-mcts"]
    first = source.current()
    assert source.current() is first  # unchanged version: the cached tuple
    # a row written by hand with garbage: skipped, the valid flag still applies
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO flags (flag, enabled, rollout_pct, kill_switch, override_key, override_value, "
        "updated_ts) VALUES ('broken', 1, 100, 0, 'seed', '7', 1.0)"
    )
    conn.commit()
    conn.close()
    assert [f.name for f in source.current()] == ["no-mcts"]
    request, applied = source.resolve(QueryRequest(query="connect4: 4453"), "u1")
    assert [a.name for a in applied] == ["no-mcts"] and request.use_mcts is False
    store.kill("no-mcts", "alice")
    assert source.resolve(QueryRequest(query="connect4: 4453"), "u1")[1] == ()
    source.close()
    assert FlagSource.disabled().current() == ()


def test_unreadable_store_gives_no_flags(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "a.db"
    FlagStore(db).set(_spec(rollout_pct=100.0), "alice")
    now = [100.0]
    source = FlagSource(db, clock=lambda: now[0])
    assert source.current()
    conn = sqlite3.connect(db)
    conn.execute("ALTER TABLE flag_changes RENAME TO flag_changes_gone")
    conn.commit()
    conn.close()
    # A change by hand (no signal) is trusted away for RECHECK_S, then the store is asked again.
    assert source.current()
    now[0] += RECHECK_S
    with caplog.at_level("WARNING"):
        assert source.current() == ()
    assert "none applied" in caplog.text


def test_a_change_through_the_flag_store_is_seen_at_once_without_a_query(tmp_path: Path) -> None:
    """The signal file: an unchanged one answers from the cache (no query), a FlagStore change
    rewrites it and the very next look-up re-reads, whatever the recheck schedule."""
    db = tmp_path / "a.db"
    store = FlagStore(db)
    store.set(_spec(rollout_pct=100.0), "alice")
    now = [100.0]
    source = FlagSource(db, clock=lambda: now[0])
    assert [f.killed for f in source.current()] == [False]
    queries = []
    source._conn.set_trace_callback(queries.append)  # type: ignore[union-attr]
    assert source.current() and queries == []  # nothing changed: no query
    store.kill(_spec().name, "bob")
    assert [f.killed for f in source.current()] == [True]  # same clock time: seen through the signal
    assert queries
