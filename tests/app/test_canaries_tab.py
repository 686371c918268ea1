"""AppTest of the Canaries tab of the Experiments page: a canary recorded by the real runner
(errors injected on its canary arm) is listed, its timeline table shows the rollback with the
error-ratio value and threshold recomputed here from the requests table with plain sqlite3, and
the tab links both arms' requests to Traces; a viewer cannot start a canary."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.shown import shown_all
from tests.engine.canary.helpers import simulate, write_spec

ROOT = Path(__file__).resolve().parents[2]
MAIN = str(ROOT / "app" / "main.py")
PAGE = "../pages/experiments.py"


def _record(tmp_path: Path) -> tuple[Path, str]:
    db = tmp_path / "arbor.db"  # ARBOR_DB_PATH (tests/app/conftest.py)
    report = simulate(db, write_spec(tmp_path, "tab-faulty", "faults: {canary: 'error=0.3'}\n"))
    assert report.status == "rolled_back"
    return db, report.run_id


def _window_error_ratio(db: Path, run_id: str, arm: str, window: int) -> float:
    conn = sqlite3.connect(db)
    try:
        statuses = [
            s
            for (s,) in conn.execute(
                "SELECT status FROM requests WHERE correlation_id = ? AND variant = ? "
                "AND status IN ('ok', 'error') ORDER BY ts",
                (f"canary-{run_id}", arm),
            )
        ]
    finally:
        conn.close()
    last = statuses[-window:]
    return sum(s == "error" for s in last) / len(last)


def _open(params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=180)
    at.run()
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def test_the_tab_shows_a_recorded_rollback_and_links_its_requests(tmp_path: Path) -> None:
    db, run_id = _record(tmp_path)
    at = _open({"canary_run": run_id})
    assert [t.label for t in at.tabs][:3] == ["Experiments", "Feature flags", "Canaries"]
    runs = next(d.value for d in at.main.dataframe if "canary requests" in d.value.columns)
    row = runs[runs["run"] == run_id].iloc[0]
    assert (row["canary"], row["status"], row["share %"], row["clock"]) == (
        "tab-faulty",
        "rolled_back",
        0.0,
        "simulated",
    )
    steps = next(d.value for d in at.main.dataframe if "window b/c" in d.value.columns)
    last = steps.iloc[-1]
    assert last["decision"] == "rollback" and last["step"] == 1 and last["share %"] == 5.0
    # the error-ratio cell against the window recomputed from the stored requests (window 40)
    canary = _window_error_ratio(db, run_id, "canary", 40)
    baseline = _window_error_ratio(db, run_id, "baseline", 40)
    threshold = max(baseline * 1.5, baseline + 0.005)
    assert last["error_ratio"] == f"{canary:.4g} / {threshold:.4g} (fail)"
    assert "rolled back at step 1 (5 %): error_ratio" in last["reason"]
    assert any("Injected faults (a drill): canary: error=0.3" in w for w in shown_all(at.warning))
    assert any("rolled_back at 0 %" in e for e in shown_all(at.error))
    links = {p.proto.label: parse_qs(p.proto.query_string) for p in at.main.get("page_link")}
    assert links["Canary requests"]["variant"] == ["canary"]
    assert links["Baseline requests"]["variant"] == ["baseline"]
    # this run's requests alone: its correlation id (another run of the spec has its own)
    assert links["Canary requests"]["correlation"] == [f"canary-{run_id}"]
    assert links["Baseline requests"]["correlation"] == [f"canary-{run_id}"]
    assert at.main.get("plotly_chart")  # the timeline


def test_a_viewer_cannot_start_a_canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.auth as auth

    monkeypatch.setattr(
        auth, "operator_disabled_reason", lambda action="run_query": "Only an operator may run experiments."
    )
    at = _open({})
    (button,) = [b for b in at.button if b.label == "Start the canary"]
    assert button.disabled
    assert any("No canary runs recorded yet." in i for i in shown_all(at.info))
