"""Charts of the telemetry pages: Overview traffic, error rate, latency and agent mix, and the
Traces waterfall.

Plotly figures built from the typed values of ``observability.overview`` and
``observability.traces``; pages only place them.  The Overview's builders take an
:class:`~observability.overview.OverviewSeries` from either source (SQLite or Prometheus: the
same charts for both, the source named in each title) and return a plain ``go.Figure``, so that
callers can draw more on top (incident markers, say).  Lines, no bars over time, one unit per
axis whatever the range: req/min, % of requests, ms.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go

from app.charts import AGENT_COLOURS, PV_COLOUR, step_label
from app.safe_text import plotly_text
from observability.overview import RATE_UNIT, OverviewSeries, OverviewStats
from observability.traces import SpanNode, WaterfallRow, waterfall_rows

__all__ = [
    "agent_mix_figure",
    "duration_label",
    "error_ratio_figure",
    "gap_floor_ms",
    "latency_figure",
    "span_colour",
    "span_label",
    "traffic_figure",
    "waterfall_figure",
]

ERROR_COLOUR = "#dc2626"
SPAN_COLOUR = "#64748b"
UNTRACED_COLOUR = "#cbd5e1"  # untraced gaps: light grey, hatched
UNTRACED_TEXT = "#64748b"
UNKNOWN = "unknown"
LOG_SPREAD = 20  # latency: log scale when the highest point exceeds the lowest this many times
#: Latency lines: p50, p95, p99 in hues told apart at a glance (none is the errors' red).
QUANTILE_COLOURS = {"p50": "#0ea5e9", "p95": "#d97706", "p99": "#7c3aed"}
#: Lines have markers up to this many points, smaller ones beyond (never none: a point alone
#: between gaps, such as all of a day's data in one bucket of 28 days, must still show).
MARKERS_UP_TO = 60
SOURCE_NAMES = {"sqlite": "SQLite", "prometheus": "Prometheus"}


def duration_label(seconds: int) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _times(series: OverviewSeries) -> list[datetime]:
    """Bucket mid-points as UTC datetimes for a date axis."""
    return [datetime.fromtimestamp(t + series.bucket_s / 2, UTC).replace(tzinfo=None) for t in series.starts]


def _title(what: str, series: OverviewSeries) -> str:
    """``what`` per bucket, with the source the figures come from."""
    return f"{what} per {duration_label(series.bucket_s)} · {SOURCE_NAMES[series.source]}"


def _layout(fig: go.Figure, title: str, y_title: str) -> go.Figure:
    fig.update_layout(
        height=320,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        title={"text": title, "font": {"size": 14}},
        xaxis={"title": "time (UTC)"},
        yaxis={"title": y_title, "rangemode": "tozero"},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        plot_bgcolor="white",
        hovermode="x unified",
    )
    fig.update_yaxes(gridcolor="#e5e7eb")
    return fig


def _line(
    series: OverviewSeries, y: Sequence[float | None], name: str, colour: str, hover: str
) -> go.Scatter:
    """One line over the buckets; None is a gap (no data), never drawn as 0."""
    return go.Scatter(
        x=_times(series),
        y=list(y),
        mode="lines+markers",
        connectgaps=False,
        line={"color": colour, "width": 2},
        marker={"size": 6 if len(y) <= MARKERS_UP_TO else 4},
        name=name,
        hovertemplate=f"{name} {hover}<extra></extra>",
    )


def traffic_figure(series: OverviewSeries) -> go.Figure:
    """Requests and failed requests per bucket as rates in req/min (the tiles' unit, every range):
    two lines on a linear axis.  Buckets before the source's first data are gaps."""
    requests, errors = series.per_minute
    fig = go.Figure(
        [
            _line(series, requests, "requests", PV_COLOUR, "%{y:,.3g} req/min"),
            _line(series, errors, "errors", ERROR_COLOUR, "%{y:,.3g} req/min"),
        ]
    )
    return _layout(fig, _title("request rate (req/min)", series), RATE_UNIT)


def error_ratio_figure(series: OverviewSeries) -> go.Figure:
    """The share of each bucket's requests that failed, in %; a gap for a bucket without requests."""
    ratios = [None if r is None else r * 100 for r in series.error_ratios]
    fig = go.Figure(_line(series, ratios, "error rate", ERROR_COLOUR, "%{y:.2f} %"))
    fig = _layout(fig, _title("error rate (% of requests)", series), "% of requests")
    fig.update_layout(showlegend=False)
    top = max((r for r in ratios if r is not None), default=0.0)
    fig.update_yaxes(range=[0, max(top * 1.1, 1.0)], ticksuffix=" %")
    return fig


def latency_figure(series: OverviewSeries) -> go.Figure:
    """Latency p50, p95 and p99 per bucket as three lines (ms); a log axis (lines only, said in the
    title) when the highest point is over LOG_SPREAD times the lowest, so p50 is not flattened."""
    lines = {"p50": series.p50_ms, "p95": series.p95_ms, "p99": series.p99_ms}
    fig = go.Figure(
        [_line(series, ys, name, QUANTILE_COLOURS[name], "%{y:,.1f} ms") for name, ys in lines.items()]
    )
    points = [v for ys in lines.values() for v in ys if v is not None and v > 0]
    log = bool(points) and max(points) > LOG_SPREAD * min(points)
    what = "latency p50 / p95 / p99 (ms" + (", log scale)" if log else ")")
    title = _title(what, series)
    if series.quantiles_from_buckets:
        title += "<br><sup>estimated from histogram buckets: each within the bucket holding it</sup>"
    fig = _layout(fig, title, "ms")
    # the legend on the right: above the plot it would run into the second title line
    fig.update_layout(legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"})
    if log:
        fig.update_yaxes(type="log", rangemode="normal", dtick=1)  # ticks at 1, 10, 100, ... ms
    if series.quantiles_from_buckets:
        fig.update_layout(margin={"t": 60})
    return fig


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


def span_label(span: SpanNode) -> str:
    """A span's name, with its routing step (numbered from 1) when it has one: ``agent.hrm · step 1``."""
    step = span.attributes.get("step")
    if isinstance(step, int) and not isinstance(step, bool):
        return f"{span.name} · {step_label(step)}"
    return span.name


def gap_floor_ms(spans: Sequence[SpanNode]) -> float:
    """The shortest untraced gap the waterfall draws (ms): 1 % of the longest root span, at least
    0.05 ms, so a trace's microsecond hand-overs between spans do not crowd it."""
    roots = [s.duration_ms for s in spans if s.depth == 0 and s.duration_ms is not None]
    return max(0.01 * max(roots, default=0.0), 0.05)


def _where(r: WaterfallRow) -> str:
    """The hover's last line: the span's id, or the span a gap lies in."""
    if r.span is not None:
        return plotly_text(f"span {r.span.span_id}")
    return plotly_text(f"inside {r.parent.name}, covered by no child span") if r.parent is not None else ""


def waterfall_figure(spans: Sequence[SpanNode], min_gap_ms: float | None = None) -> go.Figure:
    """Spans as horizontal bars from their start offset for their duration, top to bottom in tree
    order, names left-aligned and indented by depth; errors in red, agents in their routing colours.
    Each span's untraced gaps (time inside it no child covers) of at least ``min_gap_ms``
    (default :func:`gap_floor_ms`) are grey rows labelled ``untraced`` among its children; a bar
    with children says its self time (duration minus its children)."""
    floor = gap_floor_ms(spans) if min_gap_ms is None else min_gap_ms
    drawn = waterfall_rows(spans, floor)
    rows = list(range(len(drawn)))
    labels = [span_label(r.span) if r.span is not None else "untraced" for r in drawn]
    colours = [span_colour(r.span) if r.span is not None else UNTRACED_COLOUR for r in drawn]
    widest = max((r.depth * 2 + len(t) for r, t in zip(drawn, labels, strict=True)), default=10)
    label_px = min(60 + 14 * widest, 360)

    def text(r: WaterfallRow) -> str:
        s = r.span
        if s is None:
            return f"{r.duration_ms:,.1f} ms untraced"
        if s.self_ms is not None and s.gaps:
            return f"{r.duration_ms:,.1f} ms · self {s.self_ms:,.1f}"
        return f"{r.duration_ms:,.1f} ms"

    def self_ms(r: WaterfallRow) -> float:
        return r.duration_ms if r.span is None or r.span.self_ms is None else r.span.self_ms

    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=rows,
            base=[r.offset_ms for r in drawn],
            x=[r.duration_ms for r in drawn],
            marker={"color": colours, "pattern": {"shape": ["/" if r.span is None else "" for r in drawn]}},
            text=[text(r) for r in drawn],
            textposition="auto",
            customdata=[
                [
                    plotly_text(t),
                    r.offset_ms,
                    plotly_text(r.span.status or UNKNOWN) if r.span is not None else "no span",
                    _where(r),
                    self_ms(r),
                ]
                for r, t in zip(drawn, labels, strict=True)
            ],
            hovertemplate="<b>%{customdata[0]}</b><br>starts at %{customdata[1]:,.2f} ms<br>"
            "lasts %{x:,.2f} ms (self %{customdata[4]:,.2f} ms)<br>status %{customdata[2]}<br>"
            "%{customdata[3]}<extra></extra>",
        )
    )
    for row, r, label, colour in zip(rows, drawn, labels, colours, strict=True):  # indent by hand
        fig.add_annotation(
            x=0, xref="paper", xanchor="left", xshift=-label_px + 4, y=row, yref="y", showarrow=False,
            text=("\u2003" * r.depth) + (plotly_text(label) if r.span is not None else "<i>untraced</i>"),
            font={"size": 12, "color": colour if r.span is not None else UNTRACED_TEXT},
        )  # fmt: skip
    fig.update_layout(
        height=90 + 28 * max(len(drawn), 1),
        margin={"l": label_px, "r": 48, "t": 40, "b": 40},
        title={
            "text": "waterfall · ms since the trace started · hatched grey: untraced",
            "font": {"size": 14},
        },
        plot_bgcolor="white",
        bargap=0.25,
        showlegend=False,
    )
    fig.update_yaxes(tickvals=rows, showticklabels=False, autorange="reversed", showgrid=False)
    end = max((r.offset_ms + r.duration_ms for r in drawn), default=1.0)
    # headroom for the duration printed outside the shortest bars at the right edge
    fig.update_xaxes(title={"text": "ms"}, gridcolor="#e2e8f0", range=[0, max(end, 1e-3) * 1.12])
    return fig
