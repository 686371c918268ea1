"""Replay of the multi-window multi-burn-rate alert rules over a period into alert episodes.

The generated Prometheus rules (``observability/rules/slo_rules.yml``) have no ``for:`` clause,
so an alert fires at the first evaluation where both of its windows burn faster than its factor
and resolves at the first evaluation where they do not. The replay evaluates the rules every
``step_s`` seconds (5 minutes) at ``as_of``, ``as_of - step_s``, ... back to the period's start,
from per-minute event counts fetched once: window sums are differences of one cumulative sum
(numpy), so a 28-day period costs one grouped query and a few array operations.

A window of ``w`` seconds evaluated at ``t`` holds the buckets ending in ``(t - w, t]`` (the
rows ``t - w < ts <= t`` when the buckets end on ``as_of - k x bucket_s``, as
:func:`observability.store.slo_reads.bucket_counts` builds them). The buckets are a minute wide
by default; :func:`bucket_width_s` (5 minutes: every window and the step are multiples of it)
gives the same episodes from a fifth of the buckets, which the store reads faster. Burn rates and factors are
those of :func:`observability.slo.math.alert_states` (the factor rounded to 10 significant
digits, strictly greater, an evaluation without traffic in a window does not fire).

An episode already firing at the period's first evaluation starts there (the replay does not
look further back); one still firing at ``as_of`` has ``end_ts`` None.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from observability.durations import parse_duration
from observability.slo.burn import BURN_RATE_POLICY, BurnRatePolicy
from observability.slo.math import error_budget

__all__ = [
    "EVAL_STEP_S",
    "MINUTE_S",
    "AlertEpisode",
    "bucket_width_s",
    "episode_id",
    "lookback_s",
    "replay_episodes",
]

#: Evaluation interval of the replay (s), as a Prometheus rule group evaluated every 5 minutes.
EVAL_STEP_S = 300
#: Width of the count buckets the replay sums by default (s); :func:`bucket_width_s` gives the
#: widest that still answers every window and evaluation exactly (5 minutes for the policy).
MINUTE_S = 60


@dataclass(frozen=True)
class AlertEpisode:
    """One alert episode: ``slo`` burned faster than ``factor`` over both windows from
    ``start_ts`` (the first firing evaluation, unix s) until ``end_ts`` (the first evaluation
    that no longer fires; None while firing at the replay's ``as_of``). ``peak_burn`` is the
    highest long-window burn rate seen while firing."""

    slo: str
    severity: str
    long_window: str
    short_window: str
    factor: float
    start_ts: float
    end_ts: float | None
    peak_burn: float

    @property
    def firing(self) -> bool:
        """True while the episode has not resolved."""
        return self.end_ts is None

    @property
    def alert_id(self) -> str:
        """Deterministic id (same SLO, condition and start -> same id): see :func:`episode_id`."""
        return episode_id(self.slo, self.severity, self.long_window, self.short_window, self.start_ts)


def episode_id(slo: str, severity: str, long_window: str, short_window: str, start_ts: float) -> str:
    """A stable id for an episode: a hash of SLO, severity, windows and start (whole seconds)."""
    key = f"{slo}|{severity}|{long_window}|{short_window}|{round(start_ts)}"
    return "replay-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def lookback_s(policy: Sequence[BurnRatePolicy] = BURN_RATE_POLICY) -> float:
    """The longest window of ``policy`` (s): the counts must reach this far before the period."""
    return max(parse_duration(w).total_seconds() for p in policy for w in (p.long_window, p.short_window))


def bucket_width_s(step_s: int = EVAL_STEP_S, policy: Sequence[BurnRatePolicy] = BURN_RATE_POLICY) -> int:
    """The widest bucket (s, a whole number of minutes) dividing ``step_s`` and every window of
    ``policy``: every window the replay sums then starts and ends on a bucket end, so counts
    per bucket of this width give the same episodes as per-minute counts (300 s for the
    policy's 5m..3d windows evaluated every 5 minutes), from a fifth as many boundaries.

    Raises:
        ValueError: a window or the step is not a positive whole number of minutes.
    """
    if step_s <= 0 or step_s % MINUTE_S:
        raise ValueError(f"step_s must be a positive multiple of {MINUTE_S} s, got {step_s!r}")
    width = int(step_s)
    for p in policy:
        for window in (p.long_window, p.short_window):
            width = math.gcd(width, _window_buckets(window, MINUTE_S) * MINUTE_S)
    return width


def _window_buckets(window: str, bucket_s: int) -> int:
    seconds = parse_duration(window).total_seconds()
    if seconds % bucket_s or seconds <= 0:
        raise ValueError(f"alert window {window!r} is not a whole number of {bucket_s} s buckets")
    return int(seconds // bucket_s)


def replay_episodes(
    slo: str,
    objective: float,
    period: timedelta,
    as_of: float,
    total: Sequence[int] | np.ndarray,
    bad: Sequence[int] | np.ndarray,
    eval_period_s: float | None = None,
    step_s: int = EVAL_STEP_S,
    policy: Sequence[BurnRatePolicy] = BURN_RATE_POLICY,
    bucket_s: int = MINUTE_S,
) -> list[AlertEpisode]:
    """Alert episodes of one SLO from per-bucket counts, oldest first, ordered by start.

    ``total``/``bad`` are the SLO's events per bucket of ``bucket_s`` seconds (a minute by
    default; at most :func:`bucket_width_s`), the last bucket ending at ``as_of`` (bucket ``i``
    of ``n`` ends at ``as_of - (n - 1 - i) x bucket_s``). The rules are evaluated at
    ``as_of - k x step_s`` for every ``k >= 0`` within ``eval_period_s`` (default: the SLO
    ``period``) of ``as_of``; factors come from ``period``. Minutes before the first count are
    taken as empty.

    Raises:
        ValueError: counts of different lengths, negative or with ``bad > total``; a step that
            is not a positive multiple of the bucket (and of a minute), a window that is not;
            a non-positive period or a bad objective.
    """
    if period <= timedelta():
        raise ValueError(f"SLO period must be positive, got {period!r}")
    if step_s <= 0 or step_s % MINUTE_S:
        raise ValueError(f"step_s must be a positive multiple of {MINUTE_S} s, got {step_s!r}")
    if bucket_s <= 0 or bucket_s % MINUTE_S or step_s % bucket_s:
        raise ValueError(f"bucket_s must be a whole number of minutes dividing step_s, got {bucket_s!r}")
    budget = error_budget(objective)
    tot = np.asarray(total, dtype=np.int64)
    bd = np.asarray(bad, dtype=np.int64)
    if tot.shape != bd.shape or tot.ndim != 1:
        raise ValueError(f"total and bad must be 1-d and of equal length, got {tot.shape} and {bd.shape}")
    if (tot < 0).any() or (bd < 0).any() or (bd > tot).any():
        raise ValueError("per-minute counts need 0 <= bad <= total")
    n = len(tot)
    span_s = period.total_seconds() if eval_period_s is None else float(eval_period_s)
    per_step = step_s // bucket_s
    steps = int(span_s // step_s)
    # Evaluation k (oldest first) at minute index n - 1 - (steps - k) * per_step (may be < 0: empty).
    idx = n - 1 - np.arange(steps, -1, -1) * per_step
    eval_ts = as_of - np.arange(steps, -1, -1) * float(step_s)
    ctot = np.concatenate(([0], np.cumsum(tot)))
    cbad = np.concatenate(([0], np.cumsum(bd)))

    def window(minutes: int) -> tuple[np.ndarray, np.ndarray]:
        hi = np.clip(idx + 1, 0, n)
        lo = np.clip(idx + 1 - minutes, 0, n)
        return ctot[hi] - ctot[lo], cbad[hi] - cbad[lo]

    def burn(t: np.ndarray, b: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(b > 0, np.inf, 0.0) if budget == 0.0 else (b / t) / budget
        return np.where(t > 0, out, np.nan)

    episodes: list[AlertEpisode] = []
    for p in policy:
        factor = float(f"{p.factor(period):.10g}")  # as alert_states and the generated rules
        long_burn = burn(*window(_window_buckets(p.long_window, bucket_s)))
        short_burn = burn(*window(_window_buckets(p.short_window, bucket_s)))
        with np.errstate(invalid="ignore"):
            firing = (long_burn > factor) & (short_burn > factor)  # NaN (no traffic) compares False
        edges = np.diff(np.concatenate(([0], firing.astype(np.int8), [0])))
        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            episodes.append(
                AlertEpisode(
                    slo=slo,
                    severity=p.severity,
                    long_window=p.long_window,
                    short_window=p.short_window,
                    factor=factor,
                    start_ts=float(eval_ts[s]),
                    end_ts=None if e == len(firing) else float(eval_ts[e]),
                    peak_burn=float(np.max(long_burn[s:e])),
                )
            )
    episodes.sort(key=lambda ep: (ep.start_ts, ep.severity, ep.long_window))
    return episodes
