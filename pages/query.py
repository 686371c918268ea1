"""Query console: run a query through the engine and watch routing, agents and MCTS live."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import streamlit as st

from app import auth, charts, components
from app import query as console
from app.query import DEFAULT_CONFIDENCE_THRESHOLD, Consensus, QueryRequest, QueryResult, TreeSnapshot

log = logging.getLogger(__name__)

TASKS = console.CONSOLE_TASKS
ROUTERS = console.ROUTER_LABELS
PROVIDERS: list[str | None] = [None, *console.PROVIDERS]
FIELD_LABELS = {
    "query": "Query",
    "task": "Task",
    "mcts_iterations": "MCTS iterations",
    "seed": "Seed",
    "router": "Router",
    "provider": "Provider",
    "max_steps": "Max steps",
}
HELP = (
    "Name the task with a prefix — `24: 4 7 8 8`, `tictactoe: X.O/.X./..O` (rows top to bottom), "
    "`connect4: 4453` (columns played) — or ask an operations question in plain words."
)


def _init() -> None:
    """Seed the widgets once per session from a deep link (?q=...&task=...&seed=...), and
    restore the form from the last run when returning from another page."""
    if not st.session_state.get("query_linked"):
        st.session_state.query_linked = True
        link = console.parse_query_link(
            st.query_params, default_iterations=console.get_settings().mcts_iterations
        )
        linked = {
            "query_text": link.query,
            "query_task": link.task,
            "query_router": link.router,
            "query_seed": link.seed,
            "query_iterations": link.iterations,
        }
        components.apply_link(linked, link.warnings)
    # the form as it was submitted (an empty seed stays empty), not the seed the run drew
    state = st.session_state
    last: QueryRequest | None = state.get("query_submitted") or state.get("query_request")
    if last is not None and "query_text" not in st.session_state:
        st.session_state.query_text = last.query
        st.session_state.query_task = last.task
        st.session_state.query_router = last.router
        st.session_state.query_seed = last.seed
        st.session_state.query_iterations = last.mcts_iterations
        st.session_state.query_max_steps = last.max_steps
        st.session_state.query_use_mcts = last.use_mcts
        st.session_state.query_use_rag = last.use_rag
        st.session_state.query_provider = last.provider
    st.session_state.setdefault("query_text", console.examples("game24")[0][1])
    defaults = {
        "query_iterations": console.get_settings().mcts_iterations,
        "query_max_steps": 3,
        "query_use_mcts": True,
        "query_use_rag": True,
    }
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


def _use_example() -> None:
    chosen = st.session_state.get("query_example")
    text = dict(console.examples(st.session_state.query_task)).get(chosen)
    if text is not None:
        st.session_state.query_text = text


def _rerun_same_seed() -> None:
    st.session_state.query_pending = st.session_state.query_request


def _forget_result() -> None:
    """Drop the last answer: after a rejected or stopped query it would read as this one's."""
    for key in ("query_result", "query_consensus", "query_snapshots"):
        st.session_state.pop(key, None)


def _build_request(**fields: Any) -> QueryRequest | None:
    """The validated request, or None after showing one error per invalid field (the previous
    answer is cleared: it is not this query's)."""
    try:
        return QueryRequest(**fields)
    except console.ValidationError as exc:
        st.session_state.query_errors = console.validation_problems(exc, FIELD_LABELS)
        _forget_result()
        return None


def _stop() -> None:
    st.session_state.query_stop_pressed = True


def _stopped_run() -> None:
    """A run that did not finish: the page was rerun while it streamed (Stop pressed, or another
    widget used), so its stream was closed and the engine recorded the request as cancelled."""
    running: dict[str, str] | None = st.session_state.pop("query_running", None)
    pressed = st.session_state.pop("query_stop_pressed", False)
    if running is None:
        return
    _forget_result()
    st.session_state.query_errors = []
    why = "you pressed Stop" if pressed else "the page was rerun by another action while it ran"
    st.warning(
        components.plain(
            f"Stopped: the query “{running['query'][:200]}” was cancelled before it finished ({why}). "
            f"It is recorded as cancelled (request {running['request_id']}); nothing else changed."
        ),
        icon=":material/stop_circle:",
    )


def _run(request: QueryRequest) -> None:
    """Stream the request's events into a live view, then keep the result in session state.  A
    Stop button stops the run: the click reruns the page, the stream is closed at the event it
    was on (a live search stops at its next snapshot) and the engine records it as cancelled."""
    resolved = request.resolved_task()
    reward_range = None if resolved == "freeform" else console.task(resolved).reward_range
    request_id = uuid.uuid4().hex
    stop = st.empty()
    stop.button(
        "Stop",
        key="query_stop",
        icon=":material/stop_circle:",
        on_click=_stop,
        help="Stops the query at its next step or MCTS snapshot; it is recorded as cancelled",
    )
    live = components.LiveRun(
        request.mcts_iterations, reward_range, threshold=DEFAULT_CONFIDENCE_THRESHOLD, task=resolved
    )
    st.session_state.query_running = {"request_id": request_id, "query": request.query}
    stream = console.stream_query(request, request_id=request_id)
    try:
        for event in stream:
            live(event)
    except console.ENGINE_ERRORS as exc:
        st.session_state.pop("query_running", None)
        stop.empty()
        live.clear()
        st.session_state.query_errors = [console.error_message(exc, request)]
        _forget_result()
        return
    except Exception as exc:  # a bug: say so plainly, keep the traceback in the log
        log.exception("query failed")
        st.session_state.pop("query_running", None)
        stop.empty()
        live.clear()
        st.session_state.query_errors = [f"The engine failed unexpectedly ({type(exc).__name__}): {exc}"]
        _forget_result()
        return
    finally:  # interrupted by a rerun (Stop): query_running stays set for the next run to report
        stream.close()
    st.session_state.pop("query_running", None)
    stop.empty()
    live.clear()
    result = live.result
    assert result is not None
    st.session_state.query_result = result
    st.session_state.query_request = request.model_copy(update={"seed": result.seed})
    st.session_state.query_submitted = request
    st.session_state.query_consensus = live.consensus
    st.session_state.query_snapshots = live.snapshots
    st.session_state.query_errors = []
    st.query_params.from_dict(console.query_link_params(request, result.seed))


def _answer(result: QueryResult) -> None:
    st.subheader("Answer")
    st.caption(
        f"“{components.md_escape(result.query)}” · task **{result.task}** · router **{result.router}**"
        + (f" · provider **{result.provider}**" if result.provider != "none" else "")
    )
    fallback = console.fallback_note(result.provider, result.fallback_from, result.fallback_error)
    if fallback:
        st.warning("The requested LLM provider failed: a fallback provider answered.")
        st.text(fallback)
    left, right = st.columns([4, 1])
    with left:
        st.markdown(f"**{components.answer_kind_label(result).capitalize()}**")
        if not result.answer:
            st.info("The agents produced no answer they could stand behind.")
        elif result.answer_kind in ("extractive", "generated"):
            with st.container(border=True):
                components.inert_markdown(result.answer)
            _sources(result)
        else:
            st.code(result.answer, language=None)
    with right:
        st.markdown("**Verdict**")
        components.verdict_badge(result)
    a, b, c, d = st.columns(4)
    a.metric(
        components.confidence_label(result),
        f"{result.confidence:.2f}",
        help="By one rule from the steps below: 1.0 when verified exactly, else agreement × "
        "combined confidence of the independent steps that gave this answer"
        + (" (freeform: corpus support, not a judged score)" if result.task == "freeform" else ""),
    )
    b.metric("Quality", components.quality_text(result), help="From ground truth; unknown when none exists")
    with c:  # not a metric: a metric's value is cut short with "…" in a narrow column; this wraps
        st.caption("Agents used")
        st.markdown(f"**{components.plain(' → '.join(result.agents_used) or '—')}**")
    d.metric("Latency", f"{result.latency_ms:,.1f} ms")
    components.confidence_note(result)
    st.markdown(f"**Stopped:** {components.md_escape(result.stop_reason)}")
    st.caption(
        f"Seed **{result.seed}** · request {components.plain(result.request_id)} · "
        f"trace {components.plain(result.trace_id)}"
    )
    if console.get_settings().telemetry_enabled:  # with telemetry off no trace is recorded
        st.page_link(
            "../pages/traces.py",
            label="Open trace",
            icon=":material/timeline:",
            query_params={"trace": result.trace_id},
            help="Its waterfall, span tree, log lines, routing decisions and MCTS runs on the Traces page",
        )
    st.button(
        "Run again with the same seed",
        on_click=_rerun_same_seed,
        key="query_rerun",
        icon=":material/replay:",
        help=auth.operator_disabled_reason("run_query")
        or "Reruns the identical request (same seed): the answer, routing and agents must repeat",
        disabled=auth.operator_disabled_reason("run_query") is not None,
    )


def _sources(result: QueryResult) -> None:
    """The passages the answer cites as ``[n]``, as a list of doc § section · title (plain text);
    a number that names no retrieved passage is said to."""
    cited = console.cited_passages(result.answer or "", result.passages)
    if not cited:
        return
    lines = []
    for n, passage in cited:
        if passage is None:
            lines.append(f"- **\\[{n}\\]** not one of the {len(result.passages)} retrieved passages")
        else:
            where = f"{passage.doc} § {passage.section} · {passage.title}"
            lines.append(f"- **\\[{n}\\]** {components.plain(where)}")
    st.markdown("**Sources**\n\n" + "\n".join(lines))


def _details(result: QueryResult, consensus: list[Consensus], snapshots: dict[int, TreeSnapshot]) -> None:
    st.subheader("Routing and steps")
    left, right = st.columns([2, 3])
    left.plotly_chart(
        charts.routing_probabilities_figure(result.steps, threshold=DEFAULT_CONFIDENCE_THRESHOLD),
        width="stretch",
        key="query_routing_chart",
    )
    with right:
        st.markdown("**What each agent said**")
        components.agent_outputs(result.steps, components.confidence_label(result).lower())
    components.show_timeline(components.timeline_table(result.steps, consensus=consensus))
    st.caption("Features, the model card and a rules / gru / hybrid comparison are on the Routing page.")
    if snapshots:
        st.subheader("MCTS tree")
        reward_range = console.task(result.task).reward_range
        for step, snap in sorted(snapshots.items()):
            st.caption(f"{charts.step_label(step).capitalize()} · the tree when the search stopped")
            st.plotly_chart(
                charts.tree_figure(snap, reward_range, task=result.task),
                width="stretch",
                key=f"query_tree_{step}",
            )
        if result.mcts:
            m = result.mcts
            st.caption(
                f"{m.get('iterations')} iterations · best {components.plain(str(m.get('best_action')))} · "
                f"root value {float(m.get('root_value_shown', m.get('root_value', 0.0))):+.3f} "
                f"({charts.status_label(str(m.get('root_status', 'unproven')))}) · stopped by "
                f"{components.plain(str(m.get('termination_reason')))} · "
                f"{int(m.get('tree_size', 0)):,} nodes · search seed {m.get('seed')}"
            )
    components.passages_expander(result.passages)


st.title("Query console")
st.caption(
    "Ask the engine: the meta-controller routes between HRM, TRM and MCTS step by step. "
    "Watch the router's probabilities, each agent's answer and the MCTS tree as they happen."
)
_init()
_stopped_run()
settings = console.get_settings()
denied = auth.operator_disabled_reason("run_query")

task_name = st.selectbox(
    "Task",
    list(TASKS),
    format_func=TASKS.get,
    key="query_task",
    on_change=lambda: st.session_state.pop("query_example", None),
)
st.selectbox(
    "Example",
    [label for label, _ in console.examples(task_name)],
    index=None,
    placeholder="Pick an example query…",
    key="query_example",
    on_change=_use_example,
)
with st.form("query_form"):
    text = st.text_area("Query", key="query_text", height=90, help=HELP)
    a, b, c, d, e = st.columns(5)
    router = a.selectbox("Router", list(ROUTERS), format_func=ROUTERS.get, key="query_router")
    provider = b.selectbox(
        "LLM provider",
        PROVIDERS,
        format_func=lambda p: f"settings ({settings.llm_provider})" if p is None else p,
        key="query_provider",
        help="Used by freeform queries; games are answered without an LLM",
    )
    seed = c.number_input(  # no bounds here: QueryRequest names a bad value (the browser would drop it)
        "Seed",
        value=None,
        step=1,
        placeholder="random",
        key="query_seed",
        help="Empty: a fresh seed is drawn and shown with the result",
    )
    iterations = d.number_input("MCTS iterations", step=100, key="query_iterations")
    max_steps = e.number_input("Max steps", step=1, key="query_max_steps")
    f, g, _ = st.columns([1, 1, 3])
    use_mcts = f.checkbox("Use MCTS", key="query_use_mcts")
    use_rag = g.checkbox("Use retrieval (RAG)", key="query_use_rag")
    submitted = st.form_submit_button(
        "Run query", type="primary", icon=":material/play_arrow:", disabled=denied is not None, help=denied
    )
if denied:
    st.caption(f":material/lock: {denied}")

pending: QueryRequest | None = st.session_state.pop("query_pending", None)
if submitted:
    pending = _build_request(
        query=text.strip(),
        task=task_name,
        use_mcts=use_mcts,
        use_rag=use_rag,
        mcts_iterations=iterations,
        seed=seed,
        router=router,
        provider=provider,
        max_steps=max_steps,
    )
if pending is not None:
    _run(pending)

for message in st.session_state.get("query_errors", []):
    st.error(components.plain(message))
result: QueryResult | None = st.session_state.get("query_result")
if result is None:
    if not st.session_state.get("query_errors"):
        st.info("Type a query or pick an example, then press **Run query**.")
else:
    _answer(result)
    _details(result, st.session_state.get("query_consensus", []), st.session_state.get("query_snapshots", {}))
