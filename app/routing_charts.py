"""Pure plotly builders for the Routing page's workload comparison (no Streamlit)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from app.charts import titled_layout
from app.router_eval import ParetoPoint
from app.safe_text import plotly_text

__all__ = ["pareto_figure"]

_SYMBOL = {"default": "star", "router": "circle", "baseline": "square"}
_SIZE = {"default": 22, "router": 13, "baseline": 12}
_PALETTE = ("#d97706", "#2563eb", "#7c3aed", "#6b7280", "#0891b2", "#be123c", "#15803d", "#a16207")


def pareto_figure(points: Sequence[ParetoPoint], *, title: str, height: int = 420) -> go.Figure:
    """Correct share (y) against p95 latency (x, ms, log scale when it spans over 10x): one
    marked point per router, named in the legend with its kind (the default router a large
    star, the single-agent baselines squares, other routers circles), and the Pareto front as a
    dashed step line through its routers."""
    fig = go.Figure()
    front = sorted((p for p in points if p.on_front), key=lambda p: p.p95_ms)
    if front:
        xs: list[float] = []
        ys: list[float] = []
        for p in front:
            if xs:  # step: hold the previous correct share until this latency
                xs.append(p.p95_ms)
                ys.append(ys[-1])
            xs.append(p.p95_ms)
            ys.append(p.correct_share)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="lines",
                line={"dash": "dash", "color": "#16a34a"},
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    for i, p in enumerate(points):
        label = p.router + {"default": " (default)", "baseline": " (baseline)", "router": ""}[p.kind]
        fig.add_trace(
            go.Scatter(
                x=[p.p95_ms],
                y=[p.correct_share],
                mode="markers",
                marker={
                    "symbol": _SYMBOL[p.kind],
                    "size": _SIZE[p.kind],
                    "color": _PALETTE[i % len(_PALETTE)],
                    "line": {"width": 2 if p.on_front else 1, "color": "#111827"},
                },
                name=plotly_text(label + (" · front" if p.on_front else "")),
                hovertemplate=plotly_text(label) + "<br>p95 %{x:.1f} ms<br>correct %{y:.1%}<extra></extra>",
            )
        )
    lat = [p.p95_ms for p in points if p.p95_ms > 0]
    if lat and max(lat) > 10 * min(lat):
        fig.update_xaxes(type="log")
    fig.update_yaxes(tickformat=".0%", range=[-0.05, 1.08])
    titled_layout(fig, title, "correct share", height, x_title="p95 latency (ms)")
    fig.update_layout(legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"})
    return fig
