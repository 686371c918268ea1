"""The Golden traces page's services (pages/golden.py) and the Traces page's "Capture as golden":
the suite's status and pass-rate history from the store's ``golden_runs``, a run of the suite with
progress, the diff of one trace against its golden, and the capture of a stored request.

Everything here goes through the engine's public golden API (:mod:`engine.golden`).  The diff's
"now" side is the replay the run recorded: its span tree and routing decisions are read back from
the store by the trace and request ids in its ``golden_runs`` row (the same tree builder the suite
compares with), so a diff opened later, or by a deep link ``/golden?trace=<name>``, shows what
the run compared.  A run that could not be recorded (telemetry off, a store error) is diffed from
the run's own result, which the page keeps for the session.

Reads never raise for a store that cannot be read, a missing suite directory, a golden file that
does not load or telemetry switched off: they come back as problems or notes to show.  Running the
suite (it runs queries: the ``run_query`` permission) and capturing (``capture_golden``) are
operator actions, refused server-side whatever the page shows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import streamlit as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app import auth, runtime
from app.links import LinkWarning
from app.messages import validation_problems
from engine.golden import (
    CaptureRefused,
    Divergence,
    GoldenError,
    GoldenFile,
    GoldenSpan,
    GoldenStep,
    LatencyVerdict,
    ProgressFn,
    SuiteResult,
    SuiteRunSummary,
    TraceResult,
    capture,
    load_suite,
    read_golden,
    run_results,
    run_suite,
    span_paths,
    suite_history,
)
from engine.golden.capture import NAME_PATTERN
from engine.golden.compare import Section
from engine.golden.replay import span_tree
from observability.span_record import SpanRecord
from observability.store import StoreError, StoreOpenError

__all__ = [
    "HISTORY_LIMIT",
    "MAX_REPEAT",
    "NOT_RUN",
    "SUITE_DEADLINE_S",
    "CaptureForm",
    "CaptureOutcome",
    "DivergenceRow",
    "GoldenFile",
    "GoldenLink",
    "LatencyVerdict",
    "RoutingRow",
    "SpanLatencyRow",
    "SpanLine",
    "StatusRow",
    "SuiteResult",
    "SuiteRun",
    "SuiteRunSummary",
    "SuiteStatus",
    "TraceDiff",
    "capture_disabled_reason",
    "capture_golden",
    "default_golden_name",
    "parse_golden_link",
    "run_disabled_reason",
    "run_suite_now",
    "suite_status",
    "trace_diff",
]

#: The status of a golden in the suite directory that the last run did not include.
NOT_RUN = "not run"
#: A run from the page stops starting goldens after this many seconds (they are then "error").
SUITE_DEADLINE_S = 600.0
#: The page's largest number of replays per golden.
MAX_REPEAT = 10
#: How many past runs the history shows.
HISTORY_LIMIT = 100
#: How long to wait (s) for this console's queued telemetry before capturing a request.
_FLUSH_WAIT_S = 5.0
_STORE_ERRORS = (StoreOpenError, StoreError, sqlite3.Error, OSError)


# -- links ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoldenLink:
    """What ``/golden?trace=<name>`` asks for: a golden of the suite (None: no usable name) and one
    line per value ignored."""

    trace: str | None
    warnings: tuple[LinkWarning, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """The warnings as lines of text."""
        return tuple(w.text for w in self.warnings)


def parse_golden_link(params: Mapping[str, str], names: Sequence[str]) -> GoldenLink:
    """The Golden traces page's deep link: ``trace`` must name a golden of ``names`` (the suite's
    files and the last run's traces); an unknown name is ignored with a warning (the first golden
    that did not pass is shown)."""
    name = params.get("trace")
    if not name:
        return GoldenLink(None)
    if name not in names:
        used = "the first golden that did not pass"
        return GoldenLink(
            None, (LinkWarning("trace", name, used, "ignored", "is not a golden trace of this suite"),)
        )
    return GoldenLink(name)


# -- suite status ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One golden in the last run (``status`` pass | regression | error) or in the suite directory
    but not in that run (:data:`NOT_RUN`).  Latencies in ms (medians); ``latency_change`` is
    ``latency_ms / golden_latency_ms - 1``."""

    name: str
    status: str
    first_divergence: str | None = None
    latency_ms: float | None = None
    golden_latency_ms: float | None = None
    latency_change: float | None = None
    quality: float | None = None
    golden_quality: float | None = None
    trace_id: str | None = None


@dataclass(frozen=True, slots=True)
class SuiteStatus:
    """The suite at a glance.

    ``names``: the goldens of the suite directory (loaded or not) and of the last run, sorted;
    ``load_errors``: one message per file that does not load (naming the file and the field);
    ``run_id``/``ts`` (unix s): the last recorded run, None when there is none; ``rows``: its
    goldens, then the suite's goldens it did not include; ``latency``: its suite latency verdict
    (the ``latency`` object of ``golden run --json``); ``history``: past runs, newest first;
    ``recording``: False when telemetry is off (runs are not recorded); ``problems``: what could
    not be read."""

    directory: Path
    names: tuple[str, ...]
    load_errors: tuple[str, ...]
    run_id: str | None
    ts: float | None
    rows: tuple[StatusRow, ...]
    latency: dict[str, Any] | None
    history: tuple[SuiteRunSummary, ...]
    recording: bool
    problems: tuple[str, ...] = ()

    def count(self, status: str) -> int:
        """How many goldens have ``status`` in this view."""
        return sum(r.status == status for r in self.rows)


def _suite_files(directory: Path) -> tuple[tuple[str, ...], tuple[str, ...], str | None]:
    """(names, load error messages, problem) of the suite directory."""
    try:
        suite = load_suite(directory)
    except GoldenError as exc:
        return (), (), str(exc)
    return suite.names, tuple(e.message for e in suite.errors), None


def _db_path() -> Path | None:
    """The console's store file, created and migrated (None when telemetry is off)."""
    store = runtime.get_store()
    return None if store is None else Path(store.path)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _decoded_diff(row: Mapping[str, Any]) -> dict[str, Any]:
    diff = row.get("diff")
    return diff if isinstance(diff, dict) else {}


def _status_row(row: Mapping[str, Any]) -> StatusRow:
    diff = _decoded_diff(row)
    return StatusRow(
        name=str(row["golden_id"]),
        status=str(row.get("status") or "error"),
        first_divergence=row.get("first_divergence"),
        latency_ms=_float(row.get("latency_ms")),
        golden_latency_ms=_float(row.get("golden_latency_ms")),
        latency_change=_float(diff.get("latency_change")),
        quality=_float(row.get("quality")),
        golden_quality=_float(row.get("golden_quality")),
        trace_id=row.get("trace_id"),
    )


def _result_rows(result: SuiteResult) -> tuple[StatusRow, ...]:
    return tuple(
        StatusRow(
            name=r.name,
            status=r.status,
            first_divergence=r.first_divergence,
            latency_ms=r.latency_ms,
            golden_latency_ms=r.golden_latency_ms,
            latency_change=r.latency_change,
            quality=r.quality,
            golden_quality=r.golden_quality,
            trace_id=r.trace_id,
        )
        for r in result.results
    )


def suite_status(unrecorded: SuiteResult | None = None) -> SuiteStatus:
    """The suite directory (``ARBOR_GOLDEN_DIR``) and the store's last run and history.

    ``unrecorded``: a run of this session that the store does not hold (telemetry off or a store
    error); it is shown as the last run.  Never raises for an unreadable store or directory: those
    are ``problems``."""
    settings = runtime.get_settings()
    directory = Path(settings.golden_dir)
    names, load_errors, problem = _suite_files(directory)
    problems = [problem] if problem else []
    rows: tuple[StatusRow, ...] = ()
    history: tuple[SuiteRunSummary, ...] = ()
    run_id = ts = latency = None
    db = _db_path()
    if db is not None:
        try:
            history = tuple(suite_history(db, limit=HISTORY_LIMIT))
            latest = run_results(db)
        except sqlite3.Error as exc:
            problems.append(f"The golden runs could not be read from the store {db}: {exc}")
            latest = []
        if latest:
            run_id, ts = str(latest[0]["run_id"]), _float(latest[0]["ts"])
            rows = tuple(_status_row(r) for r in latest)
            latency = _decoded_diff(latest[0]).get("suite_latency")
    if unrecorded is not None and (ts is None or unrecorded.ts >= ts):
        run_id, ts, latency = unrecorded.run_id, unrecorded.ts, unrecorded.latency.as_dict()
        rows = _result_rows(unrecorded)
    in_run = {r.name for r in rows}
    rows += tuple(StatusRow(name, NOT_RUN) for name in names if name not in in_run)
    return SuiteStatus(
        directory=directory,
        names=tuple(sorted(set(names) | in_run)),
        load_errors=load_errors,
        run_id=run_id,
        ts=ts,
        rows=rows,
        latency=latency if isinstance(latency, dict) else None,
        history=history,
        recording=db is not None,
        problems=tuple(problems),
    )


# -- running the suite ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SuiteRun:
    """A run started from the page: its ``result``, or the ``message`` saying why there is none."""

    result: SuiteResult | None
    message: str | None = None


@st.cache_resource
def _suite_lock() -> threading.Lock:
    """One suite run at a time per console process (sessions share the store and the CPU)."""
    return threading.Lock()


def run_disabled_reason() -> str | None:
    """None when the signed-in user may run the suite (it runs queries), else why not."""
    return auth.operator_disabled_reason("run_query")


def run_suite_now(repeat: int, latency_gate: bool, progress: ProgressFn | None = None) -> SuiteRun:
    """Replay the suite ``ARBOR_GOLDEN_DIR`` with ``repeat`` replays per golden (1 to
    :data:`MAX_REPEAT`), judge latency (``latency_gate``: a latency regression fails the run) and
    record the run in ``golden_runs``; ``progress(done, total, name, status)`` after each golden.
    Goldens not started within :data:`SUITE_DEADLINE_S` are errors.  Operators only.

    Never raises for a bad ``repeat``, an unreadable suite directory, a store that cannot be opened
    or another session's run in progress: those are the ``message``."""
    auth.require_operator("run_query")
    if not 1 <= repeat <= MAX_REPEAT:
        return SuiteRun(None, f"Replays per golden must be between 1 and {MAX_REPEAT}, not {repeat}.")
    lock = _suite_lock()
    if not lock.acquire(blocking=False):
        return SuiteRun(None, "Another session is running the suite now: try again when it has finished.")
    try:
        settings = runtime.get_settings()
        result = run_suite(
            Path(settings.golden_dir),
            settings=settings,
            repeat=repeat,
            latency_gate=latency_gate,
            progress=progress,
            deadline_s=SUITE_DEADLINE_S,
        )
    except GoldenError as exc:
        return SuiteRun(None, f"The suite could not be run: {exc}")
    except _STORE_ERRORS as exc:
        return SuiteRun(None, f"The suite could not be run: the store failed: {type(exc).__name__}: {exc}")
    finally:
        lock.release()
    return SuiteRun(result)


# -- the diff of one trace -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpanLine:
    """One span of a tree in pre-order: its path (``query/agent.trm/llm.complete#2``), name, depth,
    behaviour attributes (compact JSON), duration in ms (golden: the captured median) and whether it
    is where the trees first diverge (``marked``)."""

    path: str
    name: str
    depth: int
    attributes: str
    latency_ms: float | None
    marked: bool


@dataclass(frozen=True, slots=True)
class RoutingRow:
    """One routing step, golden against now (None where that side has no such step); ``marked``:
    the first routing divergence is at this step."""

    step: int
    golden_agent: str | None
    now_agent: str | None
    golden_probabilities: dict[str, float]
    now_probabilities: dict[str, float]
    golden_reason: str | None
    now_reason: str | None
    marked: bool


@dataclass(frozen=True, slots=True)
class DivergenceRow:
    """One divergence in the comparison order: section (routing, spans, answer, verdict,
    quality), where, and the engine's message."""

    section: str
    where: str
    message: str


@dataclass(frozen=True, slots=True)
class SpanLatencyRow:
    """A span path's duration (ms): the golden's median and the replay's (None where absent)."""

    path: str
    golden_ms: float | None
    now_ms: float | None


@dataclass(frozen=True, slots=True)
class TraceDiff:
    """One golden against its replay in a run.

    ``status``: pass | regression | error | :data:`NOT_RUN`; ``golden``: the file (None with
    ``golden_problem`` when it does not load); ``replayed``: whether a "now" side exists (its
    answer, verdict, quality, spans, routing; ``now_spans`` None when its trace is not in the
    store).  Latencies in ms: ``golden_samples`` (each captured repetition), ``now_samples`` (each
    timed replay of the run).  ``first_section``: where the first divergence is.  ``notes``:
    caveats to show (the golden changed since the run, the replay's trace is missing, ...)."""

    name: str
    status: str
    first_divergence: str | None
    divergences: tuple[DivergenceRow, ...]
    golden: GoldenFile | None
    golden_problem: str | None
    run_id: str | None
    ts: float | None
    replayed: bool
    answer: str | None
    verdict: str | None
    quality: float | None
    golden_spans: tuple[SpanLine, ...]
    now_spans: tuple[SpanLine, ...] | None
    routing: tuple[RoutingRow, ...]
    golden_samples: tuple[float, ...]
    now_samples: tuple[float, ...]
    latency_ms: float | None
    golden_latency_ms: float | None
    latency_change: float | None
    span_latency: tuple[SpanLatencyRow, ...]
    trace_id: str | None
    request_id: str | None
    notes: tuple[str, ...] = ()

    @property
    def first_section(self) -> str | None:
        """The section of the first divergence (None on a pass or an error)."""
        return self.divergences[0].section if self.divergences else None

    @property
    def agents(self) -> tuple[str, ...]:
        """Every agent with a probability on either side, in order of first appearance."""
        seen: dict[str, None] = {}
        for r in self.routing:
            seen.update(dict.fromkeys(r.golden_probabilities))
            seen.update(dict.fromkeys(r.now_probabilities))
        return tuple(seen)


@dataclass(frozen=True, slots=True)
class _Now:
    """What the replay did, from a run's result or from the store."""

    answer: str | None
    verdict: str | None
    quality: float | None
    routing: tuple[GoldenStep, ...] | None
    spans: tuple[GoldenSpan, ...] | None
    span_latency: dict[str, float]
    samples: tuple[float, ...]


def _as_divergence(value: Divergence | Mapping[str, Any]) -> Divergence | None:
    if isinstance(value, Divergence):
        return value
    try:
        return Divergence(
            cast(Section, str(value["section"])),  # shown as text, whatever the store holds
            str(value["where"]),
            value.get("expected"),
            value.get("got"),
            str(value["message"]),
        )
    except (KeyError, TypeError):
        return None


def _span_marks(
    divergences: Sequence[Divergence], golden_paths: set[str], now_paths: set[str]
) -> tuple[str | None, str | None]:
    """The span path to mark in the golden tree and in the replay's, from the first ``spans``
    divergence: for the structure, the two paths that differ (``expected`` / ``got``), or the
    missing or unexpected one; for an attribute, the span ``where`` names (``span PATH``), in both."""
    d = next((d for d in divergences if d.section == "spans"), None)
    if d is None:
        return None, None
    path = d.where[len("span ") :] if d.where.startswith("span ") else None

    def mark(value: Any, paths: set[str]) -> str | None:
        if isinstance(value, str) and value in paths:
            return value
        return path if path in paths else None

    return mark(d.expected, golden_paths), mark(d.got, now_paths)


def _routing_mark(
    divergences: Sequence[Divergence], golden: Sequence[GoldenStep], now: Sequence[GoldenStep]
) -> int | None:
    """The row index to mark for the first ``routing`` divergence (a step, or the first step one
    side lacks)."""
    d = next((d for d in divergences if d.section == "routing"), None)
    if d is None:
        return None
    if d.where.startswith("routing step "):
        try:
            step = int(d.where[len("routing step ") :]) - 1  # the message numbers steps from 1
        except ValueError:
            return None
        steps = [s.step for s in golden] or [s.step for s in now]
        return steps.index(step) if step in steps else None
    return min(len(golden), len(now))


def _lines(
    spans: Sequence[GoldenSpan], durations: Mapping[str, float], mark: str | None
) -> tuple[SpanLine, ...]:
    return tuple(
        SpanLine(
            path=path,
            name=span.name,
            depth=path.count("/"),
            attributes=json.dumps(span.attributes, sort_keys=True, separators=(", ", ": "), default=str),
            latency_ms=durations.get(path),
            marked=path == mark,
        )
        for path, span in span_paths(spans)
    )


def _routing_rows(
    golden: Sequence[GoldenStep], now: Sequence[GoldenStep], marked: int | None
) -> tuple[RoutingRow, ...]:
    rows = []
    for i in range(max(len(golden), len(now))):
        g = golden[i] if i < len(golden) else None
        n = now[i] if i < len(now) else None
        rows.append(
            RoutingRow(
                step=g.step if g is not None else n.step if n is not None else i,
                golden_agent=g.agent if g else None,
                now_agent=n.agent if n else None,
                golden_probabilities=dict(g.probabilities) if g else {},
                now_probabilities=dict(n.probabilities) if n else {},
                golden_reason=g.reason if g else None,
                now_reason=n.reason if n else None,
                marked=i == marked,
            )
        )
    return tuple(rows)


def _stored_replay(
    db: Path, trace_id: str | None, request_id: str | None
) -> tuple[tuple[GoldenSpan, ...] | None, dict[str, float], tuple[GoldenStep, ...] | None, list[str]]:
    """The replay's span tree, span durations and routing steps as the store holds them."""
    from observability.store.reads import ReadModel

    notes: list[str] = []
    reads = ReadModel(db)
    spans: tuple[GoldenSpan, ...] | None = None
    durations: dict[str, float] = {}
    routing: tuple[GoldenStep, ...] | None = None
    try:
        records = [SpanRecord.from_row(r) for r in reads.spans_for_trace(trace_id)] if trace_id else []
        if records:
            tree, durations = span_tree(records)
            spans = tuple(tree)
        else:
            notes.append(
                "The replay's spans are not in the store (deleted, or not recorded): "
                "its span tree cannot be shown."
            )
        rows = reads.routing_for_request(request_id) if request_id else []
        if rows or records:
            routing = tuple(
                GoldenStep(
                    step=int(r["step"]),
                    agent=r["agent"],
                    probabilities=dict(r.get("probabilities") or {}),
                    reason=str(r.get("reason") or ""),
                )
                for r in rows
            )
    except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
        notes.append(f"The replay's trace could not be read from the store: {type(exc).__name__}: {exc}")
        return None, {}, None, notes
    return spans, durations, routing, notes


def _golden_file(directory: Path, name: str, names: Sequence[str]) -> tuple[GoldenFile | None, str | None]:
    if name not in names:
        return None, f"{directory / (name + '.json')}: no such golden file in the suite"
    try:
        return read_golden(directory / f"{name}.json"), None
    except GoldenError as exc:
        return None, str(exc)


def trace_diff(name: str, unrecorded: SuiteResult | None = None) -> TraceDiff:
    """The golden ``name`` against its replay in the last run (``unrecorded``: this session's run
    that the store does not hold, used when it is the newest).  A golden the last run did not
    include comes back with status :data:`NOT_RUN` and only its golden side.  Never raises for a
    missing file or trace: those are ``golden_problem`` and ``notes``."""
    settings = runtime.get_settings()
    directory = Path(settings.golden_dir)
    suite_names, _, _ = _suite_files(directory)
    notes: list[str] = []
    db = _db_path()
    row: Mapping[str, Any] | None = None
    result: TraceResult | None = None
    stored_ts: float | None = None
    if db is not None:
        try:
            rows = run_results(db)
        except sqlite3.Error as exc:
            rows = []
            notes.append(f"The golden runs could not be read from the store: {exc}")
        stored_ts = _float(rows[0]["ts"]) if rows else None
        row = next((r for r in rows if r["golden_id"] == name), None) if rows else None
    if unrecorded is not None and (stored_ts is None or unrecorded.ts >= stored_ts):
        row = None
        result = next((r for r in unrecorded.results if r.name == name), None)

    golden, golden_problem = (
        (result.golden, None)
        if result is not None and result.golden is not None
        else _golden_file(directory, name, suite_names)
    )
    run_id = ts = None
    status: str
    if result is not None:
        assert unrecorded is not None
        run_id, ts = unrecorded.run_id, unrecorded.ts
        status, first = result.status, result.first_divergence
        divergences = list(result.divergences)
        now: _Now | None = None
        if result.status != "error":
            now = _Now(
                result.answer,
                result.verdict,
                result.quality,
                result.routing,
                result.spans,
                dict(result.span_latency_ms),
                tuple(result.latency_samples),
            )
        trace_id, request_id = result.trace_id, result.request_id
        latency_ms, golden_latency_ms, change = (
            result.latency_ms,
            result.golden_latency_ms,
            result.latency_change,
        )
    elif row is not None:
        assert db is not None
        run_id, ts = str(row["run_id"]), _float(row["ts"])
        diff = _decoded_diff(row)
        status, first = str(row.get("status") or "error"), row.get("first_divergence")
        divergences = [d for d in map(_as_divergence, diff.get("divergences") or []) if d is not None]
        trace_id, request_id = row.get("trace_id"), row.get("request_id")
        now = None
        if status != "error":
            spans, durations, routing, more = _stored_replay(db, trace_id, request_id)
            notes += more
            samples = tuple(s for s in (diff.get("latency_samples_ms") or []) if _float(s) is not None)
            now = _Now(
                diff.get("answer"),
                diff.get("verdict"),
                _float(row.get("quality")),
                routing,
                spans,
                durations,
                samples,
            )
        latency_ms, golden_latency_ms = _float(row.get("latency_ms")), _float(row.get("golden_latency_ms"))
        change = _float(diff.get("latency_change"))
        if golden is not None and ts is not None and _captured_after(golden, ts):
            notes.append(
                "The golden file was captured again after this run: the diff compares the run's replay with "
                "the current file, which the run did not see. Run the suite again to compare with it."
            )
    else:
        status, first, divergences, now = NOT_RUN, None, [], None
        trace_id = request_id = None
        latency_ms = change = None
        golden_latency_ms = golden.latency_ms.total if golden is not None else None

    golden_spans_list = list(golden.spans) if golden is not None else []
    golden_paths = {p for p, _ in span_paths(golden_spans_list)}
    now_paths = (
        {p for p, _ in span_paths(list(now.spans))} if now is not None and now.spans is not None else set()
    )
    golden_mark, now_mark = _span_marks(divergences, golden_paths, now_paths)
    golden_routing = list(golden.routing) if golden is not None else []
    now_routing = list(now.routing) if now is not None and now.routing is not None else []
    routing_mark = _routing_mark(divergences, golden_routing, now_routing)
    golden_durations = golden.latency_ms.spans if golden is not None else {}
    span_latency_paths = list(dict.fromkeys([*golden_durations, *(now.span_latency if now else {})]))
    return TraceDiff(
        name=name,
        status=status,
        first_divergence=first,
        divergences=tuple(DivergenceRow(d.section, d.where, d.message) for d in divergences),
        golden=golden,
        golden_problem=golden_problem,
        run_id=run_id,
        ts=ts,
        replayed=now is not None,
        answer=now.answer if now else None,
        verdict=now.verdict if now else None,
        quality=now.quality if now else None,
        golden_spans=_lines(golden_spans_list, golden_durations, golden_mark),
        now_spans=(
            _lines(list(now.spans), now.span_latency, now_mark)
            if now is not None and now.spans is not None
            else None
        ),
        routing=_routing_rows(golden_routing, now_routing, routing_mark),
        golden_samples=tuple(golden.latency_ms.samples) if golden is not None else (),
        now_samples=now.samples if now is not None else (),
        latency_ms=latency_ms,
        golden_latency_ms=golden_latency_ms,
        latency_change=change,
        span_latency=tuple(
            SpanLatencyRow(p, golden_durations.get(p), now.span_latency.get(p) if now else None)
            for p in span_latency_paths
        ),
        trace_id=trace_id,
        request_id=request_id,
        notes=tuple(notes),
    )


def _captured_after(golden: GoldenFile, ts: float) -> bool:
    """Whether the golden's ``captured_at`` (ISO 8601) is later than the run's start ``ts``."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(golden.captured_at).timestamp() > ts
    except ValueError:
        return False


# -- capture --------------------------------------------------------------------------------------------


class CaptureForm(BaseModel):
    """The capture form's input: the stored request's id and the new golden's name."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    request_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=100)

    @field_validator("request_id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if not value.isprintable() or any(c.isspace() for c in value):
            raise ValueError("a request id has no spaces or control characters")
        return value

    @field_validator("name")
    @classmethod
    def _file_name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value) or value.endswith(".json"):
            raise ValueError(
                "use letters, digits, '_', '.' or '-', starting with a letter or digit, without '.json' "
                "(the golden's file is NAME.json)"
            )
        return value


_FORM_LABELS = {"request_id": "Request id", "name": "Golden name"}


@dataclass(frozen=True, slots=True)
class CaptureOutcome:
    """A capture from the console: the golden written (``name``, ``path``, ``golden``, built from
    ``replays`` replays), or ``problems`` saying why not (invalid input: one line per field; a
    refusal: the engine's reason)."""

    name: str | None = None
    path: Path | None = None
    golden: GoldenFile | None = None
    replays: int = 0
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the golden was written."""
        return self.golden is not None and not self.problems


def default_golden_name(task: str | None, request_id: str) -> str:
    """A name for a golden captured from a request: ``<task>-<first 8 characters of its id>``
    (characters a name cannot hold dropped)."""
    stem = "".join(c for c in (task or "request") if c.isalnum() or c in "_-") or "request"
    rid = "".join(c for c in request_id if c.isalnum())[:8]
    return f"{stem}-{rid}" if rid else stem


def capture_disabled_reason(status: str | None = None) -> str | None:
    """Why the capture control is disabled: the user may not capture, or the request (recorded with
    ``status``; None: unknown yet) did not answer.  None when it is enabled."""
    denied = auth.operator_disabled_reason("capture_golden")
    if denied is not None:
        return denied
    if status is not None and status != "ok":
        return f"Only answered requests (status ok) can be captured; this one is {status}."
    return None


def capture_golden(request_id: str, name: str) -> CaptureOutcome:
    """Capture the stored request ``request_id`` as the golden ``name`` in ``ARBOR_GOLDEN_DIR``:
    replayed ``ARBOR_GOLDEN_REPEAT`` times, refused (with the engine's reason) when it is not
    reproducible, did not answer, used an online LLM, or the name is taken.  Operators only.

    Never raises for invalid input, a refusal, telemetry off or a store error: those are
    ``problems``."""
    auth.require_operator("capture_golden")
    try:
        form = CaptureForm(request_id=request_id, name=name)
    except ValidationError as exc:
        return CaptureOutcome(problems=tuple(validation_problems(exc, _FORM_LABELS)))
    store = runtime.get_store()
    if store is None:
        return CaptureOutcome(
            problems=(
                "Telemetry is off (ARBOR_TELEMETRY=off): no request is stored, so none can be captured.",
            )
        )
    try:
        store.wait(timeout_s=_FLUSH_WAIT_S)  # a request this console just answered may still be queued
        result = capture(form.request_id, form.name, settings=runtime.get_settings())
    except CaptureRefused as exc:
        return CaptureOutcome(problems=(f"Capture refused: {exc}",))
    except GoldenError as exc:
        return CaptureOutcome(problems=(f"Capture failed: {exc}",))
    except _STORE_ERRORS as exc:
        return CaptureOutcome(problems=(f"Capture failed: the store failed: {type(exc).__name__}: {exc}",))
    return CaptureOutcome(result.name, result.path, result.golden, result.replays)
