"""Solver-true MCTS views (pure: plotly figures and tables, no streamlit).

Every value shown follows one sign convention (``SIGN_CONVENTION``): a node's value is for
the player who made the move into it (the player to move at its parent); the root's is for
the player to move at the root.  A node the search's solver has proven shows its proven
value and its status (proven win / loss / draw) in a fixed colour and marker; an unproven
node shows its mean rollout value Q on a red (bad) to blue (good) scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import sqrt

import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from engine.mcts import STATUS_LABELS, ActionStat, SearchStats, TreeSnapshot

__all__ = [
    "COLOUR_LEGEND",
    "EDGE_COLOUR",
    "PV_COLOUR",
    "SIGN_CONVENTION",
    "STATUS_COLOURS",
    "STATUS_SYMBOLS",
    "VALUE_SCALE",
    "action_visits_figure",
    "convergence_figure",
    "move_label",
    "snapshot_table",
    "status_colour",
    "status_label",
    "stop_note",
    "tree_figure",
]

PV_COLOUR = "#0f766e"
EDGE_COLOUR = "#cbd5e1"
#: Unproven nodes: mean value Q, red (bad for the player who moved) to blue (good).
VALUE_SCALE = "RdBu"
#: Proven nodes: one fixed colour per status, none of them on the unproven scale.
STATUS_COLOURS: dict[str, str] = {
    "win": "#16a34a",  # green
    "loss": "#111827",  # near-black
    "draw": "#d97706",  # amber
    "exact": "#7c3aed",  # violet (graded single-player rewards only)
}
STATUS_SYMBOLS: dict[str, str] = {"win": "star", "loss": "x", "draw": "diamond", "exact": "square"}

SIGN_CONVENTION = (
    "Values are for the player who made the move into a node (the player to move at its parent); "
    "the root's value is for the player to move at the root. +1 is a win for that player, −1 a loss, "
    "0 a draw."
)
COLOUR_LEGEND = (
    "Colour: **proven win** green ★, **proven loss** black ✕, **proven draw** amber ◆ (the solver's "
    "exact result, shown as the value); **unproven** nodes by their mean value Q, red (bad for the "
    "player who moved) through white to blue (good)."
)

_TASK_LABEL_PREFIX = {"connect4": "c"}
#: Trees with at most this many shown nodes have every node labelled on the chart.
LABEL_ALL_UP_TO = 60


def move_label(label: str, task: str | None = None) -> str:
    """How a move reads on the explorer's charts and tables: connect-four columns as ``c4``
    (the engine's answer format stays the bare column number); other tasks unchanged."""
    if label == "root":
        return label
    return _TASK_LABEL_PREFIX.get(task or "", "") + label


def status_label(status: str) -> str:
    """How a proof status (``engine.mcts.ProofStatus``) reads on screen, e.g. ``"proven draw"``;
    an unknown status is shown as given."""
    return STATUS_LABELS.get(status, status)  # type: ignore[call-overload]  # any str is looked up


def status_colour(status: str, value: float, reward_range: tuple[float, float]) -> str:
    """The colour of a node or action: the fixed colour of a proven ``status``, else ``value``
    (mean Q for the player who moved) placed on ``VALUE_SCALE`` over ``reward_range``."""
    if status in STATUS_COLOURS:
        return STATUS_COLOURS[status]
    lo, hi = reward_range
    t = min(max((value - lo) / (hi - lo), 0.0), 1.0)
    return str(sample_colorscale(VALUE_SCALE, [t])[0])


def _fmt(value: float | None, spec: str = "+.3f") -> str:
    return "" if value is None else format(value, spec)


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
    snapshot: TreeSnapshot,
    reward_range: tuple[float, float] = (-1.0, 1.0),
    height: int = 520,
    *,
    task: str | None = None,
) -> go.Figure:
    """The snapshot as a top-down tree: node area by visits, principal variation in teal,
    proven nodes in their status colour and marker (one legend entry each), unproven nodes
    coloured by mean value Q (colour bar).  ``task`` names the task for move labels."""
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
    lo, hi = reward_range
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=edge_x, y=edge_y, mode="lines", line={"color": EDGE_COLOUR, "width": 1},
            hoverinfo="skip", showlegend=False,
        )
    )  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=pv_x, y=pv_y, mode="lines", line={"color": PV_COLOUR, "width": 3},
            hoverinfo="skip", name="principal variation",
        )
    )  # fmt: skip
    # Every node is labelled in a small tree; in a big one the top two levels and the principal
    # variation are (deeper levels would overlap), and hovering names any node.
    crowded = len(snapshot.nodes) > LABEL_ALL_UP_TO
    for status in ("unproven", "win", "draw", "loss", "exact"):
        group = [n for n in snapshot.nodes if n.status == status]
        if not group:
            continue
        marker: dict[str, object] = {
            "size": [8 + 32 * sqrt(n.visits / max_visits) for n in group],
            "line": {
                "color": [PV_COLOUR if n.on_pv else "#475569" for n in group],
                "width": [3 if n.on_pv else 1 for n in group],
            },
        }
        if status == "unproven":
            marker |= {
                "color": [n.value for n in group],
                "colorscale": VALUE_SCALE,
                "cmin": lo,
                "cmax": hi,
                "colorbar": {"title": {"text": "Q (unproven)"}, "thickness": 12},
            }
        else:
            marker |= {"color": STATUS_COLOURS[status], "symbol": STATUS_SYMBOLS[status]}
        fig.add_trace(
            go.Scatter(
                x=[pos[n.id][0] for n in group],
                y=[pos[n.id][1] for n in group],
                mode="markers+text",
                text=[
                    move_label(n.label if n.parent >= 0 else "root", task)
                    if not crowded or n.depth <= 2 or n.on_pv
                    else ""
                    for n in group
                ],
                textposition="top center",
                textfont={"size": 10},
                marker=marker,
                customdata=[
                    [
                        n.visits,
                        f"{n.shown_value:+.3f}",
                        STATUS_LABELS[n.status],
                        f"{n.value:+.3f}",
                        n.prior,
                        n.exploit,
                        n.explore,
                        n.depth,
                        move_label(n.label if n.parent >= 0 else "root", task),
                    ]
                    for n in group
                ],
                hovertemplate=(
                    "<b>%{customdata[8]}</b><br>value %{customdata[1]} (%{customdata[2]})"
                    "<br>visits %{customdata[0]}"
                    "<br>mean Q %{customdata[3]}<br>prior %{customdata[4]:.3f}"
                    "<br>exploit %{customdata[5]:.3f}<br>explore %{customdata[6]:.3f}"
                    "<br>depth %{customdata[7]}<extra></extra>"
                ),
                name=STATUS_LABELS[status],
                showlegend=status != "unproven",
            )
        )
    fig.update_layout(
        title={
            "text": f"iteration {snapshot.iteration} · {snapshot.tree_size} nodes in tree · "
            f"{len(snapshot.nodes)} shown",
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
    actions: Sequence[ActionStat],
    reward_range: tuple[float, float] = (-1.0, 1.0),
    height: int = 280,
    *,
    task: str | None = None,
    iteration: int | None = None,
) -> go.Figure:
    """Root actions as visit bars (one trace per proof status, so the legend names them):
    proven actions in their status colour, unproven ones by mean Q.  ``iteration`` names the
    snapshot the actions come from in the title."""
    labels = [move_label(a.label, task) for a in actions]
    fig = go.Figure()
    for status in ("unproven", "win", "draw", "loss", "exact"):
        group = [(label, a) for label, a in zip(labels, actions, strict=True) if a.status == status]
        if not group:
            continue
        fig.add_trace(
            go.Bar(
                x=[label for label, _ in group],
                y=[a.visits for _, a in group],
                name=STATUS_LABELS[status],
                marker={"color": [status_colour(a.status, a.value, reward_range) for _, a in group]},
                customdata=[
                    [f"{a.shown_value:+.3f}", STATUS_LABELS[a.status], a.value, a.prior] for _, a in group
                ],
                hovertemplate=(
                    "%{x}: %{y} visits<br>value %{customdata[0]} (%{customdata[1]})"
                    "<br>mean Q %{customdata[2]:+.3f}<br>prior %{customdata[3]:.3f}<extra></extra>"
                ),
            )
        )
    title = "root actions by visits" + ("" if iteration is None else f" · iteration {iteration}")
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": title, "font": {"size": 14}},
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": labels},
        yaxis={"title": "visits"},
        barmode="relative",
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        plot_bgcolor="white",
    )
    return fig


def convergence_figure(
    snapshots: Sequence[TreeSnapshot],
    height: int = 280,
    *,
    upto: int | None = None,
    budget: int | None = None,
) -> go.Figure:
    """The solver-true root value (proven once the root is proven, else mean Q) across the
    snapshots up to iteration ``upto`` (all when None), the last one shown marked; the x axis
    spans ``budget`` iterations when given, so an early stop is visible as the line ending."""
    shown = [s for s in snapshots if upto is None or s.iteration <= upto]
    fig = go.Figure(
        go.Scatter(
            x=[s.iteration for s in shown],
            y=[s.shown_root_value for s in shown],
            mode="lines+markers",
            line={"color": PV_COLOUR},
            marker={
                "color": [STATUS_COLOURS.get(s.root_status, PV_COLOUR) for s in shown],
                "symbol": [STATUS_SYMBOLS.get(s.root_status, "circle") for s in shown],
                "size": 8,
            },
            customdata=[[STATUS_LABELS[s.root_status], s.best_action_label] for s in shown],
            hovertemplate=(
                "iteration %{x}<br>root value %{y:+.3f} (%{customdata[0]})"
                "<br>best %{customdata[1]}<extra></extra>"
            ),
            name="root value",
            showlegend=False,
        )
    )
    if shown:
        last = shown[-1]
        fig.add_trace(
            go.Scatter(
                x=[last.iteration],
                y=[last.shown_root_value],
                mode="markers",
                marker={"size": 16, "color": "rgba(0,0,0,0)", "line": {"color": "#111827", "width": 2}},
                hoverinfo="skip",
                name="this snapshot",
            )
        )
    xaxis: dict[str, object] = {"title": "iteration"}
    if budget is not None:
        xaxis["range"] = [0, budget * 1.02]
        if snapshots and snapshots[-1].iteration < budget:
            fig.add_vline(
                x=snapshots[-1].iteration,
                line={"color": "#6b7280", "dash": "dot", "width": 1},
                annotation_text=f"stopped at {snapshots[-1].iteration:,}",
                annotation_position="top right",
                annotation_font={"size": 11, "color": "#374151"},
            )
    title = "root value over iterations" + ("" if upto is None else f" · up to iteration {upto}")
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": title, "font": {"size": 14}},
        xaxis=xaxis,
        yaxis={"title": "root value"},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        plot_bgcolor="white",
    )
    return fig


def snapshot_table(snapshot: TreeSnapshot, task: str | None = None) -> pd.DataFrame:
    """The snapshot's nodes as a table: node, depth and visits as integers, the solver-true
    value and the mean Q as numbers (for the player who made the move; the root's for the
    player to move), the proof status; the fields that do not apply to every node (the root's
    parent, prior and selection terms, an unproven node's proven value) as text, blank where
    they do not apply, never a missing-value marker."""
    rows = []
    for n in snapshot.nodes:
        child = n.parent >= 0
        rows.append(
            {
                "node": n.id,
                "parent": str(n.parent) if child else "",
                "depth": n.depth,
                "action": move_label(n.label if child else "root", task),
                "visits": n.visits,
                "status": STATUS_LABELS[n.status],
                "value": round(n.shown_value, 4),
                "mean Q": round(n.value, 4),
                "proven": _fmt(n.proven, "+g"),
                "prior": f"{n.prior:.4f}" if child else "",
                "exploit": f"{n.exploit:+.4f}" if child and n.visits else "",
                "explore": f"{n.explore:.4f}" if child and n.visits else "",
                "on PV": "yes" if n.on_pv else "",
            }
        )
    return pd.DataFrame(rows)


def stop_note(stats: SearchStats, budget: int) -> str | None:
    """A sentence saying the search stopped before its ``budget`` of iterations, and why;
    None when it spent the whole budget."""
    if stats.iterations >= budget:
        return None
    why = {
        "solved": f"the solver proved the root ({STATUS_LABELS[stats.root_status]} for the player to move)",
        "exhausted": "every node of the game tree was expanded and proven",
        "time_limit": "the time limit was reached",
        "visit_share": "the best action held the required share of visits",
        "value_converged": "the root value stopped moving",
    }.get(stats.termination_reason, stats.termination_reason)
    return (
        f"The search stopped early at iteration {stats.iterations:,} of {budget:,}: {why}. "
        "The last snapshot is the tree at that point."
    )
