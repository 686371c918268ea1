"""The SLO review document: typed figures for every SLO over a period, its stable JSON and Markdown.

The figures come from an SLO source (today :class:`observability.slo.sqlite_source.SqliteSLOSource`,
exact from the store) and the math of :mod:`observability.slo.math`; this module only assembles
them, with the latest golden-suite run's status (read from the store's ``golden_runs`` table by
the caller, :func:`observability.store.review_reads.latest_golden_run`).

Per SLO, over the period ending at ``as_of`` (the period defaults to the SLO's own window):
total and bad events, SLI, budget remaining; burn rates over 5m, 30m, 1h, 6h, 1d and 3d ending
at ``as_of``; the multi-window burn-rate alerts with factors from the SLO's window; time to
exhaustion (budget remaining at the 1h burn rate); and the attribution of the period's bad
events by task, last agent, provider, router and variant.

The JSON (:func:`report_json`) is a stable interface (README, "SLOs")::

    {"as_of": unix s, "period_s": s | null, "source": "sqlite",
     "golden": null | {"run_id", "ts", "passed", "failed", "errors",
                       "results": [{"name", "status", "first_divergence"}]},
     "slos": [{"name", "kind", "objective", "window_s", "threshold_s", "total", "bad", "sli",
               "budget_remaining", "burn_rates": {"5m", "30m", "1h", "6h", "1d", "3d"},
               "alerts": [{"severity", "long", "short", "factor", "firing"}],
               "time_to_exhaustion_s", "attribution": {dimension: {value: share}}}]}

``period_s`` is null when no period was given and the SLOs' windows differ (each SLO is then
over its own ``window_s``). Ratios are null where their window has no traffic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from observability.durations import duration_seconds
from observability.slo.burn import BURN_RATE_POLICY, ERROR_RATIO_WINDOWS
from observability.slo.math import alert_states, budget_remaining, burn_rate, sli, time_to_exhaustion_s
from observability.slo.models import SLO
from observability.slo.sqlite_source import ATTRIBUTION_DIMENSIONS, Counts
from observability.store.review_reads import GoldenRun

__all__ = [
    "AlertRow",
    "Report",
    "SLOFigures",
    "SLOSource",
    "build_report",
    "golden_json",
    "golden_summary",
    "render_markdown",
    "report_json",
]

_WINDOW_S: dict[str, float] = {w: duration_seconds(w) for w in ERROR_RATIO_WINDOWS}


class SLOSource(Protocol):
    """Where SLO figures come from (the SQLite store today, Prometheus later)."""

    name: str

    def counts(self, slo: SLO, as_of: float, windows_s: Sequence[float]) -> list[Counts]:
        """(total, bad) events of ``slo`` for each window ending at ``as_of``."""
        ...

    def attribution(self, slo: SLO, as_of: float, window_s: float) -> dict[str, dict[str, float]]:
        """Shares of the bad events in the window by attribution dimension."""
        ...


@dataclass(frozen=True)
class AlertRow:
    """One burn-rate alert condition at ``as_of``: JSON keys severity, long, short, factor, firing;
    the burns over its windows are kept for the Markdown table (None: no traffic)."""

    severity: str
    long: str
    short: str
    factor: float
    firing: bool
    long_burn: float | None
    short_burn: float | None


@dataclass(frozen=True)
class SLOFigures:
    """One SLO's figures over the report period (``period_s``) ending at the report's ``as_of``."""

    name: str
    display_name: str
    kind: str
    objective: float
    window_s: float
    threshold_s: float | None
    period_s: float
    total: int
    bad: int
    sli: float | None
    budget_remaining: float | None
    burn_rates: Mapping[str, float | None]
    alerts: tuple[AlertRow, ...]
    time_to_exhaustion_s: float | None
    attribution: Mapping[str, Mapping[str, float]]
    previous_budget_remaining: float | None = None  # the period before (Markdown only, not in the JSON)


@dataclass(frozen=True)
class Report:
    """The SLO review: ``as_of`` (unix s), the requested ``period_s`` (None: each SLO's window),
    the ``source`` name, each SLO's figures, in the SLO file's order, and the latest golden-suite
    run (None: none recorded)."""

    as_of: float
    period_s: float | None
    source: str
    slos: tuple[SLOFigures, ...]
    golden: GoldenRun | None = None


def _figures(slo: SLO, source: SLOSource, as_of: float, period_s: float) -> SLOFigures:
    window_s = slo.period.total_seconds()
    windows = [period_s, *(_WINDOW_S[w] for w in ERROR_RATIO_WINDOWS)]
    counts = source.counts(slo, as_of, windows)
    period, by_window = counts[0], counts[1:]
    burns = {
        w: burn_rate(c.bad, c.total, slo.objective)
        for w, c in zip(ERROR_RATIO_WINDOWS, by_window, strict=True)
    }
    remaining = budget_remaining(period.bad, period.total, slo.objective)
    (before,) = source.counts(slo, as_of - period_s, [period_s])
    states = alert_states(slo.period, burns, BURN_RATE_POLICY)
    return SLOFigures(
        name=slo.name,
        display_name=slo.display_name,
        kind=slo.kind,
        objective=slo.objective,
        window_s=window_s,
        threshold_s=slo.threshold_seconds,
        period_s=period_s,
        total=period.total,
        bad=period.bad,
        sli=sli(period.bad, period.total),
        budget_remaining=remaining,
        burn_rates=burns,
        alerts=tuple(
            AlertRow(s.severity, s.long_window, s.short_window, s.factor, s.firing, s.long_burn, s.short_burn)
            for s in states
        ),
        time_to_exhaustion_s=time_to_exhaustion_s(remaining, burns["1h"], period_s),
        attribution=source.attribution(slo, as_of, period_s),
        previous_budget_remaining=budget_remaining(before.bad, before.total, slo.objective),
    )


def build_report(
    slos: Sequence[SLO],
    source: SLOSource,
    as_of: float,
    period: timedelta | None = None,
    golden: GoldenRun | None = None,
) -> Report:
    """The review of ``slos`` over ``period`` (None: each SLO's own window) ending at ``as_of``,
    with the latest golden-suite run ``golden`` (None: none recorded).

    Raises:
        ValueError: ``as_of`` is not a finite number, or ``period`` is not positive.
        sqlite3.Error (or the source's own error): the source cannot be read.
    """
    if not math.isfinite(as_of):
        raise ValueError(f"as_of must be a finite unix time, got {as_of!r}")
    if period is not None and period <= timedelta():
        raise ValueError(f"the period must be positive, got {period!r}")
    figures = tuple(_figures(slo, source, as_of, (period or slo.period).total_seconds()) for slo in slos)
    if period is not None:
        period_s: float | None = period.total_seconds()
    else:
        windows = {f.window_s for f in figures}
        period_s = windows.pop() if len(windows) == 1 else None
    return Report(as_of=as_of, period_s=period_s, source=source.name, slos=figures, golden=golden)


def golden_json(run: GoldenRun | None) -> dict[str, Any] | None:
    """The JSON of a golden-suite run (the shape of ``python -m engine golden run --json`` plus
    ``run_id`` and ``ts``); None for no run."""
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "ts": run.ts,
        "passed": run.passed,
        "failed": run.failed,
        "errors": run.errors,
        "results": [
            {"name": r.name, "status": r.status, "first_divergence": r.first_divergence} for r in run.results
        ],
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as the stable JSON object (see the module docstring); keys exactly those."""
    return {
        "as_of": report.as_of,
        "period_s": report.period_s,
        "source": report.source,
        "golden": golden_json(report.golden),
        "slos": [
            {
                "name": f.name,
                "kind": f.kind,
                "objective": f.objective,
                "window_s": f.window_s,
                "threshold_s": f.threshold_s,
                "total": f.total,
                "bad": f.bad,
                "sli": f.sli,
                "budget_remaining": f.budget_remaining,
                "burn_rates": dict(f.burn_rates),
                "alerts": [
                    {
                        "severity": a.severity,
                        "long": a.long,
                        "short": a.short,
                        "factor": a.factor,
                        "firing": a.firing,
                    }
                    for a in f.alerts
                ],
                "time_to_exhaustion_s": f.time_to_exhaustion_s,
                "attribution": {dim: dict(shares) for dim, shares in f.attribution.items()},
            }
            for f in report.slos
        ],
    }


# --------------------------------------------------------------------------- Markdown


def _pct(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


def _burn(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _span(seconds: float | None) -> str:
    """``3d 4h``, ``5h 20m``, ``12m`` (None: ``-``)."""
    if seconds is None:
        return "-"
    minutes = int(seconds // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m" if mins else f"{int(seconds)}s"


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _cell(text: str) -> str:
    """Markdown table cell text (pipes and line breaks escaped)."""
    return text.replace("|", "\\|").replace("\n", " ")


def _status(f: SLOFigures) -> str:
    if f.sli is None:
        return "no traffic"
    return "met" if f.sli >= f.objective else "missed"


def _summary(f: SLOFigures) -> str:
    if f.total == 0:
        return "No events in the period: nothing to judge."
    if f.bad == 0:
        return "No bad events in the period: the budget is untouched."
    parts = []
    for dim in ATTRIBUTION_DIMENSIONS:
        shares = f.attribution.get(dim, {})
        if shares:
            value, share = next(iter(shares.items()))
            parts.append(f"{dim} {value} ({_pct(share, 0)})")
    spent = _pct(None if f.budget_remaining is None else 1 - f.budget_remaining, 1)
    return f"{f.bad:,} bad events spent {spent} of the budget; most came from " + ", ".join(parts) + "."


def _slo_section(f: SLOFigures, top: int) -> list[str]:
    threshold = f" (threshold {f.threshold_s * 1000:g} ms)" if f.threshold_s is not None else ""
    consumed = None if f.budget_remaining is None else 1 - f.budget_remaining
    lines = [
        f"## {_cell(f.display_name)} (`{f.name}`, {f.kind}{threshold})",
        "",
        f"- Compliance: SLI {_pct(f.sli, 3)} against the objective {_pct(f.objective, 3)} "
        f"over {_span(f.period_s)}: **{_status(f)}** ({f.total - f.bad:,} good of {f.total:,} events).",
        f"- Error budget: {_pct(f.budget_remaining, 1)} remaining, {_pct(consumed, 1)} consumed "
        f"(the {_span(f.period_s)} before: {_pct(f.previous_budget_remaining, 1)} remaining); "
        f"time to exhaustion at the 1h burn rate: {_span(f.time_to_exhaustion_s)}.",
        f"- Summary: {_summary(f)}",
        "",
        "| window | " + " | ".join(f.burn_rates) + " |",
        "|---|" + "---:|" * len(f.burn_rates),
        "| burn rate | " + " | ".join(_burn(b) for b in f.burn_rates.values()) + " |",
        "",
        "| severity | long / short | factor | long burn | short burn | state |",
        "|---|---|---:|---:|---:|---|",
    ]
    for a in f.alerts:
        state = "**firing**" if a.firing else "inactive"
        lines.append(
            f"| {a.severity} | {a.long} / {a.short} | {a.factor:.4g} | {_burn(a.long_burn)} | "
            f"{_burn(a.short_burn)} | {state} |"
        )
    lines += ["", "Top offenders (share of the bad events):", ""]
    if f.bad == 0:
        lines.append("No bad events.")
    else:
        lines += ["| dimension | top values |", "|---|---|"]
        for dim in ATTRIBUTION_DIMENSIONS:
            shares = list(f.attribution.get(dim, {}).items())[:top]
            text = ", ".join(f"{_cell(v)} {_pct(s, 1)}" for v, s in shares) or "-"
            lines.append(f"| {dim} | {text} |")
    return [*lines, ""]


def render_markdown(report: Report, top: int = 3) -> str:
    """The report as a Markdown document: an overview table, then per SLO its compliance,
    budget, burn-rate table, alert conditions and the ``top`` offenders of each dimension."""
    period = "each SLO's window" if report.period_s is None else _span(report.period_s)
    lines = [
        f"# SLO review, as of {_when(report.as_of)}",
        "",
        f"Period: {period} ending at {_when(report.as_of)} (unix {report.as_of:.0f}); "
        f"source: {report.source}.",
        "",
        "| SLO | objective | SLI | events | bad | budget remaining | status | alerts firing |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for f in report.slos:
        firing = ", ".join(f"{a.severity} {a.long}/{a.short}" for a in f.alerts if a.firing) or "none"
        lines.append(
            f"| {_cell(f.display_name)} | {_pct(f.objective, 3)} | {_pct(f.sli, 3)} | {f.total:,} | "
            f"{f.bad:,} | {_pct(f.budget_remaining, 1)} | {_status(f)} | {firing} |"
        )
    lines += ["", *_golden_lines(report.golden)]
    for f in report.slos:
        lines += _slo_section(f, top)
    return "\n".join(lines)


def golden_summary(run: GoldenRun | None) -> str:
    """One sentence on the golden suite: ``"no golden suite run recorded"`` or, e.g.,
    ``"run r1 at 2027-01-15 08:00 UTC: 11 passed, 1 regression, 0 errors"``."""
    if run is None:
        return "no golden suite run recorded"
    regressions = "regression" if run.failed == 1 else "regressions"
    errors = "error" if run.errors == 1 else "errors"
    return (
        f"run {run.run_id} at {_when(run.ts)}: {run.passed} passed, {run.failed} {regressions}, "
        f"{run.errors} {errors}"
    )


def _golden_lines(run: GoldenRun | None) -> list[str]:
    lines = [f"Golden suite: {_cell(golden_summary(run))}.", ""]
    failing = [] if run is None else [r for r in run.results if r.status != "pass"]
    if failing:
        lines += ["| golden | status | first divergence |", "|---|---|---|"]
        lines += [
            f"| {_cell(r.name)} | {_cell(r.status)} | {_cell(r.first_divergence or '-')} |" for r in failing
        ]
        lines.append("")
    return lines
