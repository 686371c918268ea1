"""Golden traces: the suite's status (last run, per trace pass / regression / error, pass-rate
history), a run with progress, one trace's diff against its golden (span trees side by side with
the first divergence marked, routing probabilities, answer and verdict, latency), and capture."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from app import charts, components, golden, golden_charts
from app.golden_form import capture_form
from app.safe_text import plain

STATUS_BADGES = {"pass": "green", "regression": "red", "error": "orange", golden.NOT_RUN: "gray"}
STATUS_ICONS = {
    "pass": ":material/check_circle:",
    "regression": ":material/cancel:",
    "error": ":material/error:",
    golden.NOT_RUN: ":material/schedule:",
}
MARK = "◀ first divergence"
MARK_BACKGROUND = "background-color: #fee2e2"
UNKNOWN = "—"


def _when(ts: float | None) -> str:
    return UNKNOWN if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ms(value: float | None) -> str:
    return UNKNOWN if value is None else f"{value:,.2f} ms"


def _num(value: float | None, fmt: str = "{:.2f}") -> str:
    return UNKNOWN if value is None else fmt.format(value)


def _badge(status: str) -> None:
    st.badge(plain(status), color=STATUS_BADGES.get(status, "gray"), icon=STATUS_ICONS.get(status))  # type: ignore[arg-type]


# -- run ---------------------------------------------------------------------------------------------------


def _run_controls() -> None:
    """Replays per golden, the latency gate and the Run button; a click runs the suite here, with a
    progress bar, and keeps a run the store could not record for this session."""
    denied = golden.run_disabled_reason()
    a, b, c = st.columns([1, 1, 1], vertical_alignment="bottom")
    repeat = a.number_input(  # no bounds: run_suite_now names a bad value (the browser drops it)
        "Replays per golden",
        value=3,
        step=1,
        key="golden_repeat",
        help="Behaviour must match on every replay; latency is their median (one more replay warms caches).",
    )
    gate = b.checkbox(
        "Latency gate",
        value=True,
        key="golden_gate",
        help="A suite latency regression (Wilcoxon signed-rank test significant and a median slow-down "
        "beyond the tolerance) fails the run.",
    )
    if not components.guarded_button(c, "Run the suite", key="golden_run", denied=denied):
        return
    bar = st.progress(0.0, text="Loading the suite…")

    def progress(done: int, total: int, name: str, status: str) -> None:
        bar.progress(done / total if total else 1.0, text=plain(f"{done} of {total} · {name}: {status}"))

    run = golden.run_suite_now(int(repeat), bool(gate), progress)
    bar.empty()
    if run.result is None:
        st.error(plain(run.message or "The suite did not run."), icon=":material/error:")
        return
    r = run.result
    st.session_state["golden_unrecorded"] = None if r.recorded else r
    summary = (
        f"{r.passed} passed, {r.failed} regression(s), {r.errors} error(s) in {r.duration_s:.1f} s "
        f"(replays per golden: {r.repeat}). Latency: {r.latency.detail}."
    )
    (st.success if r.ok else st.error)(plain(summary), icon=STATUS_ICONS["pass" if r.ok else "regression"])
    if not r.recorded:
        st.warning(
            plain(
                "This run was not recorded in the store"
                + (f" ({r.record_error})" if r.record_error else " (telemetry is off)")
                + ": it is shown for this session only and is not in the history."
            )
        )
    if r.failed or r.errors:
        first = next(x for x in r.results if x.status != "pass")
        st.session_state["golden_trace"] = first.name


# -- status ------------------------------------------------------------------------------------------------


def _status(status: golden.SuiteStatus) -> None:
    in_run = [r for r in status.rows if r.status != golden.NOT_RUN]
    cols = st.columns(5)
    cols[0].metric("Goldens", f"{len(status.names):,}", help=plain(f"Suite directory {status.directory}"))
    cols[1].metric("Passed", f"{status.count('pass'):,}")
    cols[2].metric("Regressions", f"{status.count('regression'):,}")
    cols[3].metric("Errors", f"{status.count('error'):,}")
    lat = status.latency or {}
    change = lat.get("median_change")
    cols[4].metric(
        "Latency (median change)",
        f"{change:+.1%}" if isinstance(change, int | float) else UNKNOWN,
        delta=None if not lat else ("regression" if lat.get("regression") else "no regression"),
        delta_color="inverse" if lat.get("regression") else "off",
        delta_arrow="off",
        help=plain(str(lat.get("detail") or "No run yet.")),
    )
    if in_run:
        st.caption(plain(f"Last run {_when(status.ts)} · run {status.run_id}"))
    else:
        st.info(
            "No suite run is recorded yet: run the suite above, or from a shell "
            "`python -m engine golden run` (it records its runs in the same store)."
        )
    if not status.rows:
        return
    table = pd.DataFrame(
        {
            "golden": [r.name for r in status.rows],
            "status": [r.status for r in status.rows],
            "first divergence": [r.first_divergence or "" for r in status.rows],
            "latency (ms)": [r.latency_ms for r in status.rows],
            "golden (ms)": [r.golden_latency_ms for r in status.rows],
            "change": [None if r.latency_change is None else r.latency_change * 100 for r in status.rows],
            "quality": [r.quality for r in status.rows],
            "golden quality": [r.golden_quality for r in status.rows],
        }
    )
    st.session_state["golden_rows"] = [r.name for r in status.rows]
    st.dataframe(
        table,
        key="golden_table",
        on_select=_pick,
        selection_mode="single-row",
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(status.rows), 460),
        column_config={
            "golden": st.column_config.TextColumn(width="medium"),
            "status": st.column_config.TextColumn(width=90),
            "first divergence": st.column_config.TextColumn(width="large"),
            "latency (ms)": st.column_config.NumberColumn(format="%.2f"),
            "golden (ms)": st.column_config.NumberColumn(format="%.2f"),
            "change": st.column_config.NumberColumn(
                format="%+.0f %%", help="Replayed median against the golden's"
            ),
            "quality": st.column_config.NumberColumn(format="%.2f"),
            "golden quality": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    st.caption(
        "Latency never fails a trace: the suite judges it across all traces. Select a row to open its diff."
    )


def _pick() -> None:
    """The status table's selection callback: open the chosen golden's diff."""
    rows = st.session_state.golden_table["selection"]["rows"]
    shown: list[str] = st.session_state.get("golden_rows", [])
    if rows and rows[0] < len(shown):
        st.session_state["golden_trace"] = shown[rows[0]]


def _history(history: Sequence[golden.SuiteRunSummary]) -> None:
    st.subheader("History")
    if not history:
        st.caption("No past runs in the store.")
        return
    st.plotly_chart(golden_charts.pass_rate_figure(history), width="stretch", key="golden_history_chart")
    with st.expander(f"Past runs ({len(history)})"):
        st.dataframe(
            pd.DataFrame(
                {
                    "started (UTC)": [_when(r.ts) for r in history],
                    "passed": [r.passed for r in history],
                    "regressions": [r.failed for r in history],
                    "errors": [r.errors for r in history],
                    "pass rate": [r.pass_rate * 100 for r in history],
                    "run id": [r.run_id for r in history],
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"pass rate": st.column_config.NumberColumn(format="%.1f %%")},
        )


# -- diff --------------------------------------------------------------------------------------------------


def _choose(status: golden.SuiteStatus) -> str | None:
    """The golden to diff: the deep link's (when it changes), else the table's or the selectbox's
    choice, else the first that did not pass.  Keeps ``?trace=<name>`` in the URL."""
    names = list(status.names)
    if not names:
        return None
    params = dict(st.query_params)
    if params.get("trace") != st.session_state.get("golden_link_seen"):
        st.session_state["golden_link_seen"] = params.get("trace")
        link = golden.parse_golden_link(params, names)
        components.link_warnings(link.warnings)
        if link.trace is not None:
            st.session_state["golden_trace"] = link.trace
    if st.session_state.get("golden_trace") not in names:
        failing = [r.name for r in status.rows if r.status in ("regression", "error")]
        st.session_state["golden_trace"] = (failing or names)[0]
    by_name = {r.name: r.status for r in status.rows}
    name = st.selectbox(
        "Golden trace",
        names,
        key="golden_trace",
        format_func=lambda n: f"{n} — {by_name.get(n, golden.NOT_RUN)}",
    )
    st.query_params["trace"] = name
    st.session_state["golden_link_seen"] = name
    return name


def _marked(frame: pd.DataFrame, column: str = "≠") -> pd.io.formats.style.Styler:
    """``frame`` with the rows marked in ``column`` highlighted."""
    return frame.style.apply(lambda row: [MARK_BACKGROUND if row[column] else "" for _ in row], axis=1)


def _span_frame(lines: Sequence[golden.SpanLine]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "span": ["\u2003" * s.depth + ("└ " if s.depth else "") + s.name for s in lines],
            "≠": [MARK if s.marked else "" for s in lines],
            "ms": [s.latency_ms for s in lines],
            "attributes": [s.attributes for s in lines],
        },
        columns=["span", "≠", "ms", "attributes"],
    )


def _span_config() -> dict[str, Any]:
    return {
        "span": st.column_config.TextColumn(width="medium"),
        "≠": st.column_config.TextColumn(width="small"),
        "ms": st.column_config.NumberColumn(format="%.2f", width="small"),
        "attributes": st.column_config.TextColumn(width="large"),
    }


def _spans(diff: golden.TraceDiff) -> None:
    st.markdown("**Span trees** (pre-order; children by start time; behaviour attributes only)")
    left, right = st.columns(2)
    with left:
        st.caption("Golden (per-span medians of the captured repetitions)")
        if diff.golden_spans:
            st.dataframe(
                _marked(_span_frame(diff.golden_spans)),
                hide_index=True,
                width="stretch",
                key="golden_spans_golden",
                column_config=_span_config(),
            )
        else:
            st.caption("No golden spans.")
    with right:
        st.caption("Now (the replay's spans as recorded; its trace is linked above)")
        if diff.now_spans is not None:
            st.dataframe(
                _marked(_span_frame(diff.now_spans)),
                hide_index=True,
                width="stretch",
                key="golden_spans_now",
                column_config=_span_config(),
            )
        else:
            st.caption("No replayed spans to show.")
    spans_first = next((d for d in diff.divergences if d.section == "spans"), None)
    if spans_first is not None:
        st.caption(plain(f"Marked: {spans_first.message}"))


def _routing(diff: golden.TraceDiff) -> None:
    st.markdown("**Routing** (the router's probabilities at each step, golden and now)")
    if not diff.routing:
        st.caption("No routing steps on either side.")
        return
    agents = diff.agents
    st.plotly_chart(
        golden_charts.routing_figure(diff.routing, agents), width="stretch", key="golden_routing_chart"
    )
    frame = pd.DataFrame(
        {
            "step": [charts.step_number(r.step) for r in diff.routing],
            "≠": [MARK if r.marked else "" for r in diff.routing],
            "golden agent": [r.golden_agent or UNKNOWN for r in diff.routing],
            "now agent": [r.now_agent or UNKNOWN for r in diff.routing],
            **{
                f"{side} p({a})": [
                    (r.golden_probabilities if side == "golden" else r.now_probabilities).get(a)
                    for r in diff.routing
                ]
                for a in agents
                for side in ("golden", "now")
            },
            "golden reason": [r.golden_reason or UNKNOWN for r in diff.routing],
            "now reason": [r.now_reason or UNKNOWN for r in diff.routing],
        }
    )
    number = st.column_config.NumberColumn(format="%.4f")
    st.dataframe(
        _marked(frame),
        hide_index=True,
        width="stretch",
        key="golden_routing_table",
        column_config={c: number for c in frame.columns if " p(" in c},
    )


def _outcome(diff: golden.TraceDiff) -> None:
    g = diff.golden
    assert g is not None
    st.markdown("**Answer and verdict**")
    left, right = st.columns(2)
    left.caption("Golden answer")
    left.code(g.answer or "(empty)", language=None, wrap_lines=True)
    right.caption("Now")
    right.code(
        (diff.answer or "(empty)") if diff.replayed else "not replayed", language=None, wrap_lines=True
    )
    a, b, c = st.columns(3)
    changed = diff.replayed and diff.answer != g.answer
    a.metric("Answer", "changed" if changed else ("same" if diff.replayed else UNKNOWN))
    now_verdict = plain(diff.verdict or UNKNOWN) if diff.replayed else UNKNOWN
    b.metric(
        "Verdict",
        now_verdict,
        help=plain(f"golden: {g.verdict}"),
        delta=None if not diff.replayed or diff.verdict == g.verdict else plain(f"was {g.verdict}"),
        delta_color="off",
    )
    c.metric(
        "Quality", _num(diff.quality) if diff.replayed else UNKNOWN, help=plain(f"golden: {_num(g.quality)}")
    )


def _latency(diff: golden.TraceDiff, suite_latency: dict[str, object] | None) -> None:
    st.markdown("**Latency** (reported; it never fails a trace on its own)")
    a, b, c = st.columns(3)
    a.metric("Now (median)", _ms(diff.latency_ms))
    b.metric("Golden (median)", _ms(diff.golden_latency_ms))
    c.metric("Change", UNKNOWN if diff.latency_change is None else f"{diff.latency_change:+.1%}")
    if diff.golden_samples or diff.now_samples:
        st.plotly_chart(
            golden_charts.latency_figure(diff.golden_samples, diff.now_samples),
            width="stretch",
            key="golden_latency_chart",
        )
    if suite_latency and suite_latency.get("detail"):
        st.caption(plain(f"Suite verdict of this run: {suite_latency['detail']}"))
    if diff.span_latency:
        with st.expander("Per-span latency"):
            st.dataframe(
                pd.DataFrame(
                    {
                        "span": [r.path for r in diff.span_latency],
                        "golden (ms)": [r.golden_ms for r in diff.span_latency],
                        "now (ms)": [r.now_ms for r in diff.span_latency],
                    }
                ),
                hide_index=True,
                width="stretch",
                column_config={
                    "span": st.column_config.TextColumn(width="large"),
                    "golden (ms)": st.column_config.NumberColumn(format="%.3f"),
                    "now (ms)": st.column_config.NumberColumn(format="%.3f"),
                },
            )
            st.caption(
                "Golden: median of the captured repetitions. Now: the replay whose trace is linked above (on "
                "a regression, the first replay that diverged, which may be the run's untimed warm-up)."
            )


def _golden_facts(g: golden.GoldenFile) -> None:
    r = g.request
    st.caption(
        plain(
            f"Request: task {r.task}, router {r.router}, seed {r.seed}, MCTS {'on' if r.use_mcts else 'off'} "
            f"({r.mcts_iterations} iterations, c {r.settings.mcts_c:g}), RAG {'on' if r.use_rag else 'off'}, "
            f"max steps {r.max_steps}, provider {r.effective_provider()}. Captured {g.captured_at} by "
            f"{g.engine_version} from {g.repetitions} repetition(s)"
            + (f", from request {g.source_request_id}" if g.source_request_id else "")
            + "."
        )
    )
    st.code(r.query, language=None, wrap_lines=True)
    for rb in g.history:
        st.caption(plain(f"Re-baselined {rb.at} (was {rb.previous_engine_version}): {rb.reason}"))


def _diff(name: str, status: golden.SuiteStatus) -> None:
    diff = golden.trace_diff(name, st.session_state.get("golden_unrecorded"))
    head, badge = st.columns([5, 1], vertical_alignment="center")
    head.subheader(plain(name))
    with badge:
        _badge(diff.status)
    when = f"run of {_when(diff.ts)}" if diff.ts is not None else "not in the last run"
    st.caption(plain(f"{when}" + (f" · run {diff.run_id}" if diff.run_id else "")))
    if diff.status == "regression":
        st.error(
            plain(f"First divergence: {diff.first_divergence or 'not recorded'}"), icon=":material/cancel:"
        )
    elif diff.status == "error":
        st.error(plain(f"Error: {diff.first_divergence or 'not recorded'}"), icon=":material/error:")
    elif diff.status == "pass":
        st.success(
            "The replay matched its golden: routing, span tree, answer, verdict and quality.",
            icon=":material/check_circle:",
        )
    else:
        st.info("The last run did not include this golden: only its golden side is shown.")
    for note in diff.notes:
        st.warning(plain(note))
    if diff.trace_id:
        st.page_link(
            "../pages/traces.py",
            label="Open the replay's trace",
            icon=":material/timeline:",
            query_params={"trace": diff.trace_id},
            help="The replay's waterfall, span tree, log lines and routing decisions on the Traces page",
        )
    if diff.golden is None:
        st.warning(plain(diff.golden_problem or "The golden file cannot be read."))
        return
    _golden_facts(diff.golden)
    if len(diff.divergences) > 1:
        with st.expander(f"Every divergence ({len(diff.divergences)}, in the comparison order)"):
            st.dataframe(
                pd.DataFrame(
                    {
                        "#": list(range(1, len(diff.divergences) + 1)),
                        "section": [d.section for d in diff.divergences],
                        "where": [d.where for d in diff.divergences],
                        "message": [d.message for d in diff.divergences],
                    }
                ),
                hide_index=True,
                width="stretch",
                column_config={"message": st.column_config.TextColumn(width="large")},
            )
    _outcome(diff)
    _routing(diff)
    _spans(diff)
    _latency(diff, status.latency if diff.run_id == status.run_id else None)


# -- the page ----------------------------------------------------------------------------------------------

st.title("Golden traces")
st.caption(
    "Known requests replayed with their seed and settings and compared with what they did when captured: "
    "routing, span tree, answer and verdict, quality; latency judged across the suite."
)
with st.container(border=True):
    _run_controls()
status = golden.suite_status(st.session_state.get("golden_unrecorded"))
for problem in status.problems:
    st.warning(plain(problem))
if not status.recording:
    st.info("Telemetry is off (`ARBOR_TELEMETRY=off`): runs are not recorded, so there is no history.")
if status.load_errors:
    with st.expander(
        f"{len(status.load_errors)} golden file(s) do not load (errors in every run)", expanded=True
    ):
        for message in status.load_errors:
            st.warning(plain(message))

st.subheader("Last run")
_status(status)
_history(status.history)

st.subheader("Diff")
chosen = _choose(status)
if chosen is None:
    st.info(plain(f"The suite directory {status.directory} holds no golden traces yet: capture one below."))
else:
    _diff(chosen, status)

st.subheader("Capture a request")
st.caption(
    "Turn a stored request (answered, with its seed and the offline LLM) into a golden trace. "
    "The Traces page has the same button for the request it shows."
)
capture_form("golden_capture")
