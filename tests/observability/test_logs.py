"""JSON logs: fields, correlation/trace ids of the active span, redaction, idempotent configuration;
and the end-to-end check that a configured key never reaches logs, spans, JSONL or OTLP."""

from __future__ import annotations

import http.server
import io
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from observability.exporters import InMemoryExporter, JsonlExporter, OtlpHttpExporter
from observability.logs import (
    DEFAULT_LOGGERS,
    JsonFormatter,
    RedactingFilter,
    configure_logging,
    unconfigure_logging,
)
from observability.redaction import MASK
from observability.tracing import Tracer, correlation_scope

SECRET = "sk-test-SECRET123"
PLAIN_SECRET = "correct-horse-battery"  # not key-shaped: only masked because it is configured
LOGGER_NAMES = (*DEFAULT_LOGGERS, "arbor.test")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave the logger tree and the secret registry as they were."""
    saved = {
        name: (
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
            list(logging.getLogger(name).handlers),
        )
        for name in LOGGER_NAMES
    }
    yield
    unconfigure_logging(LOGGER_NAMES)
    for name, (level, propagate, handlers) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.propagate = propagate
        for h in handlers:
            if h not in logger.handlers:
                logger.addHandler(h)


def _lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def _record(msg: str, *args: Any, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    rec = logging.LogRecord("arbor.unit", logging.WARNING, __file__, 10, msg, args or None, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_json_line_fields_outside_any_scope() -> None:
    rec = _record("hello %s", "world", task="game24", level="custom")
    rec.created = 1_700_000_000.25
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    assert json.loads(line) == {
        "ts": "2023-11-14T22:13:20.250Z",  # 1_700_000_000 s is 2023-11-14 22:13:20 UTC
        "level": "WARNING",
        "logger": "arbor.unit",
        "message": "hello world",
        "correlation_id": None,
        "trace_id": None,
        "span_id": None,
        "task": "game24",
        "extra.level": "custom",
    }


def test_log_lines_carry_the_active_correlation_and_span_ids() -> None:
    buf = io.StringIO()
    configure_logging("DEBUG", stream=buf)
    log = logging.getLogger("arbor.test")
    tracer = Tracer()
    log.info("before")
    with correlation_scope("req-77"), tracer.span("query") as root:
        log.info("in root")
        with tracer.span("agent") as child:
            log.debug("in child", extra={"agent": "mcts", "visits": 12})
        logging.getLogger("engine.llm.transport").warning("engine loggers too")
    before, in_root, in_child, engine = _lines(buf)
    assert (before["correlation_id"], before["trace_id"], before["span_id"]) == (None, None, None)
    assert (in_root["correlation_id"], in_root["trace_id"], in_root["span_id"]) == (
        "req-77",
        root.trace_id,
        root.span_id,
    )
    assert in_child["span_id"] == child.span_id and in_child["trace_id"] == root.trace_id
    assert in_child["level"] == "DEBUG" and in_child["agent"] == "mcts" and in_child["visits"] == 12
    assert engine["logger"] == "engine.llm.transport" and engine["span_id"] == root.span_id
    ts = datetime.fromisoformat(in_root["ts"].replace("Z", "+00:00"))
    assert ts.tzinfo is not None and ts.utcoffset() == UTC.utcoffset(None)


def test_ids_logged_from_a_worker_thread_follow_that_threads_context() -> None:
    buf = io.StringIO()
    configure_logging(stream=buf)
    log = logging.getLogger("arbor.test")
    tracer = Tracer()

    def work() -> None:
        with correlation_scope("worker"), tracer.span("w"):
            log.info("from worker")

    with correlation_scope("main"), tracer.span("m") as main:
        t = threading.Thread(target=work)
        t.start()
        t.join(10)
        log.info("from main")
    worker_line, main_line = _lines(buf)
    assert worker_line["correlation_id"] == "worker" and worker_line["trace_id"] != main.trace_id
    assert main_line["correlation_id"] == "main" and main_line["span_id"] == main.span_id


def test_exception_text_is_included() -> None:
    try:
        raise ValueError("bad input")
    except ValueError:
        rec = _record("failed", exc_info=sys.exc_info())
    fields = json.loads(JsonFormatter().format(rec))
    assert fields["exc"].startswith("Traceback") and "ValueError: bad input" in fields["exc"]


def test_redacting_filter_masks_message_args_extras_and_exceptions() -> None:
    try:
        raise ConnectionError(f"auth failed for {SECRET}")
    except ConnectionError:
        exc_info = sys.exc_info()
    rec = _record(
        f"calling with {PLAIN_SECRET} and %s (key %r)",
        SECRET,
        "sk-unconfiguredlookingkey99",
        exc_info=exc_info,
        api_key="anything",
        headers={"Authorization": "Bearer abc"},
        prompt=f"my key is {PLAIN_SECRET}",
        tokens_out=5,
    )
    assert RedactingFilter([PLAIN_SECRET, SECRET]).filter(rec) is True
    text = JsonFormatter().format(rec)
    fields = json.loads(text)
    assert fields["message"] == f"calling with {MASK} and {MASK} (key '{MASK}')"
    assert fields["api_key"] == MASK and fields["headers"] == {"Authorization": MASK}
    assert fields["prompt"] == f"my key is {MASK}" and fields["tokens_out"] == 5
    assert "ConnectionError: auth failed for " + MASK in fields["exc"]
    for leaked in ("SECRET123", "horse", "unconfiguredlooking", "Bearer abc"):
        assert leaked not in text


def test_redacting_filter_keeps_a_record_whose_args_do_not_match() -> None:
    rec = _record("two %s %s", "only-one")
    assert RedactingFilter().filter(rec) is True
    assert "only-one" in rec.getMessage()


def test_configure_logging_is_idempotent_and_writes_files(tmp_path: Path) -> None:
    buf = io.StringIO()
    path = tmp_path / "logs" / "arbor.log"
    configure_logging("INFO", stream=buf, path=path)
    configure_logging("INFO", stream=buf, path=path)
    arbor = logging.getLogger("arbor")
    assert len(arbor.handlers) == 2 and arbor.propagate is False
    logging.getLogger("arbor.test").info("once")
    logging.getLogger("arbor.test").debug("below level")
    assert [line["message"] for line in _lines(buf)] == ["once"]
    assert [json.loads(line)["message"] for line in path.read_text().splitlines()] == ["once"]


def test_configure_logging_callback_and_levels() -> None:
    got: list[dict[str, Any]] = []
    handlers = configure_logging(logging.WARNING, callback=got.append, loggers=("arbor.test",))
    assert len(handlers) == 1  # no stderr handler when only a callback is asked for
    log = logging.getLogger("arbor.test")
    with correlation_scope("cb"):
        log.info("dropped")
        log.warning("kept %d", 1)
    assert [(g["message"], g["correlation_id"]) for g in got] == [("kept 1", "cb")]
    with pytest.raises(ValueError, match="log level"):
        configure_logging("LOUD", stream=io.StringIO())


def test_unconfigure_removes_only_our_handlers() -> None:
    theirs = logging.NullHandler()
    logging.getLogger("arbor").addHandler(theirs)
    configure_logging(stream=io.StringIO())
    unconfigure_logging()
    assert logging.getLogger("arbor").handlers == [theirs] and logging.getLogger("arbor").propagate
    logging.getLogger("arbor").removeHandler(theirs)


# --------------------------------------------------------------------------------------------
# End to end: a configured key never reaches logs, span attributes, JSONL or OTLP
# --------------------------------------------------------------------------------------------


class _Sink(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        type(self).bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_configured_secret_never_appears_anywhere(tmp_path: Path) -> None:
    _Sink.bodies = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # the wiring a composition root does once: the keys go to the log filter and the tracer
        secrets = [SECRET, PLAIN_SECRET]
        buf = io.StringIO()
        log_path = tmp_path / "arbor.log"
        configure_logging("DEBUG", stream=buf, path=log_path, secrets=secrets)
        mem = InMemoryExporter()
        jsonl = tmp_path / "spans.jsonl"
        otlp = OtlpHttpExporter(f"http://127.0.0.1:{server.server_address[1]}", timeout_s=5.0)
        tracer = Tracer([mem, JsonlExporter(jsonl), otlp], secrets=secrets)
        log = logging.getLogger("arbor.test")

        with correlation_scope("e2e"), tracer.span("llm.call", api_key=SECRET, provider="openai") as span:
            span.set_attribute("request", {"url": "https://x", "body": f"key={SECRET}&pw={PLAIN_SECRET}"})
            span.set_attribute("note", f"{PLAIN_SECRET} in free text")
            log.info("using key %s", SECRET)
            log.warning(f"f-string with {PLAIN_SECRET} and {SECRET}", extra={"auth": SECRET, "password": "x"})
            try:
                raise RuntimeError(f"401 for key {SECRET}")
            except RuntimeError:
                log.exception("provider failed")
            with pytest.raises(PermissionError), tracer.span("inner"):
                raise PermissionError(f"denied {PLAIN_SECRET}")
        tracer.shutdown()
        for h in logging.getLogger("arbor").handlers:
            h.flush()

        outputs = {
            "log stream": buf.getvalue(),
            "log file": log_path.read_text(encoding="utf-8"),
            "span records": repr(mem.records) + json.dumps([r.to_row() for r in mem.records]),
            "jsonl": jsonl.read_text(encoding="utf-8"),
            "otlp": b"".join(_Sink.bodies).decode("utf-8"),
        }
        assert otlp.exported == 2 and len(_Sink.bodies) == 2
        assert len(buf.getvalue().splitlines()) == 3
        for where, text in outputs.items():
            assert text, where
            assert MASK in text, where
            for secret_part in ("SECRET123", "correct-horse", "battery"):
                assert secret_part not in text, f"{secret_part!r} leaked into {where}"
        # what was masked is still useful
        lines = _lines(buf)
        assert lines[0]["message"] == f"using key {MASK}" and lines[0]["correlation_id"] == "e2e"
        assert lines[2]["exc"] and "RuntimeError: 401 for key " + MASK in lines[2]["exc"]
        llm = next(r for r in mem.records if r.name == "llm.call")
        assert llm.attributes["api_key"] == MASK and llm.attributes["provider"] == "openai"
        assert re.search(r"key=\*+&pw=\*+", llm.attributes["request"]["body"])
    finally:
        server.shutdown()
        server.server_close()
