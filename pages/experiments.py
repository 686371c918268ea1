"""The Experiments page: the specs of ARBOR_EXPERIMENTS_DIR with their status, one experiment's
results (table per metric and variant, decision with every reason, SRM banner, forest plot and
cumulative lift), a run with progress, the reports, the sample-size calculator,
the spec form and the YAML editor.

A thin page: services in app/experiments.py, charts in app/experiments_charts.py.  Every text from a
spec or the store is shown as plain text (app.safe_text.plain, st.text, dataframes).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import canary_view, components, experiments_charts, flags_view
from app import experiments as ex
from app.safe_text import plain

ACTION_LABELS = {"ship": "Ship", "roll_back": "Roll back", "keep_running": "Keep running"}
ACTION_BOX = {"ship": st.success, "roll_back": st.error, "keep_running": st.info}


def _spec_list(listing: ex.SpecListing) -> str | None:
    """The specs table and the chosen experiment's id (None: no spec)."""
    for problem in listing.problems:
        st.warning(plain(problem), icon=":material/warning:")
    if listing.note:
        st.info(plain(listing.note))
    if not listing.rows:
        st.info(plain(f"No experiment specs in {ex.specs_dir()}. Write one in the editor below."))
        return None
    table = pd.DataFrame(
        [
            {
                "id": r.id,
                "name": r.name,
                "file": r.file,
                "variants": ", ".join(r.variants),
                "primary metric": r.primary_metric,
                "status": r.status,
                "units": r.units,
                "requests": r.requests,
                "decision": r.decision or "",
            }
            for r in listing.rows
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch", key="exp_specs")
    ids = [r.id for r in listing.rows]
    wanted, warnings = ex.parse_experiment_link(st.query_params, ids)
    components.link_warnings(warnings)
    index = ids.index(wanted) if wanted in ids else 0
    chosen = st.selectbox("Experiment", ids, index=index, key="exp_chosen")
    if chosen and st.query_params.get("experiment") != chosen:
        st.query_params["experiment"] = chosen
    return chosen


def _fmt(x: object, spec: str) -> str:
    return "" if x is None or (isinstance(x, float) and pd.isna(x)) else format(x, spec)


def _results(spec: ex.ExperimentSpec) -> None:
    st.subheader("Results")
    st.caption("Hypothesis")
    st.text(spec.hypothesis)
    res = ex.results(spec)
    if res.analysis is None or res.decision is None:
        st.info(plain(res.message or "No results."))
        return
    analysis, decision = res.analysis, res.decision
    srm = analysis.srm
    counts = ", ".join(f"{k}: {v}" for k, v in srm.counts.items())
    if srm.mismatch:
        unknown = (
            f"; exposures under unknown variants: {', '.join(srm.unknown_variants)}"
            if srm.unknown_variants
            else ""
        )
        st.error(
            plain(
                f"Sample ratio mismatch (p = {srm.p_value:.3g} < {srm.threshold:g}): the exposed units "
                f"({counts}) do not match the weights{unknown}. The assignment or the logging is broken; "
                "no decision can be made from these data."
            ),
            icon=":material/report:",
        )
    else:
        st.caption(plain(f"Exposed units: {counts} (SRM p = {srm.p_value:.3g})"))
    for note in analysis.notes:
        st.caption(plain(note))
    frame = ex.results_frame(analysis)
    if frame.empty:
        st.info("No metric results yet.")
    else:
        shown = pd.DataFrame(
            {
                "metric": frame["metric"],
                "role": frame["role"],
                "variant": [
                    f"{v} (baseline)" if b else v
                    for v, b in zip(frame["variant"], frame["baseline"], strict=True)
                ],
                "unit": frame["unit"],
                "n": frame["n"],
                "mean": frame["mean"].map(lambda x: _fmt(x, ".4g")),
                "lift": frame["lift"].map(lambda x: _fmt(x, "+.4g")),
                "lift CI": [
                    "" if pd.isna(lo) or pd.isna(hi) else f"{lo:+.4g} .. {hi:+.4g}"
                    for lo, hi in zip(frame["lift_low"], frame["lift_high"], strict=True)
                ],
                "rel. lift": frame["rel_lift"].map(lambda x: _fmt(x, "+.1%")),
                "rel. CI": [
                    "" if pd.isna(lo) or pd.isna(hi) else f"{lo:+.1%} .. {hi:+.1%}"
                    for lo, hi in zip(frame["rel_low"], frame["rel_high"], strict=True)
                ],
                "p": frame["p"].map(lambda x: _fmt(x, ".3g")),
                "Holm p": frame["adjusted_p"].map(lambda x: _fmt(x, ".3g")),
                "note": frame["note"],
            }
        )
        st.dataframe(shown, hide_index=True, width="stretch", key="exp_results")
    _decision(decision)
    st.plotly_chart(experiments_charts.forest_figure(analysis), key="exp_forest")
    series = analysis.series
    if any(series.values()):
        st.plotly_chart(
            experiments_charts.cumulative_lift_figure(series, spec.primary_metric), key="exp_cumulative"
        )
    else:
        st.caption("No cumulative lift series yet.")
    st.caption("Requests per variant on the Traces page")
    cols = st.columns(min(len(spec.variant_names), 5))
    for i, name in enumerate(spec.variant_names):
        cols[i % len(cols)].page_link(
            "../pages/traces.py",
            label=name,
            icon=":material/timeline:",
            query_params=ex.url_params(ex.variant_traces_url(spec.id, name)),
        )
    md, js = ex.report_files(analysis, decision)
    a, b = st.columns(2)
    a.download_button("Report (Markdown)", md, file_name=f"{spec.id}.md", mime="text/markdown", key="exp_md")
    b.download_button(
        "Report (JSON)", js, file_name=f"{spec.id}.json", mime="application/json", key="exp_json"
    )


def _decision(decision: ex.Decision) -> None:
    st.subheader("Decision")
    label = ACTION_LABELS.get(decision.action, decision.action)
    target = f": {decision.variant}" if decision.variant else ""
    ACTION_BOX.get(decision.action, st.info)(plain(f"{label}{target}"))
    for reason in decision.reasons:
        st.markdown(plain(f"• {reason}"))
    for v in decision.variants:
        with st.expander(plain(f"{v.variant}: {v.outcome}")):
            for reason in v.reasons:
                st.markdown(plain(f"• {reason}"))
            if v.guardrails_failed:
                st.markdown(plain(f"Guardrails failed: {', '.join(v.guardrails_failed)}"))
            if v.guardrails_at_risk:
                st.markdown(plain(f"Guardrails at risk: {', '.join(v.guardrails_at_risk)}"))


def _run(spec: ex.ExperimentSpec) -> None:
    st.subheader("Run")
    denied = ex.run_disabled_reason()
    a, b = st.columns([1, 1], vertical_alignment="bottom")
    units = a.number_input(  # no bounds: run_now names a bad value (the browser would drop it)
        "Units",
        value=20,
        step=1,
        key="exp_units",
        help=f"How many units the experiment should have ({spec.workload.queries_per_unit} queries each); "
        "units already complete are skipped.",
    )
    if not components.guarded_button(b, "Run the experiment", key="exp_run", denied=denied):
        return
    bar = st.progress(0.0, text="Starting…")

    def progress(p: ex.RunProgress) -> None:
        done = p.requests_done / p.requests_total if p.requests_total else 1.0
        bar.progress(
            min(1.0, done),
            text=plain(
                f"{p.units_done} of {p.units_total} units · {p.requests_done} of {p.requests_total} requests "
                f"({p.errors} errors, {p.skipped} already recorded)"
            ),
        )

    outcome = ex.run_now(spec, int(units), progress)
    bar.empty()
    if outcome.report is None:
        st.error(plain(outcome.message or "The experiment did not run."), icon=":material/error:")
        return
    r = outcome.report
    st.success(
        plain(
            f"{r.units_complete} of {r.units} units complete: {r.sent} requests sent "
            f"({r.ok} ok, {r.errors} errors, {r.invalid} invalid), "
            f"{r.skipped} already recorded, in {r.wall_s:.1f} s."
        )
    )


def _sample_size() -> None:
    with st.expander("Power / sample size"):
        a, b, c, d, e = st.columns(5)
        mean = a.number_input("Baseline mean", value=1.0, format="%.4g", key="exp_ss_mean")
        # no bounds on these inputs: sample_size_units names a bad value (the browser drops it)
        sd = b.number_input("Baseline sd", value=1.0, format="%.4g", key="exp_ss_sd")
        mde = c.number_input("Relative MDE", value=0.05, format="%.4g", key="exp_ss_mde")
        alpha = d.number_input("Alpha", value=0.05, format="%.3g", key="exp_ss_alpha")
        power = e.number_input("Power", value=0.8, format="%.3g", key="exp_ss_power")
        n, problem = ex.sample_size_units(mean, sd, mde, alpha, power)
        if n is None:
            st.warning(plain(problem or "Invalid inputs."))
        else:
            st.metric("Units per arm", f"{n:,}")


def _editor(listing: ex.SpecListing, chosen: str | None) -> None:
    with st.expander("Spec editor (YAML)"):
        start = ""
        if chosen is not None:
            row = next((r for r in listing.rows if r.id == chosen), None)
            if row is not None:
                try:
                    start = (ex.specs_dir() / row.file).read_text(encoding="utf-8")
                except OSError:
                    start = ""
        text = st.text_area("Spec", value=start, height=400, key=f"exp_yaml_{chosen}")
        denied = ex.run_disabled_reason()
        a, b = st.columns(2)
        check = a.button("Validate", key="exp_validate")
        save = b.button("Save", key="exp_save", disabled=denied is not None)
        if check or save:
            spec, problems = ex.validate_yaml(text)
            if spec is None:
                st.error(plain("The spec is invalid; nothing was written:\n" + "\n".join(problems)))
                return
            if not save:
                st.success(plain(f"Valid spec {spec.id!r} ({len(spec.variants)} variants)."))
                return
            outcome = ex.save_spec(text)
            if outcome.path is None:
                st.error(plain("Nothing was written:\n" + "\n".join(outcome.problems)))
            else:
                st.success(plain(f"Saved {outcome.path.name}."))


_NOT_SET = "(not overridden)"


def _form_variant(i: int, default_name: str, default_weight: float) -> ex.FormVariant:
    st.markdown(f"**Variant {i + 1}**" + ("" if i < 2 else " (optional: leave the name empty)"))
    a, b, c = st.columns(3)
    name = a.text_input("Name", value=default_name, key=f"exp_f_v{i}_name")
    # no bounds on these inputs: the spec's validation names a bad value (the browser drops it)
    weight = b.number_input(
        "Weight", value=default_weight, step=0.05, format="%.3g", key=f"exp_f_v{i}_weight"
    )
    router = c.selectbox("router", [_NOT_SET, *ex.ROUTERS], key=f"exp_f_v{i}_router")
    d, e, f, g = st.columns(4)
    use_mcts = d.selectbox("use_mcts", [_NOT_SET, "on", "off"], key=f"exp_f_v{i}_use_mcts")
    iterations = e.number_input("mcts_iterations", value=None, step=1, key=f"exp_f_v{i}_iter")
    steps = f.number_input("max_steps", value=None, step=1, key=f"exp_f_v{i}_steps")
    confidence = g.number_input(
        "confidence_threshold", value=None, step=0.01, format="%.3g", key=f"exp_f_v{i}_conf"
    )
    overrides: dict[str, object] = {
        "router": None if router == _NOT_SET else router,
        "use_mcts": None if use_mcts == _NOT_SET else use_mcts == "on",
        "mcts_iterations": None if iterations is None else int(iterations),
        "max_steps": None if steps is None else int(steps),
        "confidence_threshold": confidence,
    }
    return ex.FormVariant(name, float(weight), overrides)


def _form() -> None:
    with st.expander("Define with a form"):
        workloads = ex.workload_files()
        if not workloads:
            st.info(plain("No workload files in data/workloads/: write the spec in the YAML editor."))
            return
        denied = ex.run_disabled_reason()
        with st.form("exp_form"):
            a, b = st.columns(2)
            exp_id = a.text_input("id", key="exp_f_id", help="Lower case letters, digits, - and _.")
            name = b.text_input("Name", key="exp_f_name")
            hypothesis = st.text_area("Hypothesis", key="exp_f_hypothesis", height=80)
            c, d, e = st.columns(3)
            workload = c.selectbox("Workload", workloads, key="exp_f_workload")
            per_unit = d.number_input("Queries per unit", value=1, step=1, key="exp_f_per_unit")
            metric = e.selectbox("Primary metric", ex.METRICS, key="exp_f_metric")
            f, g, h = st.columns(3, vertical_alignment="bottom")
            mde = f.number_input("Target MDE (relative)", value=0.1, format="%.3g", key="exp_f_mde")
            alpha = g.number_input("Alpha", value=0.05, format="%.3g", key="exp_f_alpha")
            sequential = h.checkbox("Sequential", key="exp_f_sequential")
            variants = [
                _form_variant(0, "control", 0.5),
                _form_variant(1, "treatment", 0.5),
                _form_variant(2, "", 0.0),
            ]
            submitted = st.form_submit_button("Save the spec", key="exp_f_save", disabled=denied is not None)
        if denied is not None:
            st.caption(f":material/lock: {plain(denied)}")
        if not submitted:
            return
        text = ex.spec_yaml_from_form(
            exp_id=exp_id,
            name=name,
            hypothesis=hypothesis,
            workload=workload,
            queries_per_unit=int(per_unit),
            primary_metric=metric,
            target_mde=float(mde),
            alpha=float(alpha),
            sequential=sequential,
            variants=variants,
        )
        outcome = ex.save_spec(text)
        if outcome.path is None:
            st.error(plain("The spec is invalid; nothing was written:\n" + "\n".join(outcome.problems)))
            st.caption("The spec the form built (the line numbers above refer to it):")
            st.code(text, language="yaml")
        else:
            st.success(plain(f"Saved {outcome.path.name}."))


st.title("Experiments")
st.caption(
    "A/B experiments on engine configurations (specs, results, decisions, runs), feature flags with "
    "their kill switch, and canary releases gated on guardrails and the canary's own SLO burn."
)
experiments_tab, flags_tab, canaries_tab = st.tabs(["Experiments", "Feature flags", "Canaries"])
with experiments_tab:
    listing = ex.list_experiments()
    chosen_id = _spec_list(listing)
    if chosen_id is not None:
        chosen_spec = listing.specs[chosen_id]
        _results(chosen_spec)
        _run(chosen_spec)
    _sample_size()
    _form()
    _editor(listing, chosen_id)
with flags_tab:
    flags_view.render()
with canaries_tab:
    canary_view.render()
