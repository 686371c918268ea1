"""Ship / roll back / keep running, with every reason (issue 14, item 5).  Pure: an
:class:`~engine.experiments.analysis.Analysis` in, a frozen :class:`Decision` out.

Rules, in order:

1. **SRM** (p < 0.001, or exposures under a variant the spec does not name) blocks any decision:
   ``keep_running`` with the SRM reason (the assignment or the logging is broken).
2. Per treatment variant, **guardrails**: a metric guardrail fails when the relative lift's
   interval lies entirely beyond the tolerated worsening (``max_regression``, in the metric's bad
   direction), and is *at risk* when only the point estimate does; an ``slo_burn`` guardrail
   fails when the variant's burn rate over the experiment exceeds ``max_burn_rate``.
3. Per treatment variant, the **primary metric** with Holm's correction over every (variant,
   metric) pair: a *winner* is significantly better (adjusted p < alpha) in its good direction,
   a *loser* significantly worse.
4. ``ship`` the winner with the largest lift whose guardrails all hold; ``roll_back`` when every
   treatment variant is a loser or fails a guardrail, or when none differs significantly though
   every comparison reached the target MDE (no effect as large as the target: keep the
   baseline); otherwise ``keep_running`` (not significant and the MDE not reached, a winner with
   a guardrail at risk, or no data).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.experiments.analysis import Analysis, VariantResult

__all__ = ["Decision", "VariantVerdict", "decide"]

Action = Literal["ship", "roll_back", "keep_running"]


@dataclass(frozen=True, slots=True)
class VariantVerdict:
    """One treatment variant: ``outcome`` (winner, loser, flat, inconclusive, no_data), its
    failed and at-risk guardrails, and the reasons in words."""

    variant: str
    outcome: str
    guardrails_failed: tuple[str, ...]
    guardrails_at_risk: tuple[str, ...]
    mde_reached: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    """``action`` for the experiment, the variant to ship (None unless shipping), every reason,
    and each treatment variant's verdict."""

    action: Action
    variant: str | None
    reasons: tuple[str, ...]
    variants: tuple[VariantVerdict, ...]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}"


def _guardrails(analysis: Analysis, name: str) -> tuple[list[str], list[str], list[str]]:
    failed: list[str] = []
    at_risk: list[str] = []
    reasons: list[str] = []
    for g in analysis.spec.guardrails:
        if g.metric == "slo_burn":
            for b in analysis.slo_burn:
                if b.slo == g.slo and b.variant == name and b.burn_rate is not None and b.burn_rate > b.limit:
                    failed.append(f"slo_burn({b.slo})")
                    reasons.append(
                        f"{name}: SLO {b.slo} burn rate {b.burn_rate:.2f} over the experiment exceeds "
                        f"{b.limit:g} ({b.bad} bad of {b.total})"
                    )
            continue
        m = analysis.metric(g.metric)
        r = m.variant(name) if m else None
        if (
            m is None
            or r is None
            or r.relative is None
            or r.relative.estimate is None
            or r.relative.ci is None
        ):
            continue
        sign = 1.0 if m.higher_is_better else -1.0
        # worsening in the metric's bad direction: positive is worse
        worst_bound = -sign * (r.relative.ci[1] if sign > 0 else r.relative.ci[0])
        best_bound = -sign * (r.relative.ci[0] if sign > 0 else r.relative.ci[1])
        point = -sign * r.relative.estimate
        tol = g.max_regression
        if min(worst_bound, best_bound) > tol:
            failed.append(g.metric)
            reasons.append(
                f"{name}: guardrail {g.metric} fails: {_pct(r.relative.estimate)} "
                f"(CI {_pct(r.relative.ci[0])} to {_pct(r.relative.ci[1])}) is worse than the "
                f"{tol:.0%} tolerated"
            )
        elif point > tol:
            at_risk.append(g.metric)
            reasons.append(
                f"{name}: guardrail {g.metric} at risk: {_pct(r.relative.estimate)} is worse than the "
                f"{tol:.0%} tolerated, not significantly"
            )
    return failed, at_risk, reasons


def _primary(analysis: Analysis, r: VariantResult | None, higher: bool) -> tuple[str, str]:
    spec = analysis.spec
    if r is None or r.absolute is None or r.absolute.estimate is None or r.adjusted_p is None:
        why = r.error if r is not None and r.error else "no test"
        return "no_data", f"{spec.primary_metric}: {why}"
    lift = r.relative.estimate if r.relative is not None else None
    better = (r.absolute.estimate > 0) == higher
    mde = (
        f"MDE {r.achieved_mde:.1%} {'reached' if r.mde_reached else 'not reached'}"
        f" (target {spec.target_mde:.1%})"
        if r.achieved_mde is not None
        else "MDE unknown"
    )
    text = (
        f"{r.variant}: {spec.primary_metric} {_pct(lift)} vs {spec.baseline_name}, p {r.p_value:.3g}, "
        f"Holm-adjusted p {r.adjusted_p:.3g} (alpha {spec.alpha:g}); {mde}"
    )
    if r.adjusted_p < spec.alpha:
        return ("winner" if better else "loser"), text
    return ("flat" if r.mde_reached else "inconclusive"), text


def decide(analysis: Analysis) -> Decision:
    """The decision and its reasons for ``analysis`` (see the module docstring)."""
    spec = analysis.spec
    srm = analysis.srm
    reasons: list[str] = []
    if srm.mismatch:
        counts = ", ".join(f"{k} {v}" for k, v in srm.counts.items())
        why = f"sample-ratio mismatch: SRM p {srm.p_value:.3g} < {srm.threshold:g} (units {counts})"
        if srm.unknown_variants:
            why += f"; exposures under unknown variants {', '.join(srm.unknown_variants)}"
        return Decision("keep_running", None, (why + ": no decision until the assignment is fixed",), ())
    primary = analysis.metric(spec.primary_metric)
    higher = primary.higher_is_better if primary else True
    verdicts: list[VariantVerdict] = []
    for name in spec.variant_names:
        if name == spec.baseline_name:
            continue
        r = primary.variant(name) if primary else None
        outcome, text = _primary(analysis, r, higher)
        failed, at_risk, g_reasons = _guardrails(analysis, name)
        verdicts.append(
            VariantVerdict(
                name, outcome, tuple(failed), tuple(at_risk), bool(r and r.mde_reached), (text, *g_reasons)
            )
        )
        reasons += [text, *g_reasons]
    winners = [v for v in verdicts if v.outcome == "winner" and not v.guardrails_failed]
    if winners:
        clean = [v for v in winners if not v.guardrails_at_risk]
        if clean and primary is not None:

            def lift(v: VariantVerdict) -> float:
                r = primary.variant(v.variant)
                est = r.relative.estimate if r and r.relative and r.relative.estimate is not None else 0.0
                return est if higher else -est

            best = max(clean, key=lift)
            return Decision(
                "ship",
                best.variant,
                (
                    f"ship {best.variant}: significantly better on "
                    f"{spec.primary_metric} after Holm's correction, guardrails hold",
                    *reasons,
                ),
                tuple(verdicts),
            )
        return Decision(
            "keep_running",
            None,
            ("a variant wins on the primary metric but a guardrail is at risk: keep running", *reasons),
            tuple(verdicts),
        )
    if verdicts and all(v.outcome == "loser" or v.guardrails_failed for v in verdicts):
        return Decision(
            "roll_back",
            None,
            ("roll back: every variant is worse on the primary metric or fails a guardrail", *reasons),
            tuple(verdicts),
        )
    if verdicts and all(v.outcome in ("flat", "loser") or v.guardrails_failed for v in verdicts):
        return Decision(
            "roll_back",
            None,
            (
                "roll back: no variant differs significantly though the target "
                "MDE was reached; keep the baseline",
                *reasons,
            ),
            tuple(verdicts),
        )
    lead = "keep running: no significant difference yet and the target MDE is not reached"
    if not verdicts or all(v.outcome == "no_data" for v in verdicts):
        lead = "keep running: not enough data to test"
    return Decision("keep_running", None, (lead, *reasons), tuple(verdicts))
