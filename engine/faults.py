"""Fault injection for load tests: parsed from text, decided per request by a seeded RNG.

``"provider_error=0.05,latency_ms=200@0.1,error=0.01"`` means: 5% of requests
see their LLM provider fail, 10% get 200 ms of extra latency, 1% fail with an
injected error.  Decisions are drawn per request from the workload's seeded
generator, so a run with the same seed injects the same faults.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FaultPlan", "Faults", "InjectedFault"]

_MAX_LATENCY_MS = 60_000.0


def _number(part: str, raw: str, what: str, low: float, high: float) -> float:
    """``raw`` as a float in [low, high]; raises ValueError naming ``part`` and the range."""
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{part}: {raw.strip()!r} is not a number ({what} in [{low:g}, {high:g}])") from None
    if not low <= value <= high:  # also rejects nan
        raise ValueError(f"{part}: {what} must be in [{low:g}, {high:g}]")
    return value


class InjectedFault(RuntimeError):
    """An error injected on purpose by a load test; recorded like any failure."""


class FaultPlan(BaseModel):
    """Fault probabilities (each in [0, 1]) and the injected latency in ms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    error: float = Field(0.0, ge=0.0, le=1.0)
    provider_error: float = Field(0.0, ge=0.0, le=1.0)
    latency_ms: float = Field(0.0, ge=0.0, le=_MAX_LATENCY_MS)
    latency_p: float = Field(0.0, ge=0.0, le=1.0)

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """Parse ``key=value`` pairs separated by commas; ``latency_ms=200@0.1`` gives
        the latency and its probability.

        Raises ValueError naming the bad part and what is allowed, e.g.
        ``"error=5: a probability must be in [0, 1]"``.
        """
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, raw = part.partition("=")
            key = key.strip()
            if not sep:
                raise ValueError(f"fault {part!r}: expected key=value, e.g. error=0.01")
            if key == "latency_ms":
                ms, at, p = raw.partition("@")
                values["latency_ms"] = _number(part, ms, "a latency in ms", 0.0, _MAX_LATENCY_MS)
                values["latency_p"] = _number(part, p, "a probability", 0.0, 1.0) if at else 1.0
            elif key in ("error", "provider_error"):
                values[key] = _number(part, raw, "a probability", 0.0, 1.0)
            else:
                raise ValueError(
                    f"unknown fault {key!r} in {part!r} (known: error, provider_error, latency_ms)"
                )
        return cls(**values)

    def draw(self, rng: np.random.Generator) -> Faults:
        """This request's faults, from three uniform draws (always three, so the
        stream of draws does not depend on the plan)."""
        u = rng.random(3)
        return Faults(
            error=bool(u[0] < self.error),
            provider_error=bool(u[1] < self.provider_error),
            extra_latency_s=self.latency_ms / 1000 if u[2] < self.latency_p else 0.0,
        )


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults one request gets."""

    error: bool = False
    provider_error: bool = False
    extra_latency_s: float = 0.0

    @property
    def any(self) -> bool:
        return self.error or self.provider_error or self.extra_latency_s > 0
