"""Routing: what the meta-controller saw and decided at each step, its model card, and
rules vs gru vs hybrid on the same request."""

from __future__ import annotations

import streamlit as st

from app import auth, charts, components, router_eval, routing, routing_charts
from app.routing import AGENTS, DEFAULT_CONFIDENCE_THRESHOLD, QueryRequest, QueryResult

#: The forms' labels, for the request models' messages ("MCTS iterations: ..." not "mcts_iterations: ...").
FORM_LABELS = {
    "query": "Query", "task": "Task", "router": "Router", "routers": "Routers", "seed": "Seed",
    "mcts_iterations": "MCTS iterations", "per_task": "Positions per task",
}  # fmt: skip

SOURCES = ("Last Query console run", "Run a query here")
TASKS = routing.CONSOLE_TASKS


def _run_here() -> tuple[QueryResult | None, QueryRequest | None]:
    """A small form to run a query on this page; the result is kept in session state."""
    settings = routing.get_settings()
    with st.form("routing_form"):
        text = st.text_input("Query", value="connect4: 4453", key="routing_text")
        a, b, c, d = st.columns(4)
        task = a.selectbox("Task", list(TASKS), format_func=TASKS.get, key="routing_task")
        router = b.selectbox("Router", list(routing.ROUTERS), key="routing_router")
        # no bounds: QueryRequest names a bad value (the browser would drop it silently)
        seed = c.number_input("Seed", value=None, step=1, placeholder="random", key="routing_seed")
        iterations = d.number_input(
            "MCTS iterations", value=settings.mcts_iterations, step=100, key="routing_iterations"
        )
        denied = auth.operator_disabled_reason("run_query")
        submitted = st.form_submit_button(
            "Run query",
            type="primary",
            icon=":material/play_arrow:",
            disabled=denied is not None,
            help=denied,
        )
    if denied:
        st.caption(f":material/lock: {denied}")
    if submitted:
        try:
            request = QueryRequest(
                query=text, task=task, router=router, seed=seed, mcts_iterations=iterations
            )
        except routing.ValidationError as exc:
            for problem in routing.validation_problems(exc, FORM_LABELS):
                st.error(components.plain(problem))
            return None, None
        try:
            with st.spinner("Running the query…"):
                result = routing.run_query(request)
        except routing.ENGINE_ERRORS as exc:
            st.error(components.plain(routing.error_message(exc, request)))
            return None, None
        st.session_state.routing_result = result
        st.session_state.routing_request = request.model_copy(update={"seed": result.seed})
    return st.session_state.get("routing_result"), st.session_state.get("routing_request")


def _pick_run() -> tuple[QueryResult | None, QueryRequest | None]:
    has_console_run = st.session_state.get("query_result") is not None
    source = st.radio(
        "Run to inspect", SOURCES, index=0 if has_console_run else 1, key="routing_source", horizontal=True
    )
    if source == SOURCES[1]:
        return _run_here()
    if not has_console_run:
        st.info("No Query console run in this session yet: run one there, or choose **Run a query here**.")
        return None, None
    return st.session_state.query_result, st.session_state.query_request


def _decisions(result: QueryResult) -> None:
    st.subheader("Decisions")
    st.caption(
        f"“{components.md_escape(result.query)}” · router **{result.router}** · seed {result.seed} · "
        f"{len(result.steps)} step(s) · answer **{components.md_escape(_short(result.answer))}** "
        f"({result.verdict})"
    )
    left, right = st.columns([2, 3])
    left.plotly_chart(
        charts.routing_probabilities_figure(result.steps, threshold=DEFAULT_CONFIDENCE_THRESHOLD),
        width="stretch",
        key="routing_probs",
    )
    right.dataframe(
        components.decisions_table(result.steps),
        hide_index=True,
        width="stretch",
        column_config={"reason": st.column_config.TextColumn(width="large")},
    )
    st.subheader("Features")
    st.caption(
        "The 10 inputs the router saw before each step, all in [0, 1]: the agents' latest confidences, "
        "the MCTS root value, agreement, the last agent (one-hot), iteration/20, query length/10000 "
        "and whether retrieval found context."
    )
    st.plotly_chart(charts.features_heatmap(result.steps), width="stretch", key="routing_features")
    st.dataframe(
        components.features_table(result.steps),
        hide_index=True,
        width="stretch",
        column_config={
            charts.step_label(s.index): st.column_config.NumberColumn(format="%.4f") for s in result.steps
        },
    )


def _comparison(result: QueryResult, request: QueryRequest) -> None:
    st.subheader("Rules vs gru vs hybrid")
    st.caption(
        "The same request and seed answered once per router. Agents and MCTS draw from the same seed, "
        "so differences come from routing alone."
    )
    key = request.model_copy(update={"router": "rules", "seed": result.seed}).model_dump_json()
    denied = auth.operator_disabled_reason("compare_routers")
    compare = st.button(
        "Compare the three routers on this request",
        key="routing_compare",
        icon=":material/compare:",
        disabled=denied is not None,
        help=denied,
    )
    if denied:
        st.caption(f":material/lock: {denied}")
    if compare:
        with st.spinner("Running the request with rules, gru and hybrid…"):
            runs = routing.compare_routers(
                request.query,
                result.seed,
                task=request.task,
                use_mcts=request.use_mcts,
                use_rag=request.use_rag,
                mcts_iterations=request.mcts_iterations,
                provider=request.provider,
                max_steps=request.max_steps,
            )
        st.session_state.routing_comparison = (key, runs)
    stored = st.session_state.get("routing_comparison")
    if stored is None or stored[0] != key:
        st.info("Press the button to run this request with each router.")
        return
    for column, run in zip(st.columns(len(stored[1])), stored[1], strict=True):
        with column, st.container(border=True):
            st.markdown(f"#### {run.router}")
            if run.result is None:
                st.warning(components.plain(run.error or "unavailable"), icon=":material/block:")
                continue
            r = run.result
            st.code(r.answer or "—", language=None, wrap_lines=True)
            components.verdict_badge(r)
            st.markdown(
                f"**Agents** {' → '.join(r.agents_used) or '—'}  \n**Latency** {r.latency_ms:,.1f} ms  \n"
                f"**Stopped** {components.md_escape(r.stop_reason)}"
            )
            st.plotly_chart(
                charts.routing_probabilities_figure(
                    r.steps, height=240, title="probabilities per step", legend=False
                ),
                width="stretch",
                key=f"routing_cmp_{run.router}",
            )
            table = components.decisions_table(r.steps)[["step", "chosen", "p(hrm)", "p(trm)", "p(mcts)"]]
            st.dataframe(
                table.rename(columns={f"p({a})": a for a in AGENTS}),
                hide_index=True,
                width="stretch",
                column_config={
                    "step": st.column_config.NumberColumn(width=40),
                    **{a: st.column_config.NumberColumn(format="%.2f", width=48) for a in AGENTS},
                },
            )


def _model_card() -> None:
    st.subheader("Model card: the trained GRU router")
    try:
        report = routing.router_report()
    except (OSError, ValueError) as exc:
        st.error(f"The training report cannot be read: {components.plain(str(exc))}")
        return
    weights = routing.router_weights_present()
    if report is None:
        st.info(
            "No training report yet: `data/models/router_report.json` is absent, so there is no model card. "
            + (
                "Weights exist in `data/models/router_gru.npz`, but without their report."
                if weights
                else "The GRU has not been trained (no `data/models/router_gru.npz`), so the gru and "
                "hybrid routers are unavailable and only rules can route."
            )
            + " Train it with `python -m engine train-router`."
        )
        return
    if not weights:
        st.warning("The report exists but the weights `data/models/router_gru.npz` are missing.")
    if report.architecture:
        st.caption(components.plain(report.architecture))
    a, b, c, d = st.columns(4)
    a.metric("Queries", _count(report.queries), help=_by(report.by_task))
    b.metric(
        "Train / held-out queries",
        f"{_count(report.train_queries)} / {_count(report.held_out_queries)}",
        help="Split by a hash of the query text, so no query is in both",
    )
    c.metric("Training steps", _count(report.train_steps), help=_by(report.train_label_counts, "labels: "))
    d.metric("Held-out steps", _count(report.held_out_steps))
    if report.accuracy:
        st.markdown(
            "**Held-out label agreement** (share of steps where the router picks the labelled agent: "
            "agreement with the labels, not quality — see the end-to-end table below)"
        )
        cols = st.columns(4)
        rules = report.accuracy.get("rules")
        shown = {k: v for k, v in report.accuracy.items() if k in ("gru", "rules", "majority")}
        for col, (name, value) in zip(cols, shown.items(), strict=False):
            label = f"majority class ({report.majority_class})" if name == "majority" else name
            label = components.plain(label)
            delta = (
                f"{(value - rules) * 100:+.1f} pp vs rules" if rules is not None and name != "rules" else None
            )
            train = report.train_accuracy.get(name)
            col.metric(
                label,
                f"{value:.1%}",
                delta=delta,
                help=None if train is None else f"on the training steps: {train:.1%}",
            )
    _card_table(report)
    if report.confusion is not None:
        left, right = st.columns([3, 2])
        left.plotly_chart(
            charts.confusion_matrix_figure(report.confusion, report.labels, title="GRU held-out confusion"),
            width="stretch",
            key="routing_confusion",
        )
        with right:
            st.markdown("**Reading it**")
            st.caption(
                "Rows are the labelled agent (the choice after which the query ends correct, fastest), "
                "columns the GRU's pick. Freeform queries have no ground truth and are not in the "
                "training data."
            )
            if report.training:
                st.markdown("**Training**")
                training = " · ".join(f"{k.replace('_', ' ')} {v}" for k, v in report.training.items())
                st.caption(components.plain(training))
    if report.markdown:
        with st.expander("Training report"):
            components.safe_markdown(report.markdown)
    with st.expander("Report as JSON"):
        st.json(report.raw, expanded=False)


def _card_table(report: routing.RouterReport) -> None:
    """Label agreement beside end-to-end correct share and latency, per router and per task."""
    st.markdown("**Label agreement vs end-to-end results** (held-out queries)")
    if not report.end_to_end:
        st.info(
            "This training report has no end-to-end results (it predates them): retrain with "
            "`python -m engine train-router` to see correct share and latency per router."
        )
    tasks = ["all tasks", *sorted(set(report.end_to_end_by_task) | set(report.accuracy_by_task))]
    task = st.segmented_control("Task", tasks, default="all tasks", key="routing_card_task")
    rows = routing.card_rows(report, None if task in (None, "all tasks") else task)
    st.dataframe(
        routing.card_table(rows),
        hide_index=True,
        width="stretch",
        key="routing_card_table",
        column_config={
            "label agreement": st.column_config.NumberColumn(format="percent"),
            "correct share": st.column_config.NumberColumn(format="percent"),
            "mean ms": st.column_config.NumberColumn(format="%.2f"),
            "p95 ms": st.column_config.NumberColumn(format="%.2f"),
            "mean steps": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    latency = report.end_to_end_latency or "the summed agent time"
    st.caption(
        components.plain(
            f"Each router replayed over the same recorded agent runs of {_count(report.end_to_end_queries)} "
            f"held-out queries; latency is {latency}. fixed:<agent> runs that agent once and answers "
            "with its output (always-HRM/TRM/MCTS); best is the labelled choice per query (the labels "
            "themselves, so it has no agreement figure); missed counts queries best ends correctly and "
            "the router does not. A high label agreement does not imply a high correct share."
        )
    )


def _workload_comparison() -> None:
    """Compare routers over a held-out workload through the real engine; the last result is saved."""
    st.subheader("Compare routers over a workload")
    st.caption(
        "Every chosen router answers the same held-out positions with ground truth (tic-tac-toe, "
        "connect-four tactics up to win-in-5, Game of 24), each position with one seed shared by all "
        "routers, through the console's engine (the runs are recorded like any request). Correct share "
        "is judged by the task's verifier; latency is the engine's end-to-end time; regret is the share "
        "of positions some router answered correctly and this one did not."
    )
    job: router_eval.ComparisonJob | None = st.session_state.get("routing_eval_job")
    running = job is not None and job.running
    with st.container(border=True):
        a, b, c, d = st.columns([3, 1, 1, 1])
        routers = a.multiselect(
            "Routers",
            list(routing.ROUTERS),
            default=list(routing.ROUTERS),
            format_func=routing.ROUTER_LABELS.get,
            key="routing_eval_routers",
            disabled=running,
        )
        # no bounds: ComparisonSpec names a bad value (the browser would drop it silently)
        per_task = b.number_input(
            "Positions per task", value=5, step=1, key="routing_eval_per_task", disabled=running
        )
        seed = c.number_input("Seed", value=0, step=1, key="routing_eval_seed", disabled=running)
        iterations = d.number_input(
            "MCTS iterations", value=300, step=100, key="routing_eval_iterations", disabled=running
        )
        denied = auth.operator_disabled_reason("compare_routers")
        if running:
            denied = "A comparison is running: stop it or wait for it to finish."
        if components.guarded_button(st, "Run the comparison", key="routing_eval_run", denied=denied):
            try:
                spec = router_eval.ComparisonSpec(
                    routers=tuple(routers), per_task=per_task, seed=seed, mcts_iterations=iterations
                )
            except routing.ValidationError as exc:
                for problem in routing.validation_problems(exc, FORM_LABELS):
                    st.error(components.plain(problem))
                spec = None
            if spec is not None:
                st.session_state.routing_eval_job = job = router_eval.start(spec)
                running = True
    if job is not None and running:
        _comparison_progress()
        return
    if job is not None and job.error:
        st.error(components.plain(job.error))
    if job is not None and job.save_error:
        st.warning(components.plain(job.save_error))
    result = job.result if job is not None and job.result is not None else None
    if result is None:
        result, problem = router_eval.load_saved()
        if problem:
            st.warning(components.plain(problem))
        if result is None:
            st.info("No comparison yet: choose routers and press **Run the comparison**.")
            return
    _comparison_result(result, fresh=job is not None and job.result is result)


@st.fragment(run_every=1.0)
def _comparison_progress() -> None:
    job: router_eval.ComparisonJob | None = st.session_state.get("routing_eval_job")
    if job is None:
        return
    if not job.running:
        st.rerun(scope="app")
    share = job.done / job.total if job.total else 1.0
    st.progress(
        min(1.0, share),
        text=components.plain(
            f"{job.done} of {job.total} runs"
            + (" · stopping after the current position…" if job.stopping else "")
        ),
    )
    st.button(
        "Stop",
        key="routing_eval_stop",
        icon=":material/stop:",
        on_click=job.stop,
        disabled=job.stopping,
        help="Stop before the next position; the positions finished so far are kept and saved.",
    )


def _comparison_result(result: router_eval.SavedComparison, *, fresh: bool) -> None:
    ev, spec, default = result.evaluation, result.spec, result.default_router
    by_task = ev.get("positions_by_task") or {}
    where = "this run" if fresh else "the last saved comparison"
    st.markdown(
        components.plain(
            f"Result of {where}: {ev.get('positions', 0)} positions "
            f"({', '.join(f'{t} {n}' for t, n in by_task.items())}), seed {spec.seed}, "
            f"{spec.mcts_iterations} MCTS iterations, saved {result.saved_at}, "
            f"{result.wall_s:.1f} s. Default router: {default}."
        )
    )
    if ev.get("stopped"):
        st.warning(
            "Stopped early"
            + (" at the time limit" if result.deadline_hit else "")
            + ": the figures cover the positions every router finished."
        )
    errors = ev.get("errors") or []
    if errors:
        st.warning(
            components.plain(
                f"{len(errors)} run(s) failed and count as incorrect, e.g. {errors[0].get('router')}: "
                f"{errors[0].get('error')}"
            )
        )
    st.dataframe(
        router_eval.rows_table(result.overall, default),
        hide_index=True,
        width="stretch",
        key="routing_eval_table",
        column_config=_EVAL_COLUMNS,
    )
    scopes = ["all tasks", *result.by_task]
    scope = st.segmented_control("Chart", scopes, default="all tasks", key="routing_eval_scope")
    rows = result.overall if scope in (None, "all tasks") else result.by_task.get(scope, [])
    points = router_eval.pareto_points(rows, default)
    front = [p.router for p in points if p.on_front]
    on = default in front
    (st.success if on else st.warning)(
        components.plain(
            f"The default router ({default}) is {'on' if on else 'not on'} the Pareto front of correct "
            f"share against p95 latency ({scope or 'all tasks'}). Front: {', '.join(front) or '—'}."
        )
    )
    st.plotly_chart(
        routing_charts.pareto_figure(points, title=f"Correctness vs p95 latency · {scope or 'all tasks'}"),
        width="stretch",
        key="routing_eval_pareto",
    )
    st.caption(
        "A router is on the front unless another is at least as correct and at least as fast (p95) "
        "and better in one. Squares are the single-agent baselines, the star the default router."
    )
    st.markdown("**Per task**")
    st.dataframe(
        tasks := router_eval.task_table(result.by_task, default),
        hide_index=True,
        width="stretch",
        height=35 * (len(tasks) + 1) + 3,
        key="routing_eval_task_table",
        column_config=_EVAL_COLUMNS,
    )


_EVAL_COLUMNS = {
    "correct share": st.column_config.NumberColumn(format="percent"),
    "regret": st.column_config.NumberColumn(format="percent"),
    "best share": st.column_config.NumberColumn(format="percent"),
    "mean steps": st.column_config.NumberColumn(format="%.2f"),
    "p50 ms": st.column_config.NumberColumn(format="%.1f"),
    "p95 ms": st.column_config.NumberColumn(format="%.1f"),
    "latency regret ms": st.column_config.NumberColumn(format="%.1f"),
}


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split()) or "—"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _count(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def _by(counts: dict[str, int], prefix: str = "") -> str | None:
    return components.plain(prefix + ", ".join(f"{k} {v:,}" for k, v in counts.items())) if counts else None


st.title("Routing")
st.caption(
    "How the meta-controller chose between HRM, TRM and MCTS: the features it saw before each step, "
    "the probabilities it gave and why each agent ran; the rules, gru and hybrid routers side by side "
    "on the same request; every router and baseline compared over a held-out workload; and the "
    "trained router's model card."
)
result, request = _pick_run()
if result is not None and request is not None:
    _decisions(result)
    _comparison(result, request)
_workload_comparison()
_model_card()
