"""The golden suite: load a directory of golden files, replay and compare each, judge latency
across the suite, and record the run in the store's ``golden_runs`` table.

Per trace the status is ``pass``, ``regression`` (a divergence in routing, span tree, answer,
verdict or quality) or ``error`` (the file cannot be loaded, or its request cannot be replayed; the
rest of the suite still runs).  Latency never fails a trace.  Across the suite, replayed latencies
(the median of ``repeat`` replays per trace) are paired with the golden ones and tested with the
one-sided Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, H1: replays are slower); the suite
has a latency regression only when that test is significant at ``golden_latency_alpha`` AND the
median relative change exceeds ``golden_latency_tolerance``, so machine noise alone does not fail it.

``golden_runs`` columns (one row per golden per run, their meaning is a stable interface read by the
SLO review): ``run_id``, ``golden_id`` (the golden's name), ``ts`` (run start, unix s), ``status``,
``request_id``/``trace_id`` (the last replay, recorded as an ordinary request), ``first_divergence``
(the message, NULL on a pass), ``diff`` (JSON: ``divergences``, ``error``, ``latency_samples_ms``,
``suite_latency``), ``quality``/``golden_quality``, ``latency_ms``/``golden_latency_ms`` (medians, ms).
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from engine.config import Settings, load_settings
from engine.golden.compare import Divergence, Observation, compare
from engine.golden.format import GoldenError, GoldenFile, GoldenSpan, GoldenStep, read_golden
from engine.golden.history import record_run
from engine.golden.replay import Replayer, ReplayError, latency_medians
from observability.store.review_reads import GoldenTally

__all__ = [
    "LatencyVerdict",
    "LoadError",
    "LoadedGolden",
    "ProgressFn",
    "Suite",
    "SuiteResult",
    "TraceResult",
    "TraceStatus",
    "latency_verdict",
    "load_suite",
    "run_golden",
    "run_suite",
]

TraceStatus = Literal["pass", "regression", "error"]

#: ``progress(done, total, name, status)``: called after each golden (``done`` of ``total``).
ProgressFn = Callable[[int, int, str, str], None]


@dataclass(frozen=True, slots=True)
class LoadedGolden:
    """A golden file that parsed: its name (the file stem), path and content."""

    name: str
    path: Path
    golden: GoldenFile


@dataclass(frozen=True, slots=True)
class LoadError:
    """A golden file that did not load; ``message`` names the file and the field."""

    name: str
    path: Path
    message: str


@dataclass(frozen=True, slots=True)
class Suite:
    """A suite directory's goldens (sorted by name) and the files that failed to load."""

    directory: Path
    goldens: tuple[LoadedGolden, ...]
    errors: tuple[LoadError, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Every golden's name, loaded or not, sorted."""
        return tuple(sorted([g.name for g in self.goldens] + [e.name for e in self.errors]))


@dataclass(frozen=True, slots=True)
class TraceResult:
    """One golden's outcome in a run.

    ``first_divergence`` is the message of ``divergences[0]`` (None on a pass; on an error, the
    error).  Latencies in ms: ``latency_ms`` is the median of ``latency_samples`` (one per replay),
    ``latency_change`` the relative change against ``golden_latency_ms`` (reported, never a failure).
    ``routing``, ``spans``, ``answer``, ``verdict`` are what the (first diverging, else last) replay
    did, for a side-by-side view with ``golden``.
    """

    name: str
    path: Path
    status: TraceStatus
    first_divergence: str | None
    divergences: tuple[Divergence, ...] = ()
    error: str | None = None
    golden: GoldenFile | None = None
    request_id: str | None = None
    trace_id: str | None = None
    answer: str | None = None
    verdict: str | None = None
    quality: float | None = None
    routing: tuple[GoldenStep, ...] = ()
    spans: tuple[GoldenSpan, ...] = ()
    latency_ms: float | None = None
    latency_samples: tuple[float, ...] = ()
    span_latency_ms: dict[str, float] = field(default_factory=dict)

    @property
    def golden_latency_ms(self) -> float | None:
        """The golden's median total latency (ms)."""
        return self.golden.latency_ms.total if self.golden is not None else None

    @property
    def golden_quality(self) -> float | None:
        """The golden's quality."""
        return self.golden.quality if self.golden is not None else None

    @property
    def latency_change(self) -> float | None:
        """``latency_ms / golden_latency_ms - 1`` (0.1: 10 % slower), None when unknown."""
        g = self.golden_latency_ms
        if self.latency_ms is None or not g:
            return None
        return self.latency_ms / g - 1.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``golden run --json``."""
        return {
            "name": self.name,
            "path": str(self.path),
            "status": self.status,
            "first_divergence": self.first_divergence,
            "divergences": [d.as_dict() for d in self.divergences],
            "error": self.error,
            "request_id": self.request_id,
            "trace_id": self.trace_id,
            "answer": self.answer,
            "golden_answer": self.golden.answer if self.golden else None,
            "verdict": self.verdict,
            "golden_verdict": self.golden.verdict if self.golden else None,
            "quality": self.quality,
            "golden_quality": self.golden_quality,
            "latency_ms": self.latency_ms,
            "golden_latency_ms": self.golden_latency_ms,
            "latency_change": self.latency_change,
            "latency_samples_ms": list(self.latency_samples),
        }


@dataclass(frozen=True, slots=True)
class LatencyVerdict:
    """The suite's latency judgement.

    ``n`` traces paired (replayed median vs golden median, ms); ``p_value`` of the one-sided
    Wilcoxon signed-rank test (None when it cannot be computed: fewer than 2 pairs or all equal);
    ``median_change``: median of the per-trace relative changes (0.1 = 10 % slower);
    ``median_change_ms``: median of the differences (ms).  ``regression``: significant at
    ``alpha`` and ``median_change > tolerance``.  ``gated``: whether it fails the run.
    """

    n: int
    p_value: float | None
    median_change: float | None
    median_change_ms: float | None
    tolerance: float
    alpha: float
    significant: bool
    regression: bool
    gated: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        """JSON form (the ``latency`` object of ``golden run --json``)."""
        return {
            "n": self.n,
            "test": "wilcoxon signed-rank, one-sided (replayed > golden)",
            "p_value": self.p_value,
            "median_change": self.median_change,
            "median_change_ms": self.median_change_ms,
            "tolerance": self.tolerance,
            "alpha": self.alpha,
            "significant": self.significant,
            "regression": self.regression,
            "gated": self.gated,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class SuiteResult(GoldenTally):
    """One run of the suite: counts, the latency verdict, each golden's result (sorted by name).

    ``recorded``: the run's rows were written to ``golden_runs`` (False when telemetry is off or the
    store failed; ``record_error`` says why).
    """

    run_id: str
    ts: float
    directory: Path
    results: tuple[TraceResult, ...]
    latency: LatencyVerdict
    duration_s: float
    repeat: int
    recorded: bool = False
    record_error: str | None = None

    @property
    def ok(self) -> bool:
        """No regression, no error, and no gated latency regression."""
        return self.failed == 0 and self.errors == 0 and not (self.latency.gated and self.latency.regression)

    def as_json(self) -> dict[str, Any]:
        """The ``golden run --json`` document (a stable interface; see the README)."""
        return {
            "run_id": self.run_id,
            "ts": self.ts,
            "suite": str(self.directory),
            "passed": self.passed,
            "failed": self.failed,
            "errors": self.errors,
            "ok": self.ok,
            "repeat": self.repeat,
            "duration_s": self.duration_s,
            "recorded": self.recorded,
            "latency": self.latency.as_dict(),
            "results": [r.as_dict() for r in self.results],
        }


# --------------------------------------------------------------------------- loading


def load_suite(directory: Path | str, names: Sequence[str] | None = None) -> Suite:
    """Load every ``*.json`` golden in ``directory`` (only ``names`` when given).

    A file that does not load becomes a :class:`LoadError` naming the file and field; a requested
    name without a file is a LoadError too.

    Raises:
        GoldenError: ``directory`` is not a readable directory.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise GoldenError(f"{directory}: the golden suite directory does not exist or is not a directory")
    try:
        paths = sorted(directory.glob("*.json"))
    except OSError as exc:
        raise GoldenError(f"{directory}: cannot be listed: {exc.strerror or exc}") from None
    wanted = None if names is None else set(names)
    goldens: list[LoadedGolden] = []
    errors: list[LoadError] = []
    for path in paths:
        if wanted is not None and path.stem not in wanted:
            continue
        try:
            goldens.append(LoadedGolden(path.stem, path, read_golden(path)))
        except GoldenError as exc:
            errors.append(LoadError(path.stem, path, str(exc)))
    for name in sorted((wanted or set()) - {p.stem for p in paths}):
        path = directory / f"{name}.json"
        errors.append(LoadError(name, path, f"{path}: no such golden file"))
    return Suite(directory, tuple(goldens), tuple(errors))


# --------------------------------------------------------------------------- latency


def latency_verdict(
    pairs: Sequence[tuple[float, float]], *, tolerance: float, alpha: float, gated: bool
) -> LatencyVerdict:
    """Judge ``pairs`` of (replayed ms, golden ms): one-sided Wilcoxon signed-rank test that the
    replays are slower, and the median relative change; a regression needs both."""
    from scipy.stats import wilcoxon

    usable = [(r, g) for r, g in pairs if math.isfinite(r) and math.isfinite(g) and g > 0]
    n = len(usable)
    if n == 0:
        return LatencyVerdict(
            0, None, None, None, tolerance, alpha, False, False, gated, "no latencies to compare"
        )
    changes = [r / g - 1.0 for r, g in usable]
    median_change = statistics.median(changes)
    median_ms = statistics.median(r - g for r, g in usable)
    p_value: float | None = None
    if n >= 2 and any(r != g for r, g in usable):
        res = wilcoxon([r for r, _ in usable], [g for _, g in usable], alternative="greater")
        p_value = float(res.pvalue)
    significant = p_value is not None and p_value < alpha
    regression = significant and median_change > tolerance
    p_text = "n/a" if p_value is None else f"{p_value:.3g}"
    detail = (
        f"median change {median_change:+.1%} ({median_ms:+.2f} ms) over {n} traces, "
        f"Wilcoxon p = {p_text} (alpha {alpha:g}, tolerance {tolerance:+.0%}): "
        + ("latency regression" if regression else "no latency regression")
        + ("" if gated else " (not gated)")
    )
    return LatencyVerdict(
        n, p_value, median_change, median_ms, tolerance, alpha, significant, regression, gated, detail
    )


# --------------------------------------------------------------------------- running


def _error(loaded: LoadedGolden, message: str) -> TraceResult:
    return TraceResult(loaded.name, loaded.path, "error", message, error=message, golden=loaded.golden)


def run_golden(
    replayer: Replayer,
    loaded: LoadedGolden,
    settings: Settings,
    *,
    repeat: int = 1,
    correlation_id: str | None = None,
) -> TraceResult:
    """Replay one golden ``1 + repeat`` times and compare every replay; the first diverging replay
    (else the last) is reported.  The first replay warms the process's caches (the task solvers'
    memo tables, lazy imports), so the latency is the median of the other ``repeat``."""
    g = loaded.golden
    observations: list[Observation] = []
    chosen: tuple[Observation, tuple[Divergence, ...]] | None = None
    for _ in range(1 + repeat):  # the first replay warms caches: compared, its latency not used
        try:
            obs = replayer.replay(g.request, correlation_id)
        except ReplayError as exc:
            return _error(loaded, f"{loaded.path}: cannot be replayed: {exc}")
        observations.append(obs)
        diffs = compare(
            g,
            obs,
            prob_tolerance=settings.golden_prob_tolerance,
            quality_tolerance=settings.golden_quality_tolerance,
        )
        if diffs and chosen is None:
            chosen = (obs, diffs)
    obs, diffs = chosen if chosen is not None else (observations[-1], ())
    median_ms, span_latency = latency_medians(observations[1:])
    samples = tuple(o.latency_ms for o in observations[1:])
    return TraceResult(
        name=loaded.name,
        path=loaded.path,
        status="regression" if diffs else "pass",
        first_divergence=diffs[0].message if diffs else None,
        divergences=diffs,
        golden=g,
        request_id=obs.request_id,
        trace_id=obs.trace_id,
        answer=obs.answer,
        verdict=obs.verdict,
        quality=obs.quality,
        routing=obs.routing,
        spans=obs.spans,
        latency_ms=median_ms,
        latency_samples=samples,
        span_latency_ms=span_latency,
    )


def run_suite(
    suite: Suite | Path | str | None = None,
    *,
    settings: Settings | None = None,
    repeat: int = 1,
    latency_gate: bool = True,
    progress: ProgressFn | None = None,
    record: bool = True,
    deadline_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    **engine_kw: Any,
) -> SuiteResult:
    """Replay and compare every golden of ``suite`` (a loaded :class:`Suite` or a directory; default
    ``settings.golden_dir``), judge latency across the suite, and with ``record`` store one
    ``golden_runs`` row per golden (and each replay as a request) in the settings' store.

    ``repeat``: replays per golden (latency: their median; behaviour must match on every one).
    ``progress(done, total, name, status)`` is called after each golden.  ``deadline_s``: goldens
    not started within this many seconds are ``error`` ("not run: deadline").  ``engine_kw`` go to
    :class:`~engine.pipeline.Engine` (tests inject collaborators there).

    Raises:
        GoldenError: the suite directory cannot be read.
        ValueError: ``repeat`` < 1.
        StoreOpenError: the store cannot be opened (only with ``record`` and telemetry on).
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    settings = settings if settings is not None else load_settings()
    if not record:
        settings = settings.model_copy(update={"telemetry": "off"})
    if not isinstance(suite, Suite):
        suite = load_suite(suite if suite is not None else settings.golden_dir)
    run_id = uuid.uuid4().hex
    ts = time.time()
    started = clock()
    total = len(suite.goldens) + len(suite.errors)
    results: list[TraceResult] = [
        TraceResult(e.name, e.path, "error", e.message, error=e.message) for e in suite.errors
    ]
    done = 0
    for e in suite.errors:
        done += 1
        if progress is not None:
            progress(done, total, e.name, "error")
    with Replayer(settings, **engine_kw) as replayer:
        for loaded in suite.goldens:
            if deadline_s is not None and clock() - started > deadline_s:
                result = _error(
                    loaded, f"{loaded.path}: not run: the suite's deadline of {deadline_s:g} s passed"
                )
            else:
                result = run_golden(
                    replayer, loaded, settings, repeat=repeat, correlation_id=f"golden-{run_id}"
                )
            results.append(result)
            done += 1
            if progress is not None:
                progress(done, total, loaded.name, result.status)
        results.sort(key=lambda r: r.name)
        pairs = [
            (r.latency_ms, r.golden_latency_ms)
            for r in results
            if r.status != "error" and r.latency_ms is not None and r.golden_latency_ms is not None
        ]
        verdict = latency_verdict(
            pairs,
            tolerance=settings.golden_latency_tolerance,
            alpha=settings.golden_latency_alpha,
            gated=latency_gate,
        )
        outcome = SuiteResult(run_id, ts, suite.directory, tuple(results), verdict, clock() - started, repeat)
        if record and replayer.telemetry.store is not None:
            outcome = record_run(replayer.telemetry.store, outcome)
    return outcome
