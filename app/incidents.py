"""Incidents on the console's time charts: the recorded incidents of a window (from the store's
``incidents`` table) and the one helper, :func:`mark_incidents`, that the Overview's and the SLO
page's charts call to shade them.

Each incident becomes a shaded band (a Plotly ``vrect`` below the data) with a small label at
its top whose hover text is the incident's title, window and description; every text is shown
literally (``plotly_text``), never as Markdown or HTML.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

import plotly.graph_objects as go
import streamlit as st

from app import runtime
from app.safe_text import plotly_text
from observability.store.incidents import Incident

__all__ = ["INCIDENTS_TTL_S", "INCIDENT_COLOUR", "Incident", "between", "mark_incidents"]

log = logging.getLogger(__name__)

INCIDENT_COLOUR = "#f59e0b"
#: How long a window's incidents are reused (s).
INCIDENTS_TTL_S = 30
_LABEL_CHARS = 28


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _short(title: str) -> str:
    title = " ".join(title.split())
    return title if len(title) <= _LABEL_CHARS else title[: _LABEL_CHARS - 1] + "…"


def mark_incidents(
    fig: go.Figure, incidents: Sequence[Incident], window: tuple[float, float] | None = None
) -> go.Figure:
    """``fig`` (a chart over time, x in naive UTC datetimes) with each incident shaded from its
    start to its end, clipped to ``window`` (unix s) when given so the x range does not grow;
    incidents wholly outside it are left out.  Returns ``fig`` (changed in place)."""
    for incident in incidents:
        lo, hi = incident.start_ts, incident.end_ts
        if window is not None:
            lo, hi = max(lo, window[0]), min(hi, window[1])
        if not lo < hi:
            continue
        simulated = " (simulated)" if incident.simulated else ""
        hover = (
            plotly_text(f"{incident.title}{simulated}")
            + "<br>"
            + plotly_text(f"{_when(incident.start_ts)} to {_when(incident.end_ts)}")
        )
        if incident.description:
            hover += "<br>" + plotly_text(incident.description)
        fig.add_vrect(
            x0=_dt(lo),
            x1=_dt(hi),
            fillcolor=INCIDENT_COLOUR,
            opacity=0.2,
            line={"width": 1, "color": INCIDENT_COLOUR},  # a two-hour band is a sliver over 28 days
            layer="below",
            name=plotly_text(incident.title),
            annotation={
                "text": plotly_text(_short(incident.title)),
                "hovertext": hover,
                "font": {"size": 10, "color": "#92400e"},
                "showarrow": False,
                "textangle": -90,
                "xanchor": "left",
                "yanchor": "top",
            },
            annotation_position="top left",
        )
    return fig


@st.cache_data(ttl=INCIDENTS_TTL_S, show_spinner=False)
def _cached(db_path: str, since_ts: float, until_ts: float) -> tuple[Incident, ...]:
    store = runtime.get_store()
    assert store is not None
    return tuple(store.reads.incidents(since_ts, until_ts))


def between(since_ts: float, until_ts: float) -> tuple[Incident, ...]:
    """The recorded incidents overlapping ``(since_ts, until_ts]`` (unix s), oldest first; cached
    :data:`INCIDENTS_TTL_S` s.  Empty when telemetry is off; an unreadable store gives none (logged:
    the charts are still worth drawing)."""
    store = runtime.get_store()
    if store is None:
        return ()
    try:
        return _cached(str(store.path), float(since_ts), float(until_ts))
    except sqlite3.Error as exc:
        log.warning("incidents could not be read from %s: %s", store.path, exc)
        return ()
