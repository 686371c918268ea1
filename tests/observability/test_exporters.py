"""Span exporters: JSONL files, batching on a background thread, OTLP/HTTP against a local server.

Expected values are worked out by hand from the injected clocks and id factories, not read back
from the code under test.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from observability.exporters import (
    BatchingExporter,
    InMemoryExporter,
    JsonlExporter,
    OtlpHttpExporter,
    encode_otlp,
    load_jsonl,
)
from observability.tracing import SpanRecord, Tracer, correlation_scope
from tests.observability.span_helpers import WALL0, FakePerf, sid, tid

# --------------------------------------------------------------------------------------------
# JSONL and batching
# --------------------------------------------------------------------------------------------


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
