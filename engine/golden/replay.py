"""Replaying a golden request with its seed and settings, observed in the golden file's terms.

A :class:`Replayer` owns one telemetry (built from settings like every process's: with the store
on, each replay is recorded as an ordinary request whose correlation id names the suite run) with
an in-memory span exporter beside it, and one engine per distinct :class:`GoldenSettings` (they
share the telemetry and the corpus retriever).  Replays run one at a time with ``live=False``:
the MCTS agent then searches on the calling thread, so nothing depends on thread scheduling.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from engine.config import Settings
from engine.flags.source import FlagSource
from engine.golden.compare import Observation
from engine.golden.format import (
    GoldenRequest,
    GoldenSettings,
    GoldenSpan,
    GoldenStep,
    behaviour_attributes,
    span_paths,
)
from engine.pipeline import Engine
from engine.telemetry import Telemetry
from observability.exporters import InMemoryExporter
from observability.tracing import SpanRecord, Tracer

__all__ = ["ReplayError", "Replayer", "latency_medians", "span_tree"]


class ReplayError(RuntimeError):
    """A golden request could not be replayed (the message says why)."""


class _SharedRetriever:
    """The corpus retriever, built on first search and shared by the replayer's engines."""

    def __init__(self) -> None:
        self._inner: Any = None

    def prepare(self) -> Any:
        """The retriever, built now if it was not yet."""
        if self._inner is None:
            from engine.rag import Retriever

            self._inner = Retriever.from_corpus()
        return self._inner

    def search(self, query: str, k: int = 4) -> Any:
        return self.prepare().search(query, k=k)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None


def span_tree(records: Sequence[SpanRecord]) -> tuple[list[GoldenSpan], dict[str, float]]:
    """The ordered span tree of one trace's ``records`` (children by start time; roots are spans
    whose parent is not among them) and each span's duration (ms) by its path."""
    ids = {r.span_id for r in records}
    children: dict[str | None, list[SpanRecord]] = {}
    for r in records:
        parent = r.parent_id if r.parent_id in ids else None
        children.setdefault(parent, []).append(r)
    for kids in children.values():
        kids.sort(key=lambda r: (r.start_ts, r.end_ts))

    order: list[SpanRecord] = []  # pre-order, as span_paths walks the tree

    def build(r: SpanRecord) -> GoldenSpan:
        order.append(r)
        attributes = behaviour_attributes(r.attributes)
        return GoldenSpan(
            name=r.name, attributes=attributes, children=[build(c) for c in children.get(r.span_id, [])]
        )

    roots = [build(r) for r in children.get(None, [])]
    durations = {path: r.duration_ms for (path, _), r in zip(span_paths(roots), order, strict=True)}
    return roots, durations


def latency_medians(runs: Sequence[Observation]) -> tuple[float, dict[str, float]]:
    """The median total latency of ``runs`` (ms) and the median duration of each span of the first
    run by its path (ms; a run without that span counts 0).

    Raises:
        ValueError: ``runs`` is empty.
    """
    if not runs:
        raise ValueError("no replays to take latencies from")
    spans = {
        path: statistics.median(o.span_latency_ms.get(path, 0.0) for o in runs)
        for path in runs[0].span_latency_ms
    }
    return statistics.median(o.latency_ms for o in runs), spans


class Replayer:
    """Replays golden requests (sequentially; not thread-safe).  Use as a context manager or call
    :meth:`close`.

    Raises (constructor):
        StoreOpenError: the settings' store cannot be opened.
    """

    def __init__(self, settings: Settings, **engine_kw: Any) -> None:
        from engine.wiring import build_telemetry

        self.settings = settings
        self._exporter = InMemoryExporter()
        if settings.telemetry_enabled:
            self.telemetry = build_telemetry(settings, span_exporters=(self._exporter,))
        else:  # no store or metrics, but the spans are still needed
            self.telemetry = Telemetry(tracer=Tracer((self._exporter,)))
        self._retriever = _SharedRetriever()
        self._engine_kw = engine_kw
        self._engines: dict[GoldenSettings, Engine] = {}

    def engine(self, golden_settings: GoldenSettings) -> Engine:
        """The engine that runs with ``golden_settings`` (built once)."""
        engine = self._engines.get(golden_settings)
        if engine is None:
            settings = self.settings.model_copy(update=golden_settings.model_dump())
            # Feature flags stay off: a golden replays exactly the settings it was captured with.
            kw = {"retriever": self._retriever, "flags": FlagSource.disabled(), **self._engine_kw}
            engine = Engine(settings, telemetry=self.telemetry, **kw)
            self._engines[golden_settings] = engine
        return engine

    def replay(self, request: GoldenRequest, correlation_id: str | None = None) -> Observation:
        """Run ``request`` once with its seed and settings and observe what it did.

        Raises:
            ReplayError: the request is invalid today, or the engine refused or failed it.
        """
        from pydantic import ValidationError

        try:
            query = request.query_request(correlation_id)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ReplayError(f"the request is not valid: {first['msg']}") from None
        engine = self.engine(request.settings)
        try:  # one-time loads (GRU weights, the corpus index) happen here, outside the timed run
            engine.router(query)
            if query.use_rag and query.resolved_task() == "freeform":
                self._retriever.prepare()
        except Exception as exc:  # RouterUnavailable, a corpus that cannot be indexed ...
            raise ReplayError(f"the engine cannot be prepared: {type(exc).__name__}: {exc}") from exc
        self._exporter.clear()
        try:
            result = engine.run(query)
        except Exception as exc:  # QueryError, RouterUnavailable, ProviderNotConfigured, a bug ...
            raise ReplayError(f"the engine failed the request: {type(exc).__name__}: {exc}") from exc
        records = [r for r in self._exporter.records if r.trace_id == result.trace_id]
        self._exporter.clear()
        spans, durations = span_tree(records)
        return Observation(
            answer=result.answer,
            verdict=result.verdict,
            quality=result.quality,
            routing=tuple(
                GoldenStep(step=s.index, agent=s.agent, probabilities=dict(s.probabilities), reason=s.reason)
                for s in result.steps
            ),
            spans=tuple(spans),
            latency_ms=result.latency_ms,
            span_latency_ms=durations,
            request_id=result.request_id,
            trace_id=result.trace_id,
        )

    def flush(self) -> None:
        """Wait until every replay so far is in the store."""
        self.telemetry.flush()

    def close(self) -> None:
        """Flush and close the telemetry and the retriever (idempotent)."""
        self.telemetry.close()
        self._retriever.close()

    def __enter__(self) -> Replayer:
        """Use as a context manager that closes the replayer."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the replayer."""
        self.close()
