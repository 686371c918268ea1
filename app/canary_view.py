"""The Canaries tab of the Experiments page: recorded canary runs, one run's timeline (traffic
share, each guardrail's value against its threshold, decisions and reasons), links to its requests
on Traces, and starting a canary from a spec of data/canaries/ (operators only).

Reads go through :mod:`observability.store.canary_store` on a read-only connection; every text
from a spec or the store is shown as plain text.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from app import auth, canary_charts, components, runtime
from app.links import traces_url, url_params
from app.safe_text import plain
from engine.canary import CanaryProgress, CanaryReport, RunConfigError, load_canary_spec, run_canary
from engine.canary.spec import DEFAULT_CANARIES_DIR, ROOT
from engine.experiments.specs import SpecError
from observability.store import StoreError, StoreOpenError
from observability.store.canary_store import CanaryRunRow, CanaryStepRow, read_run, read_runs, read_steps
from observability.store.experiment_runs import reader

__all__ = [
    "RunDetail",
    "canary_specs",
    "load_detail",
    "load_runs",
    "render",
    "start_canary",
    "steps_frame",
]

_STORE_ERRORS = (StoreOpenError, StoreError, sqlite3.Error, OSError)
STATUS_BOX = {"promoted": st.success, "rolled_back": st.error, "running": st.info}


def _db_path() -> Path | None:
    store = runtime.get_store()
    return None if store is None else Path(store.path)


@st.cache_data(ttl=5, show_spinner=False)
def load_runs(db: str) -> tuple[list[CanaryRunRow], str | None]:
    """The recorded runs (newest first), or why they cannot be read."""
    try:
        with reader(db) as conn:
            return read_runs(conn), None
    except _STORE_ERRORS as exc:
        return [], f"The canary runs cannot be read from the store: {type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One run with its evaluations and the time range of its requests (unix s, the run's clock)."""

    run: CanaryRunRow
    steps: list[CanaryStepRow]
    first_ts: float | None
    last_ts: float | None


@st.cache_data(ttl=5, show_spinner=False)
def load_detail(db: str, run_id: str) -> tuple[RunDetail | None, str | None]:
    """The run ``run_id`` with its timeline, or why not."""
    try:
        with reader(db) as conn:
            run = read_run(conn, run_id)
            if run is None:
                return None, f"No canary run {run_id!r} in the store."
            steps = read_steps(conn, run_id)
            first, last = conn.execute(
                "SELECT MIN(ts), MAX(ts) FROM requests WHERE correlation_id = ?", (f"canary-{run_id}",)
            ).fetchone()
    except _STORE_ERRORS as exc:
        return None, f"The canary run cannot be read from the store: {type(exc).__name__}: {exc}"
    return RunDetail(run, steps, first, last), None


def steps_frame(steps: list[CanaryStepRow]) -> pd.DataFrame:
    """One row per evaluation: time, step, share, decision, each guardrail as ``value / threshold
    (verdict)``, request counts and the reason."""
    rows = []
    for s in steps:
        row: dict[str, object] = {
            "#": s.seq,
            "time (UTC)": datetime.fromtimestamp(s.ts, UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "step": s.step_index + 1,
            "share %": s.share_pct,
            "decision": s.decision,
        }
        for g in s.guardrails:
            shown = "-" if g.value is None else f"{g.value:.4g}"
            limit = "-" if g.threshold is None else f"{g.threshold:.4g}"
            row[g.guardrail] = f"{shown} / {limit} ({g.verdict})"
        row["window b/c"] = f"{s.baseline_window}/{s.canary_window}"
        row["step b/c"] = f"{s.baseline_step}/{s.canary_step}"
        row["reason"] = s.reason
        rows.append(row)
    return pd.DataFrame(rows)


def arm_traces_url(detail: RunDetail, arm: str) -> str | None:
    """The Traces page filtered to this run's requests of ``arm`` (its correlation id
    ``canary-<run id>`` and the variant); None before the run recorded any request."""
    if detail.first_ts is None or detail.last_ts is None:
        return None
    return traces_url(variant=arm, correlation=f"canary-{detail.run.run_id}")


def canary_specs() -> list[Path]:
    """The spec files of data/canaries/, sorted."""
    return sorted(DEFAULT_CANARIES_DIR.glob("*.yaml"))


@st.cache_resource
def _run_lock() -> threading.Lock:
    """One canary at a time per console process."""
    return threading.Lock()


def start_canary(
    path: Path, seed: int | None, simulated: bool, progress: Callable[[CanaryProgress], None] | None = None
) -> tuple[CanaryReport | None, str | None]:
    """Run the canary of ``path`` through the console's engine (operators only); never raises for
    a bad spec, a store error or a run in progress: those are the message."""
    auth.require_operator("run_experiment")
    try:
        spec = load_canary_spec(path)
    except SpecError as exc:
        return None, "The spec is invalid; nothing was run:\n" + "\n".join(str(p) for p in exc.problems)
    lock = _run_lock()
    if not lock.acquire(blocking=False):
        return None, "Another session is running a canary now: try again when it has finished."
    try:
        report = run_canary(
            runtime.get_engine(), spec, seed=seed, simulated=simulated, progress=progress, root=ROOT
        )
    except RunConfigError as exc:
        return None, f"The canary could not be run: {exc}"
    except _STORE_ERRORS as exc:
        return None, f"The canary could not be run: the store failed: {type(exc).__name__}: {exc}"
    finally:
        lock.release()
    load_runs.clear()
    load_detail.clear()
    return report, None


def _start() -> None:
    with st.expander("Start a canary", expanded=False):
        files = canary_specs()
        if not files:
            st.info(plain(f"No canary specs in {DEFAULT_CANARIES_DIR}."))
            return
        denied = None if runtime.get_store() is not None else "Telemetry is off: a canary needs the store."
        denied = denied or auth.operator_disabled_reason("run_experiment")
        a, b, c, d = st.columns([2, 1, 1, 1], vertical_alignment="bottom")
        name = a.selectbox("Spec", [f.name for f in files], key="canary_spec")
        seed = b.number_input("Seed (empty: the spec's)", 0, 2**53 - 1, value=None, key="canary_seed")
        simulated = c.checkbox(
            "Simulated clock",
            value=True,
            key="canary_simulated",
            help="Stamp requests on a simulated timeline (fast; rows marked simulated).",
        )
        if not components.guarded_button(d, "Start the canary", key="canary_start", denied=denied):
            return
        bar = st.progress(0.0, text="Starting…")

        def progress(p: CanaryProgress) -> None:
            bar.progress(
                min(1.0, p.share_pct / 100),
                text=plain(
                    f"step {p.step_index + 1} at {p.share_pct:g} % · baseline {p.baseline_sent} · "
                    f"canary {p.canary_sent} requests · {p.evaluations} evaluations"
                ),
            )

        report, message = start_canary(
            DEFAULT_CANARIES_DIR / str(name), None if seed is None else int(seed), bool(simulated), progress
        )
        bar.empty()
        if report is None:
            st.error(plain(message or "The canary did not run."), icon=":material/error:")
            return
        STATUS_BOX.get(report.status, st.warning)(plain(f"{report.status}: {report.reason}"))
        st.query_params["canary_run"] = report.run_id


def _detail(db: str, run_id: str) -> None:
    detail, problem = load_detail(db, run_id)
    if detail is None:
        st.warning(plain(problem or "The run cannot be shown."))
        return
    run = detail.run
    STATUS_BOX.get(run.status, st.warning)(
        plain(
            f"{run.canary} · run {run.run_id}: {run.status} at {run.share_pct:g} % — "
            f"{run.reason or 'running'}"
        )
    )
    clock = "simulated clock (requests stamped on a simulated timeline)" if run.simulated else "wall clock"
    st.caption(
        plain(
            f"Seed {run.seed} · {clock} · {run.baseline_requests} baseline and "
            f"{run.canary_requests} canary requests · {len(detail.steps)} evaluations"
        )
    )
    faults = (run.spec or {}).get("faults") or {}
    injected = [f"{arm}: {faults[arm]}" for arm in ("baseline", "canary") if faults.get(arm)]
    if injected:
        st.warning(plain("Injected faults (a drill): " + "; ".join(injected)), icon=":material/science:")
    if not detail.steps:
        st.info("No evaluation recorded yet.")
    else:
        final = run.share_pct if run.status != "running" else None
        st.plotly_chart(canary_charts.timeline_figure(detail.steps, final), key="canary_timeline")
        st.dataframe(steps_frame(detail.steps), hide_index=True, width="stretch", key="canary_steps")
    st.caption(plain(f"This run's requests on the Traces page, by arm (correlation id canary-{run.run_id})"))
    cols = st.columns(2)
    for col, arm in zip(cols, ("canary", "baseline"), strict=True):
        url = arm_traces_url(detail, arm)
        if url is None:
            col.caption(plain(f"No {arm} requests recorded."))
        else:
            params = url_params(url)
            col.page_link(
                "../pages/traces.py",
                label=f"{arm.capitalize()} requests",
                icon=":material/timeline:",
                query_params=params,
            )


def render() -> None:
    """The Canaries tab."""
    st.subheader("Canary releases")
    st.caption(
        "A candidate configuration ramped over traffic steps (1 → 5 → 10 → 25 → 50 → 100 % by "
        "default), compared with the baseline over a sliding window at each evaluation, promoted or "
        "rolled back by its guardrails. Start one here or with `python -m engine canary run SPEC`."
    )
    _start()
    db = _db_path()
    if db is None:
        st.info("Telemetry is off (ARBOR_TELEMETRY=off): no canary runs are recorded.")
        return
    runs, problem = load_runs(str(db))
    if problem:
        st.warning(plain(problem))
    if not runs:
        st.info("No canary runs recorded yet.")
        return
    table = pd.DataFrame(
        [
            {
                "run": r.run_id,
                "canary": r.canary,
                "status": r.status,
                "share %": r.share_pct,
                "started (UTC)": datetime.fromtimestamp(r.started_ts, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "baseline requests": r.baseline_requests,
                "canary requests": r.canary_requests,
                "clock": "simulated" if r.simulated else "wall",
                "reason": r.reason or "",
            }
            for r in runs
        ]
    )
    st.dataframe(table, hide_index=True, width="stretch", key="canary_runs")
    ids = [r.run_id for r in runs]
    labels = {r.run_id: f"{r.run_id} · {r.canary} · {r.status}" for r in runs}
    wanted = st.query_params.get("canary_run")
    chosen = st.selectbox(
        "Canary run",
        ids,
        index=ids.index(wanted) if wanted in ids else 0,
        format_func=lambda i: labels[i],
        key="canary_chosen",
    )
    if chosen and st.query_params.get("canary_run") != chosen:
        st.query_params["canary_run"] = chosen
    _detail(str(db), str(chosen))
