"""Span exporters: where the :class:`~observability.tracing.SpanRecord` of a finished span goes.

* :class:`InMemoryExporter` keeps records in a list (tests, the golden-trace capture);
* :class:`JsonlExporter` appends one JSON object per span to a file, read back by :func:`load_jsonl`;
* :class:`CallbackExporter` hands each batch to a function (e.g. the SQLite store's writer queue);
* :class:`BatchingExporter` moves another exporter's work to a background thread, in batches;
* :class:`OtlpHttpExporter` POSTs OTLP/HTTP JSON (built by :func:`encode_otlp`) to a collector.

Each implements the :class:`~observability.tracing.SpanExporter` protocol (``export(records)``,
optionally ``flush(timeout_s)`` and ``shutdown()``), which :class:`~observability.tracing.Tracer`
calls in the thread that ended the span::

    tracer = Tracer([BatchingExporter(OtlpHttpExporter("http://otel-collector:4318"))])

Records reach exporters already redacted; error texts of failed exports are redacted again
(:mod:`observability.redaction`) before they are kept or logged.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from observability.redaction import redact_text
from observability.span_record import SpanRecord, dumps_json
from observability.tracing import SpanExporter

if TYPE_CHECKING:  # httpx is imported lazily: only the OTLP exporter needs it
    import httpx

__all__ = [
    "BatchingExporter",
    "CallbackExporter",
    "InMemoryExporter",
    "JsonlExporter",
    "OtlpHttpExporter",
    "encode_otlp",
    "load_jsonl",
]

# The logger these exporters have always used (they were part of observability.tracing).
log = logging.getLogger("arbor.tracing")


class InMemoryExporter:
    """Keeps finished spans in a list (thread-safe); for tests and the golden-trace capture."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[SpanRecord] = []

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Append the records."""
        with self._lock:
            self._records.extend(records)

    @property
    def records(self) -> list[SpanRecord]:
        """A snapshot of every record so far, in end order."""
        with self._lock:
            return list(self._records)

    def by_name(self, name: str) -> list[SpanRecord]:
        """The records named ``name``."""
        return [r for r in self.records if r.name == name]

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()


class JsonlExporter:
    """Appends one JSON object per span (:meth:`SpanRecord.to_dict`) to a file, flushed per batch.

    The file is opened lazily in append mode (parent directories are created) and writes are
    serialised by a lock, so several tracers/threads may share one exporter.  Each batch is a
    single write; after a crash at most the last line is truncated, which :func:`load_jsonl` skips.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._fh: Any = None

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Write the records as JSON lines and flush."""
        if not records:
            return
        text = "".join(dumps_json(r.to_dict()) + "\n" for r in records)
        with self._lock:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across batches
            self._fh.write(text)
            self._fh.flush()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Flush the file (writes are already flushed per batch)."""
        with self._lock:
            if self._fh is not None:
                self._fh.flush()
        return True

    def shutdown(self) -> None:
        """Close the file; a later export reopens it."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


def load_jsonl(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """The spans in a :class:`JsonlExporter` file, skipping blank and unparseable (truncated) lines."""
    out: list[SpanRecord] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                out.append(SpanRecord.from_dict(json.loads(line)))
            except (ValueError, KeyError, TypeError):
                continue
    return out


class CallbackExporter:
    """Calls ``fn(records)`` with each batch (e.g. to enqueue rows for the SQLite store's writer)."""

    def __init__(self, fn: Callable[[Sequence[SpanRecord]], Any]) -> None:
        self._fn = fn

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Pass the batch on."""
        self._fn(records)


class BatchingExporter:
    """Moves exporting off the caller's thread: buffers records and a daemon thread hands them to
    ``inner.export`` in batches of up to ``max_batch``, at least every ``interval_s`` seconds.

    ``export`` never blocks on I/O; when ``max_queue`` records are waiting, new ones are dropped and
    counted in :attr:`dropped`.  Failures of ``inner`` are counted in :attr:`failures`.
    :meth:`flush` waits until everything queued so far was handed over; :meth:`shutdown` (also run
    at interpreter exit) flushes and stops the thread, then shuts ``inner`` down.
    """

    def __init__(
        self,
        inner: SpanExporter,
        *,
        max_batch: int = 512,
        interval_s: float = 1.0,
        max_queue: int = 100_000,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or interval_s <= 0:
            raise ValueError("max_batch and max_queue must be >= 1 and interval_s > 0")
        self.inner = inner
        self.max_batch = max_batch
        self.interval_s = interval_s
        self.max_queue = max_queue
        self.dropped = 0
        self.failures = 0
        self.exported = 0
        self.last_error: str | None = None
        self._queue: deque[SpanRecord] = deque()
        self._cond = threading.Condition()
        self._enqueued = 0  # records accepted so far
        self._done = 0  # records handed to inner (successfully or not)
        self._flush_upto = 0  # a flush wants everything up to this count handed over now
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="arbor-span-batcher", daemon=True)
        self._thread.start()
        ref = weakref.ref(self)

        def _shutdown_at_exit() -> None:
            if (batcher := ref()) is not None:
                batcher.shutdown()

        atexit.register(_shutdown_at_exit)

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Queue the records (dropping what exceeds ``max_queue``)."""
        with self._cond:
            if self._closed:
                self.dropped += len(records)
                return
            room = self.max_queue - len(self._queue)
            take = records if len(records) <= room else records[: max(room, 0)]
            self.dropped += len(records) - len(take)
            self._queue.extend(take)
            self._enqueued += len(take)
            if len(self._queue) >= self.max_batch:
                self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                deadline = time.monotonic() + self.interval_s
                while (
                    not self._closed and len(self._queue) < self.max_batch and self._flush_upto <= self._done
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                if not self._queue:
                    if self._closed:
                        return
                    continue
                n = min(self.max_batch, len(self._queue))
                batch = [self._queue.popleft() for _ in range(n)]
            try:
                self.inner.export(batch)
                self.exported += len(batch)
            except Exception as exc:
                self.failures += 1
                self.last_error = redact_text(f"{type(exc).__name__}: {exc}")
                if self.failures == 1 or self.failures % 1000 == 0:
                    log.warning("batched span export failed (%d so far): %s", self.failures, self.last_error)
            with self._cond:
                self._done += len(batch)
                self._cond.notify_all()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Block until every record queued before the call was handed over; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._enqueued
            self._flush_upto = max(self._flush_upto, target)
            self._cond.notify_all()
            while self._done < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    return False
                self._cond.wait(min(left, 0.1))
        fn = getattr(self.inner, "flush", None)
        return bool(fn(max(0.0, deadline - time.monotonic()))) if callable(fn) else True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Flush, stop the thread and shut ``inner`` down.  Safe to call twice."""
        with self._cond:
            if self._closed:
                return
        self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        fn = getattr(self.inner, "shutdown", None)
        if callable(fn):
            fn()


# -- OTLP/HTTP JSON -----------------------------------------------------------------------------

_OTLP_STATUS = {"ok": 1, "error": 2}  # STATUS_CODE_OK, STATUS_CODE_ERROR
_SPAN_KIND_INTERNAL = 1
_INT64 = (-(2**63), 2**63 - 1)


def _any_value(value: Any) -> dict[str, Any]:
    """An OTLP ``AnyValue`` (proto3 JSON: 64-bit integers as strings)."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if _INT64[0] <= value <= _INT64[1]:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": _key_values(value)}}
    if value is None:
        return {}
    return {"stringValue": str(value)}


def _key_values(attributes: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"key": str(k), "value": _any_value(v)} for k, v in attributes.items() if v is not None]


def _nanos(seconds: float) -> int:
    return round(seconds * 1e9)


def encode_otlp(
    records: Sequence[SpanRecord],
    *,
    service_name: str = "arbor",
    resource_attributes: Mapping[str, Any] | None = None,
    scope_name: str = "arbor.observability",
) -> dict[str, Any]:
    """The OTLP/HTTP JSON body (``ExportTraceServiceRequest``) for ``records``.

    Ids are lowercase hex (32/16 characters), times are unix nanoseconds as decimal strings (the end
    time is start + duration, so it is never before the start), the correlation id becomes the
    attribute ``arbor.correlation_id``, and the status is OK (1) or ERROR (2) with the error text.
    """
    spans = []
    for r in records:
        attrs = dict(r.attributes)
        if r.correlation_id is not None:
            attrs["arbor.correlation_id"] = r.correlation_id
        start = _nanos(r.start_ts)
        span: dict[str, Any] = {
            "traceId": r.trace_id,
            "spanId": r.span_id,
            "name": r.name,
            "kind": _SPAN_KIND_INTERNAL,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + round(r.duration_ms * 1e6)),
            "attributes": _key_values(attrs),
            "status": {"code": _OTLP_STATUS[r.status]},
        }
        if r.parent_id:
            span["parentSpanId"] = r.parent_id
        if r.error is not None:
            span["status"]["message"] = r.error
        spans.append(span)
    resource = {"service.name": service_name, **(resource_attributes or {})}
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _key_values(resource)},
                "scopeSpans": [{"scope": {"name": scope_name}, "spans": spans}],
            }
        ]
    }


def _otlp_url(endpoint: str) -> str:
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"OTLP endpoint must be an http(s) URL, got {endpoint!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1/traces"):
        path += "/v1/traces"
    return parts._replace(path=path).geturl()


class OtlpHttpExporter:
    """POSTs spans as OTLP/HTTP JSON to ``<endpoint>/v1/traces`` (the suffix is added unless the
    endpoint already ends with it, as with ``OTEL_EXPORTER_OTLP_ENDPOINT``).

    Synchronous: one POST per ``export`` call, so in production wrap it in a
    :class:`BatchingExporter`.  Transport errors and non-2xx answers are counted in
    :attr:`failures` (with :attr:`last_error`), never raised.  A passed-in ``client`` is used as is
    and not closed; otherwise one is created with ``timeout_s`` and closed by :meth:`shutdown`.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 2.0,
        headers: Mapping[str, str] | None = None,
        service_name: str = "arbor",
        resource_attributes: Mapping[str, Any] | None = None,
    ) -> None:
        self.url = _otlp_url(endpoint)
        self.timeout_s = timeout_s
        self.service_name = service_name
        self.resource_attributes = dict(resource_attributes or {})
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        self._own_client = client is None
        self._client = client
        self._lock = threading.Lock()
        self.exported = 0
        self.failures = 0
        self.last_error: str | None = None

    def _get_client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            with self._lock:
                if self._client is None:
                    self._client = httpx.Client(timeout=self.timeout_s)
        return self._client

    def export(self, records: Sequence[SpanRecord]) -> None:
        """POST the records; count a failure instead of raising."""
        if not records:
            return
        body = dumps_json(
            encode_otlp(records, service_name=self.service_name, resource_attributes=self.resource_attributes)
        ).encode("utf-8")
        try:
            response = self._get_client().post(
                self.url, content=body, headers=self._headers, timeout=self.timeout_s
            )
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
            return
        if 200 <= response.status_code < 300:
            with self._lock:
                self.exported += len(records)
        else:
            self._fail(f"HTTP {response.status_code} from {self.url}")

    def _fail(self, message: str) -> None:
        with self._lock:
            self.failures += 1
            self.last_error = redact_text(message)
            n = self.failures
        if n == 1 or n % 1000 == 0:
            log.warning("OTLP export failed (%d so far): %s", n, self.last_error)

    def shutdown(self) -> None:
        """Close the HTTP client if this exporter created it."""
        with self._lock:
            if self._own_client and self._client is not None:
                self._client.close()
                self._client = None
