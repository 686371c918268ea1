"""The SLO review's store reads (observability/store/review_reads.py): the latest golden-suite
run and the alert episodes overlapping a period, on stores whose rows are written here."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from observability.store import ReadModel, Store
from observability.store.review_reads import latest_golden_run, recorded_episodes

T = 1_800_000_000.0


def _golden(run_id: str, golden_id: str, ts: float, status: str, divergence: str | None = None) -> dict:
    return {
        "run_id": run_id,
        "golden_id": golden_id,
        "ts": ts,
        "status": status,
        "first_divergence": divergence,
    }


def _alert(alert_id: str, slo: str, start: float, end: float | None, severity: str = "page") -> dict:
    return {
        "alert_id": alert_id, "name": "SLOErrorBudgetBurn", "slo": slo, "severity": severity,
        "state": "firing" if end is None else "resolved", "ts": start, "resolved_ts": end, "burn_rate": 7.5,
        "threshold": 5.6, "long_window": "6h", "short_window": "30m", "source": "sqlite-replay",
        "message": "m", "simulated": 0,
    }  # fmt: skip


def test_no_golden_run_is_none(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db", threaded=False) as s:
        s.flush()
    assert latest_golden_run(ReadModel(tmp_path / "a.db")) is None


def test_latest_golden_run_is_the_newest_and_counts_its_statuses(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db", threaded=False) as s:
        s.submit(
            "golden_runs",
            [
                _golden("old", "g1", T - 100, "regression", "routing step 1"),
                _golden("new", "g2", T - 10, "regression", "answer"),
                _golden("new", "g1", T - 12, "pass"),
                _golden("new", "g3", T - 11, "error", ""),
                _golden("new", "g4", T - 11, "pass"),
            ],
        )
        s.flush()
    run = latest_golden_run(ReadModel(tmp_path / "a.db"))
    assert run is not None
    # run "new" holds the newest row (T - 10); its time is that row's; results in golden-id order
    assert (run.run_id, run.ts) == ("new", T - 10)
    assert [(r.name, r.status, r.first_divergence) for r in run.results] == [
        ("g1", "pass", None), ("g2", "regression", "answer"), ("g3", "error", None), ("g4", "pass", None),
    ]  # fmt: skip
    assert (run.passed, run.failed, run.errors) == (2, 1, 1)


def test_episodes_overlapping_the_period(tmp_path: Path) -> None:
    since, until = T - 1000, T
    with Store(tmp_path / "a.db", threaded=False) as s:
        s.submit(
            "alerts",
            [
                _alert("inside", "availability", T - 500, T - 400),
                _alert("open", "availability", T - 2000, None),  # started before, still firing: overlaps
                _alert("ends-at-start", "availability", T - 2000, since),  # resolved at since: out
                _alert("starts-at-end", "latency", until, None, "ticket"),  # ts <= until: in
                _alert("after", "availability", until + 1, None),  # out
                _alert("other-slo", "quality", T - 500, None),
            ],
        )
        s.flush()
    reads = ReadModel(tmp_path / "a.db")
    found = recorded_episodes(reads, since, until, ["availability", "latency"])
    # newest start first
    assert [e.alert_id for e in found] == ["starts-at-end", "inside", "open"]
    inside = found[1]
    assert (inside.slo, inside.severity, inside.factor, inside.peak_burn) == (
        "availability",
        "page",
        5.6,
        7.5,
    )
    assert (inside.start_ts, inside.end_ts, inside.long_window, inside.short_window) == (
        T - 500,
        T - 400,
        "6h",
        "30m",
    )
    assert found[2].end_ts is None
    assert {e.alert_id for e in recorded_episodes(reads, since, until)} == {
        "starts-at-end",
        "inside",
        "open",
        "other-slo",
    }
    assert recorded_episodes(reads, since, until, []) == []


def test_garbage_in_the_alerts_table_is_no_number(tmp_path: Path) -> None:
    with Store(tmp_path / "a.db", threaded=False) as s:
        s.flush()
    with sqlite3.connect(tmp_path / "a.db") as conn:  # another writer, bypassing the row checks
        conn.execute(
            "INSERT INTO alerts (alert_id, slo, severity, state, ts, resolved_ts, burn_rate, threshold)"
            " VALUES ('g', 'availability', 'page', 'firing', ?, 'soon', 'hot', 'NaN')",
            [T - 10],
        )
        conn.execute(
            "INSERT INTO alerts (alert_id, slo, severity, state, ts)"
            " VALUES ('t', 'availability', 'page', 'firing', 'x')"
        )
    (found,) = recorded_episodes(ReadModel(tmp_path / "a.db"), T - 100, T)
    # a text start time is no time: that row is left out; the others' unreadable numbers are None
    assert (found.alert_id, found.start_ts, found.end_ts, found.peak_burn, found.factor) == (
        "g",
        T - 10,
        None,
        None,
        None,
    )
