"""AppTest tests of the Golden traces page (through the console's router) and of the Traces page's
"Capture as golden".

Every test points ``ARBOR_GOLDEN_DIR`` at a temp suite built from copies of the shipped goldens
(some tampered by hand), so the expected statuses and first divergences are worked out from the
raw JSON of those files, independently of the engine's comparison code.  One test writes
``golden_runs`` rows by hand; the others run the suite (or a query) for real.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from engine import Engine, QueryRequest
from engine.config import load_settings
from observability.store import Store
from tests.app.shown import shown

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
SHIPPED = ROOT / "data" / "golden"
PAGE = "../pages/golden.py"  # relative to app/main.py
TRACES = "../pages/traces.py"
MARK = "◀ first divergence"


@pytest.fixture
def suite(monkeypatch, tmp_path) -> Path:
    """An empty suite directory the console uses (ARBOR_GOLDEN_DIR)."""
    path = tmp_path / "golden"
    path.mkdir()
    monkeypatch.setenv("ARBOR_GOLDEN_DIR", str(path))
    return path


def add(suite: Path, shipped: str, name: str | None = None, **changes: Any) -> dict[str, Any]:
    """Copy the shipped golden ``shipped`` into ``suite`` as ``name`` with top-level ``changes``;
    return its JSON."""
    data = json.loads((SHIPPED / f"{shipped}.json").read_text(encoding="utf-8"))
    data.update(changes)
    (suite / f"{name or shipped}.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    return data


def preorder(spans: list[dict[str, Any]], prefix: str = "") -> list[str]:
    """Span paths in pre-order, written out from the raw JSON (names under one parent are unique in
    the goldens used here, so no ``#2`` suffixes)."""
    out: list[str] = []
    for s in spans:
        path = f"{prefix}/{s['name']}" if prefix else s["name"]
        out += [path, *preorder(s["children"], path)]
    return out


def open_page(query_params: dict[str, str] | None = None, page: str = PAGE) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=180)
    at.run()
    for key, value in (query_params or {}).items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> list[str]:
    return [shown(e.value) for e in elements]


def status_table(at: AppTest) -> dict[str, tuple[str, str]]:
    frame = next(d.value for d in at.main.dataframe if "first divergence" in d.value.columns)
    columns = (frame["golden"], frame["status"], frame["first divergence"])
    return {g: (s, f) for g, s, f in zip(*columns, strict=True)}


def frames_with(at: AppTest, column: str) -> list[Any]:
    return [d.value for d in at.main.dataframe if column in d.value.columns]


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def run_suite(at: AppTest, repeat: int = 1) -> AppTest:
    at.number_input(key="golden_repeat").set_value(repeat)
    at.button(key="golden_run").click().run()
    assert not at.exception, at.exception
    return at


# ------------------------------------------------------------------------------------ status


def test_status_and_history_are_the_golden_runs_rows(suite, tmp_path):
    for name in ("a", "b", "d"):
        add(suite, "game24-solvable-rules", name)
    b_divergence = "routing step 1: expected trm, got mcts (p_trm 0.61 -> 0.38)"
    c_error = f"{suite / 'c.json'}: invalid JSON at line 1 column 2: Expecting value"

    def row(run: str, ts: float, golden: str, status: str, first: str | None, change: float | None) -> dict:
        return {
            "run_id": run,
            "golden_id": golden,
            "ts": ts,
            "status": status,
            "request_id": f"rq-{run}-{golden}",
            "trace_id": f"tr-{run}-{golden}",
            "first_divergence": first,
            "diff": {
                "divergences": [],
                "latency_change": change,
                "latency_samples_ms": [5.0],
                "suite_latency": {"detail": f"latency verdict of {run}", "regression": False},
            },
            "quality": 1.0,
            "golden_quality": 1.0,
            "latency_ms": 5.0,
            "golden_latency_ms": 4.0,
        }

    store = Store(tmp_path / "arbor.db", threaded=False)
    try:
        store.submit(
            "golden_runs",
            [row("r1", 1000.0, "a", "pass", None, 0.5), row("r1", 1000.0, "b", "pass", None, 0.0)],
        )
        store.submit(
            "golden_runs",
            [
                row("r2", 2000.0, "a", "pass", None, 0.25),
                row("r2", 2000.0, "b", "regression", b_divergence, -0.5),
                row("r2", 2000.0, "c", "error", c_error, None),
            ],
        )
    finally:
        store.close()

    at = open_page()
    # the last run (r2) row by row, then the suite's golden it did not include
    assert status_table(at) == {
        "a": ("pass", ""),
        "b": ("regression", b_divergence),
        "c": ("error", c_error),
        "d": ("not run", ""),
    }
    frame = frames_with(at, "first divergence")[0]
    assert [None if pd.isna(v) else v for v in frame["change"]] == [25.0, -50.0, None, None]
    m = metrics(at)
    assert (m["Goldens"], m["Passed"], m["Regressions"], m["Errors"]) == ("4", "1", "1", "1")
    assert "Last run 1970-01-01 00:33:20 UTC · run r2" in texts(at.caption)  # ts 2000 s
    assert m["Latency (median change)"] == "—"  # the hand-written rows carry no median change
    # history: newest first, pass rates 1/3 and 2/2
    history = next(d.value for d in at.main.dataframe if "pass rate" in d.value.columns)
    assert list(history["run id"]) == ["r2", "r1"]
    assert list(history["passed"]) == [1, 2] and list(history["regressions"]) == [1, 0]
    assert list(history["errors"]) == [1, 0]
    assert list(history["pass rate"]) == pytest.approx([100 / 3, 100.0])
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["data"][0]["y"] == pytest.approx([100.0, 100 / 3])  # oldest to newest
    # the diff opens on the first failing golden; its replay is not in the store, and says so
    assert at.selectbox(key="golden_trace").value == "b"
    assert f"First divergence: {b_divergence}" in texts(at.error)
    assert any("replay's spans are not in the store" in w for w in texts(at.warning))
    assert at.query_params["trace"] == "b"


def test_empty_suite_and_no_runs_say_what_to_do(suite):
    at = open_page()
    assert any("No suite run is recorded yet" in i for i in texts(at.info))
    assert any("holds no golden traces yet" in i for i in texts(at.info))
    assert metrics(at)["Goldens"] == "0"


# ------------------------------------------------------------------------------------ a real run


@pytest.fixture
def tampered(suite) -> dict[str, Any]:
    """Four goldens: one untouched, one with routing step 2 (index 1) agent changed, one with a span
    renamed, and one file that is not JSON.  Returns what each should report, from the raw JSON."""
    add(suite, "game24-solvable-rules", "clean")

    routing = json.loads((SHIPPED / "tictactoe-open-no-mcts.json").read_text())["routing"]
    assert [s["agent"] for s in routing] == ["hrm", "trm"]
    p_mcts = routing[1]["probabilities"]["mcts"]
    routing[1]["agent"] = "mcts"
    add(suite, "tictactoe-open-no-mcts", "routing-changed", routing=routing)
    routing_message = f"routing step 2: expected mcts, got trm (p_mcts {p_mcts:.2f} -> {p_mcts:.2f})"

    spans = json.loads((SHIPPED / "connect4-no-mcts.json").read_text())["spans"]
    original = preorder(spans)
    spans[0]["children"][-1]["name"] = "summarise"  # the root's last child
    renamed = preorder(spans)
    index = next(i for i, (a, b) in enumerate(zip(renamed, original, strict=True)) if a != b)
    add(suite, "connect4-no-mcts", "span-renamed", spans=spans)
    span_message = f"span tree at span #{index}: expected {renamed[index]}, got {original[index]}"

    (suite / "broken.json").write_text("{not json", encoding="utf-8")
    return {
        "routing": routing_message,
        "span": span_message,
        "span_index": index,
        "broken": f"{suite / 'broken.json'}: invalid JSON at line 1 column 2",
    }


def test_a_run_from_the_page_names_each_regression_and_marks_its_first_divergence(tampered):
    at = run_suite(open_page())
    summary = texts(at.error)[0]
    assert summary.startswith("1 passed, 2 regression(s), 1 error(s)")
    table = status_table(at)
    assert table["clean"] == ("pass", "")
    assert table["routing-changed"] == ("regression", tampered["routing"])
    assert table["span-renamed"] == ("regression", tampered["span"])
    assert table["broken"][0] == "error" and table["broken"][1].startswith(tampered["broken"])
    assert metrics(at)["Passed"] == "1"

    # the span tree diff: the renamed span is marked on both sides, at the same pre-order index
    at.selectbox(key="golden_trace").set_value("span-renamed").run()
    assert f"First divergence: {tampered['span']}" in texts(at.error)
    golden_tree, now_tree = frames_with(at, "attributes")
    i = tampered["span_index"]
    assert [k for k, v in enumerate(golden_tree["≠"]) if v] == [i] and golden_tree["≠"][i] == MARK
    assert [k for k, v in enumerate(now_tree["≠"]) if v] == [i]
    assert golden_tree["span"][i].endswith("summarise") and now_tree["span"][i].endswith("synthesise")
    assert at.query_params["trace"] == "span-renamed"

    # the routing diff: step 2 (index 1) marked, golden mcts against now trm, same probabilities
    at.selectbox(key="golden_trace").set_value("routing-changed").run()
    assert f"First divergence: {tampered['routing']}" in texts(at.error)
    (routing,) = frames_with(at, "golden agent")
    assert list(routing["golden agent"]) == ["hrm", "mcts"] and list(routing["now agent"]) == ["hrm", "trm"]
    assert [k for k, v in enumerate(routing["≠"]) if v] == [1]
    assert list(routing["golden p(mcts)"]) == pytest.approx(list(routing["now p(mcts)"]))

    # a passing trace: nothing marked, the same answer
    at.selectbox(key="golden_trace").set_value("clean").run()
    assert any("matched its golden" in s for s in texts(at.success))
    assert not any(v for f in frames_with(at, "attributes") for v in f["≠"])
    assert metrics(at)["Answer"] == "same"
    (link,) = [p for p in at.page_link if p.value == "Open the replay's trace"]
    trace_id = parse_qs(link.proto.query_string)["trace"][0]
    store = Store(Path(load_settings().db_path), threaded=False)
    try:  # the link is to the replay the run recorded: the clean golden's request, same seed
        (request,) = store.reads.requests_for_trace(trace_id)
    finally:
        store.close()
    golden_request = json.loads((SHIPPED / "game24-solvable-rules.json").read_text())["request"]
    assert (json.loads(request["request_json"])["query"], request["seed"]) == (
        golden_request["query"],
        golden_request["seed"],
    )

    # a deep link opens a trace on a fresh page; its run is read back from the store
    again = open_page({"trace": "span-renamed"})
    assert again.selectbox(key="golden_trace").value == "span-renamed"
    assert f"First divergence: {tampered['span']}" in texts(again.error)
    golden_tree, now_tree = frames_with(again, "attributes")
    assert [k for k, v in enumerate(now_tree["≠"]) if v] == [i]


def test_a_link_to_an_unknown_golden_is_a_warning(tampered):
    at = open_page({"trace": "no-such-golden"})
    assert (
        "Link parameter trace='no-such-golden' is not a golden trace of this suite: ignored, "
        "using the first golden that did not pass instead." in texts(at.warning)
    )
    assert at.selectbox(key="golden_trace").value in status_table(at)


def test_with_telemetry_off_a_run_is_shown_for_the_session(suite, monkeypatch):
    monkeypatch.setenv("ARBOR_TELEMETRY", "off")
    data = add(suite, "game24-solvable-rules", "only")
    at = run_suite(open_page())
    assert any("not recorded in the store (telemetry is off)" in w for w in texts(at.warning))
    assert status_table(at) == {"only": ("pass", "")}
    _, now_tree = frames_with(at, "attributes")
    names = [p.rsplit("/", 1)[-1] for p in preorder(data["spans"])]
    assert list(now_tree["span"].str.strip("\u2003└ ")) == names


# ------------------------------------------------------------------------------------ hostile text

BEACON = "http://127.0.0.1:9"
HOSTILE = f'![a]({BEACON}/a.png) <img src="{BEACON}/i.png"> **bold** [x]: {BEACON}/r.png'
UNESCAPED = re.compile(r"(?<!\\)!\[|(?<!\\)<[A-Za-z/!?]")


def markdown_values(at: AppTest) -> list[str]:
    """The source of every element Streamlit renders as Markdown (and of metric labels and values)."""
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader")
    values = [e.value for kind in kinds for e in at.get(kind)]
    values += [m.label for m in at.metric] + [m.value for m in at.metric] + [p.value for p in at.page_link]
    return values


def test_hostile_text_from_goldens_and_the_store_stays_plain(suite):
    name = "![b](x.png) **n**"
    data = add(suite, "game24-solvable-rules", name, answer=HOSTILE)
    rebaseline = {"at": "2026-01-01T00:00:00+00:00", "reason": HOSTILE, "previous_engine_version": "arbor 0"}
    data["history"] = [rebaseline]
    (suite / f"{name}.json").write_text(json.dumps(data), encoding="utf-8")
    at = run_suite(open_page())
    assert at.selectbox(key="golden_trace").value == name
    first = f"answer: expected {HOSTILE}, got 8*(7+4-8)"
    assert status_table(at)[name] == ("regression", first)
    shown_texts = [shown(v) for v in markdown_values(at)]
    assert f"First divergence: {first}" in shown_texts  # shown literally ...
    assert any(name in t for t in shown_texts)
    assert any(HOSTILE in t for t in shown_texts if "Re-baselined" in t)
    for value in markdown_values(at):  # ... and never as Markdown that could load anything
        assert not UNESCAPED.search(value), value


# ------------------------------------------------------------------------------------ capture


def test_capture_form_shows_validation_errors_and_refusals_as_messages(suite):
    at = open_page()
    at.text_input(key="golden_capture_request").set_value("")
    at.text_input(key="golden_capture_name").set_value("bad name!")
    at.button(key="golden_capture_capture").click().run()
    assert not at.exception
    errors = texts(at.error)
    assert any(e.startswith("Request id: String should have at least 1 character") for e in errors)
    assert any(e.startswith("Golden name: Value error, use letters, digits") for e in errors)
    at.text_input(key="golden_capture_request").set_value("0123abcd")
    at.text_input(key="golden_capture_name").set_value("fine-name")
    at.button(key="golden_capture_capture").click().run()
    assert any(e.startswith("Capture refused: no request '0123abcd' in the store") for e in texts(at.error))
    assert not (suite / "fine-name.json").exists()


def _answered(db: Path, query: str, seed: int) -> Any:
    engine = Engine(load_settings(db_path=db, metrics_port=0))
    try:
        return engine.run(QueryRequest(query=query, seed=seed, mcts_iterations=200))
    finally:
        engine.close()


def test_capture_from_the_golden_page_writes_a_golden_that_passes(suite, tmp_path):
    result = _answered(tmp_path / "arbor.db", "tictactoe: X.O/.X./..O", seed=4)
    at = open_page()
    at.text_input(key="golden_capture_request").set_value(result.request_id)
    at.text_input(key="golden_capture_name").set_value("ttt-captured")
    at.button(key="golden_capture_capture").click().run()
    assert not at.exception and not at.error
    assert any(s.startswith("Captured ttt-captured") for s in texts(at.success))
    saved = json.loads((suite / "ttt-captured.json").read_text(encoding="utf-8"))
    assert saved["answer"] == result.answer and saved["request"]["seed"] == result.seed
    assert [s["agent"] for s in saved["routing"]] == [s.agent for s in result.steps]
    assert saved["source_request_id"] == result.request_id
    # it is in the suite now, and passes
    at = run_suite(open_page())
    assert status_table(at) == {"ttt-captured": ("pass", "")}


def test_capture_as_golden_on_the_traces_page(suite, tmp_path):
    result = _answered(tmp_path / "arbor.db", "24: 4 7 8 8", seed=2)
    at = open_page({"trace": result.trace_id}, page=TRACES)
    key = f"traces_golden_{result.request_id}"
    assert at.text_input(key=f"{key}_name").value == f"game24-{result.request_id[:8]}"
    button = at.button(key=f"{key}_capture")
    assert not button.disabled
    button.click().run()
    assert not at.exception and not at.error
    name = f"game24-{result.request_id[:8]}"
    assert any(s.startswith(f"Captured {name}") for s in texts(at.success))
    assert {"trace": [name]} in [parse_qs(link.proto.query_string) for link in at.page_link]
    saved = json.loads((suite / f"{name}.json").read_text(encoding="utf-8"))
    assert (saved["answer"], saved["verdict"], saved["source_request_id"]) == (
        result.answer,
        result.verdict,
        result.request_id,
    )
    # capturing it again under the same name is refused, with the way to re-baseline
    at.button(key=f"{key}_capture").click().run()
    assert any("already exists" in e and "--update" in e for e in texts(at.error))


def test_capture_is_disabled_for_a_request_that_did_not_answer(suite, tmp_path):
    store = Store(tmp_path / "arbor.db", threaded=False)
    try:
        store.submit(
            "requests",
            [
                {
                    "request_id": "failed1",
                    "trace_id": "trace-failed1",
                    "ts": 100.0,
                    "task": "game24",
                    "query": "24: 1 1 1 1",
                    "status": "error",
                    "latency_ms": 3.0,
                    "seed": 1,
                    "router": "rules",
                    "error": "boom",
                }
            ],
        )
    finally:
        store.close()
    at = open_page({"trace": "trace-failed1"}, page=TRACES)
    assert at.button(key="traces_golden_failed1_capture").disabled
    assert any(
        "Only answered requests (status ok) can be captured; this one is error." in shown(c.value)
        for c in at.caption
    )


# ------------------------------------------------------------------------------------ access


@pytest.fixture
def viewer(monkeypatch, tmp_path) -> None:
    """ARBOR_AUTH=password with one viewer, vic."""
    from argon2 import PasswordHasher

    from engine import auth

    path = tmp_path / "users.yaml"
    fast = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    auth.save_users(path, auth.UsersFile(users=(auth.User(name="vic", password_hash=fast.hash("v-pass"),
                                                          role="viewer"),)))  # fmt: skip
    monkeypatch.setenv("ARBOR_AUTH", "password")
    monkeypatch.setenv("ARBOR_AUTH_USERS_FILE", str(path))


def test_a_viewer_reads_the_page_but_cannot_run_or_capture(suite, viewer):
    add(suite, "game24-solvable-rules", "one")
    at = AppTest.from_file(MAIN, default_timeout=180)
    at.run()
    at.text_input(key="auth_name").set_value("vic")
    at.text_input(key="auth_password").set_value("v-pass")
    next(b for b in at.button if b.label == "Sign in").click().run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert status_table(at) == {"one": ("not run", "")}
    assert at.button(key="golden_run").disabled and at.button(key="golden_capture_capture").disabled
    captions = texts(at.caption)
    assert "Only an operator may run queries: you are signed in as a viewer (read-only)." in " ".join(
        captions
    )
    assert "Only an operator may capture golden traces" in " ".join(captions)


def _viewer_script() -> None:
    import streamlit as st

    from app import auth, golden

    st.session_state[auth.ACCESS_KEY] = auth.Access("password", "vic", "viewer")
    if st.session_state.action == "capture":
        golden.capture_golden("0123abcd", "by-a-viewer")
    else:
        golden.run_suite_now(1, False)
    st.write("done")


@pytest.mark.parametrize("action", ["capture", "run"])
def test_the_services_refuse_a_viewer(suite, action):
    add(suite, "game24-solvable-rules", "one")
    at = AppTest.from_function(_viewer_script, default_timeout=120)
    at.session_state.action = action
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] and all("Only an operator may" in e.value for e in at.error)
    assert not any(m.value == "done" for m in at.markdown)
    assert sorted(p.name for p in suite.iterdir()) == ["one.json"]
