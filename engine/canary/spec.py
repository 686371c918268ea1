"""Canary specs: YAML files in ``data/canaries/``, validated by pydantic.

A spec names the canary (``id``: the ``experiment`` label of its requests), the ``baseline`` and
``candidate`` engine settings (:class:`~engine.experiments.specs.VariantOverrides`; the baseline
usually sets none), the ``workload`` its units send (a JSONL file, as in experiment specs), the
traffic ``steps`` in percent (default 1, 5, 10, 25, 50, 100; the last is 100), the sliding
``window`` (the last ``window_requests`` served requests of each arm), ``min_requests`` (served
requests each arm must receive during a step before it can be promoted), ``check_every`` (the
canary arm's requests between two evaluations), ``max_requests_per_step`` (a step that has not
gathered enough requests by then stalls the run), ``rate_per_s`` (the request rate of the simulated
clock), the ``guardrails`` (with the defaults of issue 15) and optional ``faults`` per arm
(:class:`~engine.faults.FaultPlan` text, for drills and tests: injected on that arm only).

Every problem is reported at once as a :class:`~engine.experiments.specs.SpecError` whose lines
read ``FILE:LINE: FIELD: message``, as for experiment specs (the same YAML position helpers).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.experiments.spec_yaml import parse_document, read_spec_file
from engine.experiments.specs import VariantOverrides, Workload
from engine.faults import FaultPlan

__all__ = [
    "DEFAULT_CANARIES_DIR",
    "DEFAULT_STEPS",
    "CanaryFaults",
    "CanarySpec",
    "CorrectnessGuard",
    "ErrorRatioGuard",
    "Guardrails",
    "LatencyGuard",
    "SloBurnGuard",
    "load_canary_spec",
    "parse_canary_spec",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CANARIES_DIR = ROOT / "data" / "canaries"
#: The traffic ramp of issue 15, in percent of units.
DEFAULT_STEPS: tuple[float, ...] = (1.0, 5.0, 10.0, 25.0, 50.0, 100.0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorRatioGuard(_Model):
    """Roll back when the canary's error ratio exceeds the baseline's x ``relative`` AND the
    baseline's + ``absolute_points`` percentage points (both margins must be exceeded)."""

    enabled: bool = True
    relative: float = Field(1.5, ge=1.0, le=100.0)
    absolute_points: float = Field(0.5, ge=0.0, le=100.0)


class LatencyGuard(_Model):
    """Roll back when the canary's p95 latency (ms, ok requests of the window) exceeds the
    baseline's x ``relative``, confirmed by a one-sided binomial test at ``alpha`` that more than
    5 % of the canary's requests are slower than that."""

    enabled: bool = True
    relative: float = Field(1.2, ge=1.0, le=100.0)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)


class CorrectnessGuard(_Model):
    """Roll back when a sequential two-proportion test (always valid under peeking) at ``alpha``
    finds the canary's share of correct verdicts lower than the baseline's."""

    enabled: bool = True
    alpha: float = Field(0.05, gt=0.0, lt=0.5)


class SloBurnGuard(_Model):
    """Roll back when the canary arm's requests fire a page-level multi-window burn-rate condition
    of an SLO of data/slos.yaml (``slos``: which ones; empty: all)."""

    enabled: bool = True
    slos: list[str] = Field(default_factory=list, max_length=20)


class Guardrails(_Model):
    """The four guardrails, each with the defaults of issue 15."""

    error_ratio: ErrorRatioGuard = Field(default_factory=ErrorRatioGuard)
    p95_latency: LatencyGuard = Field(default_factory=LatencyGuard)
    correctness: CorrectnessGuard = Field(default_factory=CorrectnessGuard)
    slo_burn: SloBurnGuard = Field(default_factory=SloBurnGuard)


class CanaryFaults(_Model):
    """Injected faults per arm (:class:`~engine.faults.FaultPlan` text such as ``error=0.2``)."""

    baseline: str | None = Field(None, max_length=200)
    canary: str | None = Field(None, max_length=200)

    def plan(self, arm: str) -> FaultPlan | None:
        """The arm's parsed plan (None: no faults); raises ValueError for bad text."""
        text = self.baseline if arm == "baseline" else self.canary
        if text is None or not text.strip():
            return None
        return FaultPlan.parse(text)


class CanarySpec(_Model):
    """One canary as written in its YAML file (see the module docstring)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = Field("", max_length=2000)
    baseline: VariantOverrides = Field(default_factory=VariantOverrides)
    candidate: VariantOverrides
    workload: Workload
    steps: list[float] = Field(default_factory=lambda: list(DEFAULT_STEPS), min_length=1, max_length=20)
    window_requests: int = Field(200, ge=10, le=100_000)
    min_requests: int = Field(50, ge=5, le=100_000)
    check_every: int = Field(10, ge=1, le=10_000)
    max_requests_per_step: int = Field(20_000, ge=10, le=1_000_000)
    rate_per_s: float = Field(20.0, gt=0.0, le=100_000.0)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    faults: CanaryFaults = Field(default_factory=CanaryFaults)

    @property
    def salt(self) -> str:
        """The assignment salt (the canary id: bucket = sha256(id:id:unit))."""
        return self.id

    def overrides(self, arm: str) -> VariantOverrides:
        """The engine settings of ``arm`` (``baseline`` or ``canary``)."""
        return self.baseline if arm == "baseline" else self.candidate


def _semantic(spec: CanarySpec, slo_names: frozenset[str] | None) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    steps = spec.steps
    for i, s in enumerate(steps):
        if not 0 < s <= 100:
            problems.append((("steps", i), f"a step is a traffic share in percent in (0, 100], got {s:g}"))
        elif abs(s * 100 - round(s * 100)) > 1e-6:
            problems.append((("steps", i), f"a step is resolved to 0.01 % (one bucket), got {s:g}"))
    if any(b <= a for a, b in itertools.pairwise(steps)):
        problems.append((("steps",), f"steps must increase strictly, got {[f'{s:g}' for s in steps]}"))
    if steps and steps[-1] != 100:
        problems.append((("steps",), f"the last step must be 100 (full rollout), got {steps[-1]:g}"))
    if spec.min_requests > spec.window_requests:
        problems.append(
            (
                ("min_requests",),
                f"min_requests ({spec.min_requests}) cannot exceed window_requests "
                f"({spec.window_requests}): the window could never hold them",
            )
        )
    if spec.max_requests_per_step < spec.min_requests:
        problems.append((("max_requests_per_step",), "must be at least min_requests"))
    for arm in ("baseline", "canary"):
        try:
            spec.faults.plan(arm)
        except ValueError as exc:
            problems.append((("faults", arm), str(exc).splitlines()[0]))
    same = spec.baseline.changes() == spec.candidate.changes()
    if same and spec.faults.baseline == spec.faults.canary:
        problems.append(
            (
                ("candidate",),
                "the candidate has the baseline's settings and faults: there is nothing to compare",
            )
        )
    for i, name in enumerate(spec.guardrails.slo_burn.slos):
        if slo_names is not None and name not in slo_names:
            problems.append(
                (("guardrails", "slo_burn", "slos", i), f"unknown SLO {name!r} (known: {sorted(slo_names)})")
            )
    if not spec.workload.path().is_file():
        problems.append((("workload", "file"), f"workload file {spec.workload.file!r} does not exist"))
    return problems


def _message(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        loc = err["loc"]
        if len(loc) >= 2 and loc[-2] in ("baseline", "candidate"):
            return (
                f"unknown override {loc[-1]!r}; a variant may set: {', '.join(VariantOverrides.model_fields)}"
            )
        return "unknown field"
    return str(err["msg"])


def parse_canary_spec(
    text: str, source: str = "<spec>", slo_names: Iterable[str] | None = None
) -> CanarySpec:
    """Validate the YAML ``text`` of one canary spec; ``source`` names it in messages.

    ``slo_names``: the SLOs the SLO-burn guardrail may name (None: not checked).

    Raises:
        SpecError: not YAML, not a mapping, or not a valid spec; every problem with line and field.
    """
    names = frozenset(slo_names) if slo_names is not None else None
    return parse_document(
        text,
        source,
        CanarySpec,
        shape="a canary spec must be a YAML mapping (id, candidate, workload, ...)",
        message=_message,
        semantic=lambda spec: _semantic(spec, names),
    )


def load_canary_spec(path: str | Path, slo_names: Iterable[str] | None = None) -> CanarySpec:
    """Load and validate one canary spec file (``slo_names`` None: those of data/slos.yaml, when
    that file is valid).

    Raises:
        SpecError: the file cannot be read or is invalid; messages name the file, line and field.
    """
    file = Path(path)
    if slo_names is None:
        from engine.experiments.specs import _slo_names

        slo_names = _slo_names()
    return parse_canary_spec(read_spec_file(file), str(file), slo_names)
