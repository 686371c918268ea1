"""The writer holds queued rows while requests run (``activity``), within ``max_defer_s`` (issue 16, item 6).

The test itself holds the activity, so what the writer may do is known exactly; the "nothing
committed yet" checks wait a fixed short time with a defer far longer than any machine's delay,
so they cannot pass by accident of speed.  Rows are counted through separate connections.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.wiring import build_telemetry
from observability.activity import Activity
from observability.store import Store


def count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])
    finally:
        conn.close()


def wait_until(predicate, timeout_s: float = 30.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def row(i: int) -> dict:
    return {"requests": {"request_id": f"r{i}", "ts": float(i)}}


def test_rows_wait_while_busy_and_are_written_once_idle(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    activity = Activity()
    store = Store(path, flush_interval_s=0.0, activity=activity, max_defer_s=600.0)
    try:
        with activity.running():
            for i in range(5):
                store.submit_deferred(lambda i=i: row(i))
            time.sleep(0.3)
            assert count(path) == 0  # held: a request is running
            assert store._writer.deferrals >= 1
        assert wait_until(lambda: count(path) == 5)  # idle: written without a flush
    finally:
        store.close()


def test_a_flush_and_a_commit_wait_are_never_held(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    activity = Activity()
    store = Store(path, flush_interval_s=0.0, activity=activity, max_defer_s=600.0)
    try:
        with activity.running():
            ticket = store.submit_deferred(lambda: row(1))
            assert store.wait_for(ticket, timeout_s=30)  # commit durability: written at once
            assert count(path) == 1
            store.submit_deferred(lambda: row(2))
            store.flush()
            assert count(path) == 2
    finally:
        store.close()


def test_close_writes_everything_held(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    activity = Activity()
    store = Store(path, flush_interval_s=0.0, activity=activity, max_defer_s=600.0)
    with activity.running():
        for i in range(20):
            store.submit_deferred(lambda i=i: row(i))
        store.close()
    assert count(path) == 20


def test_the_hold_ends_after_max_defer_even_under_constant_load(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    activity = Activity()
    store = Store(path, flush_interval_s=0.0, activity=activity, max_defer_s=0.2)
    try:
        with activity.running():  # never idle
            for i in range(50):
                store.submit_deferred(lambda i=i: row(i))
            assert wait_until(lambda: count(path) == 50)
    finally:
        store.close()


def test_a_half_full_backlog_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    activity = Activity()
    store = Store(path, flush_interval_s=0.0, activity=activity, max_defer_s=600.0, max_backlog=10)
    try:
        with activity.running():
            for i in range(6):  # 6 of 10: over half
                store.submit_deferred(lambda i=i: row(i))
            assert wait_until(lambda: count(path) >= 5)
    finally:
        store.close()


def test_without_busy_nothing_is_held(tmp_path: Path) -> None:
    path = tmp_path / "d.db"
    store = Store(path, flush_interval_s=0.0, max_defer_s=600.0)
    try:
        store.submit_deferred(lambda: row(1))
        assert wait_until(lambda: count(path) == 1)
    finally:
        store.close()


def test_bad_max_defer_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_defer_s"):
        Store(tmp_path / "d.db", max_defer_s=-1.0)


def test_activity_counts_in_flight_across_threads() -> None:
    activity = Activity()
    inside = threading.Barrier(5)
    release = threading.Event()

    def work() -> None:
        with activity.running():
            inside.wait(10)
            release.wait(10)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    inside.wait(10)
    assert activity.in_flight == 4 and activity.busy()
    release.set()
    for t in threads:
        t.join(10)
    assert activity.in_flight == 0 and not activity.busy()


def test_the_engine_counts_its_requests_for_the_store(tmp_path: Path) -> None:
    """The composition root gives the store and the telemetry the same Activity: a request
    counts as in flight while it runs (seen by the engine's latency clock, read inside the
    request) and not after."""
    settings = load_settings(db_path=tmp_path / "e.db", metrics_port=0)
    telemetry = build_telemetry(settings)
    seen: list[bool] = []

    def clock() -> float:
        seen.append(telemetry.activity.busy())
        return time.perf_counter()

    engine = Engine(settings, telemetry=telemetry, clock=clock)
    try:
        assert telemetry.store is not None
        assert telemetry.store._writer._activity is telemetry.activity
        engine.run(QueryRequest(query="24: 4 7 8 8", seed=1))
        assert seen and all(seen)  # every clock read of the request came while it was in flight
        assert not telemetry.activity.busy()
    finally:
        engine.close()
        telemetry.close()


def test_a_moment_between_two_operations_is_not_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The waiter finds nothing running, but an operation starts before SETTLE_S is over: that
    was the gap between two requests of a burst, so it goes on waiting until one ends with none
    starting after it (without the settle it returned at once, and the writer built rows just as
    the next request began)."""
    import observability.activity as activity_module

    monkeypatch.setattr(activity_module, "SETTLE_S", 0.5)
    activity = Activity()
    seen: dict[str, object] = {}

    def waiter() -> None:
        seen["idle"] = activity.wait_idle(10.0)
        seen["at"] = time.monotonic()

    thread = threading.Thread(target=waiter)
    thread.start()
    time.sleep(0.1)  # the waiter found none running and is settling
    with activity.running():
        time.sleep(0.3)
    ended = time.monotonic()
    thread.join(10)
    assert seen["idle"] is True and seen["at"] >= ended


def test_a_poke_ends_the_wait_at_once_even_while_settling(monkeypatch: pytest.MonkeyPatch) -> None:
    import observability.activity as activity_module

    monkeypatch.setattr(activity_module, "SETTLE_S", 5.0)
    activity = Activity()
    done = threading.Event()
    thread = threading.Thread(target=lambda: (activity.wait_idle(10.0), done.set()))
    thread.start()
    time.sleep(0.1)
    activity.poke()
    assert done.wait(2.0)
    thread.join(10)
