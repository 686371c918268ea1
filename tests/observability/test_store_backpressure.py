"""The store's bounded backlog (back-pressure) and commit tickets (issue 9, item 1).

A deferred job whose build blocks on an event holds the writer thread, so the backlog's
state is known exactly, whatever the machine's speed.  Rows are counted through separate
``sqlite3`` connections.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from observability.store import Store, StoreError


def count(path: Path, table: str = "requests") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def gated(gate: threading.Event, request_id: str):
    """A deferred build that holds the writer until ``gate`` is set."""

    def build() -> dict:
        assert gate.wait(60), "the test never opened the gate"
        return {"requests": {"request_id": request_id, "ts": 1.0}}

    return build


def test_a_full_backlog_makes_producers_wait_until_the_writer_has_committed(tmp_path: Path) -> None:
    path = tmp_path / "bp.db"
    store = Store(path, max_backlog=3, flush_interval_s=0.0)
    gate = threading.Event()
    try:
        store.submit_deferred(gated(gate, "r1"))  # the writer takes it and blocks
        store.record_request({"request_id": "r2", "ts": 2.0})
        store.submit_deferred(lambda: {"requests": {"request_id": "r3", "ts": 3.0}})
        assert store.stats.backlog == 3  # = max_backlog: full
        returned: list[int] = []
        producer = threading.Thread(
            target=lambda: returned.append(store.record_request({"request_id": "r4", "ts": 4.0}))
        )
        producer.start()
        producer.join(0.5)
        assert producer.is_alive() and returned == []  # waiting for room, nothing queued
        assert store.stats.backlog == 3 and store.stats.backlog_waits == 1
        assert count(path) == 0
        gate.set()
        producer.join(60)
        assert not producer.is_alive() and returned == [1]
        store.flush()
        assert count(path) == 4
        assert store.stats.backlog == 0
    finally:
        gate.set()
        store.close()


def test_wait_for_commits_at_once_instead_of_filling_the_batch(tmp_path: Path) -> None:
    path = tmp_path / "ticket.db"
    # A batch would wait an hour to fill: only a waiter makes the writer commit early.
    store = Store(path, flush_interval_s=3600.0, batch_size=1_000_000)
    try:
        first = store.submit_deferred(lambda: {"requests": {"request_id": "a", "ts": 1.0}})
        second = store.submit_deferred(lambda: {"requests": {"request_id": "b", "ts": 2.0}})
        assert (first, second) == (1, 2)
        assert store.wait_for(second, timeout_s=60) is True
        assert count(path) == 2  # both committed (group commit), seen by another connection
        assert store.wait_for(first, timeout_s=0) is True  # already committed
    finally:
        store.close()


def test_wait_for_times_out_while_the_writer_is_held_and_reports_no_error(tmp_path: Path) -> None:
    path = tmp_path / "timeout.db"
    store = Store(path, flush_interval_s=0.0)
    gate = threading.Event()
    try:
        ticket = store.submit_deferred(gated(gate, "slow"))
        assert store.wait_for(ticket, timeout_s=0.2) is False
        assert count(path) == 0
        gate.set()
        assert store.wait_for(ticket, timeout_s=60) is True
        assert count(path) == 1
    finally:
        gate.set()
        store.close()


def test_a_producer_waiting_for_room_gets_store_error_when_the_store_closes(tmp_path: Path) -> None:
    path = tmp_path / "closing.db"
    store = Store(path, max_backlog=1, flush_interval_s=0.0)
    gate = threading.Event()
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            store.record_request({"request_id": "late", "ts": 2.0})
        except StoreError as exc:
            errors.append(exc)

    store.submit_deferred(gated(gate, "first"))
    producer = threading.Thread(target=produce)
    producer.start()
    producer.join(0.3)
    assert producer.is_alive()  # the backlog (1) is full
    closer = threading.Thread(target=store.close)
    closer.start()
    closer.join(0.3)
    assert closer.is_alive()  # close waits for the writer, which is held
    gate.set()
    closer.join(60)
    producer.join(60)
    assert not closer.is_alive() and not producer.is_alive()
    assert len(errors) == 1 and "closed" in str(errors[0])
    assert count(path) == 1  # what was queued before close is committed; the late row is refused


def test_synchronous_stores_have_no_backlog_and_ticket_zero(tmp_path: Path) -> None:
    store = Store(tmp_path / "sync.db", threaded=False, max_backlog=1)
    try:
        assert store.submit_deferred(lambda: {"requests": {"request_id": "s1", "ts": 1.0}}) == 0
        store.record_request({"request_id": "s2", "ts": 2.0})  # a full "backlog" never blocks here
        assert store.wait_for(0) is True
        assert count(tmp_path / "sync.db") == 2
    finally:
        store.close()


@pytest.mark.parametrize("bad", [0, -5])
def test_max_backlog_must_be_positive(tmp_path: Path, bad: int) -> None:
    with pytest.raises(ValueError, match="max_backlog"):
        Store(tmp_path / "bad.db", max_backlog=bad)
