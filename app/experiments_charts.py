"""Charts of the Experiments page (pages/experiments.py): pure Plotly builders, no Streamlit.

Variant and metric names come from spec files: they go through :func:`app.safe_text.plotly_text`
before Plotly sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from app.charts import titled_layout
from app.safe_text import plotly_text
from engine.experiments.analysis import Analysis, SeriesPoint

__all__ = ["cumulative_lift_figure", "forest_figure"]

_COLOURS = ("#2563eb", "#d97706", "#7c3aed", "#0d9488", "#db2777", "#4b5563", "#65a30d", "#dc2626", "#0891b2")
_SIGNIFICANT = "#15803d"
_NOT_SIGNIFICANT = "#6b7280"
_WORSE = "#dc2626"


def forest_figure(analysis: Analysis) -> go.Figure:
    """The relative lift (percent) of every treatment variant on every metric with its CI (the
    arrow says which direction is better); a point is green (better) or red (worse) when its
    Holm-adjusted p is below the spec's alpha, grey otherwise."""
    labels: list[str] = []
    x: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    colours: list[str] = []
    hover: list[str] = []
    alpha = analysis.spec.alpha
    for m in analysis.metrics:
        for v in m.variants:
            r = v.relative
            if v.is_baseline or r is None or r.estimate is None or r.ci is None:
                continue
            arrow = "↑" if m.higher_is_better else "↓"
            label = plotly_text(f"{m.metric} {arrow} · {v.variant}")
            labels.append(label)
            x.append(100 * r.estimate)
            lo.append(100 * (r.estimate - r.ci[0]))
            hi.append(100 * (r.ci[1] - r.estimate))
            significant = v.adjusted_p is not None and v.adjusted_p < alpha
            better = (r.estimate > 0) == m.higher_is_better
            colours.append(_NOT_SIGNIFICANT if not significant else _SIGNIFICANT if better else _WORSE)
            p = "n/a" if v.adjusted_p is None else f"{v.adjusted_p:.3g}"
            hover.append(
                f"{label}<br>lift {100 * r.estimate:+.2f}% ({100 * r.ci[0]:+.2f}% .. {100 * r.ci[1]:+.2f}%)"
                f"<br>Holm p {p}"
            )
    fig = go.Figure(
        go.Scatter(
            x=x,
            y=labels,
            mode="markers",
            error_x={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo, "color": "#374151"},
            marker={"size": 10, "color": colours},
            hovertext=hover,
            hoverinfo="text",
            showlegend=False,
        )
    )
    fig.add_vline(x=0, line_dash="dash", line_color="#9ca3af")
    fig.update_yaxes(autorange="reversed", type="category")
    height = 120 + 40 * max(1, len(labels))
    return titled_layout(fig, "Relative lift against the baseline (CI)", "", height, x_title="lift (%)")


def cumulative_lift_figure(series: Mapping[str, Sequence[SeriesPoint]], metric: str) -> go.Figure:
    """The cumulative relative lift (percent) of each treatment variant on ``metric`` over time
    (one point per minute with data), with its CI as error bars; points without an estimate are
    gaps."""
    fig = go.Figure()
    for i, (variant, points) in enumerate(series.items()):
        colour = _COLOURS[i % len(_COLOURS)]
        name = plotly_text(variant)
        ts = [datetime.fromtimestamp(p.ts, UTC) for p in points]
        est = [None if p.estimate is None else 100 * p.estimate for p in points]
        up = [None if p.ci is None or p.estimate is None else 100 * (p.ci[1] - p.estimate) for p in points]
        down = [None if p.ci is None or p.estimate is None else 100 * (p.estimate - p.ci[0]) for p in points]
        fig.add_trace(
            go.Scatter(
                x=ts,
                y=est,
                mode="lines+markers",
                name=name,
                line={"color": colour},
                error_y={"type": "data", "symmetric": False, "array": up, "arrayminus": down},
                customdata=[[p.n_baseline, p.n_variant] for p in points],
                hovertemplate=f"{name}: %{{y:+.2f}}% (units %{{customdata[1]}} vs %{{customdata[0]}})"
                "<extra></extra>",
            )
        )
    fig.add_hline(y=0, line_dash="dash", line_color="#9ca3af")
    fig.update_xaxes(tickformat="%H:%M\n%b %d")
    title = plotly_text(f"Cumulative lift on {metric}")
    return titled_layout(fig, title, "cumulative lift (%)", 320, x_title="time (UTC)")
