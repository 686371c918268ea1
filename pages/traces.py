"""Traces: find a request by status, task, latency or id; read its waterfall, span tree, log
lines, routing decisions and MCTS runs, and jump to the explorer or replay it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from app import auth, charts, components, golden, telemetry, telemetry_charts
from app.golden_form import capture_form
from app.telemetry import STATUSES, RequestInfo, RoutingStep, TraceDetail, TraceSummary

TASKS: dict[str | None, str] = {None: "any", **telemetry.TASK_LABELS}
WINDOWS = {
    None: "all time",
    900: "last 15 minutes",
    3600: "last hour",
    86_400: "last 24 hours",
    604_800: "last 7 days",
}
STATUS_BADGES = {"ok": "green", "error": "red", "invalid": "orange", "cancelled": "gray"}
OPEN_MARK = "▶"  # the list's "open" column on the trace shown below it
OPEN_BACKGROUND = "background-color: #e0e7ff"  # and its row's colour
UNKNOWN = "unknown"
HOW_TO_GET_TRACES = (
    "No traces yet: every request the engine answers is recorded here. Run a query on the "
    "**Query console**, or generate load from a shell:\n\n"
    "`python -m engine load --workload data/workloads/mixed.jsonl --rate 20 --duration 30 --seed 1`"
)


# -- choosing a trace -------------------------------------------------------------------------------


def _apply_link() -> None:
    """Open the trace a link names (``?trace=<id>`` or ``?request=<id>``) whenever it changes."""
    link = telemetry.parse_trace_link(st.query_params)
    if link is not None and link != st.session_state.get("traces_link"):
        st.session_state.traces_link = link
        st.session_state.traces_selected = link


def _filter_link() -> telemetry.TracesLink:
    """The filter link in the URL (``?status=error&task=game24&agent=hrm&since=...``): its status
    and task go into the widgets when the link is new (so a later choice sticks), its problems
    are shown; the other filters (verdict, agent, provider, router, variant, latency, time
    range) apply while the link is in the URL."""
    params = {k: st.query_params[k] for k in telemetry.FILTER_LINK_KEYS if k in st.query_params}
    link = telemetry.parse_traces_link(params)
    seen = tuple(sorted(params.items()))
    if params and seen != st.session_state.get("traces_filter_seen"):
        st.session_state.traces_filter_seen = seen
        st.session_state.traces_status = list(link.statuses)  # a new link sets both: none is "any"
        if link.task is not None:
            st.session_state.traces_task = link.task
        else:
            st.session_state.pop("traces_task", None)  # back to its default, "any"
        if link.since is not None or link.until is not None:
            st.session_state.pop("traces_window", None)  # "all time": the link's range applies
        st.session_state.pop("traces_selected", None)
    components.link_warnings(link.warnings)
    return link


def _clear_filter_link() -> None:
    for key in telemetry.FILTER_LINK_KEYS:
        st.query_params.pop(key, None)


def _link_filters(link: telemetry.TracesLink) -> None:
    """Say which of the link's filters apply beyond the widgets, with a button to drop them."""
    text = telemetry.link_filter_text(link)
    if text is None:
        return
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.info(f"Filtered by the link: {components.plain(text)}.", icon=":material/link:")
    right.button("Clear link filters", on_click=_clear_filter_link, key="traces_clear_link", width="stretch")


def _pick() -> None:
    """The table's selection callback: open the chosen row's trace."""
    rows = st.session_state.traces_table["selection"]["rows"]
    shown: list[tuple[str, str]] = st.session_state.get("traces_rows", [])
    if rows and rows[0] < len(shown):
        st.session_state.traces_selected = shown[rows[0]]


# -- formatting -------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:,.1f} ms"


def _value(value: Any, fmt: str = "{}") -> str:
    return UNKNOWN if value is None else fmt.format(value)


def _when(ts: float | None) -> str:
    return UNKNOWN if ts is None else pd.Timestamp(ts, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def _short(text: str | None, limit: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the list ---------------------------------------------------------------------------------------


def _is_open(t: TraceSummary, selected: tuple[str, str] | None) -> bool:
    """Whether ``t`` is the trace opened below the list (``selected``: ("trace"|"request", id))."""
    if selected is None:
        return False
    kind, value = selected
    return (t.request.trace_id if kind == "trace" else t.request.request_id) == value


def _table(traces: Sequence[TraceSummary], selected: tuple[str, str] | None = None) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "open": [OPEN_MARK if _is_open(t, selected) else "" for t in traces],
            "time": [pd.Timestamp(t.request.ts, unit="s", tz="UTC") for t in traces],
            "status": [t.request.status for t in traces],
            "task": [t.request.task for t in traces],
            "query": [_short(t.request.query) for t in traces],
            "latency (ms)": [t.request.latency_ms for t in traces],
            "spans": [t.span_count for t in traces],
            "verdict": [t.request.verdict for t in traces],
            "agents": [" → ".join(t.request.agents_used) for t in traces],
            "simulated": [t.request.simulated for t in traces],
            "trace id": [t.request.trace_id for t in traces],
        }
    )
    return table if table["simulated"].any() else table.drop(columns="simulated")


def _matched(matched: int) -> str:
    """How many requests matched, in words ("more than 10,000" past the count's cap)."""
    return f"more than {telemetry.COUNT_CAP:,}" if matched > telemetry.COUNT_CAP else f"{matched:,}"


def _list(traces: Sequence[TraceSummary], total: int, limit: int, matched: int, order: str) -> None:
    shown = (
        f"the first {len(traces):,} shown ({telemetry.ORDERS[order]}; narrow the filters to see the rest)"
        if matched > len(traces)
        else f"all shown, {telemetry.ORDERS[order]}"
    )
    simulated = sum(bool(t.request.simulated) for t in traces)
    sim = f" {simulated:,} of them are simulated (load generator, simulated clock)." * bool(simulated)
    selected: tuple[str, str] | None = st.session_state.get("traces_selected")
    st.caption(
        f"{_matched(matched)} matching trace(s), {shown} · {total:,} request(s) recorded in all.{sim} "
        f"Select a row to open its trace; the open one is marked {OPEN_MARK}. Click a column header to "
        "sort the rows shown."
    )
    st.session_state.traces_rows = [
        ("trace", t.request.trace_id) if t.request.trace_id else ("request", t.request.request_id)
        for t in traces
    ]
    table = _table(traces, selected)
    styled = table.style.apply(
        lambda row: [OPEN_BACKGROUND if row["open"] == OPEN_MARK else ""] * len(row), axis=1
    )
    st.dataframe(
        styled,
        key="traces_table",
        on_select=_pick,
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(traces), 420),
        column_config={
            "open": st.column_config.TextColumn("open", width=40, help="The trace shown below the list"),
            "time": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
            "latency (ms)": st.column_config.NumberColumn(format="%.1f"),
            "query": st.column_config.TextColumn(width="medium"),
            "trace id": st.column_config.TextColumn(width="small"),
        },
    )


# -- the detail -------------------------------------------------------------------------------------


def _request(request: RequestInfo | None, replay_url: str | None) -> None:
    if request is None:
        st.warning("No request row is recorded for this trace: only its spans and log lines are shown.")
        return
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Query**")
        st.code(request.query or UNKNOWN, language=None, wrap_lines=True)
        st.markdown(f"**Answer** ({components.plain(request.answer_kind or 'kind unknown')})")
        st.code(request.answer or "— no answer —", language=None, wrap_lines=True)
    with right:
        st.badge(request.status, color=STATUS_BADGES.get(request.status, "gray"))  # type: ignore[arg-type]
        st.markdown(
            f"**Seed** {_value(request.seed)} · **quality** {_value(request.quality, '{:.2f}')} · "
            f"**confidence** {_value(request.confidence, '{:.2f}')}  \n"
            f"**Agents** {components.plain(' → '.join(request.agents_used) or '—')}  \n"
            f"**Stopped** {components.md_escape(request.stop_reason or UNKNOWN)}  \n"
            f"**Provider** {components.plain(request.provider or UNKNOWN)} · "
            f"**tokens** {_value(request.tokens, '{:,}')} · "
            f"**cost** {_value(request.cost_usd, '${:.4f}')}"
        )
        who = [f"user {request.user_id}"] if request.user_id else []
        if request.experiment:
            who.append(f"experiment {request.experiment} / variant {request.variant or UNKNOWN}")
        if who:
            st.caption(components.md_escape(" · ".join(who)))
        if request.flags:
            st.caption(components.plain(f"Feature flags applied: {request.flags.replace(',', ', ')}"))
        if request.simulated:
            st.caption("Recorded by the load generator on a simulated clock.")
    a, b, c, d = st.columns(4)
    a.metric("Latency", _ms(request.latency_ms))
    b.metric("Router", components.plain(request.router or UNKNOWN))
    c.metric("Task", components.plain(request.task or UNKNOWN))
    d.metric(
        "Verdict",
        components.plain(request.verdict or UNKNOWN),
        help="Against ground truth; unknown when there is none",
    )
    if request.error:
        st.error(f"**{components.plain(request.status)}**: {components.plain(request.error)}")
    fallback = telemetry.fallback_note(request.provider, request.fallback_from, request.fallback_error)
    if fallback:
        st.warning("The requested LLM provider failed: a fallback provider answered.")
        st.text(fallback)
    if replay_url:
        st.markdown(
            f"[Replay in the Query console]({replay_url}) — same query, task, seed and router "
            "(options not recorded take the console's defaults)."
        )
        if denied := auth.operator_disabled_reason("run_query"):
            st.caption(f":material/lock: The link opens the request; running it needs an operator. {denied}")


def _capture(request: RequestInfo | None) -> None:
    """The "Capture as golden" control: make the request a golden trace (Golden traces page)."""
    if request is None:
        return
    with st.expander("Capture as golden", icon=":material/verified:"):
        st.caption(
            "Replays the request with its seed and settings and writes it to the golden suite, where every "
            "suite run compares the engine against it."
        )
        capture_form(
            f"traces_golden_{request.request_id}",
            request_id=request.request_id,
            default_name=golden.default_golden_name(request.task, request.request_id),
            status=request.status,
        )


def _spans(detail: TraceDetail) -> None:
    st.subheader("Waterfall")
    if not detail.spans:
        st.info("No spans recorded for this trace.")
        return
    floor = telemetry_charts.gap_floor_ms(detail.spans)
    st.plotly_chart(
        telemetry_charts.waterfall_figure(detail.spans, floor), width="stretch", key="traces_waterfall"
    )
    gaps = [d for s in detail.spans for _, d in s.gaps]
    hidden = [d for d in gaps if d < floor]
    st.caption(
        "Bars start at the span's offset from the trace start and last its duration. "
        "Agents in their routing colours (HRM indigo, TRM amber, MCTS teal); errors in red. "
        "**Untraced** rows (hatched grey) are time inside a span that none of its child spans covers: "
        "the span's own code between its children. A span's **self time** is its duration minus "
        f"its children's; the untraced time adds up to {sum(gaps):,.1f} ms"
        + (
            f" ({len(hidden)} gap(s) under {floor:,.2f} ms, {sum(hidden):,.2f} ms in all, not drawn)."
            if hidden
            else "."
        )
    )
    request_latency = detail.request.latency_ms if detail.request is not None else None
    for note in telemetry.untraced_notes(detail.spans, request_latency):
        st.info(components.plain(note), icon=":material/timer:")
    st.subheader("Span tree")
    tree = pd.DataFrame(
        {
            "span": [
                "\u2003" * s.depth + ("└ " if s.depth else "") + telemetry_charts.span_label(s)
                for s in detail.spans
            ],
            "start (ms)": [s.offset_ms for s in detail.spans],
            "duration (ms)": [s.duration_ms for s in detail.spans],
            "self (ms)": [s.self_ms for s in detail.spans],
            "untraced (ms)": [sum(d for _, d in s.gaps) if s.gaps else None for s in detail.spans],
            "status": [s.status or UNKNOWN for s in detail.spans],
            "error": [s.error or "" for s in detail.spans],
            "span id": [s.span_id + (" (parent missing)" if s.orphan else "") for s in detail.spans],
        }
    )
    st.dataframe(
        tree,
        hide_index=True,
        width="stretch",
        column_config={
            "span": st.column_config.TextColumn(width="medium"),
            "start (ms)": st.column_config.NumberColumn(format="%.2f"),
            "duration (ms)": st.column_config.NumberColumn(format="%.2f"),
            "self (ms)": st.column_config.NumberColumn(
                format="%.2f", help="Duration minus the time its child spans cover"
            ),
            "untraced (ms)": st.column_config.NumberColumn(
                format="%.2f",
                help="Time inside this span no child span covers (its self time, for a span with children)",
            ),
        },
        placeholder="",
    )
    with st.expander("Span attributes"):
        labels = {s.span_id: f"{'· ' * s.depth}{s.name} ({s.span_id})" for s in detail.spans}
        chosen = st.selectbox("Span", list(labels), format_func=labels.get, key="traces_span")
        span = next((s for s in detail.spans if s.span_id == chosen), detail.spans[0])
        shown = dict(span.attributes or {})
        if isinstance(shown.get("step"), int):
            shown["step"] = charts.step_number(shown["step"])  # numbered from 1, as everywhere on screen
        st.json(shown, expanded=True)


def _logs(detail: TraceDetail) -> None:
    st.subheader("Log lines")
    if not detail.logs:
        st.info("No log lines recorded for this trace.")
        return
    st.dataframe(
        pd.DataFrame(
            {
                "time (UTC)": [
                    pd.Timestamp(x.ts, unit="s", tz="UTC").strftime("%H:%M:%S.%f")[:-3] for x in detail.logs
                ],
                "+ms": [x.offset_ms for x in detail.logs],
                "level": [x.level for x in detail.logs],
                "logger": [x.logger or UNKNOWN for x in detail.logs],
                "message": [x.message for x in detail.logs],
                "span": [x.span_name or x.span_id or "" for x in detail.logs],
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={
            "+ms": st.column_config.NumberColumn(format="%.1f"),
            "message": st.column_config.TextColumn(width="large"),
        },
    )


def _unfinished(step: RoutingStep) -> bool:
    """A decision whose step never finished: the engine stores it without confidence or latency."""
    return step.confidence is None and step.latency_ms is None


def _routing(detail: TraceDetail) -> None:
    st.subheader("Routing decisions")
    if not detail.routing:
        st.info("No routing decisions recorded for this request.")
        return
    outcomes = telemetry.step_outcomes(detail)
    if any(_unfinished(r) for r in detail.routing):
        st.caption(
            "A step recorded unfinished (the request ended before it was) has no confidence or latency; "
            "its outcome says from the agent's span and log lines whether the agent answered first."
        )
        for r, outcome in zip(detail.routing, outcomes, strict=True):
            if outcome != "finished":
                st.warning(
                    f"{charts.step_label(r.step).capitalize()} ({components.plain(r.agent)}): "
                    f"{components.plain(outcome)}"
                )
    agents = list(dict.fromkeys(a for step in detail.routing for a in step.probabilities))
    table = pd.DataFrame(
        {
            "step": [charts.step_number(r.step) for r in detail.routing],
            "agent": [r.agent for r in detail.routing],
            "reason": [r.reason or UNKNOWN for r in detail.routing],
            "step outcome": list(outcomes),
            "confidence": [r.confidence for r in detail.routing],
            **{f"p({a})": [r.probabilities.get(a) for r in detail.routing] for a in agents},
            "latency (ms)": [r.latency_ms for r in detail.routing],
        }
    )
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "step outcome": st.column_config.TextColumn(width="large"),
            "confidence": number,
            **{f"p({a})": number for a in agents},
            "latency (ms)": st.column_config.NumberColumn(format="%.1f"),
        },
        placeholder="—",
    )


def _mcts(detail: TraceDetail, explorer_urls: dict[str, str]) -> None:
    st.subheader("MCTS")
    if not detail.mcts_runs:
        st.caption("No MCTS search ran in this request.")
        return
    for run in detail.mcts_runs:
        with st.container(border=True):
            a, b, c, d, e = st.columns(5)
            a.metric("Iterations", _value(run.iterations, "{:,}"))
            b.metric("Best action", components.plain(run.best_action or UNKNOWN))
            c.metric("Root value", _value(run.root_value, "{:+.3f}"))
            d.metric("Tree size", _value(run.tree_size, "{:,}"), help=f"{run.node_count:,} node(s) stored")
            e.metric("Time", _ms(run.elapsed_ms))
            st.caption(
                f"Run {components.plain(str(run.run_id))} · stopped by "
                f"{components.plain(run.termination_reason or UNKNOWN)} · cache hit rate "
                f"{_value(run.cache_hit_rate, '{:.1%}')} · search seed {_value(run.seed)}"
            )
            url = explorer_urls.get(run.run_id)
            if url:
                st.markdown(
                    f"[Open this search in the MCTS explorer]({url}) — same position, seed and budget."
                )


def _detail(trace_id_or_request: tuple[str, str]) -> None:
    kind, value = trace_id_or_request
    lookup = telemetry.trace_lookup(**{f"{kind}_id": value})
    if lookup.detail is None:
        st.warning(components.plain(lookup.message or f"No {kind} {value}."))
        return
    detail = lookup.detail
    st.session_state.traces_link = ("trace", detail.trace_id)
    kept = {k: st.query_params[k] for k in telemetry.FILTER_LINK_KEYS if k in st.query_params}
    st.query_params.from_dict({**kept, "trace": detail.trace_id})  # the filter link stays
    st.divider()
    st.header(f"Trace {components.plain(detail.trace_id)}")
    cids = components.plain(", ".join(detail.correlation_ids) or UNKNOWN)
    st.caption(
        f"Started {_when(detail.start_ts)} · spans cover {_ms(detail.duration_ms)} · {len(detail.spans)} "
        f"span(s), {len(detail.logs)} log line(s) · request "
        f"{components.plain(detail.request.request_id) if detail.request else UNKNOWN} · "
        f"correlation id {cids}"
    )
    for note in detail.notes:
        st.warning(components.plain(note))
    _request(detail.request, lookup.replay_url)
    components.confidence_span_note(detail.spans, detail.request.confidence if detail.request else None)
    _capture(detail.request)
    _spans(detail)
    _logs(detail)
    _routing(detail)
    _mcts(detail, lookup.explorer_urls or {})


# -- the page ---------------------------------------------------------------------------------------

st.title("Traces")
st.caption(
    "Every request the engine answered, newest first. Filter by status, task, latency, time or id; "
    "open one to see its waterfall, span tree, log lines, routing decisions and MCTS runs."
)
link = _filter_link()
_apply_link()
with st.container(border=True):
    a, b, c, d = st.columns([2, 1, 1, 1])
    statuses = a.multiselect("Status", STATUSES, key="traces_status", placeholder="any status")
    task = b.selectbox("Task", list(TASKS), format_func=TASKS.get, key="traces_task")
    # No bounds on the number inputs: TraceFilter names a bad value (the browser would drop it
    # silently and the list would keep the previous filter).
    min_ms = c.number_input("Min latency (ms)", value=None, step=10.0, key="traces_min_ms")
    max_ms = d.number_input("Max latency (ms)", value=None, step=10.0, key="traces_max_ms")
    e, f, g = st.columns([2, 1, 1])
    id_text = e.text_input(
        "Id", key="traces_id", placeholder="request, trace or correlation id — or its first characters"
    )
    window = f.selectbox("Time", list(WINDOWS), format_func=WINDOWS.get, key="traces_window")
    limit = g.number_input("Show at most", value=200, step=50, key="traces_limit")
    h, i = st.columns([3, 1])
    query_text = h.text_input(
        "Query text",
        key="traces_query",
        max_chars=200,
        placeholder="part of the query, e.g. connect4 or 8 8 — any case; % and _ match only themselves",
    )
    order = i.selectbox(
        "Sort by", list(telemetry.ORDERS), format_func=telemetry.ORDERS.get, key="traces_order"
    )
    _link_filters(link)

listing = telemetry.trace_list(
    statuses=statuses,
    task=task,
    min_latency_ms=min_ms,
    max_latency_ms=max_ms,
    id_text=id_text,
    window_s=window,
    limit=limit,
    query_text=query_text,
    order=order,
    **link.filters(),
)
if not listing.enabled:
    st.info(
        "Telemetry is off (`ARBOR_TELEMETRY=off`), so no traces are recorded. Turn it on to use this page."
    )
    st.stop()
for problem in listing.problems:
    st.warning(components.plain(problem))
if not listing.problems:
    if listing.total == 0:
        st.info(HOW_TO_GET_TRACES)
    elif not listing.traces:
        st.info(f"No trace matches these filters ({listing.total:,} request(s) recorded in all).")
    else:
        _list(listing.traces, listing.total, listing.limit, listing.matched, order)

selected: tuple[str, str] | None = st.session_state.get("traces_selected")
if selected is not None:
    _detail(selected)
elif listing.traces:
    st.info("Select a trace in the table to open it.")
