"""Charts of the telemetry pages: Overview traffic, latency and agent mix, and the Traces waterfall.

Plotly figures built from the typed values of ``observability.overview`` and
``observability.traces``; pages only place them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from app.charts import AGENT_COLOURS, PV_COLOUR
from app.safe_text import plotly_text
from observability.overview import OverviewSeries, OverviewStats
from observability.traces import SpanNode

__all__ = [
    "agent_mix_figure",
    "duration_label",
    "latency_figure",
    "span_colour",
    "traffic_figure",
    "waterfall_figure",
]

ERROR_COLOUR = "#dc2626"
SPAN_COLOUR = "#64748b"
UNKNOWN = "unknown"
LOG_SPREAD = 20  # log scale when the busiest bucket exceeds the median busy bucket this many times


def duration_label(seconds: int) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _times(series: OverviewSeries) -> list[datetime]:
    """Bucket mid-points as UTC datetimes for a date axis."""
    return [datetime.fromtimestamp(t + series.bucket_s / 2, UTC).replace(tzinfo=None) for t in series.starts]


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": title, "font": {"size": 14}},
        xaxis={"title": "time (UTC)"},
        yaxis={"title": y_title, "rangemode": "tozero"},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        plot_bgcolor="white",
        bargap=0.1,
    )
    fig.update_yaxes(gridcolor="#e5e7eb")
    return fig


def traffic_figure(series: OverviewSeries) -> go.Figure:
    x, width = _times(series), series.bucket_s * 1000 * 0.9
    fig = go.Figure()
    fig.add_bar(x=x, y=series.requests, name="requests", marker_color=PV_COLOUR, width=width)
    fig.add_bar(x=x, y=series.errors, name="errors", marker_color=ERROR_COLOUR, width=width)
    fig.update_layout(barmode="overlay")
    busy = sorted(n for n in series.requests if n)
    log = bool(busy) and busy[-1] > LOG_SPREAD * busy[len(busy) // 2]  # a burst would flatten the rest
    title = f"requests and errors per {duration_label(series.bucket_s)}" + (" (log scale)" if log else "")
    fig = _layout(fig, title, "requests")
    if log:
        fig.update_yaxes(type="log", rangemode="normal", dtick=1)  # ticks at 1, 10, 100, ...
    return fig


def latency_figure(series: OverviewSeries) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=_times(series),
            y=series.p95_ms,
            mode="lines+markers",
            connectgaps=False,
            line={"color": PV_COLOUR},
            marker={"size": 7},
            name="p95",
            hovertemplate="%{x}<br>p95 %{y:,.1f} ms<extra></extra>",
        )
    )
    title = f"latency p95 per {duration_label(series.bucket_s)}"
    if series.p95_from_buckets:
        title += " (estimated from histogram buckets: within the bucket holding it)"
    return _layout(fig, title, "ms")


def agent_mix_figure(stats: OverviewStats) -> go.Figure:
    agents = [a for a, _ in stats.agent_mix]
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in stats.agent_mix],
            y=agents,
            orientation="h",
            marker_color=[AGENT_COLOURS.get(a, "#64748b") for a in agents],
            text=[f"{v:,.0f}" for _, v in stats.agent_mix],
            textposition="auto",
            hovertemplate="%{y}: %{x:,.0f} invocations<extra></extra>",
        )
    )
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": "agent mix (invocations)", "font": {"size": 14}},
        xaxis={"title": "invocations"},
        yaxis={"type": "category"},
        plot_bgcolor="white",
    )
    return fig


def span_colour(span: SpanNode) -> str:
    if span.status == "error":
        return ERROR_COLOUR
    return AGENT_COLOURS.get(span.name.removeprefix("agent."), SPAN_COLOUR)


def waterfall_figure(spans: Sequence[SpanNode]) -> go.Figure:
    """Spans as horizontal bars from their start offset for their duration, top to bottom in tree
    order, names left-aligned and indented by depth; errors in red, agents in their routing colours."""
    drawn = [s for s in spans if s.offset_ms is not None and s.duration_ms is not None]
    rows = list(range(len(drawn)))
    label_px = min(60 + 14 * max((s.depth * 2 + len(s.name) for s in drawn), default=10), 360)
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=rows,
            base=[s.offset_ms for s in drawn],
            x=[s.duration_ms for s in drawn],
            marker={"color": [span_colour(s) for s in drawn]},
            text=[f"{s.duration_ms:,.1f} ms" for s in drawn],
            textposition="auto",
            customdata=[
                [plotly_text(s.name), s.offset_ms, plotly_text(s.status or UNKNOWN), plotly_text(s.span_id)]
                for s in drawn
            ],
            hovertemplate="<b>%{customdata[0]}</b><br>starts at %{customdata[1]:,.2f} ms<br>"
            "lasts %{x:,.2f} ms<br>status %{customdata[2]}<br>span %{customdata[3]}<extra></extra>",
        )
    )
    for row, span in zip(rows, drawn, strict=True):  # tick labels are right-aligned: indent by hand
        fig.add_annotation(
            x=0, xref="paper", xanchor="left", xshift=-label_px + 4, y=row, yref="y", showarrow=False,
            text=("\u2003" * span.depth) + plotly_text(span.name),
            font={"size": 12, "color": span_colour(span)},
        )  # fmt: skip
    fig.update_layout(
        height=90 + 28 * max(len(drawn), 1),
        margin={"l": label_px, "r": 48, "t": 40, "b": 40},
        title={"text": "waterfall · ms since the trace started", "font": {"size": 14}},
        plot_bgcolor="white",
        bargap=0.25,
        showlegend=False,
    )
    fig.update_yaxes(tickvals=rows, showticklabels=False, autorange="reversed", showgrid=False)
    end = max((s.offset_ms + s.duration_ms for s in drawn), default=1.0)  # type: ignore[operator]
    # headroom for the duration printed outside the shortest bars at the right edge
    fig.update_xaxes(title={"text": "ms"}, gridcolor="#e2e8f0", range=[0, max(end, 1e-3) * 1.12])
    return fig
