"""A thread-safe circuit breaker (closed -> open -> half-open) with a real half-open probe limit.

* **closed**: calls go through.  ``failure_threshold`` *consecutive* failures open the breaker (a
  success resets the count).
* **open**: :meth:`CircuitBreaker.before_call` raises :class:`~engine.llm.types.CircuitOpen` without
  calling the provider, until ``reset_timeout_s`` seconds (on the injected monotonic ``clock``) have
  passed since it opened; then the breaker is half-open.
* **half_open**: at most ``half_open_max_calls`` calls are let through at once (the probes); further
  callers get CircuitOpen.  A probe's success closes the breaker; a probe's failure re-opens it and
  restarts the timer.

Results reported while the breaker is open are ignored: they come from calls admitted before it
opened and must not extend or cut short the open period.  Usage::

    breaker.before_call()            # raises CircuitOpen
    try:
        result = provider.complete(request)
    except Exception:
        breaker.record_failure()
        raise
    breaker.record_success()
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from engine.llm.types import CircuitOpen

__all__ = ["BreakerSnapshot", "BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    """The three breaker states; the values are the names used in metrics and the console."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerSnapshot:
    """A consistent view of a breaker.  ``retry_in_s``: seconds until an open breaker half-opens
    (0.0 otherwise); ``times_opened``: how often it has opened since it was built."""

    name: str
    state: BreakerState
    consecutive_failures: int
    half_open_in_flight: int
    retry_in_s: float
    times_opened: int


class CircuitBreaker:
    """See the module docstring.  ``clock``: monotonic seconds (inject a fake one in tests).

    Raises ValueError for a threshold or probe limit below 1 or a negative timeout.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout_s: float = 30.0,
        half_open_max_calls: int = 1,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str = "",
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if reset_timeout_s < 0:
            raise ValueError("reset_timeout_s must be >= 0")
        if half_open_max_calls < 1:
            raise ValueError("half_open_max_calls must be >= 1")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = float(reset_timeout_s)
        self.half_open_max_calls = half_open_max_calls
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._in_flight = 0
        self._times_opened = 0

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(name={self.name!r}, state={self.state.value!r}, "
            f"failure_threshold={self.failure_threshold}, reset_timeout_s={self.reset_timeout_s:g}, "
            f"half_open_max_calls={self.half_open_max_calls})"
        )

    # All _methods below expect self._lock to be held.
    def _current(self) -> BreakerState:
        """The state, moving open -> half_open when the reset timeout has elapsed."""
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.reset_timeout_s:
            self._state = BreakerState.HALF_OPEN
            self._in_flight = 0
        return self._state

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._in_flight = 0
        self._times_opened += 1

    def _retry_in(self) -> float:
        return max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose timeout has elapsed reports half_open)."""
        with self._lock:
            return self._current()

    def before_call(self) -> None:
        """Ask to make a call.  Returns when allowed (taking a probe slot when half-open).

        Raises CircuitOpen when open, or when half-open and ``half_open_max_calls`` probes are running.
        """
        with self._lock:
            state = self._current()
            if state is BreakerState.CLOSED:
                return
            if state is BreakerState.OPEN:
                raise CircuitOpen(
                    f"{self.name or 'provider'}: circuit open, next probe in {self._retry_in():.1f} s",
                    provider=self.name or None,
                    retry_in_s=self._retry_in(),
                )
            if self._in_flight >= self.half_open_max_calls:
                raise CircuitOpen(
                    f"{self.name or 'provider'}: circuit half-open, "
                    f"{self._in_flight}/{self.half_open_max_calls} probe(s) already running",
                    provider=self.name or None,
                    retry_in_s=0.0,
                )
            self._in_flight += 1

    def record_success(self) -> None:
        """Report a successful call: closes a half-open breaker, resets the failure count when closed."""
        with self._lock:
            state = self._current()
            if state is BreakerState.OPEN:
                return
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._in_flight = 0

    def record_failure(self) -> None:
        """Report a failed call: re-opens a half-open breaker (restarting the timer), or counts towards
        ``failure_threshold`` when closed."""
        with self._lock:
            state = self._current()
            if state is BreakerState.OPEN:
                return
            if state is BreakerState.HALF_OPEN:
                self._open()
                return
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def reset(self) -> None:
        """Force the breaker closed with no recorded failures (operator action)."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._in_flight = 0

    def snapshot(self) -> BreakerSnapshot:
        """A consistent view of the breaker's state and counters."""
        with self._lock:
            state = self._current()
            return BreakerSnapshot(
                name=self.name,
                state=state,
                consecutive_failures=self._failures,
                half_open_in_flight=self._in_flight if state is BreakerState.HALF_OPEN else 0,
                retry_in_s=self._retry_in() if state is BreakerState.OPEN else 0.0,
                times_opened=self._times_opened,
            )
