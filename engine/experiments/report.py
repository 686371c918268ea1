"""The analysis and decision as JSON (a stable shape, documented in the README) and Markdown.

``to_json(analysis, decision)`` gives::

    {"experiment", "as_of", "start_ts", "source", "baseline", "alpha", "target_mde", "sequential",
     "srm": {"p_value", "mismatch", "counts": {variant: units}, "weights": {variant: weight}},
     "results": [{"metric", "role", "variant", "baseline", "n", "mean", "lift", "lift_ci",
                  "rel_lift", "rel_lift_ci", "p_value", "adjusted_p", "cuped", "cuped_reason",
                  "achieved_mde", "mde_reached", "chance_to_win", "error"}],
     "chi_square": {metric: {"statistic", "df", "p_value"}},
     "slo_burn": [{"slo", "variant", "total", "bad", "burn_rate", "limit"}],
     "series": {variant: [{"ts", "rel_lift", "ci", "n_baseline", "n_variant"}]},
     "decision": {"action", "variant", "reasons"}, "notes": [...]}

Numbers are plain floats (None as null; lifts as fractions: 0.05 is +5 %).
"""

from __future__ import annotations

import math
from typing import Any

from engine.experiments.analysis import Analysis
from engine.experiments.decision import Decision

__all__ = ["to_json", "to_markdown"]


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _ci(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]


def to_json(analysis: Analysis, decision: Decision) -> dict[str, Any]:
    """The JSON-ready dict of ``analysis`` and ``decision`` (see the module docstring)."""
    spec = analysis.spec
    results = []
    chi = {}
    for m in analysis.metrics:
        if m.chi_square is not None:
            chi[m.metric] = {
                "statistic": m.chi_square.statistic,
                "df": m.chi_square.df,
                "p_value": m.chi_square.p_value,
            }
        for v in m.variants:
            a, r = v.absolute, v.relative
            results.append(
                {
                    "metric": m.metric,
                    "role": m.role,
                    "variant": v.variant,
                    "baseline": v.is_baseline,
                    "n": v.n,
                    "mean": _num(v.mean),
                    "lift": _num(a.estimate) if a else None,
                    "lift_ci": _ci(a.ci) if a else None,
                    "rel_lift": _num(r.estimate) if r else None,
                    "rel_lift_ci": _ci(r.ci) if r else None,
                    "p_value": _num(v.p_value),
                    "adjusted_p": _num(v.adjusted_p),
                    "cuped": v.cuped_applied,
                    "cuped_reason": v.cuped_reason,
                    "achieved_mde": _num(v.achieved_mde),
                    "mde_reached": v.mde_reached,
                    "chance_to_win": _num(v.chance_to_win),
                    "error": v.error,
                }
            )
    return {
        "experiment": spec.id,
        "as_of": analysis.as_of,
        "start_ts": analysis.start_ts,
        "source": analysis.source,
        "baseline": spec.baseline_name,
        "alpha": spec.alpha,
        "target_mde": spec.target_mde,
        "sequential": spec.sequential,
        "srm": {
            "p_value": analysis.srm.p_value,
            "mismatch": analysis.srm.mismatch,
            "counts": dict(analysis.srm.counts),
            "weights": dict(analysis.srm.weights),
        },
        "results": results,
        "chi_square": chi,
        "slo_burn": [
            {
                "slo": b.slo,
                "variant": b.variant,
                "total": b.total,
                "bad": b.bad,
                "burn_rate": _num(b.burn_rate),
                "limit": b.limit,
            }
            for b in analysis.slo_burn
        ],
        "series": {
            name: [
                {
                    "ts": p.ts,
                    "rel_lift": _num(p.estimate),
                    "ci": _ci(p.ci),
                    "n_baseline": p.n_baseline,
                    "n_variant": p.n_variant,
                }
                for p in points
            ]
            for name, points in analysis.series.items()
        },
        "decision": {
            "action": decision.action,
            "variant": decision.variant,
            "reasons": list(decision.reasons),
        },
        "notes": list(analysis.notes),
    }


def _f(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def results_table(analysis: Analysis) -> list[str]:
    """The results as Markdown table lines (metric, variant, n, mean, lift, CI, p, adjusted p)."""
    lines = [
        "| metric | variant | n | mean | lift | rel. lift (CI) | p | Holm p | CUPED | MDE reached | P(win) |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | --- | --- | ---: |",
    ]
    for m in analysis.metrics:
        for v in m.variants:
            if v.is_baseline:
                lines.append(f"| {m.metric} | {v.variant} (baseline) | {v.n} | {v.mean:.4g} | | | | | | | |")
                continue
            r = v.relative
            rel = (
                "–"
                if r is None or r.estimate is None or r.ci is None
                else (f"{r.estimate:+.1%} ({r.ci[0]:+.1%} .. {r.ci[1]:+.1%})")
            )
            lift = v.absolute.estimate if v.absolute else None
            lines.append(
                f"| {m.metric} | {v.variant} | {v.n} | {v.mean:.4g} | {_f(lift, '+.4g')} | {rel} | "
                f"{_f(v.p_value, '.3g')} | {_f(v.adjusted_p, '.3g')} | "
                f"{'on' if v.cuped_applied else 'off'} | "
                f"{'yes' if v.mde_reached else 'no'} | {_f(v.chance_to_win, '.0%')} |"
            )
            if v.error:
                lines.append(f"| | | | | {v.error} | | | | | | |")
    return lines


def to_markdown(analysis: Analysis, decision: Decision) -> str:
    """A Markdown report: hypothesis, SRM, results table, SLO burn, decision with every reason."""
    spec = analysis.spec
    srm = analysis.srm
    out = [
        f"# Experiment {spec.id}",
        "",
        f"Hypothesis: {spec.hypothesis.strip()}",
        "",
        f"Baseline {spec.baseline_name}; alpha {spec.alpha:g}; target MDE {spec.target_mde:.1%}"
        + ("; sequential" if spec.sequential else ""),
        "",
        f"## Decision: {decision.action.replace('_', ' ')}"
        + (f" {decision.variant}" if decision.variant else ""),
        "",
        *(f"- {r}" for r in decision.reasons),
        "",
        "## Sample ratio",
        "",
        f"Units {', '.join(f'{k} {v}' for k, v in srm.counts.items())}; SRM p {srm.p_value:.3g}"
        + (" — MISMATCH: no decision" if srm.mismatch else ""),
        "",
        "## Results",
        "",
        *results_table(analysis),
    ]
    chi = [m for m in analysis.metrics if m.chi_square is not None]
    if chi:
        out += [
            "",
            "Chi-square (2 x k, requests): "
            + "; ".join(
                f"{m.metric} χ² {m.chi_square.statistic:.3g}, df {m.chi_square.df},"
                f" p {m.chi_square.p_value:.3g}"
                for m in chi
                if m.chi_square is not None
            ),
        ]
    if analysis.slo_burn:
        out += [
            "",
            "## SLO burn over the experiment",
            "",
            "| SLO | variant | events | bad | burn rate | limit |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        out += [
            f"| {b.slo} | {b.variant} | {b.total} | {b.bad} | {_f(b.burn_rate, '.2f')} | {b.limit:g} |"
            for b in analysis.slo_burn
        ]
    if analysis.notes:
        out += ["", *(f"Note: {n}" for n in analysis.notes)]
    return "\n".join(out) + "\n"
