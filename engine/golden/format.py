"""The golden-trace file format (``data/golden/NAME.json``): pydantic models and canonical JSON.

A golden file is one reviewed, replayable request with the behaviour it produced.  Top-level keys:

* ``format``: the file format's version (1);
* ``request``: every :class:`~engine.models.QueryRequest` field that affects the run, by its own name
  (query, task, seed, router, provider, use_mcts, use_rag, mcts_iterations, max_steps, overrides),
  plus ``settings``: the engine settings that affect it (``mcts_c``, ``llm_provider``);
* ``answer``, ``verdict`` (correct | incorrect | unknown), ``quality`` (1.0/0.0 judged by ground
  truth, null when unknown);
* ``routing``: the ordered steps, each ``step``, ``agent``, ``probabilities`` (agent -> p), ``reason``;
* ``spans``: the ordered span tree (children by start time): ``name``, ``attributes`` (those that
  define behaviour; see :data:`VOLATILE_ATTRIBUTES`), ``children``;
* ``latency_ms``: ``total`` (median of the captured repetitions, ms), ``samples`` (each repetition's
  total, ms), ``spans`` (span path -> median duration, ms; paths as :func:`span_paths` names them);
* ``engine_version``, ``captured_at`` (ISO 8601, UTC), ``repetitions``, ``source_request_id`` (the
  stored request it was captured from, if any) and ``history`` (each re-baseline: ``at``,
  ``reason``, ``previous_engine_version``).

Canonical JSON (:func:`dumps`): keys sorted, two-space indent, UTF-8, a final newline, so a re-capture
that changed nothing rewrites the same bytes except ``captured_at`` and the latencies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.models import Overrides, QueryRequest
from engine.names import AgentName, ProviderName, RouterName, TaskName

__all__ = [
    "FORMAT_VERSION",
    "MAX_FILE_BYTES",
    "VOLATILE_ATTRIBUTES",
    "GoldenError",
    "GoldenFile",
    "GoldenLatency",
    "GoldenRequest",
    "GoldenSettings",
    "GoldenSpan",
    "GoldenStep",
    "Rebaseline",
    "behaviour_attributes",
    "dumps",
    "parse_golden",
    "read_golden",
    "span_paths",
]

FORMAT_VERSION = 1

#: Largest golden file read (bytes): the shipped ones are 2-7 kB.
MAX_FILE_BYTES = 5_000_000

#: Span attributes that are not behaviour: ids that change on every run.  Attributes whose name ends
#: in ``_ms`` or ``_s`` (timings) are left out as well; latency is compared separately and never
#: fails a trace.
VOLATILE_ATTRIBUTES = frozenset({"request_id", "trace_id", "span_id", "parent_id", "correlation_id"})


class GoldenError(ValueError):
    """A golden file that cannot be used: its message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GoldenSettings(_Model):
    """Engine settings that change a run's behaviour (recorded so the replay uses the same)."""

    mcts_c: float = Field(1.414, ge=0.0, le=100.0)
    llm_provider: ProviderName = "offline"


class GoldenRequest(_Model):
    """The replayed request: the :class:`QueryRequest` fields that affect the run, and the settings.

    ``seed`` is required: a golden without a seed could not be replayed.
    """

    query: str = Field(min_length=1, max_length=10_000)
    task: TaskName = "auto"
    seed: int = Field(ge=0, lt=2**53)
    router: RouterName = "rules"
    provider: ProviderName | None = None
    use_mcts: bool = True
    use_rag: bool = True
    mcts_iterations: int = Field(1000, ge=1, le=10_000)
    max_steps: int = Field(3, ge=1, le=10)
    overrides: Overrides = Field(default_factory=Overrides)
    settings: GoldenSettings = Field(default_factory=GoldenSettings)

    def query_request(self, correlation_id: str | None = None) -> QueryRequest:
        """The :class:`QueryRequest` to replay (raises pydantic ValidationError if it is invalid)."""
        fields = self.model_dump(exclude={"settings", "overrides"})
        return QueryRequest(**fields, overrides=self.overrides, correlation_id=correlation_id)

    @classmethod
    def from_request(cls, request: QueryRequest, seed: int, settings: GoldenSettings) -> GoldenRequest:
        """The golden form of ``request`` run with ``seed`` under ``settings``."""
        data = request.model_dump(include=set(cls.model_fields) - {"settings", "seed"})
        return cls(**data, seed=seed, settings=settings)

    def effective_provider(self) -> str:
        """The LLM provider a freeform run of this request uses."""
        return self.provider or self.settings.llm_provider


class GoldenStep(_Model):
    """One routing step: the agent chosen, the router's probabilities and the stated reason."""

    step: int = Field(ge=0)
    agent: AgentName
    probabilities: dict[str, float]
    reason: str


class GoldenSpan(_Model):
    """A span of the ordered tree: its name, its behaviour attributes and its children in start order."""

    name: str = Field(min_length=1)
    attributes: dict[str, Any] = Field(default_factory=dict)
    children: list[GoldenSpan] = Field(default_factory=list)


class GoldenLatency(_Model):
    """Latency of the captured repetitions, ms: the median total, every total, per-span medians."""

    total: float = Field(ge=0.0)
    samples: list[float] = Field(default_factory=list)
    spans: dict[str, float] = Field(default_factory=dict)


class Rebaseline(_Model):
    """One explicit re-capture of a golden: when, why, and the engine version it replaced."""

    at: str
    reason: str = Field(min_length=1)
    previous_engine_version: str


class GoldenFile(_Model):
    """One golden trace (see the module docstring for the meaning of every field)."""

    format: Literal[1] = 1  # FORMAT_VERSION
    request: GoldenRequest
    answer: str
    verdict: Literal["correct", "incorrect", "unknown"]
    quality: float | None = Field(ge=0.0, le=1.0)
    routing: list[GoldenStep]
    spans: list[GoldenSpan]
    latency_ms: GoldenLatency
    engine_version: str
    captured_at: str
    repetitions: int = Field(1, ge=1)
    source_request_id: str | None = None
    history: list[Rebaseline] = Field(default_factory=list)


def behaviour_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """``attributes`` without ids and timings (:data:`VOLATILE_ATTRIBUTES`, ``*_ms``, ``*_s``)."""
    return {
        k: v
        for k, v in attributes.items()
        if k not in VOLATILE_ATTRIBUTES and not k.endswith("_ms") and not k.endswith("_s")
    }


def span_paths(spans: Sequence[GoldenSpan], prefix: str = "") -> Iterator[tuple[str, GoldenSpan]]:
    """``(path, span)`` for every span in pre-order.  A path joins names with ``/``; a name that
    occurs again under the same parent gets ``#2``, ``#3`` ... (``query/agent.trm/llm.complete#2``)."""
    seen: dict[str, int] = {}
    for span in spans:
        seen[span.name] = seen.get(span.name, 0) + 1
        label = span.name if seen[span.name] == 1 else f"{span.name}#{seen[span.name]}"
        path = f"{prefix}/{label}" if prefix else label
        yield path, span
        yield from span_paths(span.children, path)


def dumps(golden: GoldenFile) -> str:
    """The canonical JSON text of ``golden`` (sorted keys, 2-space indent, final newline)."""
    return json.dumps(golden.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _field(loc: Sequence[int | str]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[") or "(top)"


def parse_golden(text: str, source: str) -> GoldenFile:
    """Parse and validate the JSON ``text`` of a golden file named ``source``.

    Raises:
        GoldenError: invalid JSON (with line and column), or a missing / invalid field (named by its
            dotted path, e.g. ``request.task``), in one message that starts with ``source``.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GoldenError(
            f"{source}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    if not isinstance(data, dict):
        raise GoldenError(f"{source}: a golden file is a JSON object, not {type(data).__name__}")
    try:
        return GoldenFile.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors()[:5]:
            where = _field(err["loc"])
            if err["type"] == "missing":
                parts.append(f"field {where} is missing")
            else:
                got = repr(err.get("input"))[:60]
                parts.append(f"field {where}: {err['msg']} (got {got})")
        more = f"; and {exc.error_count() - 5} more" if exc.error_count() > 5 else ""
        raise GoldenError(f"{source}: {'; '.join(parts)}{more}") from None


def read_golden(path: Path) -> GoldenFile:
    """Read and validate the golden file at ``path``.

    Raises:
        GoldenError: the file cannot be read (named with the OS error), is larger than
            MAX_FILE_BYTES, is not UTF-8, or is invalid (see :func:`parse_golden`).
    """
    try:
        size = Path(path).stat().st_size
        if size > MAX_FILE_BYTES:
            raise GoldenError(
                f"{path}: {size:,} bytes, more than a golden file may have ({MAX_FILE_BYTES:,})"
            )
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise GoldenError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise GoldenError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    return parse_golden(text, str(path))
