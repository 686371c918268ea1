"""Pure plotly figure builders (no streamlit): the console's charts."""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt

import plotly.graph_objects as go

from engine.mcts import ActionStat, TreeSnapshot

PV_COLOUR = "#0f766e"
EDGE_COLOUR = "#cbd5e1"
VALUE_SCALE = "RdBu"


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
