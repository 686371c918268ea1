"""AppTest tests of the Feature flags section of the Experiments page: the table shows what the
store holds (set through ``FlagStore``, read back independently), a flag defined in the editor is
stored with the console's actor, an invalid one is an error message that writes nothing, and the
kill switch kills the flag (audit row, table state).  Rows are checked with plain ``sqlite3``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from streamlit.testing.v1 import AppTest

from engine.flags import FlagSpec, FlagStore, Targeting
from tests.app.shown import shown

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
PAGE = "../pages/experiments.py"
HOSTILE = "**bold** ![x](http://evil.example/p.png) <img src=x onerror=alert(1)>"


def _open() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=180)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _audit(db: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT flag, actor, action FROM flag_changes ORDER BY id").fetchall()
    finally:
        conn.close()


def _flags_frame(at: AppTest):
    return next(d.value for d in at.main.dataframe if "kill switch" in d.value.columns)


def test_table_shows_the_flags_in_the_store(tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    store = FlagStore(db)
    store.set(
        FlagSpec(name="c4-no-mcts", key="use_mcts", value=False, rollout_pct=12.5,
                 targeting=Targeting(tasks=("connect4",), units=("u1",)), description=HOSTILE),
        "alice",
    )  # fmt: skip
    store.set(FlagSpec(name="iter200", key="mcts_iterations", value=200, rollout_pct=50), "bob")
    store.kill("iter200", "carol")
    at = _open()
    frame = _flags_frame(at)
    assert list(frame["flag"]) == ["c4-no-mcts", "iter200"]
    assert list(frame["override"]) == ["use_mcts=false", "mcts_iterations=200"]
    assert list(frame["rollout %"]) == [12.5, 50.0]
    assert list(frame["targeting"]) == ["task in connect4; unit in u1", "everyone"]
    assert list(frame["kill switch"]) == ["off", "KILLED"]
    assert list(frame["updated by"]) == ["alice", "carol"]
    assert frame["description"][0] == HOSTILE  # a dataframe cell: shown as text, never Markdown
    history = next(d.value for d in at.main.dataframe if "actor" in d.value.columns)
    assert list(history["action"]) == ["kill", "set", "set"] and list(history["actor"]) == [
        "carol",
        "bob",
        "alice",
    ]


def test_editor_saves_a_flag(tmp_path: Path) -> None:
    at = _open()
    at.main.text_input(key="flags_f_name_new").input("gru-for-c4")
    at.main.selectbox(key="flags_f_key_new").select("router")
    at.main.text_input(key="flags_f_value_new").input("gru")
    at.main.number_input(key="flags_f_rollout_new").set_value(25.0)
    at.main.multiselect(key="flags_f_tasks_new").select("connect4")
    at.main.text_area(key="flags_f_prefixes_new").input("connect4:")
    at.main.button(key="flags_f_save_new").click().run()
    assert not at.exception, at.exception
    assert not at.main.error, [e.value for e in at.main.error]
    spec = FlagStore(tmp_path / "arbor.db").get("gru-for-c4")
    assert (spec.key, spec.value, spec.rollout_pct) == ("router", "gru", 25.0)
    assert spec.targeting == Targeting(tasks=("connect4",), prefixes=("connect4:",))
    assert _audit(tmp_path / "arbor.db") == [("gru-for-c4", "console", "set")]
    assert any(
        "console saved gru-for-c4: router=gru to 25% of units" in shown(s.value) for s in at.main.success
    )
    assert list(_flags_frame(at)["flag"]) == ["gru-for-c4"]


def test_editor_validation_error_writes_nothing(tmp_path: Path) -> None:
    at = _open()
    at.main.text_input(key="flags_f_name_new").input("Bad Name")
    at.main.selectbox(key="flags_f_key_new").select("mcts_iterations")
    at.main.text_input(key="flags_f_value_new").input("lots")
    at.main.number_input(key="flags_f_rollout_new").set_value(10.0)
    at.main.button(key="flags_f_save_new").click().run()
    assert not at.exception, at.exception
    errors = [shown(e.value) for e in at.main.error]
    assert len(errors) == 1 and errors[0].startswith("The flag is invalid; nothing was written"), errors
    assert "name: String should match pattern" in errors[0]
    assert "bad value 'lots' for mcts_iterations" in errors[0]
    assert _audit(tmp_path / "arbor.db") == []


def test_kill_switch_kills_and_releases(tmp_path: Path) -> None:
    db = tmp_path / "arbor.db"
    FlagStore(db).set(FlagSpec(name="no-mcts", key="use_mcts", value=False, rollout_pct=100), "alice")
    at = _open()
    assert at.main.button(key="flags_kill").label == "Kill the flag"
    at.main.button(key="flags_kill").click().run()
    assert not at.exception, at.exception
    assert FlagStore(db).get("no-mcts").killed
    assert list(_flags_frame(at)["kill switch"]) == ["KILLED"]
    assert any("console killed no-mcts" in shown(s.value) for s in at.main.success)
    assert at.main.button(key="flags_kill").label == "Release the kill switch"
    at.main.button(key="flags_kill").click().run()
    assert not FlagStore(db).get("no-mcts").killed
    assert _audit(db) == [
        ("no-mcts", "alice", "set"),
        ("no-mcts", "console", "kill"),
        ("no-mcts", "console", "unkill"),
    ]


def test_traces_shows_the_flags_of_a_request(tmp_path: Path) -> None:
    from engine import Engine, QueryRequest
    from engine.config import load_settings

    db = tmp_path / "arbor.db"
    FlagStore(db).set(FlagSpec(name="no-mcts", key="use_mcts", value=False, rollout_pct=100), "alice")
    FlagStore(db).set(FlagSpec(name="steps2", key="max_steps", value=2, rollout_pct=100), "alice")
    with Engine(load_settings(db_path=db, metrics_port=0, durability="commit")) as engine:
        result = engine.run(QueryRequest(query="connect4: 4453", seed=1, user_id="u1"))
    assert result.flags == ("no-mcts", "steps2")
    at = AppTest.from_file(MAIN, default_timeout=180)
    at.run()
    at.query_params["trace"] = result.trace_id
    at.switch_page("../pages/traces.py").run()
    assert not at.exception, at.exception
    captions = [shown(c.value) for c in at.main.caption]
    assert "Feature flags applied: no-mcts, steps2" in captions, captions
