"""Deterministic clocks and ids for span tests: expected values are worked out by hand from them."""

from __future__ import annotations

WALL0 = 1_700_000_000.0


class FakePerf:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingIds:
    """Deterministic ids: trace ids t000…01, t000…02 (as hex), span ids 000…01, 000…02, …"""

    def __init__(self) -> None:
        self.traces = 0
        self.spans = 0

    def __call__(self, nbytes: int) -> str:
        if nbytes == 16:
            self.traces += 1
            return f"{0xABC << 100 | self.traces:032x}"
        self.spans += 1
        return f"{self.spans:016x}"


def tid(n: int) -> str:
    """The n-th trace id CountingIds hands out."""
    return f"{0xABC << 100 | n:032x}"


def sid(n: int) -> str:
    """The n-th span id CountingIds hands out."""
    return f"{n:016x}"
