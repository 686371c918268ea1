"""Charts and tile values of the SLO page (pages/slos.py): pure builders, no Streamlit.

Plotly figures from the typed values of :mod:`observability.slo.math` and
:mod:`engine.slo_report`; every text that came from the store (task, provider, router, variant
names) goes through :func:`app.safe_text.plotly_text` before Plotly sees it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import plotly.graph_objects as go

from app.charts import titled_layout
from app.safe_text import plotly_text
from engine.slo_report import AlertRow, SLOFigures
from observability.slo.math import BudgetPoint, BurnPoint

__all__ = [
    "AMBER_BELOW",
    "SEVERITY_COLOURS",
    "SLOTile",
    "attribution_figure",
    "budget_colour",
    "budget_figure",
    "burn_figure",
    "pct",
    "ratio",
    "sorted_by_budget",
    "span",
    "tile",
]

#: A budget remaining below this share (and not negative) is amber; negative is red.
AMBER_BELOW = 0.25
SEVERITY_COLOURS = {"page": "#dc2626", "ticket": "#d97706"}
REAL_COLOUR = "#2563eb"
IDEAL_COLOUR = "#9ca3af"


def pct(value: float | None, digits: int = 2) -> str:
    """``0.9912`` -> ``"99.12 %"``; None (no traffic) -> ``"n/a"``."""
    return "n/a" if value is None else f"{value * 100:.{digits}f} %"


def ratio(value: float | None) -> str:
    """An objective or SLI as a percentage with up to 3 decimals, trailing zeros dropped:
    ``0.99`` -> ``"99 %"``, ``0.98133`` -> ``"98.133 %"``; None -> ``"n/a"``."""
    if value is None:
        return "n/a"
    return f"{value * 100:.3f}".rstrip("0").rstrip(".") + " %"


def span(seconds: float) -> str:
    """A period in its largest whole unit: ``"28d"``, ``"36h"``, ``"90m"``, ``"45s"``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def budget_colour(remaining: float | None) -> str:
    """The tile colour of a budget remaining: ``"red"`` when spent (below 0), ``"orange"`` below
    :data:`AMBER_BELOW`, ``"green"`` otherwise, ``"gray"`` without traffic (None)."""
    if remaining is None:
        return "gray"
    if remaining < 0:
        return "red"
    if remaining < AMBER_BELOW:
        return "orange"
    return "green"


@dataclass(frozen=True)
class SLOTile:
    """One SLO's tile: texts as shown and the budget's colour name (Streamlit's palette)."""

    name: str
    display_name: str
    objective: str
    sli: str
    budget: str
    consumed: str
    events: str
    bad: str
    colour: str


def tile(f: SLOFigures) -> SLOTile:
    """The tile of one SLO's figures (the budget to 2 decimals, objective and SLI by :func:`ratio`)."""
    consumed = None if f.budget_remaining is None else 1 - f.budget_remaining
    return SLOTile(
        name=f.name,
        display_name=f.display_name,
        objective=ratio(f.objective),
        sli=ratio(f.sli),
        budget=pct(f.budget_remaining),
        consumed=pct(consumed),
        events=f"{f.total:,}",
        bad=f"{f.bad:,}",
        colour=budget_colour(f.budget_remaining),
    )


def sorted_by_budget(figures: Sequence[SLOFigures]) -> list[SLOFigures]:
    """The SLOs with the least budget remaining first (as Pyrra's list); SLOs without traffic
    last; ties keep the SLO file's order."""
    return sorted(figures, key=lambda f: (f.budget_remaining is None, f.budget_remaining or 0.0))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def budget_figure(points: Sequence[BudgetPoint], start_ts: float) -> go.Figure:
    """Budget remaining (%) at the end of each bucket against the ideal linear line, which starts
    at 100 % at ``start_ts`` (the period's start) and reaches 0 % at the period's end. Points
    without traffic are gaps."""
    fig = go.Figure()
    if points:
        ends = [p.ts for p in points]
        ideal_x = [_dt(start_ts), *(_dt(t) for t in ends)]
        ideal_y = [100.0, *(p.ideal * 100 for p in points)]
        fig.add_trace(
            go.Scatter(x=ideal_x, y=ideal_y, name="ideal (linear)", mode="lines",
                       line={"color": IDEAL_COLOUR, "dash": "dash"})
        )  # fmt: skip
        fig.add_trace(
            go.Scatter(
                x=[_dt(t) for t in ends],
                y=[None if p.remaining is None else p.remaining * 100 for p in points],
                name="budget remaining",
                mode="lines",
                line={"color": REAL_COLOUR},
                connectgaps=False,
            )
        )
    return titled_layout(fig, "Error budget remaining over the period", "budget remaining (%)", height=320)


def burn_figure(points: Sequence[BurnPoint], alerts: Sequence[AlertRow], window_label: str) -> go.Figure:
    """The burn rate over a sliding ``window_label`` window, with each alert's factor as a
    horizontal line (one per distinct factor, named by its severity and windows) and 1 (the rate
    that spends exactly the budget over the SLO window)."""
    fig = go.Figure(
        go.Scatter(
            x=[_dt(p.ts) for p in points],
            y=[p.burn for p in points],
            name=f"burn rate ({window_label})",
            mode="lines",
            line={"color": REAL_COLOUR},
        )
    )
    fig.add_hline(y=1.0, line={"color": IDEAL_COLOUR, "dash": "dot"}, annotation_text="1 (budget pace)",
                  annotation_position="bottom left")  # fmt: skip
    for a in alerts:
        fig.add_hline(
            y=a.factor,
            line={"color": SEVERITY_COLOURS.get(a.severity, "#6b7280"), "dash": "dash"},
            annotation_text=f"{a.severity} {a.long}/{a.short} × {a.factor:.4g}",
            annotation_position="top right",
        )
    return titled_layout(
        fig, f"Burn rate over {window_label} windows, with the alert factors", "burn rate", height=320
    )


def attribution_figure(dimension: str, shares: Mapping[str, float], top: int = 10) -> go.Figure:
    """Horizontal bars of the ``top`` largest shares (%) of the bad events by ``dimension``'s
    values, largest at the top; the rest summed as ``(other)``. Value names are store text,
    shown literally."""
    items = list(shares.items())
    shown, rest = items[:top], items[top:]
    labels = [plotly_text(v) for v, _ in shown]
    values = [s * 100 for _, s in shown]
    if rest:
        labels.append("(other)")
        values.append(sum(s for _, s in rest) * 100)
    fig = go.Figure(
        go.Bar(
            x=values[::-1],
            y=labels[::-1],
            orientation="h",
            marker={"color": "#dc2626"},
            text=[f"{v:.1f} %" for v in values[::-1]],
            textposition="auto",
        )
    )
    fig = titled_layout(fig, f"Bad events by {dimension}", "", height=240)
    fig.update_xaxes(title="share of the bad events (%)", range=[0, 100])
    fig.update_yaxes(type="category")
    return fig
