"""Circuit breaker: closed -> open -> half-open with a real probe limit, on a fake clock."""

from __future__ import annotations

import threading

import pytest

from engine.llm import BreakerState, CircuitBreaker, CircuitOpen
from tests.engine.llm.helpers import FakeClock


def make(clock: FakeClock, **kw) -> CircuitBreaker:
    kw.setdefault("failure_threshold", 3)
    kw.setdefault("reset_timeout_s", 30.0)
    return CircuitBreaker(clock=clock, name="p", **kw)


def fail(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        breaker.before_call()
        breaker.record_failure()


def test_opens_after_threshold_consecutive_failures(fake_clock: FakeClock) -> None:
    b = make(fake_clock)
    fail(b, 2)
    assert b.state is BreakerState.CLOSED
    b.before_call()
    b.record_success()  # resets the count: failures must be consecutive
    fail(b, 2)
    assert b.state is BreakerState.CLOSED
    fail(b, 1)
    assert b.state is BreakerState.OPEN
    assert b.snapshot().times_opened == 1


def test_rejects_while_open_and_half_opens_after_timeout(fake_clock: FakeClock) -> None:
    b = make(fake_clock)
    fail(b, 3)
    fake_clock.advance(10.0)
    with pytest.raises(CircuitOpen) as info:
        b.before_call()
    assert info.value.retry_in_s == pytest.approx(20.0)
    assert info.value.provider == "p"
    fake_clock.advance(19.999)
    assert b.state is BreakerState.OPEN
    fake_clock.advance(0.001)
    assert b.state is BreakerState.HALF_OPEN
    assert b.state == "half_open"


def test_half_open_success_closes(fake_clock: FakeClock) -> None:
    b = make(fake_clock)
    fail(b, 3)
    fake_clock.advance(30.0)
    b.before_call()  # the probe
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.snapshot().consecutive_failures == 0
    for _ in range(5):
        b.before_call()  # no limit when closed


def test_half_open_failure_reopens_and_restarts_timer(fake_clock: FakeClock) -> None:
    b = make(fake_clock)
    fail(b, 3)
    fake_clock.advance(30.0)
    b.before_call()
    fake_clock.advance(5.0)  # the probe takes 5 s and fails
    b.record_failure()
    assert b.state is BreakerState.OPEN
    assert b.snapshot().retry_in_s == pytest.approx(30.0)  # timer restarted at the failure
    fake_clock.advance(29.0)
    with pytest.raises(CircuitOpen):
        b.before_call()
    fake_clock.advance(1.0)
    assert b.state is BreakerState.HALF_OPEN
    assert b.snapshot().times_opened == 2


def test_single_probe_limit_sequential(fake_clock: FakeClock) -> None:
    b = make(fake_clock)
    fail(b, 3)
    fake_clock.advance(30.0)
    b.before_call()
    with pytest.raises(CircuitOpen, match="probe"):
        b.before_call()  # the one probe is still running
    assert b.snapshot().half_open_in_flight == 1


def test_results_reported_while_open_are_ignored(fake_clock: FakeClock) -> None:
    b = make(fake_clock)
    fail(b, 3)
    b.record_success()  # a slow call admitted before the breaker opened
    assert b.state is BreakerState.OPEN
    fake_clock.advance(20.0)
    b.record_failure()  # must not restart the timer
    fake_clock.advance(10.0)
    assert b.state is BreakerState.HALF_OPEN


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_half_open_admits_exactly_the_probe_limit_concurrently(fake_clock: FakeClock, limit: int) -> None:
    """Many threads hit a half-open breaker at the same instant; exactly ``limit`` get through while the
    probes are still in flight; after a probe succeeds everybody gets through."""
    b = make(fake_clock, half_open_max_calls=limit)
    fail(b, 3)
    fake_clock.advance(30.0)
    threads_n = 24
    barrier = threading.Barrier(threads_n)
    release = threading.Event()
    admitted: list[int] = []
    rejected: list[int] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        try:
            b.before_call()
        except CircuitOpen:
            with lock:
                rejected.append(i)
            return
        with lock:
            admitted.append(i)
        release.wait(timeout=10)  # the probe is "in flight" until released

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    # Wait until every thread has either been admitted or rejected.
    for _ in range(1000):
        with lock:
            if len(admitted) + len(rejected) == threads_n:
                break
        threading.Event().wait(0.005)
    assert len(admitted) == limit
    assert len(rejected) == threads_n - limit
    assert b.snapshot().half_open_in_flight == limit
    release.set()
    for t in threads:
        t.join(timeout=10)
    b.record_success()
    assert b.state is BreakerState.CLOSED
    b.before_call()


def test_concurrent_failures_open_exactly_once(fake_clock: FakeClock) -> None:
    b = make(fake_clock, failure_threshold=50)
    barrier = threading.Barrier(16)

    def worker() -> None:
        barrier.wait()
        for _ in range(10):
            b.record_failure()

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = b.snapshot()
    assert snap.state is BreakerState.OPEN
    assert snap.times_opened == 1


def test_reset_and_validation(fake_clock: FakeClock) -> None:
    b = make(fake_clock)
    fail(b, 3)
    b.reset()
    assert b.state is BreakerState.CLOSED
    for bad in ({"failure_threshold": 0}, {"half_open_max_calls": 0}, {"reset_timeout_s": -1}):
        with pytest.raises(ValueError):
            CircuitBreaker(**bad)
    assert "closed" in repr(b)
