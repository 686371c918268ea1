"""Overview: request rate, latency, errors, tokens, cost, agent mix and MCTS iterations over a time
range, tiles and charts from one source: the SQLite store or Prometheus (falling back to SQLite,
and saying so, when Prometheus is down, slow or answers garbage)."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from app import components, incidents, telemetry, telemetry_charts
from app.telemetry import PRESETS, OverviewView, Tile, tiles

SOURCES = {"sqlite": "SQLite", "prometheus": "Prometheus"}
INTERVALS_S = (5, 10, 30, 60)
TILE_ORDER = (
    "Requests", "Request rate", "Error rate",
    "Latency p50", "Latency p95", "Latency p99",
    "Tokens", "Cost", "MCTS iterations",
)  # fmt: skip
LOAD_HINT = (
    "Run a query on the **Query console**, or generate load from a shell: "
    "`python -m engine load --workload data/workloads/mixed.jsonl --rate 20 --duration 60` "
    "(add `--clock simulated --days 28 --requests 2000` for a 28-day history, marked simulated)."
)


def _grouped(all_tiles: tuple[Tile, ...]) -> list[Tile]:
    """Three rows of three: traffic, latency, then tokens, cost and MCTS iterations."""
    by_label = {t.label: t for t in all_tiles}
    return [by_label[label] for label in TILE_ORDER]


def _status(view: OverviewView) -> None:
    if view.status_ok:
        st.success(components.plain(view.message), icon=":material/check_circle:")
    else:
        st.warning(components.plain(view.message), icon=":material/warning:")


def _render(source: str, preset: str) -> None:
    """The live part: status line, tiles and charts (rerun every interval when live refresh is on)."""
    view = telemetry.overview(source, preset)
    _status(view)
    if view.store_requests is None and view.stats is None:
        st.info(
            "Telemetry is off (`ARBOR_TELEMETRY=off`): requests are not recorded, so there is nothing "
            "to show. Unset it (or set `on`) and restart the console."
        )
        return
    if view.store_requests == 0 and view.source == "sqlite":
        st.info(f"No data yet: the store holds no requests. {LOAD_HINT}")
        return
    stats, series = view.stats, view.series
    if stats is None or series is None:
        return
    row = [*st.columns(3), *st.columns(3), *st.columns(3)]
    for column, tile in zip(row, _grouped(tiles(stats)), strict=True):
        column.metric(tile.label, tile.value, help=tile.help)
    at = datetime.fromtimestamp(stats.until_ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    notes = [f"Last **{stats.window}** up to {at}: tiles and charts from **{SOURCES[stats.source]}**."]
    if view.rate_note:
        notes.append(view.rate_note)
    if stats.simulated:
        notes.append(f"{stats.simulated:,} of the window's requests are from the simulated timeline.")
    if stats.source == "prometheus":
        notes.append(
            "Prometheus counts requests when they ran: a simulated-clock history shows at the time it "
            "was generated (the SQLite store places it at its simulated times)."
        )
    if stats.requests is None:
        notes.append(f"{SOURCES[stats.source]} has no requests in this range.")
    elif stats.requests == 0 and stats.source == "sqlite" and view.latest_ts is not None:
        latest = datetime.fromtimestamp(view.latest_ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
        notes.append(f"No requests in this range; the latest was at {latest}: choose a longer range.")
    st.caption(" ".join(notes))

    left, right = st.columns(2)
    span = (stats.until_ts - stats.window_s, stats.until_ts)
    marks = incidents.between(*span)
    for column, figure, key in (
        (left, telemetry_charts.traffic_figure(series), "overview_traffic"),
        (right, telemetry_charts.error_ratio_figure(series), "overview_errors"),
    ):
        column.plotly_chart(incidents.mark_incidents(figure, marks, span), width="stretch", key=key)
    left, right = st.columns(2)
    latency = incidents.mark_incidents(telemetry_charts.latency_figure(series), marks, span)
    left.plotly_chart(latency, width="stretch", key="overview_latency")
    if stats.agent_mix:
        right.plotly_chart(telemetry_charts.agent_mix_figure(stats), width="stretch", key="overview_agents")
    else:
        right.info(f"No agent invocations in the last {stats.window}.")


st.title("Overview")
a, b, c, d = st.columns([2, 4, 1.4, 1.4], vertical_alignment="bottom")
source = a.radio("Source", list(SOURCES), format_func=SOURCES.get, key="overview_source", horizontal=True)
preset = b.segmented_control(
    "Time range", [p.label for p in PRESETS], default="1h", key="overview_preset", required=True
)
live = c.toggle("Live refresh", value=False, key="overview_live")
interval = d.selectbox(
    "Every", INTERVALS_S, format_func=lambda s: f"{s} s", key="overview_interval", disabled=not live
)
st.fragment(_render, run_every=interval if live else None)(source, preset or "1h")
