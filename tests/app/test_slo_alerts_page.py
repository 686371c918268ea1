"""AppTest of the alert episodes on the SLO page and the sidebar badge on every page.

The store is the hand-built incident of tests/observability/test_slo_replay.py: at
``AS_OF - 33000`` (mid-incident) the availability page alerts 1h/5m (since AS_OF - 35400) and
6h/30m (since AS_OF - 34500) are firing; at AS_OF both have resolved.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from streamlit.testing.v1 import AppTest

from observability.store import Store
from tests.app.console import MAIN, open_page
from tests.observability.test_slo_replay import AS_OF, _build

PAGE = "../pages/slos.py"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _badges(at: AppTest) -> list[str]:
    return [f"{e.icon} {e.value}" for e in at.sidebar.error if "firing" in e.value]


def _episodes(at: AppTest) -> list[dict[str, object]]:
    frames = [d.value for d in at.dataframe if "peak burn" in d.value.columns]
    assert len(frames) == 1
    return frames[0].to_dict("records")


def test_firing_episode_table_and_badge(tmp_path: Path) -> None:
    _build(tmp_path / "arbor.db").close()  # ARBOR_DB_PATH (conftest)
    mid = AS_OF - 33000
    at = open_page(PAGE, {"slo": "availability", "range": "1d", "as_of": f"{mid:.0f}"})
    rows = _episodes(at)
    by_window = {r["windows (long / short)"]: r for r in rows if r["severity"] == "page"}
    fast = by_window["1h / 5m"]
    assert (fast["start"], fast["end"]) == (_when(AS_OF - 35400), "firing")
    assert fast["runbook"] == "runbooks?name=runbook-error-budget-fast-burn"
    assert by_window["6h / 30m"]["start"] == _when(AS_OF - 34500)
    assert all(
        r["runbook"] == "runbooks?name=runbook-error-budget-slow-burn"
        for r in rows
        if r["severity"] == "ticket"
    )
    # the replay persisted the episodes: the next run (any page) shows the badge
    at.run()
    assert not at.exception, at.exception
    firing = sum(1 for r in rows if r["end"] == "firing")
    assert firing >= 2
    assert _badges(at) == [
        f"🔴 {firing} alerts firing (replayed from SQLite): see the alert episodes on the SLOs page."
    ]


def test_resolved_episodes_and_no_badge(tmp_path: Path) -> None:
    _build(tmp_path / "arbor.db").close()
    at = open_page(PAGE, {"slo": "availability", "range": "1d", "as_of": f"{AS_OF:.0f}"})
    fast = next(r for r in _episodes(at) if r["windows (long / short)"] == "1h / 5m")
    assert (fast["start"], fast["end"]) == (_when(AS_OF - 35400), _when(AS_OF - 32100))
    at.run()
    assert _badges(at) == []


def test_quiet_store_has_no_badge(tmp_path: Path) -> None:
    Store(tmp_path / "arbor.db", threaded=False).close()
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception
    assert _badges(at) == []
