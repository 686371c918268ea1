"""Today's tracer against the OpenTelemetry SDK, on the telemetry benchmark's queries (issue 11, item 5).

Three engines in one process answer the same queries interleaved in a rotating order, as in
``benchmarks/telemetry_bench.py`` (whose workloads and GC handling this reuses):

* ``off``: ``ARBOR_TELEMETRY=off``;
* ``today``: store + metrics + ``observability.tracing.Tracer`` (what ``Engine()`` builds);
* ``otel``: the same store and metrics, with the tracer replaced by :class:`OtelTracer`, a thin
  adapter over an OpenTelemetry SDK ``TracerProvider``.  The SDK makes the spans (ids, parent,
  context, timing, attributes, status); a :class:`StoreSpanProcessor` hands every ended span to
  the engine's span collector, which keeps it with its request until the request is recorded;
  the store's writer thread then turns it into a ``SpanRecord`` row (redacted, as today).  That
  is the path an adoption would take: OTel's API in the engine, the store as an SDK processor.

Figures: mean wall ms per query of each engine, ``ratio_today`` = today/off and ``ratio_otel`` =
otel/off (ratio of means over every query), their difference in points, and the process CPU of
answering every query back to back (and flushing the store), each over ``off``; and, without
the engine, the microseconds per span of each tracer on the request's path and in the writer.  The adoption
criterion of the issue: ``ratio_otel <= ratio_today + 0.01``.

Requires ``opentelemetry-sdk`` (not a project dependency: ``pip install opentelemetry-sdk``).

    python benchmarks/otel_bench.py [--rounds 3] [--think-ms 2]
"""

from __future__ import annotations

import argparse
import contextvars
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
from telemetry_bench import SUITES, _queries  # benchmarks/ is the script's directory

import observability.tracing as arbor_tracing
from engine import Engine, QueryRequest
from engine.config import load_settings
from engine.telemetry import Telemetry
from observability.metrics import Metrics
from observability.redaction import redact_attributes
from observability.store import Store
from observability.tracing import SpanRecord, Tracer, get_correlation_id

# The engine reads "the current span" (for log lines and their span ids) from observability.tracing's
# context variable.  An adoption would switch those reads to opentelemetry.trace.get_current_span();
# here the adapter sets the same variable so the engine under test is unchanged.  Private: a
# measurement script only.
_CURRENT_SPAN: contextvars.ContextVar[Any] = arbor_tracing._CURRENT_SPAN

_CID = "arbor.correlation_id"
_ERROR = "arbor.error"


def _otel_value(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts (str, bool, int, float or a sequence of one of
    them); anything else as text.  None is left out by the caller (OTel drops it with a warning)."""
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple) and all(isinstance(v, str | bool | int | float) for v in value):
        return list(value)
    return str(value)


class _Ended:
    """An ended SDK span as the engine's span collector holds it: its trace id now, its record
    (built by the store's writer thread, as today's spans are) later."""

    __slots__ = ("_span",)

    def __init__(self, span: ReadableSpan) -> None:
        self._span = span

    @property
    def trace_id(self) -> str:
        ctx = self._span.context
        assert ctx is not None
        return format(ctx.trace_id, "032x")

    def record(self) -> SpanRecord:
        span = self._span
        ctx, parent = span.context, span.parent
        assert ctx is not None and span.start_time is not None and span.end_time is not None
        attributes = dict(span.attributes or {})
        cid = attributes.pop(_CID, None)
        error = attributes.pop(_ERROR, None)
        status: Literal["ok", "error"] = "error" if span.status.status_code is StatusCode.ERROR else "ok"
        return SpanRecord(
            format(ctx.trace_id, "032x"),
            format(ctx.span_id, "016x"),
            None if parent is None or parent.is_remote else format(parent.span_id, "016x"),
            span.name,
            span.start_time / 1e9,
            span.end_time / 1e9,
            (span.end_time - span.start_time) / 1e6,
            status,
            redact_attributes(attributes),
            None if cid is None else str(cid),
            None if error is None else str(error),
        )


class StoreSpanProcessor(SpanProcessor):
    """Hands every ended span to the collectors (the engine's per-request span buffer)."""

    def __init__(self) -> None:
        self.collectors: list[Callable[[Any], None]] = []

    def on_end(self, span: ReadableSpan) -> None:
        ended = _Ended(span)
        for collector in self.collectors:
            collector(ended)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _OtelSpan:
    """The context manager ``OtelTracer.span`` returns: an SDK span made current, with the
    methods the engine calls on today's spans."""

    __slots__ = (
        "_attributes",
        "_cm",
        "_name",
        "_otel",
        "_span",
        "_token",
        "_trace_hint",
        "correlation_id",
        "span_id",
        "trace_id",
    )

    def __init__(self, otel: Any, name: str, trace_id: str | None, attributes: Mapping[str, Any]) -> None:
        self._otel, self._name, self._trace_hint, self._attributes = otel, name, trace_id, attributes
        self.trace_id = self.span_id = ""
        self.correlation_id: str | None = None

    def __enter__(self) -> _OtelSpan:
        context = None
        hint = self._trace_hint
        if hint is not None:
            current = otel_trace.get_current_span().get_span_context()
            if not current.is_valid or format(current.trace_id, "032x") != hint:
                # a root of the engine's chosen trace: parent it on a remote context of that id
                remote = SpanContext(
                    int(hint, 16), 1, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)
                )
                context = otel_trace.set_span_in_context(NonRecordingSpan(remote))
        attributes = {k: _otel_value(v) for k, v in self._attributes.items() if v is not None}
        self.correlation_id = cid = get_correlation_id()
        if cid is not None:
            attributes[_CID] = cid
        self._cm = self._otel.start_as_current_span(
            self._name,
            context=context,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        )
        self._span = span = self._cm.__enter__()
        ctx = span.get_span_context()
        self.trace_id, self.span_id = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
        self._token = _CURRENT_SPAN.set(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.record_error(exc)
        _CURRENT_SPAN.reset(self._token)
        self._cm.__exit__(exc_type, exc, tb)
        return False

    def set_attribute(self, key: str, value: Any) -> _OtelSpan:
        if value is not None:
            self._span.set_attribute(str(key), _otel_value(value))
        return self

    def set_attributes(self, attributes: Mapping[str, Any] | None = None, /, **more: Any) -> _OtelSpan:
        for key, value in {**(attributes or {}), **more}.items():
            self.set_attribute(key, value)
        return self

    def set_status(self, status: str, description: str | None = None) -> _OtelSpan:
        if status == "error":
            self._span.set_status(Status(StatusCode.ERROR, description))
            if description:
                self._span.set_attribute(_ERROR, description)
        return self

    def record_error(self, exc: BaseException) -> _OtelSpan:
        self._span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        self._span.set_attributes(
            {_ERROR: f"{type(exc).__name__}: {exc}", "exception.type": type(exc).__name__}
        )
        return self


class OtelTracer:
    """The part of ``observability.tracing.Tracer`` the engine's Telemetry uses, over the SDK."""

    def __init__(self) -> None:
        self.processor = StoreSpanProcessor()
        self.provider = TracerProvider()  # default sampler: parent-based, always on
        self.provider.add_span_processor(self.processor)
        self._otel = self.provider.get_tracer("arbor")

    def add_collector(self, collector: Callable[[Any], None]) -> None:
        self.processor.collectors.append(collector)

    def add_trace_collector(self, collector: Callable[[str, list[Any]], None]) -> None:
        """The engine's span buffer takes spans per trace; the SDK hands them over one by one."""
        self.processor.collectors.append(lambda ended: collector(ended.trace_id, [ended]))

    def span(self, name: str, /, *, trace_id: str | None = None, **attributes: Any) -> _OtelSpan:
        return _OtelSpan(self._otel, name, trace_id, attributes)

    def flush(self, timeout_s: float = 5.0) -> bool:
        return self.provider.force_flush(int(timeout_s * 1000))

    def shutdown(self) -> None:
        self.provider.shutdown()


def _telemetry_on(db_path: Path, tracer: Any) -> Telemetry:
    """The store and metrics of today's ``on`` engine, with ``tracer`` in place of today's."""
    telemetry = Telemetry(store=Store(db_path), tracer=tracer, metrics=Metrics(), durability="async")
    if hasattr(telemetry, "capture_logs"):  # after issue 11's composition root: as build_telemetry does
        telemetry.capture_logs("engine")
    return telemetry


def _latency(
    engines: dict[str, Engine], queries: list[str], rounds: int, think_s: float
) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {label: [] for label in engines}
    order = list(engines.items())
    for r in range(rounds):
        for i, q in enumerate(queries):
            request = QueryRequest(query=q, seed=i + 1000 * r)
            k = (i + r) % len(order)
            for label, engine in order[k:] + order[:k]:
                t0 = time.perf_counter()
                engine.run(request)
                times[label].append((time.perf_counter() - t0) * 1000)
                time.sleep(think_s)
    return times


def _cpu(engine: Engine, queries: list[str], seed0: int) -> float:
    t0 = time.process_time()
    for i, q in enumerate(queries):
        engine.run(QueryRequest(query=q, seed=seed0 + i))
    engine.telemetry.flush()
    return time.process_time() - t0


def _span_cost_us(tracer: Any, traces: int = 2000, per_trace: int = 10) -> dict[str, float]:
    """Microseconds per span on the request's path (open, set two attributes, end, collect) and
    in the writer thread (build the record), best of 3 passes; no engine, no store."""
    held: list[Any] = []
    tracer.add_collector(held.append)
    path, record = [], []
    for _ in range(3):
        held.clear()
        t0 = time.perf_counter()
        for t in range(traces):
            with tracer.span("query", trace_id=format(t + 1, "032x"), task="game24"):
                for i in range(per_trace - 1):
                    with tracer.span("agent.hrm", step=i) as span:
                        span.set_attributes(answer="8/(3-8/3)", confidence=0.5)
        path.append((time.perf_counter() - t0) / len(held) * 1e6)
        t0 = time.perf_counter()
        for ended in held:
            ended.record()
        record.append((time.perf_counter() - t0) / len(held) * 1e6)
    return {"path_us": round(min(path), 2), "record_us": round(min(record), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="passes over each workload")
    parser.add_argument("--think-ms", type=float, default=2.0, help="idle time after each query, ms")
    args = parser.parse_args()
    suites = {name: _queries(file, limit) for name, (file, limit) in SUITES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        off_settings = load_settings(telemetry="off", metrics_port=0)
        engines = {
            "off": Engine(off_settings),
            "today": Engine(
                load_settings(db_path=Path(tmp) / "today.db", metrics_port=0, durability="async")
            ),
            "otel": Engine(
                load_settings(db_path=Path(tmp) / "otel.db", metrics_port=0, durability="async"),
                telemetry=_telemetry_on(Path(tmp) / "otel.db", OtelTracer()),
            ),
        }
        for engine in engines.values():  # warm-up: indexes, providers, caches
            for qs in suites.values():
                engine.run(QueryRequest(query=qs[0], seed=0))
            engine.telemetry.flush()
        gc.collect()
        gc.freeze()  # see telemetry_bench.py
        times: dict[str, list[float]] = {label: [] for label in engines}
        cpu = dict.fromkeys(engines, 0.0)
        for name, queries in suites.items():
            got = _latency(engines, queries, args.rounds, args.think_ms / 1000)
            row: dict[str, Any] = {"workload": name, "queries": len(got["off"])}
            for label, values in got.items():
                times[label] += values
                row[f"mean_ms_{label}"] = round(statistics.fmean(values), 4)
            row["ratio_today"] = round(row["mean_ms_today"] / row["mean_ms_off"], 4)
            row["ratio_otel"] = round(row["mean_ms_otel"] / row["mean_ms_off"], 4)
            print(json.dumps(row), flush=True)
            labels = list(engines)
            for r in range(args.rounds):  # CPU, saturated: rotate which engine goes first
                k = r % len(labels)
                for label in labels[k:] + labels[:k]:
                    cpu[label] += _cpu(engines[label], queries, 10_000 * (r + 1))
        stored = {}
        for label in ("today", "otel"):
            store = engines[label].telemetry.store
            assert store is not None
            engines[label].telemetry.flush()
            stored[label] = {"requests": store.count("requests"), "spans": store.count("spans")}
        for engine in engines.values():
            engine.close()
    spans = {"today": _span_cost_us(Tracer()), "otel": _span_cost_us(OtelTracer())}
    mean = {label: statistics.fmean(values) for label, values in times.items()}
    ratio_today, ratio_otel = mean["today"] / mean["off"], mean["otel"] / mean["off"]
    print(
        json.dumps(
            {
                "workload": "all",
                "queries_per_engine": len(times["off"]),
                "think_ms": args.think_ms,
                "mean_ms": {k: round(v, 4) for k, v in mean.items()},
                "ratio_today": round(ratio_today, 4),
                "ratio_otel": round(ratio_otel, 4),
                "otel_minus_today_points": round(100 * (ratio_otel - ratio_today), 2),
                "cpu_ratio_today": round(cpu["today"] / cpu["off"], 4),
                "cpu_ratio_otel": round(cpu["otel"] / cpu["off"], 4),
                "per_span_us": spans,
                "stored": stored,
                "criterion_met": ratio_otel <= ratio_today + 0.01,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
