"""Sticky assignment of units (users) to an experiment's variants by hashing.

``bucket = int.from_bytes(sha256(f"{salt}:{experiment}:{unit}")[:8], "big") % 10_000``: the first
8 bytes of the SHA-256 digest of the UTF-8 text, read as an unsigned big-endian integer, modulo
10,000.  Buckets map to variants by cumulative weight: with weights w₁..w_k (summing to 1) the
boundaries are ``round(10_000 · (w₁ + ... + w_i))`` (the last is 10,000), and a bucket belongs to
the first variant whose boundary exceeds it.  Nothing depends on the process (no ``hash()``, no
random state): the same (salt, experiment, unit) gives the same variant in every process, on
every machine, after every restart.  Changing the salt reshuffles every unit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from observability.store.schema import ExposureRow

__all__ = ["BUCKETS", "Assignment", "assign", "bucket", "bucket_bounds", "variant_for_bucket"]

#: Number of buckets; weights are resolved to 1/10,000 (0.01 %).
BUCKETS = 10_000


def bucket(salt: str, experiment: str, unit: str) -> int:
    """The unit's bucket in ``[0, 10000)`` for this experiment and salt.

    Raises:
        ValueError: ``experiment`` or ``unit`` is empty.
    """
    if not experiment or not unit:
        raise ValueError("experiment and unit must be non-empty")
    digest = hashlib.sha256(f"{salt}:{experiment}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=False) % BUCKETS


def bucket_bounds(weights: Sequence[float]) -> tuple[int, ...]:
    """Exclusive upper bucket bound of each variant, from its cumulative weight.

    Raises:
        ValueError: no weights, a negative or non-finite weight, or weights not summing to 1
            (within 1e-9).
    """
    if not weights:
        raise ValueError("an experiment needs at least one variant weight")
    total = 0.0
    bounds = []
    for w in weights:
        if not (w >= 0 and w <= 1):
            raise ValueError(f"weights must lie in [0, 1], got {w!r}")
        total += w
        bounds.append(round(total * BUCKETS))
    if abs(total - 1.0) > 1e-9:
        raise ValueError(f"weights must sum to 1, they sum to {total:.12g}")
    bounds[-1] = BUCKETS
    return tuple(bounds)


def variant_for_bucket(b: int, names: Sequence[str], weights: Sequence[float]) -> str:
    """The variant of ``names`` whose cumulative-weight range holds bucket ``b``.

    Raises:
        ValueError: names and weights differ in length, bad weights, or ``b`` outside [0, 10000).
    """
    if len(names) != len(weights):
        raise ValueError("names and weights must have the same length")
    if not 0 <= b < BUCKETS:
        raise ValueError(f"bucket must lie in [0, {BUCKETS}), got {b}")
    for name, bound in zip(names, bucket_bounds(weights), strict=True):
        if b < bound:
            return name
    raise AssertionError("unreachable: the last bound is BUCKETS")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where one unit lands: its bucket in [0, 10000) and its variant's name."""

    experiment: str
    unit: str
    bucket: int
    variant: str

    def exposure_row(self, request_id: str, ts: float | None = None) -> ExposureRow:
        """The ``exposures`` row to submit at the unit's first request (``ts`` None: the store's clock).

        The store keeps the first row per (experiment, unit), so submitting it again (a resumed
        run) changes nothing.
        """
        return ExposureRow(self.experiment, self.unit, self.variant, self.bucket, request_id, ts)


def assign(
    salt: str, experiment: str, unit: str, names: Sequence[str], weights: Sequence[float]
) -> Assignment:
    """Assign ``unit`` to a variant of ``experiment`` (sticky: a pure function of its arguments).

    Raises:
        ValueError: as :func:`bucket` and :func:`variant_for_bucket`.
    """
    b = bucket(salt, experiment, unit)
    return Assignment(experiment, unit, b, variant_for_bucket(b, names, weights))
