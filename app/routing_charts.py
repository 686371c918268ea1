"""Pure plotly builders for the Routing page's workload comparison (no Streamlit)."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from app.charts import titled_layout
from app.router_eval import ParetoPoint
from app.safe_text import plotly_text

__all__ = ["pareto_figure"]

_STYLE = {
    "default": {"symbol": "star", "size": 20, "color": "#d97706", "name": "default router"},
    "router": {"symbol": "circle", "size": 12, "color": "#2563eb", "name": "router"},
    "baseline": {"symbol": "square", "size": 11, "color": "#6b7280", "name": "baseline (one agent)"},
}


def pareto_figure(points: Sequence[ParetoPoint], *, title: str, height: int = 380) -> go.Figure:
    """Correct share (y) against p95 latency (x, ms, log scale when it spans over 10x) per router:
    one trace per kind (the default router a large star, baselines grey squares), router names
    as labels, and the Pareto front as a dashed step line through its routers."""
    fig = go.Figure()
    front = sorted((p for p in points if p.on_front), key=lambda p: p.p95_ms)
    if front:
        xs, ys = [], []
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
    for kind, style in _STYLE.items():
        mine = [p for p in points if p.kind == kind]
        if not mine:
            continue
        fig.add_trace(
            go.Scatter(
                x=[p.p95_ms for p in mine],
                y=[p.correct_share for p in mine],
                mode="markers+text",
                text=[plotly_text(p.router + (" ✓front" if p.on_front else "")) for p in mine],
                textposition="top center",
                marker={
                    "symbol": style["symbol"],
                    "size": style["size"],
                    "color": style["color"],
                    "line": {"width": 1, "color": "#111827"},
                },
                name=style["name"],
                hovertemplate="%{text}<br>p95 %{x:.1f} ms<br>correct %{y:.1%}<extra></extra>",
            )
        )
    lat = [p.p95_ms for p in points if p.p95_ms > 0]
    if lat and max(lat) > 10 * min(lat):
        fig.update_xaxes(type="log")
    fig.update_yaxes(tickformat=".0%", range=[-0.05, 1.1])
    return titled_layout(fig, title, "correct share", height, x_title="p95 latency (ms)")
