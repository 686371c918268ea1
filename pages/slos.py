"""SLOs: every SLO's objective, SLI and error budget (sorted by budget remaining), and per SLO
its budget and burn rate over time, burn-rate alerts and the attribution of its bad events;
exact from the SQLite store or from Prometheus, with the review document to download."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import streamlit as st

from app import alerts, components, incidents, slo, slo_charts

RANGE_LABELS = {"1h": "1h", "1d": "1d", "7d": "7d", "28d": "28d", "window": "SLO window"}
AS_OF_LABELS = {"latest": "Latest request", "now": "Now", "custom": "Custom (UTC)"}
SOURCE_LABELS = {"sqlite": "SQLite", "prometheus": "Prometheus"}
LINK_KEYS = ("slo", "range", "as_of")
#: Alert tables show each alert's runbook link by the runbook's name.
RUNBOOK_COLUMN = st.column_config.LinkColumn(display_text=r"name=runbook-([a-z0-9-]+)")
STALE_S = 3600  # as_of defaults to the latest request when it is older than this
LOAD_HINT = (
    "Run a query on the **Query console**, or generate load from a shell, e.g. "
    "`python -m engine load --clock simulated --days 28 --requests 3000 --faults error=0.02 --seed 1`."
)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _link_key(params: dict[str, str]) -> tuple[str | None, ...]:
    return tuple(params.get(k) for k in LINK_KEYS)


def _write_link(pick: str, range_key: str, as_of: float) -> None:
    """Keep the URL a deep link to what is shown (``as_of`` only for a custom time)."""
    params = {"slo": pick, "range": range_key}
    if st.session_state["slo_as_of"] == "custom":
        params["as_of"] = f"{as_of:.0f}"
    elif "as_of" in st.query_params:
        del st.query_params["as_of"]
    st.query_params.update(params)
    st.session_state["slo_link_seen"] = _link_key(params)


def _defaults(names: list[str], latest_ts: float | None) -> None:
    """Deep link values (``?slo=...&range=...&as_of=...``) into the widgets' state when the
    link is new (not the one this page wrote itself), then the defaults for what is unset."""
    params = dict(st.query_params)
    if st.session_state.get("slo_link_seen") != _link_key(params):
        link = slo.parse_slo_link(params, names)
        values: dict[str, object] = {"slo_pick": link.slo, "slo_range": link.range}
        if link.as_of is not None:
            at = datetime.fromtimestamp(link.as_of, UTC)
            values |= {
                "slo_as_of": "custom",
                "slo_day": at.date(),
                "slo_time": at.time().replace(microsecond=0),
            }
        components.apply_link(values, link.warnings)
        st.session_state["slo_link_seen"] = _link_key(params)
    stale = latest_ts is not None and latest_ts < slo.now() - STALE_S
    st.session_state.setdefault("slo_range", "window")
    st.session_state.setdefault("slo_as_of", "latest" if stale else "now")
    start = datetime.fromtimestamp(latest_ts if latest_ts is not None else slo.now(), UTC)
    st.session_state.setdefault("slo_day", start.date())
    st.session_state.setdefault("slo_time", start.time().replace(microsecond=0))


def _tiles(view: slo.SLOPage) -> None:
    assert view.report is not None
    ordered = slo_charts.sorted_by_budget(view.report.slos)
    per_row = 2  # three tiles side by side cut figures such as "-86.67 %" short on a laptop screen
    rows = [ordered[k : k + per_row] for k in range(0, len(ordered), per_row)]
    for row in rows:
        for column, figures in zip(st.columns(per_row), row, strict=False):
            _tile(column, figures)


def _tile(column: Any, figures: Any) -> None:
    t = slo_charts.tile(figures)
    box = column.container(border=True)
    box.markdown(f"**{components.plain(t.display_name)}** :{t.colour}-badge[budget {t.budget}]")
    a, b = box.columns(2)
    a.metric("Objective", t.objective)
    b.metric("SLI", t.sli)
    a.metric("Budget remaining", t.budget)
    b.metric("Events / bad", f"{t.events} / {t.bad}")


def _exhaustion(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds / 86400:.1f} d" if seconds >= 86400 else f"{seconds / 3600:.1f} h"


def _burn(value: float | None) -> str:
    return "n/a (no traffic)" if value is None else f"{value:.2f}"


def _alerts(f: slo.SLOFigures) -> None:
    st.markdown(
        "**Burn-rate alerts** (multi-window, multi-burn-rate: both windows burn faster than the factor)"
    )
    rows = [
        {
            "severity": a.severity,
            "windows (long / short)": f"{a.long} / {a.short}",
            "factor": a.factor,
            "long burn": _burn(a.long_burn),
            "short burn": _burn(a.short_burn),
            "state": "firing" if a.firing else "inactive",
            "runbook": slo.runbook_link(a.severity),
        }
        for a in f.alerts
    ]
    number = st.column_config.NumberColumn
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        column_config={"factor": number(format="%.4g"), "runbook": RUNBOOK_COLUMN},
    )  # fmt: skip


def _offenders(f: slo.SLOFigures, as_of: float) -> None:
    rows = [
        {"dimension": o.dimension, "value": o.value, "share of bad events": o.share * 100}
        | {"traces": o.traces_url}
        for o in slo.top_offenders(f, as_of)
    ]
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        key="slo_offenders",
        column_config={
            "share of bad events": st.column_config.NumberColumn(format="%.1f %%"),
            "traces": st.column_config.LinkColumn(display_text="open its bad events"),
        },
    )


def _attribution(f: slo.SLOFigures, as_of: float) -> None:
    st.markdown("**Attribution of the bad events** (share of the window's bad events)")
    if f.bad == 0:
        st.info("No bad events in this window: no budget was burned.")
        return
    dims = [d for d in slo.ATTRIBUTION_DIMENSIONS if d not in f.attribution_unavailable]
    if f.attribution_unavailable:
        missing = ", ".join(f.attribution_unavailable)
        reasons = "; ".join(sorted(set(f.attribution_unavailable.values())))
        st.caption(f"No attribution by {missing} from this source: {components.plain(reasons)}.")
    columns = [*st.columns(3), *st.columns(3)]
    for column, dim in zip(columns, dims, strict=False):
        figure = slo_charts.attribution_figure(dim, f.attribution.get(dim, {}))
        column.plotly_chart(figure, width="stretch", key=f"slo_attr_{dim}")
    offenders = [
        f"{dim} {components.plain(value)} ({share * 100:.1f} %)"
        for dim in dims
        for value, share in list(f.attribution.get(dim, {}).items())[:1]
    ]
    st.caption("Top offenders: " + "; ".join(offenders) + ".")
    _offenders(f, as_of)


def _detail(f: slo.SLOFigures, series: slo.SLOSeries | str, as_of: float) -> None:
    threshold = f", threshold {f.threshold_s * 1000:g} ms" if f.threshold_s is not None else ""
    st.subheader(components.plain(f.display_name))
    st.caption(
        f"`{f.name}`: {f.kind}{threshold}; objective {slo_charts.ratio(f.objective)} over its "
        f"{slo_charts.span(f.window_s)} window; figures over the {slo_charts.span(f.period_s)} up to as_of."
    )
    t = slo_charts.tile(f)
    cols = st.columns([1, 1, 1, 1.5, 1])  # "29,717 / 177" needs the wider column
    cols[0].metric("SLI", t.sli)
    cols[1].metric("Budget remaining", t.budget)
    cols[2].metric("Budget consumed", t.consumed)
    cols[3].metric("Events / bad", f"{t.events} / {t.bad}")
    cols[4].metric(
        "Time to exhaustion",
        _exhaustion(f.time_to_exhaustion_s),
        help="Budget remaining at the 1h burn rate; none if that burn is 0 or unknown or the budget is spent",
    )
    if f.total == 0:
        st.info("No served requests in this window for this SLO: nothing to chart.")
        return
    if isinstance(series, str):
        st.warning(components.plain(series))
    else:
        left, right = st.columns(2)
        span = (series.start_ts, series.start_ts + series.period_s)
        marks = incidents.between(*span)
        budget = slo_charts.budget_figure(series.budget, series.start_ts)
        left.plotly_chart(incidents.mark_incidents(budget, marks, span), width="stretch", key="slo_budget")
        burn = slo_charts.burn_figure(series.burn, f.alerts, series.burn_window)
        right.plotly_chart(incidents.mark_incidents(burn, marks, span), width="stretch", key="slo_burn")
    _alerts(f)
    _attribution(f, as_of)


def _episodes(name: str, range_key: str, as_of: float) -> None:
    st.markdown("**Alert episodes** (the burn-rate rules replayed every 5 minutes over the range)")
    found = alerts.episodes(range_key, as_of)
    if isinstance(found, str):
        st.warning(components.plain(found))
        return
    rows = [
        {
            "severity": e.severity,
            "windows (long / short)": e.windows,
            "factor": e.factor,
            "start": _when(e.start_ts),
            "end": "firing" if e.end_ts is None else _when(e.end_ts),
            "peak burn": e.peak_burn,
            "runbook": e.runbook,
        }
        for e in found
        if e.slo == name
    ]
    if not rows:
        st.caption("No alert fired in this range.")
        return
    number = st.column_config.NumberColumn
    formats = {"factor": number(format="%.4g"), "peak burn": number(format="%.3g"), "runbook": RUNBOOK_COLUMN}
    frame = pd.DataFrame(rows)
    st.dataframe(frame, hide_index=True, width="stretch", key="slo_episodes", column_config=formats)


def _prom_alerts(name: str, as_of: float) -> None:
    st.markdown(f"**Alerts in Prometheus** (its `ALERTS` series at {_when(as_of)}, pending or firing)")
    found = alerts.prometheus_alerts(as_of)
    if isinstance(found, str):
        st.warning(components.plain(found))
        return
    rows = [
        {
            "severity": a.severity,
            "windows (long / short)": a.windows,
            "factor": a.factor,
            "state": a.state,
            "runbook": a.runbook,
        }
        for a in found
        if a.slo == name
    ]
    if not rows:
        st.caption("No burn-rate alert of this SLO is pending or firing in Prometheus at this time.")
        return
    formats = {
        "factor": st.column_config.NumberColumn(format="%.4g"),
        "runbook": st.column_config.LinkColumn(display_text=r"name=runbook-([a-z0-9-]+)"),
    }
    frame = pd.DataFrame(rows)
    st.dataframe(frame, hide_index=True, width="stretch", key="slo_prom_alerts", column_config=formats)


def _source_status(source: str) -> None:
    """Where the figures come from; for Prometheus its URL, whether it answers and its last scrape."""
    if source == "sqlite":
        st.caption("Source: **SQLite** (exact, from the store's rows and roll-ups).")
        return
    status = slo.prometheus_scrape()
    if isinstance(status, str):
        st.warning(components.plain(status))
        return
    prom = slo.prometheus_source()
    url = prom if isinstance(prom, str) else prom.url
    if status.last_scrape_ts is None:
        scrape = f"no scrape of job `{status.job}` in the last 5 minutes"
    else:
        state = "up" if status.up else "**down** (the last scrape failed)"
        scrape = f"last scrape of job `{status.job}` at {_when(status.last_scrape_ts)}, {state}"
    code = "`" + url.replace("`", "%60") + "`"  # a masked URL, shown literally in a code span
    st.caption(f"Source: **Prometheus** at {code}: reachable; {scrape}.")


def _as_of(latest_ts: float | None) -> float:
    choice = st.session_state["slo_as_of"]
    custom = None
    if choice == "custom":
        day, clock = st.session_state["slo_day"], st.session_state["slo_time"]
        custom = datetime.combine(day, clock, tzinfo=UTC).timestamp()
    return slo.resolve_as_of(choice, custom, latest_ts, slo.now())


st.title("SLOs")
facts, names = slo.store_facts(), slo.slo_names()
for problem in (facts, names):
    if isinstance(problem, str):
        st.warning(components.plain(problem))
        st.stop()
assert not isinstance(facts, str) and not isinstance(names, str)
stored, latest_ts = facts
_defaults(list(names), latest_ts)

a, b, c = st.columns([3, 3, 3], vertical_alignment="bottom")
range_key = a.segmented_control("Time range", list(slo.RANGES), format_func=RANGE_LABELS.get,
                                key="slo_range", required=True)  # fmt: skip
b.radio("As of", list(slo.AS_OF_CHOICES), format_func=AS_OF_LABELS.get, key="slo_as_of", horizontal=True)
if st.session_state["slo_as_of"] == "custom":
    d1, d2 = c.columns(2)
    d1.date_input("Day (UTC)", key="slo_day", min_value=date(1970, 1, 1))
    d2.time_input("Time (UTC)", key="slo_time", step=60)
st.session_state.setdefault("slo_source", "sqlite")
source = st.radio(
    "Source", list(slo.SOURCES), format_func=SOURCE_LABELS.get, key="slo_source", horizontal=True
)
_source_status(source)
as_of = _as_of(latest_ts)
view = slo.slo_page(range_key or "window", as_of, source)
if view.message is not None or view.report is None:
    st.warning(components.plain(view.message or "No SLO figures."))
    st.stop()
report = view.report
notes = [
    f"As of **{_when(as_of)}** (unix {as_of:.0f}). "
    + (
        "Every figure is computed exactly from the SQLite store."
        if view.source == "sqlite"
        else "Every figure comes from Prometheus: the counters' growth over each window as scraped"
        " by as_of (a request within a scrape interval of a window's edge may count on the other"
        " side); attribution by task only."
    )
]
if view.simulated and view.source == "prometheus":
    notes.append(
        f"The store holds {view.simulated:,} **simulated** requests (simulated clock) in this period:"
        " simulated data exists only in SQLite, so these figures leave them out. Choose SQLite to see them."
    )
elif view.simulated:
    notes.append(f"{view.simulated:,} of the period's requests are **simulated** (simulated clock).")
st.caption(" ".join(notes))

if all(f.total == 0 for f in report.slos):
    latest = "" if latest_ts is None else f" The latest request was at {_when(latest_ts)}."
    _write_link(st.session_state.get("slo_pick") or names[0], range_key or "window", as_of)
    st.info(f"No served requests in this window: no SLO can be judged.{latest} "
            + ("" if stored else LOAD_HINT))  # fmt: skip
    st.stop()

_tiles(view)
ordered = [f.name for f in slo_charts.sorted_by_budget(report.slos)]
if st.session_state.get("slo_pick") not in ordered:
    st.session_state["slo_pick"] = ordered[0]
by_name = {f.name: f for f in report.slos}
pick = st.selectbox("SLO", ordered, format_func=lambda n: by_name[n].display_name, key="slo_pick")
_write_link(pick, range_key or "window", as_of)
figures = by_name[pick]
_detail(figures, slo.slo_series(pick, range_key or "window", as_of, source), report.as_of)
if source == "prometheus":
    _prom_alerts(pick, as_of)
else:
    _episodes(pick, range_key or "window", as_of)

st.divider()
stamp = datetime.fromtimestamp(report.as_of, UTC).strftime("%Y%m%dT%H%M")
left, middle, right = st.columns(3)
left.download_button("Download review (Markdown)", view.markdown, file_name=f"slo-review-{stamp}.md",
                     mime="text/markdown", key="slo_download_md")  # fmt: skip
store_path = slo.store_path()
if store_path is not None:  # the HTML is built when clicked (it carries ~5 MB of inlined plotly.js)
    middle.download_button("Download review (HTML)", slo.review_html_download(report, store_path),
                           file_name=f"slo-review-{stamp}.html", mime="text/html", key="slo_download_html",
                           help="One self-contained file with the charts; opens offline")  # fmt: skip
right.download_button("Download review (JSON)", view.json_text, file_name=f"slo-review-{stamp}.json",
                      mime="application/json", key="slo_download_json")  # fmt: skip
