"""SLO math: pure functions over event counts (no I/O, no clock).

Definitions (Google SRE workbook; Pyrra and Sloth compute the same):

* error ratio          ``bad / total``
* SLI                  ``1 - bad / total`` (the share of good events)
* error budget         ``1 - objective`` (a share of the events)
* burn rate            ``(bad / total) / (1 - objective)``: 1 spends exactly the budget over the
  SLO period, 2 spends it in half the period
* budget consumed      ``(bad / total) / (1 - objective)`` over the period (the period's burn rate)
* budget remaining     ``1 - budget consumed`` (negative once the budget is overspent)
* time to exhaustion   ``budget remaining x period / burn rate`` (seconds)
* alert condition      ``burn(long) > factor and burn(short) > factor``, factor = budget share x
  period / long window (:mod:`observability.slo.burn`), strictly greater as in the generated
  Prometheus rules

Edge cases, decided here once:

* **No traffic** (``total == 0``): every ratio is None ("unknown"), never 0 or 1; an alert
  with an unknown burn does not fire; time to exhaustion is None.
* **Every request bad**: error ratio 1, burn ``1 / (1 - objective)`` (100 for 99 %), budget
  remaining ``1 - burn`` (-99 for 99 %): the overspend is reported, not clamped.
* **Objective 1.0** (no error budget): a window without bad events burns 0.0 and keeps its
  whole (empty) budget: remaining 1.0; one bad event burns ``math.inf`` and leaves
  ``-math.inf`` (every alert fires; time to exhaustion None: the budget is spent).
  ``data/slos.yaml`` rejects objective 1.0 (its field error says so), so the SLO report never
  carries an infinity; these values exist for direct callers.
* **Window longer than the data**: the counts are those that exist; nothing is extrapolated
  (as Prometheus' ``increase``/``rate`` over a partly empty range would not either, bar its
  boundary extrapolation).

Counts are non-negative whole numbers with ``bad <= total``; objectives are in ``(0, 1]``.
Anything else is a ValueError naming the value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from observability.slo.burn import BURN_RATE_POLICY, BurnRatePolicy

__all__ = [
    "NO_VALUE",
    "AlertState",
    "BucketCount",
    "BudgetPoint",
    "BurnPoint",
    "alert_states",
    "attribution_shares",
    "budget_consumed",
    "budget_over_time",
    "budget_remaining",
    "burn_rate",
    "burn_rate_over_time",
    "error_budget",
    "error_ratio",
    "ideal_budget_remaining",
    "sli",
    "time_to_exhaustion_s",
]


def _check_counts(bad: int, total: int) -> None:
    if (
        isinstance(bad, bool)
        or isinstance(total, bool)
        or not isinstance(bad, int)
        or not isinstance(total, int)
    ):
        raise ValueError(f"counts must be whole numbers, got bad={bad!r}, total={total!r}")
    if total < 0 or bad < 0 or bad > total:
        raise ValueError(f"counts need 0 <= bad <= total, got bad={bad}, total={total}")


def error_budget(objective: float) -> float:
    """``1 - objective`` without binary rounding noise (0.01 for 0.99, 0.0 for 1.0).

    Raises:
        ValueError: the objective is not a number in (0, 1].
    """
    if not isinstance(objective, (int, float)) or isinstance(objective, bool):
        raise ValueError(f"objective must be a number in (0, 1], got {objective!r}")
    if not (0.0 < float(objective) <= 1.0):
        raise ValueError(f"objective must be in (0, 1], got {objective!r}")
    return float(Decimal(1) - Decimal(str(float(objective))))


def error_ratio(bad: int, total: int) -> float | None:
    """``bad / total``; None without traffic. Raises ValueError for counts that are not
    whole numbers with ``0 <= bad <= total``."""
    _check_counts(bad, total)
    return None if total == 0 else bad / total


def sli(bad: int, total: int) -> float | None:
    """The share of good events, ``1 - bad / total``; None without traffic (ValueError like
    :func:`error_ratio`)."""
    ratio = error_ratio(bad, total)
    return None if ratio is None else (total - bad) / total


def burn_rate(bad: int, total: int, objective: float) -> float | None:
    """``(bad / total) / (1 - objective)``; None without traffic; with objective 1.0, 0.0 without
    bad events and ``math.inf`` with any. Raises ValueError for bad counts or objective."""
    budget = error_budget(objective)
    ratio = error_ratio(bad, total)
    if ratio is None:
        return None
    if budget == 0.0:
        return math.inf if bad else 0.0
    return ratio / budget


def budget_consumed(bad: int, total: int, objective: float) -> float | None:
    """The share of the period's error budget the period's events spent (its burn rate): 0 is
    none, 1 all, above 1 overspent. None without traffic; ValueError like :func:`burn_rate`."""
    return burn_rate(bad, total, objective)


def budget_remaining(bad: int, total: int, objective: float) -> float | None:
    """``1 - (bad / total) / (1 - objective)``: 1 untouched, 0 spent, negative overspent.

    None without traffic; objective 1.0 gives 1.0 without bad events and ``-math.inf`` with any.
    Raises ValueError like :func:`burn_rate`.
    """
    consumed = budget_consumed(bad, total, objective)
    return None if consumed is None else 1.0 - consumed


def time_to_exhaustion_s(remaining: float | None, burn: float | None, period_s: float) -> float | None:
    """Seconds until the budget is spent if the burn rate ``burn`` goes on: burn 1 spends a whole
    budget in ``period_s``, so ``remaining x period_s / burn``.

    None when the burn is unknown (None), zero or not finite, or the budget is unknown or
    already spent (``remaining <= 0``). Raises ValueError for a period that is not positive.
    """
    if not (period_s > 0 and math.isfinite(period_s)):
        raise ValueError(f"period_s must be a positive number of seconds, got {period_s!r}")
    if burn is None or remaining is None or not math.isfinite(burn) or burn <= 0 or remaining <= 0:
        return None
    return remaining * period_s / burn


@dataclass(frozen=True)
class AlertState:
    """One multi-window burn-rate condition evaluated at a point in time.

    ``factor`` is the burn-rate threshold for the SLO period; ``long_burn``/``short_burn`` the
    burn rates over the two windows (None: no traffic there); ``firing`` when both exceed it.
    """

    severity: str
    long_window: str
    short_window: str
    factor: float
    long_burn: float | None
    short_burn: float | None
    firing: bool


def alert_states(
    period: timedelta,
    burn_by_window: Mapping[str, float | None],
    policy: Sequence[BurnRatePolicy] = BURN_RATE_POLICY,
) -> list[AlertState]:
    """Evaluate each condition of ``policy`` for an SLO ``period`` from burn rates by window name
    (``"1h"`` -> burn). A condition fires when both of its windows burn strictly faster than its
    factor; an unknown burn (None) never fires. The factor is rounded to 10 significant digits
    (13.44, 0.9333333333), as the generated Prometheus rules write it, so both sources agree.

    Raises:
        ValueError: the period is not positive, or a window the policy needs is missing from
            ``burn_by_window`` (names it).
    """
    if period <= timedelta():
        raise ValueError(f"SLO period must be positive, got {period!r}")
    states = []
    for p in policy:
        missing = [w for w in (p.long_window, p.short_window) if w not in burn_by_window]
        if missing:
            raise ValueError(f"burn rates lack the window(s) {missing} of the {p.severity} condition")
        factor = float(f"{p.factor(period):.10g}")  # as the generated Prometheus rules write it
        long_burn, short_burn = burn_by_window[p.long_window], burn_by_window[p.short_window]
        firing = (
            long_burn is not None and short_burn is not None and long_burn > factor and short_burn > factor
        )
        states.append(
            AlertState(p.severity, p.long_window, p.short_window, factor, long_burn, short_burn, firing)
        )
    return states


def ideal_budget_remaining(ts: float, start_ts: float, period_s: float) -> float:
    """The ideal (linear) budget line: 1 at ``start_ts``, 0 at ``start_ts + period_s``, spending
    the budget evenly; clamped to [0, 1] outside the period. ValueError for a non-positive period."""
    if not (period_s > 0 and math.isfinite(period_s)):
        raise ValueError(f"period_s must be a positive number of seconds, got {period_s!r}")
    return min(1.0, max(0.0, 1.0 - (ts - start_ts) / period_s))


@dataclass(frozen=True)
class BucketCount:
    """Events in one time bucket ending at ``end_ts`` (unix s): ``total`` and ``bad``."""

    end_ts: float
    total: int
    bad: int


@dataclass(frozen=True)
class BudgetPoint:
    """Budget at ``ts``: ``remaining`` (None without traffic in the period) and the ``ideal`` line."""

    ts: float
    remaining: float | None
    ideal: float


def budget_over_time(
    buckets: Sequence[BucketCount], objective: float, start_ts: float, period_s: float
) -> list[BudgetPoint]:
    """Budget remaining at the end of each bucket of a period starting at ``start_ts``.

    The budget is the whole period's: ``(1 - objective) x`` the period's total events (the sum
    over ``buckets``), and at each bucket end the bad events so far have spent their share of
    it, so the last point equals :func:`budget_remaining` of the period's totals and a
    steady error ratio of exactly ``1 - objective`` over steady traffic follows the ideal line.
    Buckets must be in time order. With no traffic in the whole period every ``remaining`` is
    None; objective 1.0 follows :func:`budget_remaining` (1.0, then ``-inf`` once a bad event
    occurred).

    Raises:
        ValueError: buckets out of order, bad counts or objective, or a non-positive period.
    """
    budget = error_budget(objective)
    grand_total = 0
    last = -math.inf
    for b in buckets:
        _check_counts(b.bad, b.total)
        if b.end_ts < last:
            raise ValueError(f"buckets must be in time order: {b.end_ts} after {last}")
        last = b.end_ts
        grand_total += b.total
    points = []
    spent = 0
    for b in buckets:
        spent += b.bad
        remaining: float | None
        if grand_total == 0:
            remaining = None
        elif budget == 0.0:
            remaining = -math.inf if spent else 1.0
        else:
            remaining = 1.0 - spent / (budget * grand_total)
        points.append(BudgetPoint(b.end_ts, remaining, ideal_budget_remaining(b.end_ts, start_ts, period_s)))
    return points


#: The key of events whose attribution dimension has no value (e.g. a request without a variant).
NO_VALUE = "(none)"


def attribution_shares(bad_counts: Mapping[str | None, int]) -> dict[str, float]:
    """Each value's share of the bad events (``count / sum``), largest first (ties by value);
    the shares sum to 1, and an empty mapping (or all zero counts) gives ``{}``. A None value
    is keyed :data:`NO_VALUE`.

    Raises:
        ValueError: a count is negative or not a whole number.
    """
    for value, n in bad_counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"bad-event count of {value!r} must be a whole number >= 0, got {n!r}")
    total = sum(bad_counts.values())
    if total == 0:
        return {}
    merged: dict[str, int] = {}
    for value, n in bad_counts.items():
        key = NO_VALUE if value is None else value
        merged[key] = merged.get(key, 0) + n
    ordered = sorted(((k, n) for k, n in merged.items() if n), key=lambda kn: (-kn[1], kn[0]))
    return {k: n / total for k, n in ordered}


@dataclass(frozen=True)
class BurnPoint:
    """The burn rate over the window ending at ``ts`` (None: no traffic in it)."""

    ts: float
    burn: float | None


def burn_rate_over_time(buckets: Sequence[BucketCount], objective: float, window_s: float) -> list[BurnPoint]:
    """The burn rate over a sliding ``window_s`` at the end of each bucket: bucket ``i`` sums the
    buckets ending in ``(end_i - window_s, end_i]`` (the window's start falls on bucket ends when
    ``window_s`` is a multiple of the bucket width; otherwise whole buckets only). Before the
    data covers a whole window the buckets there are (nothing is extrapolated).

    Raises:
        ValueError: buckets out of order, bad counts or objective, or a non-positive window.
    """
    if not (window_s > 0 and math.isfinite(window_s)):
        raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
    error_budget(objective)
    points: list[BurnPoint] = []
    total = bad = 0
    first = 0
    for i, b in enumerate(buckets):
        _check_counts(b.bad, b.total)
        if i and b.end_ts < buckets[i - 1].end_ts:
            raise ValueError(f"buckets must be in time order: {b.end_ts} after {buckets[i - 1].end_ts}")
        total, bad = total + b.total, bad + b.bad
        while buckets[first].end_ts <= b.end_ts - window_s:
            total, bad = total - buckets[first].total, bad - buckets[first].bad
            first += 1
        points.append(BurnPoint(b.end_ts, burn_rate(bad, total, objective)))
    return points
