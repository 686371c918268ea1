"""Tracing: nesting, timing, errors, contextvars across threads, exporters (JSONL, OTLP/HTTP), redaction.

Expected values are worked out by hand from the injected clocks and id factories, not read back
from the code under test.
"""

from __future__ import annotations

import contextvars
import http.server
import json
import re
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from observability.tracing import (
    MASK,
    BatchingExporter,
    CallbackExporter,
    InMemoryExporter,
    JsonlExporter,
    OtlpHttpExporter,
    SpanRecord,
    Tracer,
    clear_redacted_values,
    correlation_scope,
    current_span,
    current_span_id,
    current_trace_id,
    encode_otlp,
    get_correlation_id,
    is_sensitive_key,
    load_jsonl,
    propagate,
    redact_text,
    redact_values,
    start_trace,
)

WALL0 = 1_700_000_000.0
SECRET = "sk-test-SECRET123"


class FakePerf:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class CountingIds:
    """Deterministic ids: trace ids t000…01, t000…02 (as hex), span ids 000…01, 000…02, …"""

    def __init__(self) -> None:
        self.traces = 0
        self.spans = 0

    def __call__(self, nbytes: int) -> str:
        if nbytes == 16:
            self.traces += 1
            return f"{0xABC << 100 | self.traces:032x}"
        self.spans += 1
        return f"{self.spans:016x}"


def tid(n: int) -> str:
    return f"{0xABC << 100 | n:032x}"


def sid(n: int) -> str:
    return f"{n:016x}"


@pytest.fixture(autouse=True)
def _no_global_secrets() -> Iterator[None]:
    clear_redacted_values()
    yield
    clear_redacted_values()


@pytest.fixture
def mem() -> InMemoryExporter:
    return InMemoryExporter()


@pytest.fixture
def perf() -> FakePerf:
    return FakePerf()


@pytest.fixture
def tracer(mem: InMemoryExporter, perf: FakePerf) -> Tracer:
    return Tracer([mem], clock=lambda: WALL0, perf=perf, id_factory=CountingIds())


# --------------------------------------------------------------------------------------------
# Nesting and timing
# --------------------------------------------------------------------------------------------


def test_nesting_ids_and_times_from_fake_clocks(
    tracer: Tracer, mem: InMemoryExporter, perf: FakePerf
) -> None:
    with tracer.span("query", task="game24") as root:
        assert current_span() is root
        perf.advance(0.5)
        with tracer.span("agent.hrm"):
            assert current_span_id() == sid(2) and current_trace_id() == tid(1)
            perf.advance(0.25)
        assert current_span() is root
        perf.advance(0.25)
    assert current_span() is None and current_trace_id() is None

    child_rec, root_rec = mem.records  # children end first
    assert root_rec == SpanRecord(
        trace_id=tid(1),
        span_id=sid(1),
        parent_id=None,
        name="query",
        start_ts=WALL0,
        end_ts=WALL0 + 1.0,
        duration_ms=1000.0,
        status="ok",
        attributes={"task": "game24"},
        correlation_id=None,
        error=None,
    )
    assert (child_rec.trace_id, child_rec.span_id, child_rec.parent_id) == (tid(1), sid(2), sid(1))
    assert child_rec.start_ts == WALL0 + 0.5
    assert child_rec.end_ts == WALL0 + 0.75
    assert child_rec.duration_ms == 250.0
    assert root_rec.start_ts <= child_rec.start_ts <= child_rec.end_ts <= root_rec.end_ts


def test_child_timestamps_follow_the_root_anchor_not_a_jumping_wall_clock(mem: InMemoryExporter) -> None:
    walls = iter([WALL0, WALL0 - 3600.0])  # the wall clock steps back an hour after the root started
    perf = FakePerf()
    tracer = Tracer([mem], clock=lambda: next(walls), perf=perf)
    with tracer.span("root"):
        perf.advance(0.5)
        with tracer.span("child"):
            perf.advance(0.25)
    child, root = mem.records
    assert child.start_ts == WALL0 + 0.5 and child.end_ts == WALL0 + 0.75
    assert root.end_ts == WALL0 + 0.75


def test_durations_are_never_negative_with_real_clocks(mem: InMemoryExporter) -> None:
    tracer = Tracer([mem])
    with tracer.span("a"):
        for _ in range(3):
            with tracer.span("b"):
                pass
    assert len(mem.records) == 4
    root = mem.records[-1]
    for r in mem.records:
        assert r.duration_ms >= 0 and r.end_ts >= r.start_ts
        assert root.start_ts <= r.start_ts and r.end_ts <= root.end_ts
        assert re.fullmatch(r"[0-9a-f]{32}", r.trace_id) and re.fullmatch(r"[0-9a-f]{16}", r.span_id)
    assert len({r.span_id for r in mem.records}) == 4


def test_each_root_starts_a_new_trace_unless_a_trace_is_given(tracer: Tracer, mem: InMemoryExporter) -> None:
    with tracer.span("first"):
        pass
    with tracer.span("second"):
        pass
    given = "0123456789ABCDEF0123456789abcdef"
    with tracer.span("joined", trace_id=given) as joined, tracer.span("child"):
        pass
    with tracer.span("outer"), tracer.span("forced", trace_id=given) as forced:
        pass
    recs = {r.name: r for r in mem.records}
    assert recs["first"].trace_id == tid(1) and recs["second"].trace_id == tid(2)
    assert joined.trace_id == given.lower() and joined.parent_id is None
    assert recs["child"].trace_id == given.lower() and recs["child"].parent_id == joined.span_id
    # a span forced into another trace is a root of that trace, not a child of the open span
    assert forced.trace_id == given.lower() and forced.parent_id is None


def test_start_trace_gives_roots_its_id_and_detaches_from_the_open_span(
    tracer: Tracer, mem: InMemoryExporter
) -> None:
    with tracer.span("outside") as outside:
        with start_trace() as new_tid:
            assert re.fullmatch(r"[0-9a-f]{32}", new_tid) and new_tid != outside.trace_id
            assert current_trace_id() == new_tid and current_span() is None
            with tracer.span("a") as a:
                pass
            with tracer.span("b") as b:
                pass
        assert current_span() is outside
    assert a.trace_id == b.trace_id == new_tid and a.parent_id is None and b.parent_id is None
    with tracer.start_trace() as t2:
        assert t2 == tid(2)  # the tracer's own id factory
    with start_trace("ff" * 16) as t3:
        assert t3 == "ff" * 16


@pytest.mark.parametrize("bad", ["", "xyz", "0" * 32, "a" * 31, "g" * 32])
def test_bad_trace_ids_are_rejected(tracer: Tracer, bad: str) -> None:
    with pytest.raises(ValueError, match="trace_id"), tracer.span("x", trace_id=bad):
        pass


def test_id_factory_output_is_validated() -> None:
    tracer = Tracer(id_factory=lambda n: "not-hex")
    with pytest.raises(ValueError), tracer.span("x"):
        pass


def test_span_name_must_be_non_empty(tracer: Tracer) -> None:
    with pytest.raises(ValueError, match="name"):
        tracer.span("")


def test_a_span_can_be_entered_only_once(tracer: Tracer, mem: InMemoryExporter) -> None:
    span = tracer.span("once")
    with span:
        pass
    with pytest.raises(RuntimeError, match="already entered"), span:
        pass
    assert [r.name for r in mem.records] == ["once"]


def test_spans_without_exporters_still_nest(perf: FakePerf) -> None:
    tracer = Tracer(perf=perf, clock=lambda: WALL0)
    with tracer.span("a") as a, tracer.span("b") as b:
        perf.advance(0.5)
    assert b.parent_id == a.span_id and b.trace_id == a.trace_id and b.start_ts == a.start_ts == WALL0


def test_traced_decorator(tracer: Tracer, mem: InMemoryExporter) -> None:
    @tracer.traced("work", kind="unit")
    def work(x: int) -> int:
        return x * 2

    assert work(21) == 42
    assert mem.records[0].name == "work" and mem.records[0].attributes == {"kind": "unit"}


# --------------------------------------------------------------------------------------------
# Status and errors
# --------------------------------------------------------------------------------------------


def test_exception_marks_error_and_reraises(tracer: Tracer, mem: InMemoryExporter) -> None:
    with pytest.raises(KeyError, match="boom"), tracer.span("outer"), tracer.span("inner"):
        raise KeyError("boom")
    inner, outer = mem.records
    for r in (inner, outer):
        assert r.status == "error" and not r.ok
        assert r.error == "KeyError: 'boom'"
        assert r.attributes["exception.type"] == "KeyError"
    assert current_span() is None


def test_caught_exception_only_fails_the_inner_span(tracer: Tracer, mem: InMemoryExporter) -> None:
    with tracer.span("outer"):
        try:
            with tracer.span("inner"):
                raise RuntimeError("transient")
        except RuntimeError:
            pass
    inner, outer = mem.records
    assert inner.status == "error" and outer.status == "ok" and outer.error is None


def test_set_status_and_record_error(tracer: Tracer, mem: InMemoryExporter) -> None:
    with tracer.span("a") as a:
        a.set_status("error", "provider said no")
    with tracer.span("b") as b:
        b.record_error(TimeoutError("slow"))
    with tracer.span("c") as c:
        c.set_status("error", "x")
        c.set_status("ok")
    with pytest.raises(ValueError, match="status"), tracer.span("d") as d:
        d.set_status("failed")  # type: ignore[arg-type]
    recs = {r.name: r for r in mem.records}
    assert (recs["a"].status, recs["a"].error) == ("error", "provider said no")
    assert (recs["b"].status, recs["b"].error) == ("error", "TimeoutError: slow")
    assert (recs["c"].status, recs["c"].error) == ("ok", None)


def test_closing_a_generator_early_is_not_an_error(tracer: Tracer, mem: InMemoryExporter) -> None:
    def stream() -> Iterator[int]:
        with tracer.span("stream"):
            yield 1
            yield 2

    gen = stream()
    assert next(gen) == 1
    gen.close()
    assert [(r.name, r.status) for r in mem.records] == [("stream", "ok")]
    assert current_span() is None


def test_a_generator_closed_in_another_context_leaves_that_context_alone(
    tracer: Tracer, mem: InMemoryExporter
) -> None:
    def stream() -> Iterator[int]:
        with tracer.span("stream"):
            yield 1

    def scenario() -> None:
        gen = stream()
        next(gen)  # "stream" is now current here (generators share their caller's context)
        assert current_span() is not None and current_span().name == "stream"

        def elsewhere() -> None:
            with tracer.span("theirs") as theirs:
                gen.close()  # the span's context token belongs to the other context
                assert current_span() is theirs

        contextvars.Context().run(elsewhere)

    contextvars.copy_context().run(scenario)  # keep pytest's own context clean
    assert [(r.name, r.status) for r in mem.records] == [("stream", "ok"), ("theirs", "ok")]
    assert current_span() is None


# --------------------------------------------------------------------------------------------
# Correlation ids
# --------------------------------------------------------------------------------------------


def test_correlation_scope_is_recorded_nested_and_restored(tracer: Tracer, mem: InMemoryExporter) -> None:
    assert get_correlation_id() is None
    with correlation_scope("req-1") as cid:
        assert cid == "req-1" and get_correlation_id() == "req-1"
        with tracer.span("a"):
            with correlation_scope("req-2"), tracer.span("b"):
                pass
            with tracer.span("c"):
                pass
    assert get_correlation_id() is None
    with correlation_scope() as generated:
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
    cids = {r.name: r.correlation_id for r in mem.records}
    assert cids == {"a": "req-1", "b": "req-2", "c": "req-1"}


@pytest.mark.parametrize("bad", ["", "   ", "a\nb", "x" * 129])
def test_bad_correlation_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="correlation id"), correlation_scope(bad):
        pass


# --------------------------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------------------------


def test_two_threads_tracing_concurrently_do_not_share_context(mem: InMemoryExporter) -> None:
    tracer = Tracer([mem])
    barrier = threading.Barrier(2, timeout=10)
    seen: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            assert current_span() is None and get_correlation_id() is None
            with correlation_scope(f"cid-{name}"), tracer.span(f"root-{name}") as root:
                barrier.wait()  # both roots are open now
                for i in range(50):
                    with tracer.span(f"child-{name}-{i}") as child:
                        assert current_span() is child
                        assert child.parent_id == root.span_id and child.trace_id == root.trace_id
                barrier.wait()
                seen[name] = {"trace": root.trace_id, "span": current_span_id(), "cid": get_correlation_id()}
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    with tracer.span("main") as main:
        threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert current_span() is main
    assert not errors, errors
    assert seen["a"]["trace"] != seen["b"]["trace"] != main.trace_id
    assert seen["a"]["cid"] == "cid-a" and seen["b"]["cid"] == "cid-b"
    by_trace: dict[str, set[str]] = {}
    for r in mem.records:
        by_trace.setdefault(r.trace_id, set()).add(r.name.split("-")[1] if "-" in r.name else r.name)
    assert by_trace == {seen["a"]["trace"]: {"a"}, seen["b"]["trace"]: {"b"}, main.trace_id: {"main"}}
    for r in mem.records:
        if r.name.startswith("child-"):
            assert r.correlation_id == f"cid-{r.name.split('-')[1]}"


def test_propagate_keeps_the_parent_in_a_worker_thread(tracer: Tracer, mem: InMemoryExporter) -> None:
    def work(label: str) -> tuple[str | None, str | None]:
        with tracer.span(f"work-{label}") as s:
            return s.parent_id, get_correlation_id()

    results: dict[str, Any] = {}
    with correlation_scope("cid-main"), tracer.span("parent") as parent:
        t = threading.Thread(target=lambda: results.update(plain=work("plain")))
        t.start()
        t.join(10)
        wrapped = propagate(work)
        t = threading.Thread(target=lambda: results.update(kept=wrapped("kept")))
        t.start()
        t.join(10)
    assert results["kept"] == (parent.span_id, "cid-main")
    assert results["plain"] == (None, None)
    recs = {r.name: r for r in mem.records}
    assert recs["work-kept"].trace_id == parent.trace_id and recs["work-kept"].parent_id == parent.span_id
    assert recs["work-plain"].trace_id != parent.trace_id and recs["work-plain"].parent_id is None


def test_one_propagated_wrapper_can_run_in_many_threads_at_once(
    tracer: Tracer, mem: InMemoryExporter
) -> None:
    barrier = threading.Barrier(4, timeout=10)

    def work(i: int) -> str | None:
        with tracer.span(f"w{i}") as s:
            barrier.wait()  # all four contexts are entered at the same time
            return s.parent_id

    with tracer.span("parent") as parent, ThreadPoolExecutor(4) as pool:
        parents = list(pool.map(propagate(work), range(4)))
    assert parents == [parent.span_id] * 4


def test_context_var_helpers_are_plain_contextvars(tracer: Tracer) -> None:
    with tracer.span("x") as x:
        ctx = contextvars.copy_context()
    assert current_span() is None
    assert ctx.run(current_span) is x


# --------------------------------------------------------------------------------------------
# Exporters
# --------------------------------------------------------------------------------------------


class Exploding:
    def __init__(self) -> None:
        self.calls = 0

    def export(self, records: Sequence[SpanRecord]) -> None:
        self.calls += 1
        raise OSError(f"disk full while holding {SECRET}")


def test_exporter_failure_is_counted_and_never_reaches_the_caller(mem: InMemoryExporter) -> None:
    redact_values([SECRET])
    bad = Exploding()
    tracer = Tracer([bad, mem])
    with tracer.span("a"), tracer.span("b"):
        pass
    assert bad.calls == 2 and tracer.export_failures == 2
    assert [r.name for r in mem.records] == ["b", "a"]  # later exporters still get every span
    assert tracer.last_export_error is not None and tracer.last_export_error.startswith("Exploding: OSError")
    assert "SECRET123" not in tracer.last_export_error


def test_exporters_receive_a_list_with_the_record_and_can_be_added_later(tracer: Tracer) -> None:
    batches: list[Sequence[SpanRecord]] = []
    cb = CallbackExporter(batches.append)
    tracer.add_exporter(cb)
    with tracer.span("x"):
        pass
    tracer.remove_exporter(cb)
    with tracer.span("y"):
        pass
    assert len(batches) == 1 and isinstance(batches[0], list) and [r.name for r in batches[0]] == ["x"]


def test_to_row_columns_and_round_trip(tracer: Tracer, mem: InMemoryExporter) -> None:
    with pytest.raises(ValueError), tracer.span("s", n=3, ratio=0.5, flag=True, tags=("a", "b")):
        raise ValueError("bad")
    rec = mem.records[0]
    row = rec.to_row()
    assert list(row) == [
        "span_id",
        "trace_id",
        "parent_id",
        "name",
        "start_ts",
        "end_ts",
        "duration_ms",
        "status",
        "attributes",
        "correlation_id",
    ]
    assert json.loads(row["attributes"]) == {
        "n": 3,
        "ratio": 0.5,
        "flag": True,
        "tags": ["a", "b"],
        "exception.type": "ValueError",
        "otel.status_description": "ValueError: bad",
    }
    assert SpanRecord.from_row(row) == rec
    assert SpanRecord.from_dict(json.loads(json.dumps(rec.to_dict()))) == rec


def test_attribute_values_become_json_safe(tracer: Tracer, mem: InMemoryExporter) -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing!"

    with tracer.span(
        "s", i=np.int64(7), f=np.float64(0.25), nan=float("nan"), inf=float("-inf"), obj=Thing()
    ):
        pass
    assert mem.records[0].attributes == {"i": 7, "f": 0.25, "nan": "nan", "inf": "-inf", "obj": "thing!"}
    assert type(mem.records[0].attributes["i"]) is int
    json.loads(mem.records[0].to_row()["attributes"])  # strict JSON: no NaN tokens


def test_jsonl_lines_parse_and_match_the_spans(tmp_path: Path, tracer: Tracer, mem: InMemoryExporter) -> None:
    path = tmp_path / "deep" / "spans.jsonl"
    tracer.add_exporter(JsonlExporter(path))
    with correlation_scope("c-9"), tracer.span("root", k="v"), tracer.span("leaf"):
        pass
    with pytest.raises(ZeroDivisionError), tracer.span("fails"):
        1 / 0  # noqa: B018
    tracer.shutdown()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    parsed = [json.loads(line) for line in lines]
    assert parsed == [r.to_dict() for r in mem.records]
    assert parsed[0]["name"] == "leaf" and parsed[0]["parent_id"] == parsed[1]["span_id"]
    assert parsed[0]["correlation_id"] == "c-9" and parsed[1]["attributes"] == {"k": "v"}
    assert parsed[2]["status"] == "error" and parsed[2]["error"] == "ZeroDivisionError: division by zero"
    # appending after shutdown reopens; a truncated last line (crash mid-write) is skipped on load
    with tracer.span("again"):
        pass
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"trace_id": "abc", "span')
    assert [r.name for r in load_jsonl(path)] == ["leaf", "root", "fails", "again"]


class Gate:
    """An exporter that blocks until released and records what it got."""

    def __init__(self, fail_first: int = 0) -> None:
        self.release = threading.Event()
        self.got: list[str] = []
        self.fail_first = fail_first
        self.shut = 0

    def export(self, records: Sequence[SpanRecord]) -> None:
        self.release.wait(10)
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("collector down")
        self.got.extend(r.name for r in records)

    def shutdown(self) -> None:
        self.shut += 1


def test_batching_exporter_flushes_everything_in_order(tracer: Tracer) -> None:
    gate = Gate()
    gate.release.set()
    batcher = BatchingExporter(gate, max_batch=4, interval_s=30.0)
    tracer.add_exporter(batcher)
    for i in range(10):
        with tracer.span(f"s{i}"):
            pass
    assert tracer.flush(5.0) is True  # does not wait for the 30 s interval
    assert gate.got == [f"s{i}" for i in range(10)]
    tracer.shutdown()
    tracer.shutdown()
    assert gate.shut == 1 and batcher.exported == 10 and batcher.dropped == 0


def test_batching_exporter_counts_failures_and_drops(tracer: Tracer) -> None:
    gate = Gate(fail_first=1)
    batcher = BatchingExporter(gate, max_batch=1, interval_s=0.01, max_queue=2)
    tracer.add_exporter(batcher)
    with tracer.span("held"):  # taken by the worker, which blocks in export
        pass
    for _ in range(200):  # wait until the worker holds "held"
        if not batcher._queue:
            break
        threading.Event().wait(0.01)
    for i in range(5):
        with tracer.span(f"q{i}"):
            pass
    assert batcher.dropped == 3  # queue of 2: q0, q1 kept
    gate.release.set()
    assert batcher.flush(5.0)
    assert batcher.failures == 1 and batcher.last_error == "RuntimeError: collector down"
    assert gate.got == ["q0", "q1"]
    assert tracer.export_failures == 0  # the caller never saw the failure
    batcher.shutdown()


# --------------------------------------------------------------------------------------------
# OTLP/HTTP against a real local server
# --------------------------------------------------------------------------------------------


class _Collector(http.server.ThreadingHTTPServer):
    def __init__(self, status: int) -> None:
        self.status = status
        self.requests: list[dict[str, Any]] = []
        super().__init__(("127.0.0.1", 0), _CollectorHandler)


class _CollectorHandler(http.server.BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append(
            {"path": self.path, "content_type": self.headers["Content-Type"], "body": body}
        )
        payload = b"{}"
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


@pytest.fixture
def collector(request: pytest.FixtureRequest) -> Iterator[_Collector]:
    server = _Collector(getattr(request, "param", 200))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _port(server: _Collector) -> int:
    return int(server.server_address[1])


def test_otlp_exporter_posts_a_valid_body(
    collector: _Collector, mem: InMemoryExporter, perf: FakePerf
) -> None:
    otlp = OtlpHttpExporter(f"http://127.0.0.1:{_port(collector)}", timeout_s=5.0)
    tracer = Tracer([otlp, mem], clock=lambda: WALL0, perf=perf)
    with correlation_scope("corr-7"), tracer.span("root", n=3, ratio=0.5, ok=True, label="x") as root:
        perf.advance(0.5)
        with pytest.raises(RuntimeError), tracer.span("child", tags=["a", 1]):
            perf.advance(0.25)
            raise RuntimeError("llm down")
        perf.advance(0.25)
    tracer.shutdown()
    assert otlp.failures == 0 and otlp.exported == 2
    assert [r["path"] for r in collector.requests] == ["/v1/traces", "/v1/traces"]
    assert collector.requests[0]["content_type"] == "application/json"
    child_body, root_body = (json.loads(r["body"]) for r in collector.requests)

    rs = child_body["resourceSpans"][0]
    assert {"key": "service.name", "value": {"stringValue": "arbor"}} in rs["resource"]["attributes"]
    (child,) = rs["scopeSpans"][0]["spans"]
    (root_span,) = root_body["resourceSpans"][0]["scopeSpans"][0]["spans"]
    for span in (child, root_span):
        assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"]) and span["traceId"] == root.trace_id
        assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
    assert root_span["spanId"] == root.span_id and "parentSpanId" not in root_span
    assert child["parentSpanId"] == root.span_id
    # WALL0 = 1_700_000_000 s; the child starts 0.5 s and ends 0.75 s after the root
    assert child["startTimeUnixNano"] == "1700000000500000000"
    assert child["endTimeUnixNano"] == "1700000000750000000"
    assert root_span["startTimeUnixNano"] == "1700000000000000000"
    assert root_span["endTimeUnixNano"] == "1700000001000000000"
    assert child["status"] == {"code": 2, "message": "RuntimeError: llm down"}
    assert root_span["status"] == {"code": 1}
    attrs = {a["key"]: a["value"] for a in root_span["attributes"]}
    assert attrs == {
        "n": {"intValue": "3"},
        "ratio": {"doubleValue": 0.5},
        "ok": {"boolValue": True},
        "label": {"stringValue": "x"},
        "arbor.correlation_id": {"stringValue": "corr-7"},
    }
    child_attrs = {a["key"]: a["value"] for a in child["attributes"]}
    assert child_attrs["tags"] == {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "1"}]}}


@pytest.mark.parametrize("collector", [500], indirect=True)
def test_otlp_http_error_is_counted_not_raised(collector: _Collector) -> None:
    otlp = OtlpHttpExporter(f"http://127.0.0.1:{_port(collector)}/v1/traces")
    tracer = Tracer([otlp])
    with tracer.span("x"):
        pass
    otlp.shutdown()
    assert len(collector.requests) == 1 and collector.requests[0]["path"] == "/v1/traces"
    assert otlp.failures == 1 and otlp.exported == 0 and "HTTP 500" in (otlp.last_error or "")
    assert tracer.export_failures == 0


def test_otlp_unreachable_collector_is_counted_not_raised() -> None:
    server = _Collector(200)  # bind a free port, then close it so nothing listens there
    port = _port(server)
    server.server_close()
    otlp = OtlpHttpExporter(f"http://127.0.0.1:{port}", timeout_s=1.0)
    tracer = Tracer([otlp])
    with tracer.span("x"):
        pass
    otlp.shutdown()
    assert otlp.failures == 1 and otlp.exported == 0 and otlp.last_error


def test_otlp_endpoint_handling() -> None:
    assert OtlpHttpExporter("http://h:4318").url == "http://h:4318/v1/traces"
    assert OtlpHttpExporter("http://h:4318/").url == "http://h:4318/v1/traces"
    assert OtlpHttpExporter("https://h/otel/v1/traces").url == "https://h/otel/v1/traces"
    for bad in ("h:4318", "ftp://h/x", ""):
        with pytest.raises(ValueError, match="OTLP endpoint"):
            OtlpHttpExporter(bad)


def test_encode_otlp_end_never_precedes_start_and_big_ints_stay_strings() -> None:
    rec = SpanRecord(tid(1), sid(1), None, "x", WALL0, WALL0, 0.0, "ok", {"big": 2**70, "none": None})
    (span,) = encode_otlp([rec])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert span["startTimeUnixNano"] == span["endTimeUnixNano"] == "1700000000000000000"
    assert span["attributes"] == [{"key": "big", "value": {"stringValue": str(2**70)}}]


# --------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("api_key", True),
        ("OPENAI_API_KEY", True),
        ("x-api-key", True),
        ("Authorization", True),
        ("db_password", True),
        ("client_secret", True),
        ("access_token", True),
        ("token", True),
        ("llm.token", True),
        ("tokens_in", False),
        ("prompt_tokens", False),
        ("token_count", False),
        ("max_tokens", False),
        ("llm.tokens.output", False),
        ("task", False),
        ("keyword", False),
    ],
)
def test_sensitive_keys(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_span_attributes_are_redacted_at_record_time(mem: InMemoryExporter) -> None:
    redact_values([SECRET])
    tracer = Tracer([mem], secrets=["hunter2-horse"])
    with tracer.span("s", api_key="plain-visible-key", prompt=f"use {SECRET} now") as s:
        assert s.attributes["api_key"] == MASK and s.attributes["prompt"] == f"use {MASK} now"
        s.set_attribute("nested", {"headers": {"Authorization": "Bearer x"}, "list": ["hunter2-horse", 1]})
        s.set_attribute("unknown_key_shape", "sk-abcdefghijklmnop")
        s.record_error(PermissionError(f"rejected key {SECRET} / hunter2-horse"))
    with tracer.span("tok", tokens_in=12, token_count=3):
        pass
    rec, tok = mem.records
    assert rec.attributes == {
        "api_key": MASK,
        "prompt": f"use {MASK} now",
        "nested": {"headers": {"Authorization": MASK}, "list": [MASK, 1]},
        "unknown_key_shape": MASK,
        "exception.type": "PermissionError",
    }
    assert rec.error == f"PermissionError: rejected key {MASK} / {MASK}"
    assert tok.attributes == {"tokens_in": 12, "token_count": 3}
    assert "SECRET123" not in repr(mem.records) and "hunter2" not in repr(mem.records)


def test_redact_values_ignores_short_and_empty_and_accepts_secretstr_like() -> None:
    class Secretish:
        def get_secret_value(self) -> str:
            return "opaque-value-42"

    redact_values(["", "ab", None, Secretish()])  # type: ignore[list-item]
    assert redact_text("ab opaque-value-42") == f"ab {MASK}"
    assert redact_text("overlap", ["overl", "overlap"]) == MASK  # longest secret first
