"""The Experiments page's services (pages/experiments.py): the specs of ``ARBOR_EXPERIMENTS_DIR``
with what the store holds of each, the analysis and decision of one experiment, a run with
progress, the reports, the sample-size calculator and the YAML editor's validation and save.

Everything goes through the engine's public experiment API (:mod:`engine.experiments`).  Reads
never raise for a store that cannot be read, a spec file that does not load or telemetry switched
off: they come back as messages to show.  Running an experiment and saving a spec are operator
actions (``run_experiment``), refused server-side whatever the page shows.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st
import yaml

from app import auth, runtime
from app.links import parse_experiment_link, traces_url, url_params
from engine.experiments import ExperimentSpec, SpecError, load_spec, parse_spec, stats
from engine.experiments.analysis import Analysis, analyze, open_store
from engine.experiments.decision import Decision, decide
from engine.experiments.report import to_json, to_markdown
from engine.experiments.runner import MAX_RUN_REQUESTS, RunConfigError, RunProgress, RunReport, run_experiment
from engine.experiments.specs import METRICS, ROOT
from engine.names import ROUTERS
from observability.slo.models import SLOConfigError
from observability.store import StoreError, StoreOpenError
from observability.store.experiment_runs import experiment_row, recorded_units

__all__ = [
    "FORM_OVERRIDES",
    "MAX_RUN_REQUESTS",
    "METRICS",
    "READ_TTL_S",
    "ROUTERS",
    "Decision",
    "ExperimentResults",
    "ExperimentSpec",
    "FormVariant",
    "RunOutcome",
    "RunProgress",
    "SaveOutcome",
    "SpecListing",
    "SpecRow",
    "list_experiments",
    "parse_experiment_link",
    "report_files",
    "results",
    "results_frame",
    "run_disabled_reason",
    "run_now",
    "sample_size_units",
    "save_spec",
    "spec_yaml_from_form",
    "specs_dir",
    "url_params",
    "validate_yaml",
    "variant_traces_url",
    "workload_files",
]

#: Seconds a read of the store or the specs directory is cached for.
READ_TTL_S = 10
#: The largest spec file the editor accepts (characters).
MAX_SPEC_CHARS = 50_000
_STORE_ERRORS = (StoreOpenError, StoreError, sqlite3.Error, OSError)


def specs_dir() -> Path:
    """The specs directory (``ARBOR_EXPERIMENTS_DIR``; a relative path is read from the repository root)."""
    path = Path(runtime.get_settings().experiments_dir)
    return path if path.is_absolute() else ROOT / path


def _db_path() -> Path | None:
    store = runtime.get_store()
    return None if store is None else Path(store.path)


# -- the list ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpecRow:
    """One spec file: its experiment's ``status`` in the store (``not started`` without a row),
    ``units`` exposed and ``requests`` recorded so far, ``decision`` recorded (None: none)."""

    id: str
    name: str
    file: str
    variants: tuple[str, ...]
    primary_metric: str
    status: str
    units: int
    requests: int
    decision: str | None


@dataclass(frozen=True, slots=True)
class SpecListing:
    """The specs that load (by file name), one message per file that does not, and a ``note``
    when the store could not be read (the counts are then 0)."""

    rows: tuple[SpecRow, ...]
    specs: dict[str, ExperimentSpec]
    problems: tuple[str, ...] = ()
    note: str | None = None


def _spec_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def list_experiments() -> SpecListing:
    """Every spec of :func:`specs_dir` with its status and counts from the store; a file that
    does not parse, or repeats an id, is a problem (the others are still listed).  Never raises."""
    directory = specs_dir()
    problems: list[str] = []
    specs: dict[str, tuple[Path, ExperimentSpec]] = {}
    if not directory.is_dir():
        return SpecListing((), {}, (f"No experiments directory at {directory}.",))
    for file in _spec_files(directory):
        try:
            spec = load_spec(file)
        except SpecError as exc:
            problems.append(str(exc))
            continue
        except OSError as exc:
            problems.append(f"{file.name}: cannot be read: {exc.strerror or exc}")
            continue
        if spec.id in specs:
            problems.append(
                f"{file.name}: id {spec.id!r} is already used by {specs[spec.id][0].name}; ignored"
            )
            continue
        specs[spec.id] = (file, spec)
    db, note = _db_path(), None
    found: dict[str, tuple[dict[str, dict[str, int]], dict[str, object] | None]] = {}
    if db is None:
        note = "Telemetry is off (ARBOR_TELEMETRY=off): no experiment data is recorded."
    elif db.is_file():
        try:
            conn = open_store(db)
            try:
                for exp_id in specs:
                    found[exp_id] = (recorded_units(conn, exp_id), experiment_row(conn, exp_id))
            finally:
                conn.close()
        except _STORE_ERRORS as exc:
            note = f"The store could not be read ({type(exc).__name__}: {exc}); counts are not shown."
    rows = []
    for exp_id, (file, spec) in specs.items():
        per_variant, row = found.get(exp_id, ({}, None))
        units = sum(v.get("units", 0) for v in per_variant.values())
        requests = sum(n for v in per_variant.values() for k, n in v.items() if k != "units")
        status = str(row["status"]) if row and row.get("status") else ("recorded" if units else "not started")
        decision = str(row["decision"]) if row and row.get("decision") else None
        rows.append(
            SpecRow(
                exp_id,
                spec.name,
                file.name,
                spec.variant_names,
                spec.primary_metric,
                status,
                units,
                requests,
                decision,
            )
        )
    return SpecListing(tuple(rows), {k: v for k, (_, v) in specs.items()}, tuple(problems), note)


# -- results ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    """The analysis and decision of one experiment, or ``message`` why there are none."""

    analysis: Analysis | None
    decision: Decision | None
    message: str | None = None


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def _cached_results(spec_json: str) -> ExperimentResults:
    spec = ExperimentSpec.model_validate_json(spec_json)
    db = _db_path()
    if db is None:
        return ExperimentResults(None, None, "Telemetry is off: there are no experiment data to analyse.")
    if not db.is_file():
        return ExperimentResults(None, None, "The store has no data yet: run the experiment first.")
    try:
        analysis = analyze(db, spec)
    except SLOConfigError as exc:
        return ExperimentResults(None, None, f"The SLO file an slo_burn guardrail needs is invalid: {exc}")
    except _STORE_ERRORS as exc:
        return ExperimentResults(None, None, f"The store could not be read: {type(exc).__name__}: {exc}")
    return ExperimentResults(analysis, decide(analysis))


def results(spec: ExperimentSpec) -> ExperimentResults:
    """:func:`analyze` and :func:`decide` of ``spec`` on the console's store (cached for
    :data:`READ_TTL_S` s).  Never raises: an unreadable store or SLO file is the ``message``."""
    return _cached_results(spec.model_dump_json())


def _ci(r: stats.TestResult | None, i: int) -> float | None:
    return None if r is None or r.ci is None else r.ci[i]


def results_frame(analysis: Analysis) -> pd.DataFrame:
    """One row per metric and variant: ``n``, ``mean``, the absolute ``lift`` with its CI
    (``lift_low``, ``lift_high``), the relative lift ``rel_lift`` (fraction) with its CI, ``p``
    (two-sided, of the absolute lift) and Holm's ``adjusted_p``; the baseline's lift columns are
    empty.  ``note``: why a comparison has no test."""
    rows = []
    for m in analysis.metrics:
        for v in m.variants:
            a, r = v.absolute, v.relative
            rows.append(
                {
                    "metric": m.metric,
                    "role": m.role,
                    "variant": v.variant,
                    "unit": m.unit,
                    "baseline": v.is_baseline,
                    "n": v.n,
                    "mean": v.mean,
                    "lift": None if a is None else a.estimate,
                    "lift_low": _ci(a, 0),
                    "lift_high": _ci(a, 1),
                    "rel_lift": None if r is None else r.estimate,
                    "rel_low": _ci(r, 0),
                    "rel_high": _ci(r, 1),
                    "p": v.p_value,
                    "adjusted_p": v.adjusted_p,
                    "cuped": v.cuped_applied,
                    "chance_to_win": v.chance_to_win,
                    "note": v.error or "",
                }
            )
    return pd.DataFrame(rows)


def variant_traces_url(experiment: str, variant: str) -> str:
    """The Traces page filtered to the requests of ``experiment``'s ``variant``
    (``/traces?variant=<name>&experiment=<id>``: another experiment's variant of the same name
    is not among them)."""
    return traces_url(variant=variant, experiment=experiment)


def report_files(analysis: Analysis, decision: Decision) -> tuple[str, str]:
    """The Markdown and JSON reports (the ``report`` command's), as text."""
    return to_markdown(analysis, decision), json.dumps(to_json(analysis, decision), indent=2, allow_nan=False)


# -- run ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """The finished run's report, or ``message`` why it did not run."""

    report: RunReport | None
    message: str | None = None


@st.cache_resource
def _run_lock() -> threading.Lock:
    """One experiment run at a time per console process (sessions share the store and the CPU)."""
    return threading.Lock()


def run_disabled_reason() -> str | None:
    """None when the signed-in user may run experiments, else why not."""
    if runtime.get_store() is None:
        return "Telemetry is off (ARBOR_TELEMETRY=off): a run's requests could not be recorded."
    return auth.operator_disabled_reason("run_experiment")


def run_now(
    spec: ExperimentSpec, units: int, progress: Callable[[RunProgress], None] | None = None
) -> RunOutcome:
    """Run (or resume) ``spec`` up to ``units`` units through the console's engine; ``progress``
    after each request.  Operators only (stops the script run otherwise).

    Never raises for a bad ``units``, a bad workload, settings differing from the recorded run,
    another run in progress or a store error: those are the ``message``."""
    auth.require_operator("run_experiment")
    qpu = spec.workload.queries_per_unit
    if not 1 <= units <= MAX_RUN_REQUESTS // qpu:
        return RunOutcome(
            None, f"Units must be between 1 and {MAX_RUN_REQUESTS // qpu:,} for this spec, not {units}."
        )
    lock = _run_lock()
    if not lock.acquire(blocking=False):
        return RunOutcome(
            None, "Another session is running an experiment now: try again when it has finished."
        )
    try:
        report = run_experiment(runtime.get_engine(), spec, units=units, progress=progress, root=ROOT)
    except RunConfigError as exc:
        return RunOutcome(None, f"The experiment could not be run: {exc}")
    except _STORE_ERRORS as exc:
        return RunOutcome(
            None, f"The experiment could not be run: the store failed: {type(exc).__name__}: {exc}"
        )
    finally:
        lock.release()
    list_experiments.clear()
    _cached_results.clear()
    return RunOutcome(report)


# -- sample size -------------------------------------------------------------------------------------------


def sample_size_units(
    baseline_mean: float, baseline_sd: float, mde: float, alpha: float, power: float
) -> tuple[int | None, str | None]:
    """Units per arm (rounded up) to detect the relative change ``mde`` with ``power`` at
    ``alpha`` (:func:`stats.sample_size`), or None and why the inputs are invalid."""
    try:
        n = stats.sample_size(baseline_mean, baseline_sd, mde=mde, alpha=alpha, power=power)
    except ValueError as exc:
        return None, str(exc)
    if not math.isfinite(n):
        return None, "The sample size is not finite for these inputs."
    return math.ceil(n), None


# -- editor ---------------------------------------------------------------------------------------------


def validate_yaml(text: str) -> tuple[ExperimentSpec | None, tuple[str, ...]]:
    """The spec ``text`` describes, or None and one message per problem (``LINE: FIELD: message``)."""
    if len(text) > MAX_SPEC_CHARS:
        return None, (f"The spec is {len(text):,} characters long, more than {MAX_SPEC_CHARS:,}.",)
    try:
        return parse_spec(text, source="editor"), ()
    except SpecError as exc:
        return None, tuple(str(p) for p in exc.problems) or (str(exc),)


@dataclass(frozen=True, slots=True)
class SaveOutcome:
    """Where the spec was written (None: nothing was) and the messages."""

    path: Path | None
    problems: tuple[str, ...] = ()


def save_spec(text: str) -> SaveOutcome:
    """Write ``text`` to ``<specs dir>/<id>.yaml`` when it is a valid spec whose id no other file
    of the directory uses.  Operators only.  Nothing is written when anything is wrong."""
    auth.require_operator("run_experiment")
    spec, problems = validate_yaml(text)
    if spec is None:
        return SaveOutcome(None, problems)
    directory = specs_dir()
    target = directory / f"{spec.id}.yaml"
    for file in _spec_files(directory) if directory.is_dir() else []:
        if file.name == target.name:
            continue
        try:
            other = load_spec(file)
        except (SpecError, OSError):
            continue
        if other.id == spec.id:
            return SaveOutcome(
                None, (f"id {spec.id!r} is already used by {file.name}: edit that file instead.",)
            )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".yaml.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        return SaveOutcome(None, (f"The spec could not be written: {exc.strerror or exc}",))
    list_experiments.clear()
    return SaveOutcome(target)


# -- form -----------------------------------------------------------------------------------------------

#: The engine settings the spec form offers per variant (the rest stay available in the YAML editor).
FORM_OVERRIDES: tuple[str, ...] = (
    "router",
    "use_mcts",
    "mcts_iterations",
    "max_steps",
    "confidence_threshold",
)


@dataclass(frozen=True, slots=True)
class FormVariant:
    """One variant as entered in the form: name, weight (share of units, 0..1) and the overrides
    it sets (``None`` values: not overridden, left out of the spec)."""

    name: str
    weight: float
    overrides: dict[str, object]


def workload_files() -> tuple[str, ...]:
    """The workload files a form may choose: ``data/workloads/*.jsonl``, relative to the repository."""
    directory = ROOT / "data" / "workloads"
    try:
        return tuple(sorted(str(p.relative_to(ROOT)) for p in directory.glob("*.jsonl") if p.is_file()))
    except OSError:
        return ()


def spec_yaml_from_form(
    *,
    exp_id: str,
    name: str,
    hypothesis: str,
    workload: str,
    queries_per_unit: int,
    primary_metric: str,
    target_mde: float,
    alpha: float,
    sequential: bool,
    variants: list[FormVariant],
) -> str:
    """The YAML text of the spec the form describes (not validated here: :func:`validate_yaml` /
    :func:`save_spec` do that, with the same messages as the editor).  Variants without a name are
    left out; empty texts are written as they are so the validation names the field."""
    data: dict[str, object] = {"id": exp_id.strip()}
    if name.strip():
        data["name"] = name.strip()
    data["hypothesis"] = hypothesis.strip()
    data["variants"] = [
        {
            "name": v.name.strip(),
            "weight": float(v.weight),
            **(
                {"overrides": changes}
                if (changes := {k: val for k, val in v.overrides.items() if val is not None})
                else {}
            ),
        }
        for v in variants
        if v.name.strip()
    ]
    data["workload"] = {"file": workload, "queries_per_unit": int(queries_per_unit)}
    data["primary_metric"] = primary_metric
    data["target_mde"] = float(target_mde)
    data["alpha"] = float(alpha)
    data["sequential"] = bool(sequential)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
