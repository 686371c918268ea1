"""Charts of the Golden traces page (pages/golden.py): pure Plotly builders, no Streamlit.

Every text that came from a golden file or the store (agent names, span paths) goes through
:func:`app.safe_text.plotly_text` before Plotly sees it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go

from app.charts import AGENT_COLOURS, step_label, titled_layout
from app.golden import RoutingRow, SuiteRunSummary
from app.safe_text import plotly_text

__all__ = ["FAIL_COLOUR", "PASS_COLOUR", "latency_figure", "pass_rate_figure", "routing_figure"]

PASS_COLOUR = "#15803d"
FAIL_COLOUR = "#dc2626"
GOLDEN_COLOUR = "#9ca3af"
NOW_COLOUR = "#2563eb"
_OTHER_AGENT = "#6b7280"


def pass_rate_figure(history: Sequence[SuiteRunSummary]) -> go.Figure:
    """The pass rate (%) of each past run at its start time (UTC), oldest to newest; a run with a
    regression or an error is a red marker.  Hover: passed / regressions / errors."""
    runs = sorted(history, key=lambda r: r.ts)
    fig = go.Figure(
        go.Scatter(
            x=[datetime.fromtimestamp(r.ts, UTC).replace(tzinfo=None) for r in runs],
            y=[r.pass_rate * 100 for r in runs],
            mode="lines+markers",
            name="pass rate",
            line={"color": GOLDEN_COLOUR},
            marker={
                "size": 9,
                "color": [PASS_COLOUR if r.failed == 0 and r.errors == 0 else FAIL_COLOUR for r in runs],
            },
            customdata=[[r.passed, r.failed, r.errors, r.total] for r in runs],
            hovertemplate="%{x|%Y-%m-%d %H:%M:%S} UTC<br>pass rate %{y:.1f} %<br>"
            "%{customdata[0]} passed, %{customdata[1]} regressions, %{customdata[2]} errors "
            "of %{customdata[3]}<extra></extra>",
        )
    )
    fig = titled_layout(fig, "Pass rate of each suite run", "pass rate (%)", height=300)
    fig.update_yaxes(range=[-2, 102])
    fig.update_xaxes(tickformat="%Y-%m-%d %H:%M")
    if len(runs) == 1:  # a lone point would get a sub-millisecond axis: show the hour around it
        at = datetime.fromtimestamp(runs[0].ts, UTC).replace(tzinfo=None)
        fig.update_xaxes(range=[at - timedelta(minutes=30), at + timedelta(minutes=30)])
    return fig


def routing_figure(rows: Sequence[RoutingRow], agents: Sequence[str]) -> go.Figure:
    """The router's probability of each agent at each step: the golden's (hatched, pale) beside
    the replay's (solid), agents in their routing colours.  A step one side lacks has no bar there;
    the step of the first routing divergence is labelled with a ``≠``."""
    labels = [step_label(r.step) + (" ≠" if r.marked else "") for r in rows]
    fig = go.Figure()
    for agent in agents:
        colour = AGENT_COLOURS.get(agent, _OTHER_AGENT)
        name = plotly_text(agent)
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[r.golden_probabilities.get(agent) for r in rows],
                name=f"golden p({name})",
                offsetgroup=f"golden-{name}",
                marker={"color": colour, "opacity": 0.45, "pattern": {"shape": "/"}},
                hovertemplate=f"golden p({name}) %{{y:.4f}}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Bar(
                x=labels,
                y=[r.now_probabilities.get(agent) for r in rows],
                name=f"now p({name})",
                offsetgroup=f"now-{name}",
                marker={"color": colour},
                hovertemplate=f"now p({name}) %{{y:.4f}}<extra></extra>",
            )
        )
    fig = titled_layout(
        fig, "Routing probabilities: golden (hatched) and now (solid)", "probability", height=340
    )
    fig.update_layout(
        barmode="group",
        legend={"orientation": "h", "y": -0.12, "x": 0.5, "xanchor": "center", "yanchor": "top"},
    )
    fig.update_yaxes(range=[0, 1.02])
    return fig


def latency_figure(golden_samples: Sequence[float], now_samples: Sequence[float]) -> go.Figure:
    """The distribution of total latency (ms): each captured repetition of the golden against each
    timed replay of the run, as horizontal boxes with every sample drawn."""
    fig = go.Figure()
    for name, samples, colour in (
        ("golden", golden_samples, GOLDEN_COLOUR),
        ("now", now_samples, NOW_COLOUR),
    ):
        fig.add_trace(
            go.Box(
                x=list(samples),
                name=f"{name} ({len(samples)})",
                orientation="h",
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                marker={"color": colour},
                line={"color": colour},
                hovertemplate="%{x:.2f} ms<extra></extra>",
            )
        )
    fig = titled_layout(fig, "Total latency: captured repetitions and replays", "", height=220)
    fig.update_xaxes(title="latency (ms)", rangemode="tozero", gridcolor="#e5e7eb")
    fig.update_layout(showlegend=False)
    return fig
