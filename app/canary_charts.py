"""Charts of the Canaries tab (app/canary_view.py): pure Plotly builders, no Streamlit.

The timeline of one canary run: the traffic share at each evaluation (a step line) and, below it,
one panel per guardrail with its value and threshold at each evaluation; a failing evaluation is a
red point, a passing one green, one waiting for data grey (no value).  Times are the run's clock
(simulated or wall).  Guardrail names come from the store: they go through
:func:`app.safe_text.plotly_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app.charts import titled_layout
from app.safe_text import plotly_text
from observability.store.canary_store import CanaryStepRow

__all__ = ["VERDICT_COLOURS", "timeline_figure"]

VERDICT_COLOURS = {"pass": "#15803d", "fail": "#dc2626", "waiting": "#9ca3af"}
_UNITS = {"error_ratio": "share", "p95_latency": "ms", "correctness": "p-value"}


def _when(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def timeline_figure(steps: Sequence[CanaryStepRow], final_share: float | None = None) -> go.Figure:
    """The run's traffic share and every guardrail's value against its threshold, per evaluation.

    ``final_share``: the run's share at its end (100 promoted, 0 rolled back), drawn after the
    last evaluation."""
    names: list[str] = []
    for s in steps:
        for g in s.guardrails:
            if g.guardrail not in names:
                names.append(g.guardrail)
    rows = 1 + len(names)
    titles = ["Traffic share (%)"] + [
        f"{plotly_text(n)} ({_UNITS.get(n, 'burn rate' if n.startswith('slo_burn') else 'value')})"
        for n in names
    ]
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.06)
    x = [_when(s.ts) for s in steps]
    share = [s.share_pct for s in steps]
    if steps and final_share is not None:
        x_share, share = [*x, x[-1]], [*share, final_share]
    else:
        x_share = x
    hover = [f"#{s.seq} step {s.step_index + 1}: {s.decision}" for s in steps]
    fig.add_trace(
        go.Scatter(
            x=x_share,
            y=share,
            mode="lines+markers",
            line={"shape": "hv", "color": "#2563eb"},
            name="traffic share",
            text=[*hover, "end of run"][: len(x_share)],
            hovertemplate="%{y:g} %<br>%{text}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    for r, name in enumerate(names, start=2):
        values, thresholds, colours, texts, xs = [], [], [], [], []
        for s in steps:
            g = next((g for g in s.guardrails if g.guardrail == name), None)
            if g is None:
                continue
            xs.append(_when(s.ts))
            values.append(g.value)
            thresholds.append(g.threshold)
            colours.append(VERDICT_COLOURS.get(g.verdict, "#6b7280"))
            texts.append(plotly_text(f"{g.verdict}: {g.detail}"[:300]))
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=values,
                mode="lines+markers",
                name=f"{plotly_text(name)} value",
                line={"color": "#374151"},
                marker={"color": colours, "size": 8},
                text=texts,
                hovertemplate="%{y:.4g}<br>%{text}<extra></extra>",
                showlegend=False,
            ),
            row=r,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=thresholds,
                mode="lines",
                name=f"{plotly_text(name)} threshold",
                line={"color": "#dc2626", "dash": "dash"},
                showlegend=False,
                hovertemplate="threshold %{y:.4g}<extra></extra>",
            ),
            row=r,
            col=1,
        )
    titled_layout(fig, "Canary timeline (dashed red: threshold)", "", 180 + 150 * rows)
    fig.update_xaxes(gridcolor="#e5e7eb")
    return fig
