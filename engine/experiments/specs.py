"""Experiment specs: YAML files in ``data/experiments/``, validated by pydantic.

A spec names the experiment (``id``, used in the assignment hash and on every request row), its
``hypothesis``, the ``variants`` (name, weight, engine ``overrides``), the ``workload`` its units
send, the ``primary_metric``, optional ``secondary_metrics`` and ``guardrails``, and the analysis
settings (``alpha``, ``target_mde`` as a relative change, ``power``, ``sequential``, ``cuped``).
Example: ``data/experiments/mcts_iterations.yaml``.

Metrics are per-unit values aggregated per variant (see
:mod:`observability.store.experiment_reads`): ``correctness`` (share of judged answers that are
correct), ``latency`` (ms per request), ``cost`` (USD per request), ``tokens`` (per request),
``errors`` (share of requests that failed).  A guardrail may also be ``slo_burn`` of a named SLO
of ``data/slos.yaml``: the burn rate of that SLO's error budget among the variant's requests.

Every problem in a file is reported at once as a :class:`SpecError` whose lines read
``FILE:LINE: FIELD: message`` (weights that do not sum to 1, unknown override keys, duplicate
variant names or experiment ids, unknown metrics, bad values, duplicate YAML keys ...).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.experiments.spec_yaml import (
    SpecError,
    SpecProblem,
    parse_document,
    read_spec_file,
    read_yaml,
)
from engine.models import Overrides, QueryRequest
from engine.names import ProviderName, RouterName
from observability.store.experiment_reads import UNIT_METRICS

__all__ = [
    "DEFAULT_SPECS_DIR",
    "GUARDRAIL_METRICS",
    "METRICS",
    "ExperimentSpec",
    "Guardrail",
    "SpecError",
    "SpecProblem",
    "Variant",
    "VariantOverrides",
    "Workload",
    "id_line",
    "load_spec",
    "load_specs",
    "parse_spec",
    "read_yaml",
]

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SPECS_DIR = ROOT / "data" / "experiments"

#: Metrics a spec may name as primary, secondary or guardrail (per-unit, aggregated in SQL).
METRICS: tuple[str, ...] = tuple(UNIT_METRICS)
#: Guardrail metrics: the per-unit metrics and the SLO burn of a named SLO.
GUARDRAIL_METRICS: tuple[str, ...] = (*METRICS, "slo_burn")

MetricName = Literal["correctness", "latency", "cost", "tokens", "errors"]
GuardrailMetric = Literal["correctness", "latency", "cost", "tokens", "errors", "slo_burn"]

_NAME = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,63}$"
_OVERRIDE_FIELDS = frozenset(Overrides.model_fields)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VariantOverrides(_Model):
    """The engine settings a variant changes (any other key is an error); None: unchanged."""

    router: RouterName | None = None
    use_mcts: bool | None = None
    use_rag: bool | None = None
    mcts_iterations: int | None = Field(None, ge=1, le=10_000)
    max_steps: int | None = Field(None, ge=1, le=10)
    provider: ProviderName | None = None
    mcts_c: float | None = Field(None, ge=0.0, le=100.0)
    mcts_selection: Literal["ucb1", "puct"] | None = None
    confidence_threshold: float | None = Field(None, ge=0.0, le=1.0)
    consensus_threshold: float | None = Field(None, ge=0.0, le=1.0)
    hybrid_weight: float | None = Field(None, ge=0.0, le=1.0)

    def changes(self) -> dict[str, Any]:
        """The settings this variant sets, by name (unset ones left out)."""
        return self.model_dump(exclude_none=True)

    def apply(self, request: QueryRequest) -> QueryRequest:
        """``request`` with this variant's settings (validated again as a :class:`QueryRequest`)."""
        data = request.model_dump()
        changes = self.changes()
        data["overrides"] = {
            **data["overrides"],
            **{k: v for k, v in changes.items() if k in _OVERRIDE_FIELDS},
        }
        data.update({k: v for k, v in changes.items() if k not in _OVERRIDE_FIELDS})
        return QueryRequest.model_validate(data)


class Variant(_Model):
    """One arm: its name (on every request row), share of units, and engine overrides."""

    name: str = Field(pattern=_NAME)
    weight: float = Field(ge=0.0, le=1.0)
    description: str = ""
    overrides: VariantOverrides = Field(default_factory=VariantOverrides)


class Workload(_Model):
    """What each unit sends: ``queries_per_unit`` queries drawn (seeded) from a JSONL workload
    file (one ``{"query": ..., "task": ...}`` per line; path relative to the repository root)."""

    file: str = Field(min_length=1)
    queries_per_unit: int = Field(1, ge=1, le=1000)
    seed: int = Field(0, ge=0, lt=2**53)

    def path(self, root: Path = ROOT) -> Path:
        """The workload file as a path (relative ones from the repository root)."""
        p = Path(self.file)
        return p if p.is_absolute() else root / p


class Guardrail(_Model):
    """A metric that must not get worse.

    ``max_regression``: the relative worsening tolerated (0.1: 10 % worse, in the metric's bad
    direction) before the guardrail fails; for ``slo_burn``, ``slo`` names the SLO and
    ``max_burn_rate`` the highest burn rate of its error budget a variant may show (1.0 spends
    the budget exactly over the SLO window).
    """

    metric: GuardrailMetric
    max_regression: float = Field(0.0, ge=0.0, le=10.0)
    slo: str | None = Field(None, min_length=1)
    max_burn_rate: float = Field(1.0, gt=0.0, le=1000.0)


class ExperimentSpec(_Model):
    """One experiment as written in its YAML file (see the module docstring)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field("", max_length=200)
    hypothesis: str = Field(min_length=1, max_length=5000)
    salt: str | None = Field(None, min_length=1, max_length=100)
    variants: list[Variant] = Field(min_length=2, max_length=10)
    baseline: str | None = None
    workload: Workload
    primary_metric: MetricName
    secondary_metrics: list[MetricName] = Field(default_factory=list)
    guardrails: list[Guardrail] = Field(default_factory=list)
    alpha: float = Field(0.05, gt=0.0, le=0.5)
    target_mde: float = Field(gt=0.0, le=10.0)
    power: float = Field(0.8, gt=0.0, lt=1.0)
    sequential: bool = False
    cuped: bool = True

    @property
    def salt_value(self) -> str:
        """The assignment salt: ``salt`` when set, else the experiment id."""
        return self.salt or self.id

    @property
    def baseline_name(self) -> str:
        """The baseline (control) variant: ``baseline`` when set, else the first variant."""
        return self.baseline or self.variants[0].name

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(v.weight for v in self.variants)

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; raises KeyError naming the known ones."""
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(f"experiment {self.id} has no variant {name!r} (it has {list(self.variant_names)})")


# --------------------------------------------------------------------------- YAML with positions


def _semantic(spec: ExperimentSpec, slo_names: frozenset[str] | None) -> list[tuple[tuple[Any, ...], str]]:
    """Cross-field problems pydantic's per-field checks do not see, with the field path of each."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    weights = _weights_message(spec.weights)
    if weights is not None:
        problems.append((("variants",), weights))
    seen: dict[str, int] = {}
    for i, v in enumerate(spec.variants):
        if v.name in seen:
            problems.append(
                (("variants", i, "name"), f"duplicate variant name {v.name!r} (also variant {seen[v.name]})")
            )
        seen.setdefault(v.name, i)
    if spec.baseline is not None and spec.baseline not in seen:
        problems.append((("baseline",), f"no variant is called {spec.baseline!r} (variants: {sorted(seen)})"))
    if len({tuple(sorted(v.overrides.changes().items())) for v in spec.variants}) == 1:
        problems.append(
            (("variants",), "every variant has the same engine settings: there is nothing to compare")
        )
    if spec.primary_metric in spec.secondary_metrics:
        i = spec.secondary_metrics.index(spec.primary_metric)
        problems.append((("secondary_metrics", i), f"{spec.primary_metric} is already the primary metric"))
    keys: dict[tuple[str, str | None], int] = {}
    for i, g in enumerate(spec.guardrails):
        key = (g.metric, g.slo)
        if key in keys:
            problems.append(
                (("guardrails", i, "metric"), f"duplicate guardrail (same as guardrail {keys[key]})")
            )
        keys.setdefault(key, i)
        if g.metric == "slo_burn":
            if g.slo is None:
                problems.append((("guardrails", i), "an slo_burn guardrail needs 'slo: <name of an SLO>'"))
            elif slo_names is not None and g.slo not in slo_names:
                problems.append(
                    (("guardrails", i, "slo"), f"unknown SLO {g.slo!r} (known: {sorted(slo_names)})")
                )
        elif g.slo is not None:
            problems.append(
                (("guardrails", i, "slo"), f"'slo' applies to slo_burn guardrails only, not {g.metric}")
            )
    path = spec.workload.path()
    if not path.is_file():
        problems.append((("workload", "file"), f"workload file {spec.workload.file!r} does not exist"))
    return problems


def _weights_message(weights: Sequence[float]) -> str | None:
    total = math.fsum(weights)
    if abs(total - 1.0) <= 1e-9:
        return None
    shown = " + ".join(f"{w:g}" for w in weights)
    return f"variant weights must sum to 1; they sum to {total:.6g} ({shown})"


def _raw_weight_problem(document: dict[str, Any]) -> str | None:
    """The weight-sum problem of a document that failed validation elsewhere (so that it is
    reported with the others), when its weights are all numbers."""
    variants = document.get("variants")
    if not isinstance(variants, list) or not variants:
        return None
    weights = [v.get("weight") if isinstance(v, dict) else None for v in variants]
    if not all(isinstance(w, int | float) and not isinstance(w, bool) and math.isfinite(w) for w in weights):
        return None
    return _weights_message(weights)  # type: ignore[arg-type]


def _pydantic_message(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        loc = err["loc"]
        if len(loc) >= 2 and loc[-2] == "overrides":
            allowed = ", ".join(VariantOverrides.model_fields)
            return f"unknown override {loc[-1]!r}; a variant may set: {allowed}"
        return "unknown field"
    if err["type"] == "literal_error" and err["loc"] and err["loc"][-1] in ("primary_metric", "metric"):
        return f"unknown metric {err['input']!r}; known: {', '.join(GUARDRAIL_METRICS)}"
    if err["type"] == "literal_error" and len(err["loc"]) >= 2 and err["loc"][-2] == "secondary_metrics":
        return f"unknown metric {err['input']!r}; known: {', '.join(METRICS)}"
    return msg


def parse_spec(text: str, source: str = "<spec>", slo_names: Iterable[str] | None = None) -> ExperimentSpec:
    """Validate the YAML ``text`` of one spec; ``source`` names it in messages (a file path, ``<editor>``).

    ``slo_names``: the SLOs an ``slo_burn`` guardrail may name (None: not checked).

    Raises:
        SpecError: the text is not YAML, not a mapping, or not a valid spec; every problem is listed
            with its line and field.
    """
    names = frozenset(slo_names) if slo_names is not None else None

    def weights(document: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
        problem = _raw_weight_problem(document)
        return [] if problem is None else [(("variants",), problem)]

    return parse_document(
        text,
        source,
        ExperimentSpec,
        shape="a spec must be a YAML mapping (id, hypothesis, variants, ...)",
        message=_pydantic_message,
        semantic=lambda spec: _semantic(spec, names),
        when_invalid=weights,
    )


def _slo_names() -> frozenset[str] | None:
    from observability.slo.models import SLOConfigError, load_slos

    try:
        return frozenset(s.name for s in load_slos())
    except SLOConfigError:
        return None  # the SLO file has its own checks; an slo_burn guardrail is checked at analysis


def load_spec(path: str | Path, slo_names: Iterable[str] | None = None) -> ExperimentSpec:
    """Load and validate one spec file.

    ``slo_names``: the SLOs an ``slo_burn`` guardrail may name; None: those of data/slos.yaml
    (not checked when that file itself is invalid: it reports its own errors).

    Raises:
        SpecError: the file cannot be read or is invalid; messages name the file, line and field.
    """
    return _load(Path(path), _slo_names() if slo_names is None else frozenset(slo_names))


def _load(file: Path, slo_names: frozenset[str] | None) -> ExperimentSpec:
    return parse_spec(read_spec_file(file), str(file), slo_names)


def load_specs(directory: str | Path = DEFAULT_SPECS_DIR) -> list[ExperimentSpec]:
    """Every ``*.yaml`` / ``*.yml`` spec of ``directory``, sorted by file name; ids are unique.

    Raises:
        SpecError: any file is invalid, or two files use one id (both files and lines named);
            all files' problems are reported together.
    """
    folder = Path(directory)
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    problems: list[SpecProblem] = []
    specs: list[tuple[Path, ExperimentSpec]] = []
    names = _slo_names()
    for file in files:
        try:
            specs.append((file, _load(file, names)))
        except SpecError as exc:
            problems += exc.problems
    first: dict[str, Path] = {}
    for file, spec in specs:
        if spec.id in first:
            line = id_line(file)
            problems.append(
                SpecProblem(str(file), line, "id", f"duplicate experiment id {spec.id!r}: "
                            f"{first[spec.id]}:{id_line(first[spec.id])} uses it too")
            )  # fmt: skip
        first.setdefault(spec.id, file)
    if problems:
        raise SpecError(problems)
    return [spec for _, spec in specs]


def id_line(file: Path) -> int | None:
    """The line of the top-level ``id:`` key in ``file`` (None when there is none)."""
    for i, text in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
        if re.match(r"^id\s*:", text):
            return i
    return None
