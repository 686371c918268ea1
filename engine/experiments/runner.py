"""The experiment runner: units send a spec's workload through the real engine, each with its
variant's settings, and a run can be resumed after any interruption without duplicating anything.

A run of ``units`` units with run seed ``seed`` (default: the spec's ``workload.seed``):

* **Units** are ``unit-000000``, ``unit-000001``, ... (``unit_name``): the first ``units`` of a
  fixed sequence, so that a resumed or extended run continues the same population.  A unit is
  the requests' ``user_id``; its variant is :func:`~engine.experiments.assign` of it (sticky).
* **Queries**: unit *i* sends ``workload.queries_per_unit`` rows of the workload file, drawn
  with ``numpy.random.default_rng([seed, i])`` (without replacement when the file has enough
  rows), each with its own engine seed from the same generator, one after the other; units run
  on ``concurrency`` threads.  Each request is the row's ``QueryRequest`` (``user_id`` = the
  unit, correlation id ``experiment-<id>``) with the variant's overrides applied
  (``VariantOverrides.apply``), and goes through ``Engine.stream`` with the unit's assignment,
  so the request row carries experiment and variant and the unit's exposure is written in the
  same transaction as its first request row.
* **Request ids** are deterministic: ``uuid5(REQUEST_ID_NAMESPACE, "<experiment>/<unit>/<k>")``
  as 32 hex digits (the format of the engine's random ids) for the unit's *k*-th query
  (:func:`request_id_for`).  Before it sends anything a run reads the ids of the experiment's
  requests already in the store and skips those queries (whatever their status: an error is an
  outcome, not something to retry); the store's primary key keeps an id once in any case.
  A request lost to ``kill -9`` before its commit is simply not there and is sent again.
* **Stopping**: ``stop()`` is polled before every query; once it returns True no query starts,
  the running ones finish and are recorded, and the report says ``stopped``.
* **Run settings** (salt, variants and their weights and overrides, workload, run seed) are kept
  in the experiment's ``experiments`` row; a run whose settings differ from those recorded is
  refused (:class:`RunConfigError`): its units would mix two designs.  Only one run of an
  experiment may write to a store at a time (an advisory lock file beside the store).

``progress`` is called on the calling thread (about every 0.1 s while something changed, and at
the end) with a :class:`RunProgress`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from engine.events import Final
from engine.experiments.assignment import Assignment, assign
from engine.experiments.specs import ROOT, ExperimentSpec, Workload
from engine.llm import ProviderNotConfigured
from engine.models import QueryRequest
from engine.workload import read_workload
from observability.store.experiment_runs import experiment_row, reader, recorded_request_ids, recorded_units

__all__ = [
    "MAX_RUN_REQUESTS",
    "REQUEST_ID_NAMESPACE",
    "PlannedQuery",
    "RunBusyError",
    "RunConfigError",
    "RunProgress",
    "RunReport",
    "UnitPlan",
    "VariantRun",
    "plan_unit",
    "request_id_for",
    "run_experiment",
    "run_settings",
    "unit_name",
    "workload_rows",
]

#: The most requests (units x queries per unit) one run may plan.
MAX_RUN_REQUESTS = 200_000
#: The namespace of the runner's deterministic request ids (uuid5).
REQUEST_ID_NAMESPACE = uuid.UUID("6f1c3e2a-5b7d-4c2e-9a41-0e8b7d2f4a10")
#: How often the calling thread checks ``stop`` and reports progress while units run (s).
POLL_S = 0.1


class RunConfigError(ValueError):
    """The run cannot start: bad arguments, an unreadable or invalid workload, or settings that
    differ from those this experiment was already run with in the store."""


class RunBusyError(RunConfigError):
    """Another run of the same experiment is writing to the same store."""


def unit_name(index: int) -> str:
    """The name (``user_id``) of the run's ``index``-th unit: ``unit-000042``."""
    return f"unit-{index:06d}"


def request_id_for(experiment: str, unit: str, index: int) -> str:
    """The request id of ``unit``'s ``index``-th query in ``experiment`` (32 hex digits, stable)."""
    return uuid.uuid5(REQUEST_ID_NAMESPACE, f"{experiment}/{unit}/{index}").hex


@dataclass(frozen=True, slots=True)
class PlannedQuery:
    """One query of a unit: its position in the unit's sequence, id and the request to send."""

    index: int
    request_id: str
    request: QueryRequest


@dataclass(frozen=True, slots=True)
class UnitPlan:
    """One unit: its assignment and its queries (with the variant's overrides applied)."""

    index: int
    assignment: Assignment
    queries: tuple[PlannedQuery, ...]

    @property
    def unit(self) -> str:
        return self.assignment.unit

    @property
    def variant(self) -> str:
        return self.assignment.variant


def plan_unit(spec: ExperimentSpec, rows: Sequence[Mapping[str, Any]], index: int, seed: int) -> UnitPlan:
    """The unit ``index`` of a run with seed ``seed`` over the workload ``rows`` (see the module
    docstring): a pure function of its arguments.

    Raises:
        RunConfigError: a drawn row is not a valid request (the message names the query).
    """
    unit = unit_name(index)
    a = assign(spec.salt_value, spec.id, unit, spec.variant_names, spec.weights)
    overrides = spec.variant(a.variant).overrides
    rng = np.random.default_rng([seed, index])
    k = spec.workload.queries_per_unit
    picks = rng.choice(len(rows), size=k, replace=len(rows) < k)
    seeds = rng.integers(0, 2**53, size=k)
    queries = []
    for j, (pick, query_seed) in enumerate(zip(picks, seeds, strict=True)):
        row = rows[int(pick)]
        try:
            base = QueryRequest(
                query=row["query"],
                task=row.get("task", "auto"),
                seed=int(query_seed),
                user_id=unit,
                correlation_id=f"experiment-{spec.id}",
            )
            request = overrides.apply(base)
        except (ValidationError, KeyError, TypeError) as exc:
            raise RunConfigError(
                f"workload {spec.workload.file}: query {str(row.get('query'))[:60]!r} is not a valid "
                f"request: {str(exc).splitlines()[0]}"
            ) from None
        queries.append(PlannedQuery(j, request_id_for(spec.id, unit, j), request))
    return UnitPlan(index, a, tuple(queries))


def run_settings(spec: ExperimentSpec, seed: int) -> dict[str, Any]:
    """What decides a run's units, queries and variants (kept in the ``experiments`` row; a
    resumed run must have the same)."""
    return {
        "salt": spec.salt_value,
        "variants": [
            {"name": v.name, "weight": v.weight, "overrides": v.overrides.changes()} for v in spec.variants
        ],
        "workload": {"file": spec.workload.file, "queries_per_unit": spec.workload.queries_per_unit},
        "seed": seed,
        "units": "unit-NNNNNN",
        "request_ids": f"uuid5({REQUEST_ID_NAMESPACE}, '<experiment>/<unit>/<k>')",
    }


@dataclass(frozen=True, slots=True)
class VariantRun:
    """One variant's share of a run: ``units`` assigned among the run's units, and this run's
    requests sent and how they ended (``correct``/``judged``: verdicts among the ``ok`` ones)."""

    units: int = 0
    sent: int = 0
    ok: int = 0
    errors: int = 0
    invalid: int = 0
    judged: int = 0
    correct: int = 0
    latency_ms_mean: float | None = None
    latency_ms_p50: float | None = None


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Where a run is: units whose queries are all recorded, requests recorded (``skipped``: found
    already recorded at the start), and this run's ``sent`` requests by outcome."""

    experiment: str
    units_total: int
    units_done: int
    requests_total: int
    requests_done: int
    skipped: int
    sent: int
    ok: int
    errors: int
    invalid: int
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class RunReport:
    """A run's outcome (the CLI prints it as its JSON summary line).

    ``units``/``requests``: the run's size; ``units_complete``: units with every query recorded
    at the end; ``skipped``: queries already recorded before this run; ``sent``: this run's
    requests (``ok``, ``errors``, ``invalid``); ``p50_ms``/``p95_ms``: their latency;
    ``per_variant``: this run's figures by variant; ``recorded``: per variant, the units exposed
    and requests by status in the store after the run (read after a flush; None when it could
    not be read); ``stopped``: the run was stopped before it finished.
    """

    experiment: str
    seed: int
    concurrency: int
    units: int
    requests: int
    units_complete: int
    skipped: int
    sent: int
    ok: int
    errors: int
    invalid: int
    wall_s: float
    p50_ms: float | None
    p95_ms: float | None
    per_variant: Mapping[str, VariantRun] = field(default_factory=dict)
    recorded: Mapping[str, Mapping[str, int]] | None = None
    stopped: bool = False


class _Tally:
    """Counters shared by the worker threads (under one lock)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.lock = threading.Lock()
        self.sent = self.ok = self.errors = self.invalid = self.units_done = self.requests_done = 0
        self.latencies: list[float] = []
        self.by_variant: dict[str, dict[str, Any]] = {
            n: {"units": 0, "sent": 0, "ok": 0, "errors": 0, "invalid": 0, "judged": 0, "correct": 0,
                "latencies": []}
            for n in names
        }  # fmt: skip
        self.version = 0

    def outcome(self, variant: str, status: str, latency_ms: float | None, verdict: str | None) -> None:
        with self.lock:
            v = self.by_variant[variant]
            self.sent += 1
            v["sent"] += 1
            self.requests_done += 1
            key = {"ok": "ok", "error": "errors", "invalid": "invalid"}[status]
            setattr(self, key, getattr(self, key) + 1)
            v[key] += 1
            if latency_ms is not None:
                self.latencies.append(latency_ms)
                v["latencies"].append(latency_ms)
            if verdict in ("correct", "incorrect"):
                v["judged"] += 1
                v["correct"] += verdict == "correct"
            self.version += 1

    def unit_done(self) -> None:
        with self.lock:
            self.units_done += 1
            self.version += 1


@contextlib.contextmanager
def _run_lock(store_path: Path, experiment: str) -> Iterator[None]:
    """Hold the advisory lock of ``experiment`` on the store at ``store_path`` (a file beside it,
    released by the OS when the process dies, ``kill -9`` included).

    Raises:
        RunBusyError: another process (or thread) holds it.
    """
    lock_path = store_path.with_name(f"{store_path.name}.experiment-{experiment}.lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "another process"
            raise RunBusyError(
                f"experiment {experiment} is already being run on {store_path} (pid {holder}); "
                "wait for that run to finish or stop it"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _check_settings(recorded: Mapping[str, Any] | None, settings: Mapping[str, Any], experiment: str) -> None:
    """Refuse a run whose settings differ from those the store recorded for this experiment."""
    if recorded is None:
        return
    before = (recorded.get("config") or {}).get("run")
    if not isinstance(before, dict):
        return
    differ = [k for k in settings if k in before and before[k] != settings[k]]
    if differ:
        shown = "; ".join(f"{k}: recorded {before[k]!r}, now {settings[k]!r}" for k in differ)
        raise RunConfigError(
            f"experiment {experiment} was run in this store with other settings ({shown}); resume it with "
            "the same spec and --seed, or give the changed experiment a new id"
        )


def _experiment_row(spec: ExperimentSpec, settings: Mapping[str, Any], existing: Mapping[str, Any] | None,
                    now: float) -> dict[str, Any]:  # fmt: skip
    row: dict[str, Any] = {
        "experiment": spec.id,
        "name": spec.name or spec.id,
        "status": "running",
        "salt": spec.salt_value,
        "variants": settings["variants"],
        "metrics": {
            "primary": spec.primary_metric,
            "secondary": list(spec.secondary_metrics),
            "guardrails": [g.model_dump(exclude_none=True) for g in spec.guardrails],
        },
        "config": {"spec": spec.model_dump(mode="json"), "run": dict(settings)},
        "updated_ts": now,
    }
    if existing is None or existing.get("created_ts") is None:
        row["created_ts"] = now
    return row


def workload_rows(workload: Workload, root: Path) -> list[dict[str, Any]]:
    """The rows of a spec's workload file (relative paths from ``root``).

    Raises:
        RunConfigError: the file cannot be read, or a line of it is not a valid workload row.
    """
    try:
        return read_workload(workload.path(root))
    except OSError as exc:
        raise RunConfigError(f"cannot read workload {workload.file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RunConfigError(str(exc).splitlines()[0]) from None


def run_experiment(
    engine: Any,
    spec: ExperimentSpec,
    *,
    units: int,
    seed: int | None = None,
    concurrency: int = 1,
    progress: Callable[[RunProgress], None] | None = None,
    stop: Callable[[], bool] | None = None,
    root: Path = ROOT,
    clock: Callable[[], float] = time.monotonic,
) -> RunReport:
    """Run (or resume) ``spec`` with ``units`` units through ``engine`` (see the module docstring).

    Args:
        engine: an :class:`engine.Engine` with a telemetry store (``build_runtime(...).engine``).
        spec: the validated experiment spec.
        units: how many units the experiment should have (1.. such that units x queries per unit
            <= MAX_RUN_REQUESTS); units already complete are skipped.
        seed: the run seed (query draws and engine seeds); default the spec's ``workload.seed``.
        concurrency: units run at once (threads), 1..64.
        progress: called on the calling thread with a :class:`RunProgress` (must not block long).
        stop: polled; once True, no new query starts and the run returns ``stopped``.
        root: the directory a relative workload path is read from.
        clock: monotonic seconds, for ``wall_s``.

    Raises:
        RunConfigError: bad arguments, an unreadable or invalid workload, no telemetry store, or
            settings that differ from those recorded for this experiment (nothing was sent);
            RunBusyError when another run of the experiment holds the store.
        StoreError, sqlite3.Error: the store cannot be written or read.
    """
    qpu = spec.workload.queries_per_unit
    if isinstance(units, bool) or not isinstance(units, int) or units < 1:
        raise RunConfigError(f"units must be a whole number >= 1, got {units!r}")
    if units * qpu > MAX_RUN_REQUESTS:
        raise RunConfigError(
            f"{units:,} units x {qpu} queries is {units * qpu:,} requests, more than the "
            f"{MAX_RUN_REQUESTS:,} one run may send: lower --units"
        )
    if isinstance(concurrency, bool) or not 1 <= concurrency <= 64:
        raise RunConfigError(f"concurrency must be in 1..64, got {concurrency!r}")
    seed = spec.workload.seed if seed is None else seed
    if not 0 <= seed < 2**63:
        raise RunConfigError(f"seed must be in 0..2**63-1, got {seed}")
    store = getattr(getattr(engine, "telemetry", None), "store", None)
    if store is None:
        raise RunConfigError(
            "an experiment run needs the telemetry store (ARBOR_TELEMETRY=off turns it off): "
            "its requests and exposures are what the analysis reads"
        )
    rows = workload_rows(spec.workload, root)
    plans = [plan_unit(spec, rows, i, seed) for i in range(units)]
    settings = run_settings(spec, seed)
    with _run_lock(Path(store.path), spec.id):
        store.flush()  # this process's own earlier writes are visible to the reads below
        with reader(store.path) as conn:
            existing = experiment_row(conn, spec.id)
            _check_settings(existing, settings, spec.id)
            done_ids = recorded_request_ids(conn, spec.id)
        store.submit("experiments", _experiment_row(spec, settings, existing, time.time()))
        return _run(engine, spec, plans, done_ids, seed, concurrency, progress, stop, clock)


def _run(
    engine: Any,
    spec: ExperimentSpec,
    plans: list[UnitPlan],
    done_ids: set[str],
    seed: int,
    concurrency: int,
    progress: Callable[[RunProgress], None] | None,
    stop: Callable[[], bool] | None,
    clock: Callable[[], float],
) -> RunReport:
    tally = _Tally(spec.variant_names)
    for p in plans:
        tally.by_variant[p.variant]["units"] += 1
    pending = [(p, [q for q in p.queries if q.request_id not in done_ids]) for p in plans]
    skipped = sum(len(p.queries) - len(todo) for p, todo in pending)
    tally.requests_done = skipped
    tally.units_done = sum(1 for _, todo in pending if not todo)
    total = sum(len(p.queries) for p in plans)
    t0 = clock()

    def stopped() -> bool:
        return stop is not None and stop()

    def one_unit(plan: UnitPlan, todo: list[PlannedQuery]) -> None:
        for q in todo:
            if stopped():
                return
            status, latency, verdict = "ok", None, None
            try:
                for event in engine.stream(
                    q.request,
                    live=False,
                    request_id=q.request_id,
                    assignment=plan.assignment,
                    # the variant's settings win over feature flags
                    pinned=tuple(spec.variant(plan.variant).overrides.changes()),
                ):
                    if isinstance(event, Final):
                        latency, verdict = event.result.latency_ms, event.result.verdict
            except (ValueError, ProviderNotConfigured):  # rejected input: recorded as invalid
                status = "invalid"
            except Exception:  # an engine failure: recorded as error
                status = "error"
            tally.outcome(plan.variant, status, latency, verdict)
        tally.unit_done()

    def report_progress() -> None:
        if progress is None:
            return
        with tally.lock:
            snap = RunProgress(
                spec.id, len(plans), tally.units_done, total, tally.requests_done, skipped, tally.sent,
                tally.ok, tally.errors, tally.invalid, clock() - t0,
            )  # fmt: skip
        progress(snap)

    report_progress()
    seen = tally.version
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="arbor-experiment") as pool:
        futures: set[Future[None]] = {pool.submit(one_unit, p, todo) for p, todo in pending if todo}
        while futures:
            finished, futures = wait(futures, timeout=POLL_S, return_when=FIRST_COMPLETED)
            for f in finished:
                if not f.cancelled():
                    f.result()  # a bug in the runner itself surfaces here
            if tally.version != seen:
                seen = tally.version
                report_progress()
            if stopped():
                for f in futures:
                    f.cancel()  # units not started never will; running ones stop before their next query
        pool.shutdown(wait=True, cancel_futures=True)
    report_progress()
    store = engine.telemetry.store
    recorded: dict[str, dict[str, int]] | None
    try:
        store.flush()
        with reader(store.path) as conn:
            recorded = recorded_units(conn, spec.id)
    except Exception:  # reported by the caller's close(); the run's own figures stand
        recorded = None
    lat = np.array(tally.latencies) if tally.latencies else None
    return RunReport(
        experiment=spec.id,
        seed=seed,
        concurrency=concurrency,
        units=len(plans),
        requests=total,
        units_complete=tally.units_done,
        skipped=skipped,
        sent=tally.sent,
        ok=tally.ok,
        errors=tally.errors,
        invalid=tally.invalid,
        wall_s=clock() - t0,
        p50_ms=None if lat is None else float(np.percentile(lat, 50)),
        p95_ms=None if lat is None else float(np.percentile(lat, 95)),
        per_variant={name: _variant_run(v) for name, v in tally.by_variant.items()},
        recorded=recorded,
        stopped=stopped() and tally.requests_done < total,
    )


def _variant_run(v: Mapping[str, Any]) -> VariantRun:
    lat = v["latencies"]
    return VariantRun(
        units=v["units"],
        sent=v["sent"],
        ok=v["ok"],
        errors=v["errors"],
        invalid=v["invalid"],
        judged=v["judged"],
        correct=v["correct"],
        latency_ms_mean=float(np.mean(lat)) if lat else None,
        latency_ms_p50=float(np.percentile(lat, 50)) if lat else None,
    )
