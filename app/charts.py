"""Pure plotly figure builders (no streamlit): the console's charts."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from app import mcts_views
from app.safe_text import plotly_text
from engine.events import RouteDecision
from engine.models import AGENTS, StepRecord
from engine.names import FIXED_ROUTERS, step_number
from engine.routing import FEATURE_NAMES

# The MCTS charts live in app.mcts_views (solver-true values, proof-status colours); re-exported
# here so callers keep one import for the console's charts.
EDGE_COLOUR, PV_COLOUR, VALUE_SCALE = mcts_views.EDGE_COLOUR, mcts_views.PV_COLOUR, mcts_views.VALUE_SCALE
tree_figure = mcts_views.tree_figure
action_visits_figure = mcts_views.action_visits_figure
convergence_figure = mcts_views.convergence_figure
status_label = mcts_views.status_label


def titled_layout(
    fig: go.Figure, title: str, y_title: str, height: int, *, x_title: str | None = None
) -> go.Figure:
    """``fig`` with the console's plain chart layout: ``title`` above, ``y_title`` on the y axis,
    ``height`` pixels tall, the legend in a row above the plot on the right, white background with
    light grid lines; with ``x_title``, that title on the x axis and its grid lines too.  Returns
    ``fig`` (changed in place)."""
    if x_title is not None:
        fig.update_layout(xaxis={"title": x_title})
        fig.update_xaxes(gridcolor="#e5e7eb", zerolinecolor="#9ca3af")
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": title, "font": {"size": 14}},
        yaxis={"title": y_title},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        plot_bgcolor="white",
    )
    fig.update_yaxes(gridcolor="#e5e7eb", zerolinecolor="#9ca3af")
    return fig


# -- routing ------------------------------------------------------------------------------------------

AGENT_COLOURS = {"hrm": "#6366f1", "trm": "#f59e0b", "mcts": "#0f766e"}
CHOSEN_OUTLINE = "#111827"


def _step_fields(step: StepRecord | RouteDecision) -> tuple[int, str, dict[str, float], str]:
    """(0-based index, chosen agent, probabilities, reason) of a step record or a live decision."""
    if isinstance(step, RouteDecision):
        return step.step, step.chosen, step.probabilities, step.reason
    return step.index, step.agent, step.probabilities, step.reason


def step_label(index: int) -> str:
    """How a (0-based) step is named in the console: ``step 1`` is the first."""
    return f"step {step_number(index)}"


def routing_probabilities_figure(
    steps: Sequence[StepRecord | RouteDecision],
    *,
    threshold: float | None = None,
    height: int = 320,
    title: str = "router probabilities per step",
    legend: bool = True,
) -> go.Figure:
    """Grouped bars: one group per step, one bar per agent (hrm, trm, mcts);
    the agent the loop chose is outlined and labelled "chosen".  ``threshold``
    draws the fallback line (below it the router is considered unsure), except for a fixed
    single-agent router (``fixed:...``), which has no fallback; ``legend=False``
    suits small multiples that share the colours of a full-size chart."""
    fields = [_step_fields(s) for s in steps]
    x = [step_label(i) for i, *_ in fields]
    fig = go.Figure()
    for agent in AGENTS:
        probs = [p.get(agent, 0.0) for _, _, p, _ in fields]
        chosen = [c == agent for _, c, _, _ in fields]
        fig.add_trace(
            go.Bar(
                name=agent,
                x=x,
                y=probs,
                marker={
                    "color": AGENT_COLOURS[agent],
                    "line": {
                        "color": [CHOSEN_OUTLINE if c else AGENT_COLOURS[agent] for c in chosen],
                        "width": [3 if c else 0 for c in chosen],
                    },
                },
                text=["chosen" if c else "" for c in chosen],
                textposition="outside",
                textfont={"size": 11, "color": CHOSEN_OUTLINE},
                cliponaxis=False,
                customdata=[[plotly_text(r)] for *_, r in fields],
                hovertemplate=f"{agent}: %{{y:.3f}}<br>%{{x}}: %{{customdata[0]}}<extra></extra>",
            )
        )
    fixed = all(s.router in FIXED_ROUTERS for s in steps)  # no fallback to draw
    if threshold is not None and fields and not fixed:
        fig.add_hline(
            y=threshold,
            line={"dash": "dot", "color": "#64748b", "width": 1.5},
            showlegend=legend,
            name=f"fallback below {threshold:.2f}",
        )
    fig.update_layout(
        barmode="group",
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 40 if legend else 10},
        title={"text": title, "font": {"size": 14}},
        yaxis={"title": "probability", "range": [0, 1.12], "tickformat": ".1f"},
        xaxis={"type": "category"},
        legend={"orientation": "h", "y": -0.12, "x": 0.5, "xanchor": "center", "yanchor": "top"},
        bargap=0.3,
        showlegend=legend,
        plot_bgcolor="white",
    )
    fig.update_yaxes(gridcolor="#e5e7eb")
    return fig


def features_heatmap(steps: Sequence[StepRecord | RouteDecision], height: int | None = None) -> go.Figure:
    """The meta-controller's 10 features (columns, FEATURE_NAMES order) for each step (rows),
    every value in [0, 1] and printed in its cell."""
    labels = [step_label(_step_fields(s)[0]) for s in steps]
    z = [list(s.features) for s in steps]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(FEATURE_NAMES),
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            text=[[f"{v:.3g}" for v in row] for row in z],
            texttemplate="%{text}",
            textfont={"size": 11},
            colorbar={"thickness": 12, "title": {"text": "value"}},
            hovertemplate="%{y} · %{x} = %{z:.4f}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        height=height or 150 + 48 * max(len(steps), 1),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": "routing features per step", "font": {"size": 14}},
        yaxis={"autorange": "reversed", "type": "category"},
        xaxis={"tickangle": -30, "side": "bottom"},
    )
    return fig


def confusion_matrix_figure(
    matrix: Sequence[Sequence[float]],
    labels: Sequence[str],
    *,
    title: str = "held-out confusion matrix",
    height: int = 360,
) -> go.Figure:
    """Rows are the true (best) agent, columns the router's prediction; counts in the cells."""
    z = [list(row) for row in matrix]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(labels),
            y=list(labels),
            colorscale="Teal",
            text=[[f"{v:g}" for v in row] for row in z],
            texttemplate="%{text}",
            textfont={"size": 13},
            colorbar={"thickness": 12, "title": {"text": "count"}},
            hovertemplate="true %{y} · predicted %{x}: %{z}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": title, "font": {"size": 14}},
        xaxis={"title": "predicted", "type": "category", "side": "bottom"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
    )
    return fig
