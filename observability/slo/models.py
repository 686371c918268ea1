"""The SLO file (data/slos.yaml): pydantic models and loading with errors that name the field.

The document is OpenSLO-like (camelCase keys): ``apiVersion: arbor/v1``, ``kind: SLOSet``,
``metadata`` (service, scrape job), ``slos`` (name, kind, objective, time window, ratio-metric
indicator) and ``operational`` (thresholds of the non-SLO alerts). Unknown keys are errors.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from observability.durations import parse_duration
from observability.metrics.catalogue import bucket_label
from observability.slo.selectors import parse_selector
from observability.slo.yaml_lines import YAMLSyntaxError, format_loc, line_of, load_with_lines

__all__ = [
    "DEFAULT_SLOS_PATH",
    "SLO",
    "Indicator",
    "Metadata",
    "Operational",
    "RatioMetric",
    "SLOConfigError",
    "SLOSet",
    "load_slo_set",
    "load_slos",
]

DEFAULT_SLOS_PATH = Path(__file__).resolve().parents[2] / "data" / "slos.yaml"


class SLOConfigError(ValueError):
    """data/slos.yaml is missing, not YAML, or not a valid SLO set (the message names file:line and field)."""


class _Model(BaseModel):
    """Strict base: unknown keys are errors; camelCase keys as in OpenSLO."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class RatioMetric(_Model):
    """An event ratio: exactly one of ``bad`` or ``good``, over ``total`` (PromQL selectors)."""

    good: str | None = None
    bad: str | None = None
    total: str

    @field_validator("good", "bad", "total")
    @classmethod
    def _selector(cls, value: str | None) -> str | None:
        """Each selector parses and names a declared metric."""
        if value is not None:
            parse_selector(value)
        return value

    @model_validator(mode="after")
    def _one_of(self) -> RatioMetric:
        """Exactly one of good and bad."""
        if (self.good is None) == (self.bad is None):
            raise ValueError("ratioMetric needs exactly one of 'good' or 'bad' (besides 'total')")
        return self


class Indicator(_Model):
    """The SLI: a ratio metric."""

    ratio_metric: RatioMetric = Field(alias="ratioMetric")


class SLO(_Model):
    """One service level objective."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    display_name: str = Field(alias="displayName", min_length=1)
    description: str = ""
    kind: Literal["availability", "latency", "quality"]
    threshold_seconds: float | None = Field(default=None, alias="thresholdSeconds", gt=0)
    objective: float = Field(gt=0, lt=1)
    time_window: str = Field(alias="timeWindow")
    budgeting_method: Literal["Occurrences"] = Field(default="Occurrences", alias="budgetingMethod")
    indicator: Indicator

    @field_validator("time_window")
    @classmethod
    def _window(cls, value: str) -> str:
        """The window is a Prometheus duration of at least one hour."""
        if parse_duration(value) < timedelta(hours=1):
            raise ValueError(f"timeWindow must be at least 1h, got {value!r}")
        return value

    @model_validator(mode="after")
    def _kind_matches(self) -> SLO:
        """A latency SLO names its threshold, and its good selector is that histogram bucket."""
        ratio = self.indicator.ratio_metric
        if self.kind == "latency":
            if self.threshold_seconds is None:
                raise ValueError("a latency SLO needs thresholdSeconds")
            good = parse_selector(ratio.good) if ratio.good else None
            le = bucket_label(self.threshold_seconds)
            if good is None or not good.name.endswith("_bucket") or ("le", "=", le) not in good.matchers:
                raise ValueError(
                    f'a latency SLO needs good: <histogram>_bucket{{le="{le}"}} (thresholdSeconds)'
                )
        elif self.threshold_seconds is not None:
            raise ValueError(f"thresholdSeconds only applies to latency SLOs, not {self.kind!r}")
        return self

    @property
    def period(self) -> timedelta:
        """The SLO's time window as a timedelta."""
        return parse_duration(self.time_window)

    @property
    def error_budget(self) -> float:
        """1 - objective, free of binary rounding noise (0.01 for 0.99)."""
        return float(Decimal("1") - Decimal(str(self.objective)))


class Operational(_Model):
    """Thresholds of the operational (non-SLO) alerts."""

    request_latency_p95_seconds: float = Field(default=2.0, alias="requestLatencyP95Seconds", gt=0)
    llm_error_ratio: float = Field(default=0.1, alias="llmErrorRatio", gt=0, lt=1)
    llm_latency_p95_seconds: float = Field(default=20.0, alias="llmLatencyP95Seconds", gt=0)
    no_requests_for: str = Field(default="30m", alias="noRequestsFor")
    exporter_down_for: str = Field(default="2m", alias="exporterDownFor")

    @field_validator("no_requests_for", "exporter_down_for")
    @classmethod
    def _duration(cls, value: str) -> str:
        """Durations are Prometheus durations."""
        parse_duration(value)
        return value


class Metadata(_Model):
    """The service the SLOs belong to and the scrape job of its exporter."""

    service: str = Field(min_length=1)
    scrape_job: str = Field(default="arbor", alias="scrapeJob", pattern=r"^[a-zA-Z0-9_.:-]+$")


class SLOSet(_Model):
    """The whole data/slos.yaml document."""

    api_version: Literal["arbor/v1"] = Field(alias="apiVersion")
    kind: Literal["SLOSet"]
    metadata: Metadata
    slos: list[SLO] = Field(min_length=1)
    operational: Operational = Operational()

    @model_validator(mode="after")
    def _unique(self) -> SLOSet:
        """SLO names are unique (they label every recorded series)."""
        names = [slo.name for slo in self.slos]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate SLO names: {duplicates}")
        return self


def load_slo_set(path: str | Path = DEFAULT_SLOS_PATH) -> SLOSet:
    """Load and validate the whole SLO document.

    Raises:
        SLOConfigError: the file cannot be read, is not YAML or not a mapping, or fails
            validation.  Each problem is one line naming the file, the line and, for validation,
            the field and the reason, e.g. ``data/slos.yaml:27: slos[1].objective: Input should
            be less than 1`` (the line of the entry, or of the mapping missing a field).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SLOConfigError(f"cannot read SLO file {file}: {exc}") from exc
    try:
        doc = load_with_lines(text)
    except YAMLSyntaxError as exc:
        where = f"{file}:{exc.line}" if exc.line is not None else str(file)
        raise SLOConfigError(f"{where}: not valid YAML: {exc.message}") from None
    if not isinstance(doc.value, dict):
        raise SLOConfigError(f"{file} must hold a mapping (apiVersion, kind, metadata, slos)")
    try:
        return SLOSet.model_validate(doc.value)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            line = line_of(doc.lines, err["loc"])
            where = f"{file}:{line}" if line is not None else str(file)
            reason = str(err["msg"]).removeprefix("Value error, ")
            problems.append(f"{where}: {format_loc(err['loc'])}: {reason}")
        raise SLOConfigError(
            f"{file} is not a valid SLO set ({len(problems)} problem(s)):\n" + "\n".join(problems)
        ) from None


def load_slos(path: str | Path = DEFAULT_SLOS_PATH) -> list[SLO]:
    """The SLOs of the file at ``path``, validated; raises SLOConfigError like :func:`load_slo_set`."""
    return list(load_slo_set(path).slos)
