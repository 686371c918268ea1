"""The canary runner: ramps a candidate configuration through the spec's traffic steps, comparing
it with the baseline over a sliding window at every evaluation, and promotes or rolls back.

* **Traffic**: units ``unit-000000``, ``unit-000001``, ... send ``workload.queries_per_unit``
  queries each, one after the other (drawn with ``numpy.random.default_rng([seed, i])`` like the
  experiment runner).  A unit is in the canary arm at a step of ``share`` percent when its
  bucket (:func:`engine.experiments.assignment.bucket` with the canary id as salt and experiment)
  is below ``share x 100``; so a unit in the canary stays there as the share grows.  Requests are
  recorded with ``experiment=<canary id>``, ``variant=baseline|canary``, ``correlation_id
  canary-<run id>`` and deterministic request ids (uuid5 of ``<run id>/<unit>/<k>``).
* **Clock**: with ``simulated=True`` request *k* of the run is stamped ``start + k / rate_per_s``
  on a simulated timeline that ends no later than the run's start (rows marked simulated; injected
  latency is added, not slept), so tests and drills are fast; otherwise the wall clock.
* **Faults**: the spec's per-arm :class:`~engine.faults.FaultPlan`, drawn per request from
  ``default_rng([seed, unit, k, 1])``, on that arm only; evaluations name them as injected.
* **Window**: each arm's last ``window_requests`` served requests (ok or error), across steps.
* **Evaluation** every ``check_every`` served canary requests, and when the step has just
  gathered ``min_requests`` served requests in each arm: every enabled guardrail
  (:mod:`engine.canary.guardrails`) over the window; all wait until both windows hold
  ``min_requests``.  Any failure rolls back at once (share 0, the failing guardrails' values
  and thresholds in the reason); with none failing or waiting and ``min_requests`` received by
  each arm during the step, the canary is promoted to the next step; reaching 100 % ends the run
  ``promoted`` (there is no baseline left to compare at 100 %).  A step that sends
  ``max_requests_per_step`` requests without that stalls the run.
* **Persistence**: the run and every evaluation are committed as they happen
  (:mod:`observability.store.canary_store`); ``stop()`` is polled before every request and ends
  the run ``stopped`` with everything recorded.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from engine.canary.guardrails import (
    GuardrailResult,
    correctness_guard,
    error_ratio_guard,
    p95_latency_guard,
    slo_burn_guard,
)
from engine.canary.spec import ROOT, CanarySpec
from engine.events import Final
from engine.experiments.assignment import bucket
from engine.experiments.runner import RunConfigError, unit_name, workload_rows
from engine.faults import FaultPlan, Faults
from engine.llm import ProviderNotConfigured
from engine.models import QueryRequest
from observability.slo.models import SLO, SLOConfigError, load_slos
from observability.slo.sqlite_source import threshold_ms
from observability.store.canary_store import CanaryWriter

__all__ = ["ARMS", "REQUEST_ID_NAMESPACE", "CanaryProgress", "CanaryReport", "RunConfigError", "run_canary"]

ARMS = ("baseline", "canary")
#: The namespace of the canary's request ids (uuid5 of ``<run id>/<unit>/<k>``).
REQUEST_ID_NAMESPACE = uuid.UUID("0c7a1f4e-2d5b-4e8a-9b3c-5a6d7e8f9012")


@dataclass(frozen=True, slots=True)
class CanaryProgress:
    """Where a run is: the step (0-based) and its share (%), requests sent by arm, evaluations
    made and the last decision."""

    run_id: str
    step_index: int
    share_pct: float
    baseline_sent: int
    canary_sent: int
    evaluations: int
    last_decision: str | None


@dataclass(frozen=True, slots=True)
class CanaryReport:
    """A run's outcome (the CLI prints it as JSON).

    ``status``: promoted, rolled_back, stalled or stopped; ``share_pct``: the canary's final
    traffic share (100 promoted, 0 rolled back); ``reason``: why; ``step_index``: the step the run
    ended at; ``sent``/``errors`` by arm; ``guardrails``: the last evaluation's results as
    ``{name: {"value", "threshold", "verdict", "detail"}}``.
    """

    run_id: str
    canary: str
    seed: int
    simulated: bool
    status: str
    share_pct: float
    reason: str
    step_index: int
    steps: tuple[float, ...]
    evaluations: int
    sent: dict[str, int]
    errors: dict[str, int]
    invalid: int
    injected_faults: dict[str, str | None]
    guardrails: dict[str, dict[str, Any]]
    wall_s: float


@dataclass(frozen=True, slots=True)
class _Outcome:
    ts: float
    status: str
    latency_ms: float | None
    verdict: str | None


def _select_slos(spec: CanarySpec, slos: Sequence[SLO] | None) -> list[SLO]:
    guard = spec.guardrails.slo_burn
    if not guard.enabled:
        return []
    if slos is None:
        try:
            slos = load_slos()
        except SLOConfigError as exc:
            raise RunConfigError(
                f"the SLO-burn guardrail needs data/slos.yaml: {str(exc).splitlines()[0]}"
            ) from None
    known = {s.name: s for s in slos}
    missing = [n for n in guard.slos if n not in known]
    if missing:
        raise RunConfigError(f"unknown SLO(s) {missing} in guardrails.slo_burn.slos (known: {sorted(known)})")
    return [known[n] for n in guard.slos] if guard.slos else list(slos)


def _requests(spec: CanarySpec, rows: Sequence[dict[str, Any]]) -> None:
    """Check that every workload row is a valid request for both arms (before anything is sent)."""
    for row in rows:
        try:
            base = QueryRequest(
                query=row["query"], task=row.get("task", "auto"), seed=0, user_id="unit-000000"
            )
            for arm in ARMS:
                spec.overrides(arm).apply(base)
        except (ValidationError, KeyError, TypeError) as exc:
            raise RunConfigError(
                f"workload {spec.workload.file}: query {str(row.get('query'))[:60]!r} is not a valid "
                f"request: "
                f"{str(exc).splitlines()[0]}"
            ) from None


def run_canary(
    engine: Any,
    spec: CanarySpec,
    *,
    seed: int | None = None,
    simulated: bool = False,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[CanaryProgress], None] | None = None,
    slos: Sequence[SLO] | None = None,
    clock: Callable[[], float] = time.time,
    root: Path = ROOT,
) -> CanaryReport:
    """Run the canary ``spec`` through ``engine`` (which must have a telemetry store) to its end.

    Args:
        engine: an :class:`engine.Engine` with a telemetry store.
        spec: the validated canary spec.
        seed: the run seed (query draws, engine seeds, fault draws); default the spec's workload seed.
        simulated: stamp requests on a simulated clock (``rate_per_s``) instead of the wall clock.
        stop: polled before every request; once True the run ends ``stopped``.
        progress: called after every evaluation and every 100 requests (must not block long).
        slos: the SLOs of the SLO-burn guardrail (None: data/slos.yaml).
        clock: wall clock (unix s) for the run's times.
        root: the directory a relative workload path is read from.

    Raises:
        RunConfigError: no telemetry store, an unreadable or invalid workload, a bad seed, or SLOs
            that cannot be loaded (nothing was sent).
        sqlite3.Error: the store cannot be written.
    """
    seed = spec.workload.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise RunConfigError(f"seed must be a whole number in 0..2**63-1, got {seed!r}")
    store = getattr(getattr(engine, "telemetry", None), "store", None)
    if store is None:
        raise RunConfigError("a canary run needs the telemetry store (ARBOR_TELEMETRY=off turns it off)")
    rows = workload_rows(spec.workload, root)
    _requests(spec, rows)
    chosen_slos = _select_slos(spec, slos)
    plans = {arm: spec.faults.plan(arm) for arm in ARMS}
    run_id = uuid.uuid4().hex[:16]
    writer = CanaryWriter(store.path, run_id, clock)
    try:
        return _Run(
            engine, spec, seed, simulated, stop, progress, chosen_slos, clock, rows, plans, writer
        ).go()
    finally:
        writer.close()


class _Run:
    def __init__(
        self,
        engine: Any,
        spec: CanarySpec,
        seed: int,
        simulated: bool,
        stop: Callable[[], bool] | None,
        progress: Callable[[CanaryProgress], None] | None,
        slos: list[SLO],
        clock: Callable[[], float],
        rows: Sequence[dict[str, Any]],
        plans: dict[str, FaultPlan | None],
        writer: CanaryWriter,
    ) -> None:
        self.engine, self.spec, self.seed, self.simulated = engine, spec, seed, simulated
        self.stop, self.progress, self.slos, self.clock = stop, progress, slos, clock
        self.rows, self.plans, self.writer = rows, plans, writer
        self.window = {arm: deque[_Outcome](maxlen=spec.window_requests) for arm in ARMS}
        self.canary_all: list[_Outcome] = []
        self.sent = dict.fromkeys(ARMS, 0)
        self.errors = dict.fromkeys(ARMS, 0)
        self.invalid = 0
        self.k = 0
        self.seq = 0
        self.last: list[GuardrailResult] = []
        self.last_decision: str | None = None
        horizon = len(spec.steps) * spec.max_requests_per_step / spec.rate_per_s
        self.start_ts = clock() - horizon if simulated else 0.0
        self.t0 = time.monotonic()
        self._share = spec.steps[0]
        self._served_arm: str | None = None
        self._unit_cache: tuple[int, np.ndarray, np.ndarray, np.random.Generator] | None = None

    # -- traffic --------------------------------------------------------------------------------
    def _unit(self, i: int) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
        if self._unit_cache is None or self._unit_cache[0] != i:
            qpu = self.spec.workload.queries_per_unit
            rng = np.random.default_rng([self.seed, i])
            picks = rng.choice(len(self.rows), size=qpu, replace=len(self.rows) < qpu)
            seeds = rng.integers(0, 2**53, size=qpu)
            self._unit_cache = (i, picks, seeds, np.random.default_rng([self.seed, i, 1]))
        _, picks, seeds, frng = self._unit_cache
        return picks, seeds, frng

    def _now(self) -> float:
        return self.start_ts + self.k / self.spec.rate_per_s if self.simulated else self.clock()

    def _send(self, share: float) -> None:
        qpu = self.spec.workload.queries_per_unit
        i, j = divmod(self.k, qpu)
        unit = unit_name(i)
        picks, seeds, frng = self._unit(i)
        arm = "canary" if bucket(self.spec.salt, self.spec.id, unit) < round(share * 100) else "baseline"
        fault_draw = [(a, p.draw(frng) if p is not None else Faults()) for a, p in self.plans.items()]
        faults = dict(fault_draw)[arm]
        row = self.rows[int(picks[j])]
        request = self.spec.overrides(arm).apply(
            QueryRequest(
                query=row["query"],
                task=row.get("task", "auto"),
                seed=int(seeds[j]),
                user_id=unit,
                correlation_id=f"canary-{self.writer.run_id}",
            )
        )
        rid = uuid.uuid5(REQUEST_ID_NAMESPACE, f"{self.writer.run_id}/{unit}/{j}").hex
        ts = self._now()
        status, latency, verdict = "ok", None, None
        try:
            for event in self.engine.stream(
                request,
                live=False,
                ts=ts if self.simulated else None,
                simulated=self.simulated,
                experiment=self.spec.id,
                variant=arm,
                faults=faults,
                request_id=rid,
            ):
                if isinstance(event, Final):
                    latency, verdict = event.result.latency_ms, event.result.verdict
        except (ValueError, ProviderNotConfigured):
            status = "invalid"
        except Exception:  # an engine failure (injected or not): recorded by the engine as error
            status = "error"
        self.k += 1
        self.sent[arm] += 1
        if status == "invalid":
            self.invalid += 1
            return
        if status == "error":
            self.errors[arm] += 1
        out = _Outcome(ts if self.simulated else self.clock(), status, latency, verdict)
        self.window[arm].append(out)
        if arm == "canary":
            self.canary_all.append(out)
        self._served_arm = arm

    # -- guardrails -----------------------------------------------------------------------------
    def _evaluate(self) -> list[GuardrailResult]:
        g, spec = self.spec.guardrails, self.spec
        base, can = self.window["baseline"], self.window["canary"]
        names = [
            *(["error_ratio"] if g.error_ratio.enabled else []),
            *(["p95_latency"] if g.p95_latency.enabled else []),
            *(["correctness"] if g.correctness.enabled else []),
        ] + [f"slo_burn:{s.name}" for s in self.slos]
        if len(base) < spec.min_requests or len(can) < spec.min_requests:
            detail = (
                f"{len(can)} canary / {len(base)} baseline served requests in the window, "
                f"{spec.min_requests} needed in each"
            )
            return [GuardrailResult(n, None, None, "waiting", detail) for n in names]
        out: list[GuardrailResult] = []
        if g.error_ratio.enabled:
            out.append(
                error_ratio_guard(
                    sum(o.status == "error" for o in base),
                    len(base),
                    sum(o.status == "error" for o in can),
                    len(can),
                    relative=g.error_ratio.relative,
                    absolute_points=g.error_ratio.absolute_points,
                )
            )
        if g.p95_latency.enabled:
            out.append(
                p95_latency_guard(
                    [o.latency_ms for o in base if o.status == "ok" and o.latency_ms is not None],
                    [o.latency_ms for o in can if o.status == "ok" and o.latency_ms is not None],
                    relative=g.p95_latency.relative,
                    alpha=g.p95_latency.alpha,
                    min_n=2,
                )
            )
        if g.correctness.enabled:
            jb = [o for o in base if o.status == "ok" and o.verdict in ("correct", "incorrect")]
            jc = [o for o in can if o.status == "ok" and o.verdict in ("correct", "incorrect")]
            out.append(
                correctness_guard(
                    sum(o.verdict == "correct" for o in jb),
                    len(jb),
                    sum(o.verdict == "correct" for o in jc),
                    len(jc),
                    alpha=g.correctness.alpha,
                )
            )
        as_of = self._now() if self.simulated else self.clock()
        for slo in self.slos:
            ts, bad = _slo_events(slo, self.canary_all)
            out.append(slo_burn_guard(slo, ts, bad, as_of))
        return out

    def _record(
        self,
        step_index: int,
        share: float,
        decision: str,
        reason: str,
        step_n: dict[str, int],
        results: list[GuardrailResult],
        run_share: float,
    ) -> None:
        self.seq += 1
        injected = [
            f"{a}: {self.spec.faults.baseline if a == 'baseline' else self.spec.faults.canary}"
            for a in ARMS
            if self.plans[a] is not None
        ]
        if injected:
            reason += f" [injected faults: {'; '.join(injected)}]"
        self.writer.evaluation(
            self.seq,
            {
                "step_index": step_index,
                "share_pct": share,
                "ts": self._now() if self.simulated else self.clock(),
                "wall_ts": self.clock(),
                "decision": decision,
                "reason": reason,
                "baseline_window": len(self.window["baseline"]),
                "canary_window": len(self.window["canary"]),
                "baseline_step": step_n["baseline"],
                "canary_step": step_n["canary"],
                "baseline_total": self.sent["baseline"],
                "canary_total": self.sent["canary"],
            },
            [
                {
                    "guardrail": r.name,
                    "value": _finite(r.value),
                    "threshold": _finite(r.threshold),
                    "verdict": r.verdict,
                    "detail": r.detail,
                }
                for r in results
            ],
            run_share,
            (self.sent["baseline"], self.sent["canary"]),
        )
        self.last, self.last_decision = results, decision

    def _report(self, status: str, share: float, reason: str, step_index: int) -> CanaryReport:
        return CanaryReport(
            run_id=self.writer.run_id,
            canary=self.spec.id,
            seed=self.seed,
            simulated=self.simulated,
            status=status,
            share_pct=share,
            reason=reason,
            step_index=step_index,
            steps=tuple(self.spec.steps),
            evaluations=self.seq,
            sent=dict(self.sent),
            errors=dict(self.errors),
            invalid=self.invalid,
            injected_faults={"baseline": self.spec.faults.baseline, "canary": self.spec.faults.canary},
            guardrails={
                r.name: {"value": r.value, "threshold": r.threshold, "verdict": r.verdict, "detail": r.detail}
                for r in self.last
            },
            wall_s=time.monotonic() - self.t0,
        )

    def _tick(self, step_index: int, share: float) -> None:
        if self.progress is not None:
            self.progress(
                CanaryProgress(
                    self.writer.run_id,
                    step_index,
                    share,
                    self.sent["baseline"],
                    self.sent["canary"],
                    self.seq,
                    self.last_decision,
                )
            )

    # -- the ramp -------------------------------------------------------------------------------
    def go(self) -> CanaryReport:
        spec = self.spec
        self.writer.start(spec.id, self.seed, self.simulated, spec.model_dump(mode="json"), spec.steps[0])
        try:
            return self._ramp()
        except Exception as exc:
            reason = f"the run failed: {type(exc).__name__}: {exc}"
            self._finish("failed", reason, 0.0)
            raise
        except BaseException:
            self._finish("stopped", "interrupted", self._share)
            raise

    def _finish(self, status: str, reason: str, share: float) -> None:
        with contextlib.suppress(Exception):  # the store is gone: the original error is what matters
            self.writer.finish(status, reason, share, (self.sent["baseline"], self.sent["canary"]))

    def _ramp(self) -> CanaryReport:
        spec = self.spec
        self._share = spec.steps[0]
        for step_index, share in enumerate(spec.steps):
            self._share = share
            if share >= 100:
                reason = f"promoted to 100 % after {step_index} step(s) with every guardrail passing"
                self.writer.finish("promoted", reason, 100.0, (self.sent["baseline"], self.sent["canary"]))
                return self._report("promoted", 100.0, reason, step_index)
            step_n = dict.fromkeys(ARMS, 0)
            since, step_sent, ready_checked = 0, 0, False
            while True:
                if self.stop is not None and self.stop():
                    reason = (
                        f"stopped at step {step_index + 1} ({share:g} %) after {self.k} requests; "
                        "nothing recorded was lost"
                    )
                    self._record(step_index, share, "stop", reason, step_n, self._evaluate(), share)
                    self.writer.finish("stopped", reason, share, (self.sent["baseline"], self.sent["canary"]))
                    return self._report("stopped", share, reason, step_index)
                if step_sent >= spec.max_requests_per_step:
                    reason = (
                        f"stalled at step {step_index + 1} ({share:g} %): {step_sent} requests sent, "
                        "the step "
                        f"received {step_n['canary']} canary and {step_n['baseline']} baseline requests "
                        f"of the {spec.min_requests} needed in each"
                    )
                    self._record(step_index, share, "stall", reason, step_n, self._evaluate(), share)
                    self.writer.finish("stalled", reason, share, (self.sent["baseline"], self.sent["canary"]))
                    return self._report("stalled", share, reason, step_index)
                self._served_arm = None
                self._send(share)
                step_sent += 1
                if self.k % 100 == 0:
                    self._tick(step_index, share)
                arm = self._served_arm
                if arm is None:
                    continue
                step_n[arm] += 1
                since += arm == "canary"
                ready = min(step_n.values()) >= spec.min_requests
                if since < spec.check_every and not (ready and not ready_checked):
                    continue
                since = 0
                ready_checked = ready_checked or ready
                results = self._evaluate()
                failed = [r for r in results if r.failed]
                if failed:
                    why = "; ".join(f"{r.name}: {r.detail}" for r in failed)
                    reason = f"rolled back at step {step_index + 1} ({share:g} %): {why}"
                    self._record(step_index, share, "rollback", reason, step_n, results, 0.0)
                    self.writer.finish(
                        "rolled_back", reason, 0.0, (self.sent["baseline"], self.sent["canary"])
                    )
                    self._tick(step_index, 0.0)
                    return self._report("rolled_back", 0.0, reason, step_index)
                waiting = [r.name for r in results if r.verdict == "waiting"]
                nxt = spec.steps[step_index + 1]
                if ready and not waiting:
                    reason = (
                        f"promote {share:g} % -> {nxt:g} %: every guardrail passed with {step_n['canary']} "
                        f"canary and {step_n['baseline']} baseline requests in the step"
                    )
                    self._record(step_index, share, "promote", reason, step_n, results, nxt)
                    self._tick(step_index, nxt)
                    break
                need = (
                    (
                        f"the step has {step_n['canary']} canary and {step_n['baseline']} baseline "
                        "requests of "
                        f"{spec.min_requests} needed in each"
                    )
                    if not ready
                    else ""
                )
                reason = "continue: " + "; ".join(
                    x for x in (need, f"waiting for data: {', '.join(waiting)}" if waiting else "") if x
                )
                self._record(step_index, share, "continue", reason, step_n, results, share)
                self._tick(step_index, share)
        raise AssertionError("unreachable: the last step is 100")  # pragma: no cover


def _slo_events(slo: SLO, outcomes: Sequence[_Outcome]) -> tuple[list[float], list[bool]]:
    """(timestamps, bad flags) of ``slo``'s events among ``outcomes`` (the store's definitions:
    :mod:`observability.store.slo_reads`; latency among requests with a latency, i.e. ok ones)."""
    if slo.kind == "availability":
        return [o.ts for o in outcomes], [o.status == "error" for o in outcomes]
    if slo.kind == "latency":
        thr = threshold_ms(slo)
        assert thr is not None
        ev = [o for o in outcomes if o.latency_ms is not None]
        return [o.ts for o in ev], [o.latency_ms > thr for o in ev]  # type: ignore[operator]
    ev = [o for o in outcomes if o.verdict in ("correct", "incorrect")]
    return [o.ts for o in ev], [o.verdict == "incorrect" for o in ev]


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None
