"""The metric catalogue: every Prometheus family of the engine, declared once.

Each :class:`MetricSpec` row gives a family's name (as in the exposition: counters with their
``_total`` suffix, histograms by their base name), kind, help text, label names and, for a
histogram, its bucket upper bounds (``+Inf`` implicit). :class:`~observability.metrics.Metrics`
builds its families from this table, :data:`METRIC_NAMES` and :data:`BUCKETS` are derived from
it, the SLO package checks its selectors against it, and :func:`catalogue_markdown` renders it
for docs/metrics.md (a test keeps that file equal to the table).

Names follow the reference framework (all ``mcts_*``; durations are histograms in seconds).
Nothing here imports prometheus_client at module level (see ``observability.metrics.multiprocess``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "BUCKETS",
    "CATALOGUE",
    "LLM_TOKEN_DIRECTIONS",
    "METRIC_NAMES",
    "REQUEST_STATUSES",
    "VERDICTS",
    "MetricSpec",
    "bucket_label",
    "catalogue_markdown",
    "spec",
]

#: Request outcomes. The availability SLO counts ``status="error"`` as bad.
REQUEST_STATUSES: tuple[str, ...] = ("ok", "error")
#: Verdict labels of ``mcts_verdicts_total`` (the engine's ``QueryResult.verdict``).
VERDICTS: tuple[str, ...] = ("correct", "incorrect", "unknown")
#: ``direction`` label values of ``mcts_llm_tokens_total``.
LLM_TOKEN_DIRECTIONS: tuple[str, ...] = ("input", "output")

Kind = Literal["counter", "gauge", "histogram"]
#: How multiprocess mode merges a gauge's per-process values (prometheus_client's names).
GaugeMode = Literal[
    "all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum", "mostrecent", "livemostrecent"
]


@dataclass(frozen=True)
class MetricSpec:
    """One metric family: name, kind, help, label names, histogram buckets and, for a gauge,
    how prometheus_client's multiprocess mode merges the processes' values."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    multiprocess_mode: GaugeMode | None = None

    def __post_init__(self) -> None:
        """Counters end in ``_total``; only histograms have (strictly increasing) buckets."""
        if not self.name.startswith("mcts_") or self.name != self.name.lower():
            raise ValueError(f"metric names are lower-case mcts_*: {self.name!r}")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"{self.name}: counters, and only counters, end in _total")
        if (self.kind == "histogram") != bool(self.buckets):
            raise ValueError(f"{self.name}: histograms, and only histograms, have buckets")
        if list(self.buckets) != sorted(set(self.buckets)):
            raise ValueError(f"{self.name}: buckets must be strictly increasing")
        if self.multiprocess_mode and self.kind != "gauge":
            raise ValueError(f"{self.name}: multiprocess_mode applies to gauges only")


_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One MCTS iteration takes microseconds offline and up to ~0.1 s with an LLM rollout.
_ITERATION = (1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.1)
_LLM = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RAG = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

#: Every family the engine emits, in exposition order.
CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec(
        "mcts_requests_total",
        "counter",
        "Engine requests by task and outcome status (ok|error).",
        ("task", "status"),
    ),
    # 1 ms .. 10 s; 0.5 s is a bucket boundary because the latency SLO counts requests under it.
    MetricSpec(
        "mcts_request_duration_seconds",
        "histogram",
        "End-to-end engine request latency in seconds.",
        ("task",),
        _LATENCY,
    ),
    MetricSpec(
        "mcts_verdicts_total",
        "counter",
        "Answers by task and verdict against ground truth (correct|incorrect|unknown).",
        ("task", "verdict"),
    ),
    MetricSpec(
        "mcts_agent_requests_total", "counter", "Agent invocations by agent and task.", ("agent", "task")
    ),
    MetricSpec(
        "mcts_agent_request_latency_seconds",
        "histogram",
        "Latency of one agent invocation in seconds.",
        ("agent",),
        _LATENCY,
    ),
    MetricSpec(
        "mcts_agent_confidence_score",
        "histogram",
        "Confidence (0..1) reported by an agent invocation.",
        ("agent",),
        (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    ),
    MetricSpec(
        "mcts_iterations_total", "counter", "MCTS iterations run, by how the search ended.", ("outcome",)
    ),
    MetricSpec(
        "mcts_iteration_latency_seconds",
        "histogram",
        "Mean latency of one MCTS iteration (search elapsed / iterations), one sample per search.",
        (),
        _ITERATION,
    ),
    MetricSpec(
        "mcts_llm_request_errors_total",
        "counter",
        "Failed LLM calls by provider and error type.",
        ("provider", "error_type"),
    ),
    MetricSpec(
        "mcts_llm_request_latency_seconds",
        "histogram",
        "Latency of every LLM call (failed ones included) in seconds; its _count is the call count.",
        ("provider",),
        _LLM,
    ),
    MetricSpec(
        "mcts_llm_tokens_total",
        "counter",
        "LLM tokens by provider and direction (input|output).",
        ("provider", "direction"),
    ),
    MetricSpec(
        "mcts_llm_cost_usd_total", "counter", "Estimated LLM cost in US dollars by provider.", ("provider",)
    ),
    MetricSpec(
        "mcts_active_operations",
        "gauge",
        "Operations in progress, by operation.",
        ("operation",),
        multiprocess_mode="livesum",
    ),
    MetricSpec("mcts_rag_queries_total", "counter", "Retrieval queries against the RAG corpus."),
    MetricSpec(
        "mcts_rag_retrieval_latency_seconds",
        "histogram",
        "Latency of one retrieval in seconds.",
        (),
        _RAG,
    ),
    MetricSpec(
        "mcts_rag_documents_retrieved",
        "histogram",
        "Documents returned by one retrieval.",
        (),
        (0, 1, 2, 3, 5, 8, 10, 20, 50),
    ),
    MetricSpec(
        "mcts_routing_decisions_total",
        "counter",
        "Meta-controller decisions by router, chosen agent and kind of reason.",
        ("router", "agent", "reason_kind"),
    ),
)

#: Every metric family, as named in the exposition format.
METRIC_NAMES: tuple[str, ...] = tuple(s.name for s in CATALOGUE)
#: Histogram bucket upper bounds (``+Inf`` is implicit), by metric family name.
BUCKETS: Mapping[str, tuple[float, ...]] = MappingProxyType(
    {s.name: s.buckets for s in CATALOGUE if s.kind == "histogram"}
)

if len(set(METRIC_NAMES)) != len(METRIC_NAMES):  # pragma: no cover - a declaration error
    raise ValueError("duplicate metric names in the catalogue")


def spec(name: str) -> MetricSpec:
    """The catalogue row of family ``name``; raises KeyError naming it when undeclared."""
    for row in CATALOGUE:
        if row.name == name:
            return row
    raise KeyError(f"{name!r} is not in the metric catalogue")


def bucket_label(bound: float) -> str:
    """A bucket bound as the exporter spells its ``le`` label (``0.5``, ``1.0``, ``+Inf``)."""
    # Imported here: importing prometheus_client fixes its single/multiprocess mode (see
    # observability.metrics.multiprocess), and reading the catalogue must not do that.
    from prometheus_client.utils import floatToGoString

    return str(floatToGoString(bound))


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (docs/metrics.md holds this text)."""
    lines = [
        "# Metrics",
        "",
        "Generated from `observability/metrics/catalogue.py` (`CATALOGUE`); a test keeps this file",
        "equal to it. Histograms expose `<name>_bucket`, `<name>_sum` and `<name>_count`.",
        "",
        "| Name | Kind | Labels | Buckets | Help |",
        "|---|---|---|---|---|",
    ]
    for row in CATALOGUE:
        labels = ", ".join(f"`{label}`" for label in row.labels) or "—"
        buckets = ", ".join(bucket_label(b) for b in row.buckets) or "—"
        kind = f"{row.kind} ({row.multiprocess_mode})" if row.multiprocess_mode else row.kind
        help_text = row.help.replace("|", "\\|")  # a bare | would end the table cell
        lines.append(f"| `{row.name}` | {kind} | {labels} | {buckets} | {help_text} |")
    return "\n".join(lines) + "\n"
