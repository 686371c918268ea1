"""The canary's guardrails as pure functions: counts and latencies in, a :class:`GuardrailResult`
(value, threshold, verdict, detail) out.

Verdicts: ``pass``, ``fail`` (roll back), ``waiting`` (not enough data in the window to judge).
A guardrail fails when its ``value`` is above its ``threshold``, except ``correctness``, whose
value is the always-valid p-value and which fails when it is below ``alpha`` with the canary worse.

* ``error_ratio``: value = the canary's error ratio (errors / served) over the window; threshold =
  ``max(baseline x relative, baseline + absolute_points / 100)``; both margins must be exceeded.
* ``p95_latency``: value = the canary's p95 latency (ms, ok requests of the window, numpy's linear
  percentile); threshold = the baseline's p95 x ``relative``; a value above it fails only when a
  one-sided binomial test confirms that more than 5 % of the canary's requests are slower than the
  threshold (at ``alpha``).
* ``correctness``: :func:`engine.experiments.stats.proportion_test` with ``sequential=True`` on
  the correct share of judged answers (canary minus baseline).
* ``slo_burn:<slo>``: the canary arm's requests of this run in the windows of the page-level
  conditions (1h/5m and 6h/30m, factors scaled from the SLO period: 13.44 and 5.6 for 28 days),
  evaluated with :func:`observability.slo.math.alert_states`; value = the smaller of the two burn
  rates of the condition nearest to firing, threshold = its factor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from engine.experiments import stats
from observability.durations import parse_duration
from observability.slo.burn import BURN_RATE_POLICY
from observability.slo.math import alert_states, burn_rate
from observability.slo.models import SLO

__all__ = [
    "PAGE_POLICY",
    "GuardrailResult",
    "correctness_guard",
    "error_ratio_guard",
    "p95",
    "p95_latency_guard",
    "slo_burn_guard",
]

#: The page-level conditions of the SLO burn-rate policy (1h/5m and 6h/30m).
PAGE_POLICY = tuple(p for p in BURN_RATE_POLICY if p.severity == "page")


@dataclass(frozen=True, slots=True)
class GuardrailResult:
    """One guardrail at one evaluation: its ``value`` against its ``threshold`` (None while
    ``waiting``), the ``verdict`` and a one-line ``detail`` naming the numbers."""

    name: str
    value: float | None
    threshold: float | None
    verdict: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"


def error_ratio_guard(
    base_errors: int,
    base_n: int,
    canary_errors: int,
    canary_n: int,
    *,
    relative: float = 1.5,
    absolute_points: float = 0.5,
    min_n: int = 1,
) -> GuardrailResult:
    """The error-ratio guardrail over the window's served requests (counts per arm).

    Raises:
        ValueError: a count is negative or errors exceed served requests.
    """
    for e, n in ((base_errors, base_n), (canary_errors, canary_n)):
        if n < 0 or not 0 <= e <= n:
            raise ValueError(f"need 0 <= errors <= served, got {e} of {n}")
    if base_n < min_n or canary_n < min_n:
        return GuardrailResult(
            "error_ratio",
            None,
            None,
            "waiting",
            f"{canary_n} canary / {base_n} baseline served requests in the window, {min_n} needed in each",
        )
    b, c = base_errors / base_n, canary_errors / canary_n
    threshold = max(b * relative, b + absolute_points / 100)
    verdict = "fail" if c > threshold else "pass"
    return GuardrailResult(
        "error_ratio",
        c,
        threshold,
        verdict,
        f"canary {c:.2%} ({canary_errors}/{canary_n}) vs threshold {threshold:.2%} "
        f"(baseline {b:.2%} ({base_errors}/{base_n}) x{relative:g} and +{absolute_points:g} points)",
    )


def p95(latencies_ms: Sequence[float]) -> float | None:
    """The 95th percentile (numpy's linear interpolation) of ``latencies_ms``; None when empty."""
    return float(np.percentile(np.asarray(latencies_ms, dtype=float), 95)) if len(latencies_ms) else None


def p95_latency_guard(
    base_ms: Sequence[float],
    canary_ms: Sequence[float],
    *,
    relative: float = 1.2,
    alpha: float = 0.05,
    min_n: int = 1,
) -> GuardrailResult:
    """The p95-latency guardrail over the window's ok requests' latencies (ms) per arm.

    Fails when the canary's p95 exceeds the baseline's x ``relative`` AND that is confirmed: a
    one-sided exact binomial test (scipy) that more than 5 % of the canary's requests are slower
    than the threshold, at ``alpha``.  Without the confirmation two or three slow requests in a
    window of 50 (a busy machine) would roll back a healthy canary.

    Raises:
        ValueError: alpha outside (0, 1).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if len(base_ms) < max(min_n, 1) or len(canary_ms) < max(min_n, 1):
        return GuardrailResult(
            "p95_latency",
            None,
            None,
            "waiting",
            f"{len(canary_ms)} canary / {len(base_ms)} baseline latencies in the window, "
            f"{max(min_n, 1)} needed in each",
        )
    b, c = p95(base_ms), p95(canary_ms)
    assert b is not None and c is not None
    threshold = b * relative
    slower = int(np.sum(np.asarray(canary_ms, dtype=float) > threshold))
    p_value = float(sps.binomtest(slower, len(canary_ms), 0.05, alternative="greater").pvalue)
    over = c > threshold
    verdict = "fail" if over and p_value < alpha else "pass"
    note = (
        f"; {slower}/{len(canary_ms)} canary requests slower than the threshold, binomial p = {p_value:.3g}"
        + (f" (not confirmed at alpha {alpha:g})" if over and verdict == "pass" else "")
    )
    return GuardrailResult(
        "p95_latency",
        c,
        threshold,
        verdict,
        f"canary p95 {c:.1f} ms vs threshold {threshold:.1f} ms (baseline p95 {b:.1f} ms x{relative:g})"
        + note,
    )


def correctness_guard(
    base_correct: int,
    base_judged: int,
    canary_correct: int,
    canary_judged: int,
    *,
    alpha: float = 0.05,
    min_n: int = 2,
) -> GuardrailResult:
    """The correctness guardrail: an always-valid (sequential) two-proportion test of the canary's
    correct share against the baseline's; fails when significant at ``alpha`` and the canary is worse.

    Raises:
        ValueError: bad counts or alpha (from :func:`engine.experiments.stats.proportion_test`).
    """
    if base_judged < max(min_n, 2) or canary_judged < max(min_n, 2):
        return GuardrailResult(
            "correctness",
            None,
            alpha,
            "waiting",
            f"{canary_judged} canary / {base_judged} baseline judged answers in the window, "
            f"{max(min_n, 2)} needed in each",
        )
    r = stats.proportion_test(
        base_correct, base_judged, canary_correct, canary_judged, alpha=alpha, sequential=True
    )
    pb, pc = base_correct / base_judged, canary_correct / canary_judged
    shares = (
        f"canary {pc:.1%} ({canary_correct}/{canary_judged}) vs baseline {pb:.1%} "
        f"({base_correct}/{base_judged}) correct"
    )
    if r.p_value is None:  # no spread in either arm: every answer alike in each
        verdict = "fail" if pc < pb else "pass"
        return GuardrailResult(
            "correctness",
            0.0 if verdict == "fail" else 1.0,
            alpha,
            verdict,
            f"{shares}; no spread to test ({r.error})",
        )
    worse = r.estimate is not None and r.estimate < 0
    verdict = "fail" if r.p_value < alpha and worse else "pass"
    lo, hi = r.ci or (float("nan"), float("nan"))
    return GuardrailResult(
        "correctness",
        r.p_value,
        alpha,
        verdict,
        f"{shares}; difference {100 * (pc - pb):+.1f} points, {1 - alpha:.0%} confidence sequence "
        f"[{100 * lo:+.1f}, {100 * hi:+.1f}], always-valid p = {r.p_value:.3g}",
    )


def slo_burn_guard(
    slo: SLO, ts: Sequence[float], bad: Sequence[bool], as_of: float, *, min_n: int = 1
) -> GuardrailResult:
    """The page-level multi-window burn-rate rule of ``slo`` over the canary arm's events.

    ``ts``/``bad``: the SLO's events (unix s, and whether each is bad) among the canary arm's
    requests; a window of ``w`` seconds holds ``as_of - w < ts <= as_of``.

    Raises:
        ValueError: ``ts`` and ``bad`` differ in length.
    """
    name = f"slo_burn:{slo.name}"
    if len(ts) != len(bad):
        raise ValueError("ts and bad must have the same length")
    if len(ts) < min_n:
        return GuardrailResult(
            name, None, None, "waiting", f"{len(ts)} canary {slo.name} events, {min_n} needed"
        )
    t = np.asarray(ts, dtype=float)
    b = np.asarray(bad, dtype=bool)
    burns: dict[str, float | None] = {}
    for p in PAGE_POLICY:
        for w in (p.long_window, p.short_window):
            inside = (t > as_of - parse_duration(w).total_seconds()) & (t <= as_of)
            burns[w] = burn_rate(int(b[inside].sum()), int(inside.sum()), slo.objective)
    states = alert_states(slo.period, burns, PAGE_POLICY)

    def nearness(s: object) -> float:
        lo = min((x for x in (s.long_burn, s.short_burn) if x is not None), default=None)  # type: ignore[attr-defined]
        return -1.0 if lo is None else lo / s.factor  # type: ignore[attr-defined]

    worst = max(states, key=nearness)
    value = (
        None
        if worst.long_burn is None or worst.short_burn is None
        else min(worst.long_burn, worst.short_burn)
    )
    firing = [s for s in states if s.firing]
    shown = "; ".join(
        f"{s.long_window}/{s.short_window}: burn {_fmt(s.long_burn)}/{_fmt(s.short_burn)} vs {s.factor:g}"
        + (" FIRING" if s.firing else "")
        for s in states
    )
    return GuardrailResult(
        name,
        value,
        worst.factor,
        "fail" if firing else "pass",
        f"{slo.name} page rule on the canary arm: {shown}",
    )


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"
