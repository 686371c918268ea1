"""The store's ``incidents`` table: created by its migration, written through the store, read
back by window.  Oracle: windows and overlaps worked out by hand."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from observability.store import Store
from observability.store.incidents import Incident, incident_row

H = 3600.0


def _row(kind: str, start: float, end: float, title: str = "t") -> dict[str, object]:
    return incident_row(
        kind=kind,
        title=title,
        start_ts=start,
        end_ts=end,
        simulated=True,
        source="load:test",
        description="d",
    )


def test_migration_creates_the_table_with_the_issue_columns(tmp_path: Path) -> None:
    path = tmp_path / "arbor.db"
    Store(path, threaded=False).close()
    with sqlite3.connect(path) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(incidents)")]
    assert cols == ["id", "kind", "title", "start_ts", "end_ts", "simulated", "source", "description"]


def test_incidents_are_read_back_by_overlap_with_the_window(tmp_path: Path) -> None:
    with Store(tmp_path / "arbor.db", threaded=False) as store:
        store.submit(
            "incidents",
            [
                _row("error_spike", 10 * H, 12 * H, "Error spike"),  # inside (9h, 13h]
                _row("slow_burn", 5 * H, 9.5 * H),  # ends inside
                _row("latency_regression", 12.5 * H, 20 * H),  # starts inside
                _row("provider_outage", 1 * H, 2 * H),  # before
                _row("provider_outage", 13 * H, 14 * H),  # starts exactly at the window's end: out
            ],
        )
        store.flush()
        got = store.reads.incidents(9 * H, 13 * H)
        everything = store.reads.incidents(0, 100 * H)
    assert [(i.kind, i.start_ts, i.end_ts) for i in got] == [
        ("slow_burn", 5 * H, 9.5 * H),
        ("error_spike", 10 * H, 12 * H),
        ("latency_regression", 12.5 * H, 20 * H),
    ]
    assert got[1] == Incident(
        id=got[1].id,
        kind="error_spike",
        title="Error spike",
        start_ts=10 * H,
        end_ts=12 * H,
        simulated=True,
        source="load:test",
        description="d",
    )
    assert len(everything) == 5


def test_the_same_incident_recorded_twice_is_stored_once(tmp_path: Path) -> None:
    with Store(tmp_path / "arbor.db", threaded=False) as store:
        store.submit("incidents", _row("error_spike", H, 2 * H))
        store.submit("incidents", _row("error_spike", H, 2 * H))
        store.flush()
        assert store.reads.count("incidents") == 1


@pytest.mark.parametrize(
    ("kind", "title", "start", "end", "match"),
    [
        ("", "t", 0.0, 1.0, "kind, a title and a source"),
        ("k", " ", 0.0, 1.0, "kind, a title and a source"),
        ("k", "t", 2.0, 1.0, "start_ts < end_ts"),
        ("k", "t", 1.0, 1.0, "start_ts < end_ts"),
        ("k", "t", 0.0, float("nan"), "start_ts < end_ts"),
    ],
)
def test_a_bad_incident_is_refused_with_the_reason(
    kind: str, title: str, start: float, end: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        incident_row(kind=kind, title=title, start_ts=start, end_ts=end, simulated=False, source="s")
