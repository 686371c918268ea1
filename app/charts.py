"""Pure plotly figure builders (no streamlit): the console's charts."""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt

import plotly.graph_objects as go

from app.safe_text import plotly_text
from engine.events import RouteDecision
from engine.mcts import ActionStat, TreeSnapshot
from engine.models import AGENTS, StepRecord
from engine.names import step_number
from engine.routing import FEATURE_NAMES

PV_COLOUR = "#0f766e"
EDGE_COLOUR = "#cbd5e1"
VALUE_SCALE = "RdBu"


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


def _tidy_layout(snapshot: TreeSnapshot) -> dict[int, tuple[float, float]]:
    """x, y per node id: leaves spaced evenly in depth-first order, parents
    centred over their children, one row per depth (root on top)."""
    kids: dict[int, list[int]] = {n.id: [] for n in snapshot.nodes}
    for n in snapshot.nodes:
        if n.parent in kids:
            kids[n.parent].append(n.id)
    depth = {n.id: n.depth for n in snapshot.nodes}
    pos: dict[int, tuple[float, float]] = {}
    next_x = 0.0
    # iterative post-order so deep trees do not hit the recursion limit
    stack: list[tuple[int, bool]] = [(snapshot.nodes[0].id, False)] if snapshot.nodes else []
    while stack:
        node, done = stack.pop()
        if not done:
            stack.append((node, True))
            stack.extend((k, False) for k in reversed(kids[node]))
            continue
        if kids[node]:
            xs = [pos[k][0] for k in kids[node]]
            pos[node] = ((min(xs) + max(xs)) / 2, -depth[node])
        else:
            pos[node] = (next_x, -depth[node])
            next_x += 1.0
    return pos


def tree_figure(
    snapshot: TreeSnapshot, reward_range: tuple[float, float] = (-1.0, 1.0), height: int = 520
) -> go.Figure:
    """The snapshot as a top-down tree: node area by visits, colour by mean
    value Q (for the player who chose the move), principal variation in teal."""
    pos = _tidy_layout(snapshot)
    by_id = {n.id: n for n in snapshot.nodes}
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    pv_x: list[float | None] = []
    pv_y: list[float | None] = []
    for n in snapshot.nodes:
        if n.parent in pos:
            (x0, y0), (x1, y1) = pos[n.parent], pos[n.id]
            xs, ys = (pv_x, pv_y) if n.on_pv and by_id[n.parent].on_pv else (edge_x, edge_y)
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    max_visits = max((n.visits for n in snapshot.nodes), default=1) or 1
    nodes = snapshot.nodes
    lo, hi = reward_range
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=edge_x,
            y=edge_y,
            mode="lines",
            line={"color": EDGE_COLOUR, "width": 1},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=pv_x,
            y=pv_y,
            mode="lines",
            line={"color": PV_COLOUR, "width": 3},
            hoverinfo="skip",
            name="principal variation",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[pos[n.id][0] for n in nodes],
            y=[pos[n.id][1] for n in nodes],
            mode="markers+text" if len(nodes) <= 60 else "markers",
            text=[n.label if n.parent >= 0 else "root" for n in nodes],
            textposition="top center",
            textfont={"size": 10},
            marker={
                "size": [8 + 32 * sqrt(n.visits / max_visits) for n in nodes],
                "color": [n.value if n.parent >= 0 else snapshot.root_value for n in nodes],
                "colorscale": VALUE_SCALE,
                "cmin": lo,
                "cmax": hi,
                "colorbar": {"title": {"text": "Q"}, "thickness": 12},
                "line": {
                    "color": [PV_COLOUR if n.on_pv else "#475569" for n in nodes],
                    "width": [3 if n.on_pv else 1 for n in nodes],
                },
            },
            customdata=[
                [
                    n.visits,
                    n.value,
                    n.prior,
                    n.exploit,
                    n.explore,
                    n.depth,
                    "" if n.proven is None else f"{n.proven:+g}",
                ]
                for n in nodes
            ],
            hovertemplate=(
                "<b>%{text}</b><br>visits %{customdata[0]}<br>Q %{customdata[1]:.3f}"
                "<br>prior %{customdata[2]:.3f}<br>exploit %{customdata[3]:.3f}"
                "<br>explore %{customdata[4]:.3f}<br>depth %{customdata[5]}"
                "<br>proven %{customdata[6]}<extra></extra>"
            ),
            showlegend=False,
        )
    )
    fig.update_layout(
        title={
            "text": f"iteration {snapshot.iteration} · {snapshot.tree_size} nodes in tree · "
            f"{len(nodes)} shown",
            "font": {"size": 14},
        },
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis={"visible": False},
        yaxis={"visible": False},
        plot_bgcolor="white",
        legend={"orientation": "h", "y": -0.02},
    )
    return fig


def action_visits_figure(
    actions: Sequence[ActionStat], reward_range: tuple[float, float] = (-1.0, 1.0), height: int = 280
) -> go.Figure:
    """Root actions: visits as bars, coloured by mean value."""
    lo, hi = reward_range
    fig = go.Figure(
        go.Bar(
            x=[a.label for a in actions],
            y=[a.visits for a in actions],
            marker={"color": [a.value for a in actions], "colorscale": VALUE_SCALE, "cmin": lo, "cmax": hi},
            customdata=[[a.value, a.prior] for a in actions],
            hovertemplate=(
                "%{x}: %{y} visits<br>Q %{customdata[0]:.3f}<br>prior %{customdata[1]:.3f}<extra></extra>"
            ),
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "root actions by visits", "font": {"size": 14}},
        xaxis={"type": "category"},
        yaxis={"title": "visits"},
    )
    return fig


def convergence_figure(snapshots: Sequence[TreeSnapshot], height: int = 280) -> go.Figure:
    """Root value and the best action across snapshots."""
    fig = go.Figure(
        go.Scatter(
            x=[s.iteration for s in snapshots],
            y=[s.root_value for s in snapshots],
            mode="lines+markers",
            line={"color": PV_COLOUR},
            text=[s.best_action_label for s in snapshots],
            hovertemplate="iteration %{x}<br>root value %{y:.3f}<br>best %{text}<extra></extra>",
        )
    )
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "root value over iterations", "font": {"size": 14}},
        xaxis={"title": "iteration"},
        yaxis={"title": "root value"},
    )
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
    draws the fallback line (below it the router is considered unsure); ``legend=False``
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
    if threshold is not None and fields:
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
