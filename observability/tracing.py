"""Tracing: nested spans with trace/span/parent ids, a correlation id, attributes and a status.

Spans nest through :mod:`contextvars`, so the current span follows the code that is running (the
thread, or the asyncio task) and never leaks between threads::

    tracer = Tracer([JsonlExporter("data/runtime/spans.jsonl")])
    with correlation_scope("req-42"), tracer.span("query", task="game24") as root:
        with tracer.span("agent.hrm") as child:       # parent_id == root.span_id, same trace_id
            child.set_attribute("confidence", 0.9)

A finished span becomes an immutable :class:`SpanRecord` that is handed, in the thread that ended
the span, to every exporter's ``export([record])``.  Exporter failures are caught and counted
(:attr:`Tracer.export_failures`); they never reach the traced code.  Exporters that do I/O should
sit behind a :class:`BatchingExporter`, which moves the work to a background thread.

**Threads.**  A new thread starts with an *empty* context: a span opened there would start a new
trace.  To keep the trace parent, wrap the callable with :func:`propagate`, which captures the
caller's context (current span, trace, correlation id) at wrap time::

    threading.Thread(target=propagate(work), args=(x,)).start()
    executor.submit(propagate(work), x)
    loop.run_in_executor(None, propagate(work), x)   # run_in_executor does not copy the context

Each call of the wrapper runs in a fresh copy of the captured context, so one wrapper may be called
from several threads at once.  (asyncio tasks copy the context by themselves.)

**Generators.**  A span opened inside a generator stays current for the consumer between ``yield``
points (generators run in their caller's context).  Closing a generator early raises
``GeneratorExit`` inside it; that is not counted as an error.

**Timestamps.**  A root span reads the wall clock (``clock``) once; every timestamp below it is that
anchor plus the monotonic ``perf`` clock's elapsed time, so a child always lies inside its parent,
durations are never negative, and an injected (e.g. simulated) wall clock moves whole traces.

**Redaction** happens when an attribute is recorded, so no exporter ever sees a secret: values of
attributes whose key names a credential (``api_key``, ``secret``, ``token`` – but not token
*counts* such as ``tokens_in`` or ``token_count`` –, ``password``, ``authorization``, ...) become
:data:`MASK`; any string containing a secret registered with :func:`redact_values` (or passed as
``Tracer(secrets=...)``), or something shaped like an ``sk-...`` API key, has it replaced by
:data:`MASK`.  Error messages are redacted the same way.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import json
import logging
import math
import os
import random
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

if TYPE_CHECKING:  # httpx is imported lazily: only the OTLP exporter needs it
    import httpx

__all__ = [
    "MASK",
    "ROW_COLUMNS",
    "BatchingExporter",
    "CallbackExporter",
    "InMemoryExporter",
    "JsonlExporter",
    "OtlpHttpExporter",
    "Span",
    "SpanExporter",
    "SpanRecord",
    "Status",
    "Tracer",
    "clear_redacted_values",
    "correlation_scope",
    "current_span",
    "current_span_id",
    "current_trace_id",
    "encode_otlp",
    "get_correlation_id",
    "get_tracer",
    "is_sensitive_key",
    "load_jsonl",
    "new_span_id",
    "new_trace_id",
    "propagate",
    "redact_attributes",
    "redact_text",
    "redact_values",
    "registered_secrets",
    "set_tracer",
    "start_trace",
]

log = logging.getLogger("arbor.tracing")

Status = Literal["ok", "error"]
IdFactory = Callable[[int], str]
P = ParamSpec("P")
R = TypeVar("R")

MASK = "**********"
"""What a redacted value (or the redacted part of a string) is replaced with."""

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_MAX_CORRELATION_ID = 128
_MAX_DEPTH = 4  # nesting depth kept for list/dict attribute values

# ----------------------------------------------------------------------------------------------
# Redaction
# ----------------------------------------------------------------------------------------------

# Keys that name a credential.  "token" alone is sensitive, token *counts* are not.
_SENSITIVE_KEY = re.compile(
    r"api[_\-.]?key|secret|password|passwd|authorization|credential|private[_\-.]?key"
    r"|token(?!s|[_\-.]?(?:count|usage|limit|budget|cost|rate))",
    re.IGNORECASE,
)
# Strings shaped like an API key (OpenAI/Anthropic style) even when nobody registered them.
_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_MIN_SECRET_CHARS = 4  # shorter "secrets" would mask ordinary text everywhere

_secrets_lock = threading.Lock()
_registered: tuple[str, ...] = ()


def _secret_text(secret: object) -> str | None:
    """The raw text of ``secret`` (a str or anything with ``get_secret_value()``, e.g. SecretStr)."""
    if secret is None:
        return None
    getter = getattr(secret, "get_secret_value", None)
    raw = getter() if callable(getter) else secret
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    return raw if len(raw) >= _MIN_SECRET_CHARS else None


def _normalise_secrets(secrets: Iterable[object]) -> tuple[str, ...]:
    """Distinct usable secret strings, longest first (so overlapping secrets are fully masked)."""
    found = {s for s in (_secret_text(x) for x in secrets) if s}
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


def redact_values(secrets: Iterable[object]) -> None:
    """Register secret values (str or ``SecretStr``) to be masked process-wide.

    Every :class:`Tracer` and every :class:`observability.logs.RedactingFilter` masks the registered
    values in addition to their own.  Values shorter than 4 characters (after stripping) and
    ``None`` are ignored.  Registration is cumulative; see :func:`clear_redacted_values`.
    """
    global _registered
    with _secrets_lock:
        _registered = _normalise_secrets((*_registered, *secrets))


def clear_redacted_values() -> None:
    """Forget every value registered with :func:`redact_values` (for tests)."""
    global _registered
    with _secrets_lock:
        _registered = ()


def registered_secrets() -> tuple[str, ...]:
    """The secret values registered process-wide (longest first)."""
    return _registered


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True when an attribute/field named ``key`` holds a credential (its value is always masked)."""
    return bool(_SENSITIVE_KEY.search(key))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given and registered secret, and every ``sk-...`` key, replaced by MASK."""
    return _redact_str(text, _normalise_secrets(secrets))


def _clean(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    """``value`` as a JSON-safe attribute value, redacted.

    Kept: None, bool, int, finite float, str; lists/tuples/sets become lists and mappings become
    dicts (to a depth of 4).  NumPy scalars become Python scalars, non-finite floats become the
    strings ``"nan"``/``"inf"``/``"-inf"`` and anything else its ``str()``.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return _redact_str(value, secrets)
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return _clean(value.item(), secrets, depth)  # numpy scalar / 0-d array
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {
                str(k): MASK if is_sensitive_key(str(k)) else _clean(v, secrets, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [_clean(v, secrets, depth + 1) for v in value]
    return _redact_str(str(value), secrets)


def _redact_str(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for secret in _registered:
        if secret in text:
            text = text.replace(secret, MASK)
    if "sk-" in text:
        text = _KEYLIKE.sub(MASK, text)
    return text


def redact_attributes(attributes: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A redacted, JSON-safe copy of ``attributes`` (the same rules a span applies)."""
    own = _normalise_secrets(secrets)
    return {str(k): MASK if is_sensitive_key(str(k)) else _clean(v, own) for k, v in attributes.items()}


# ----------------------------------------------------------------------------------------------
# Ids and context
# ----------------------------------------------------------------------------------------------


# Ids need to be unique, not unpredictable: a private PRNG (not the global one, which tests and
# tools seed) seeded from os.urandom is ~5x faster than os.urandom per id.  It is reseeded in a
# forked child so that processes of one workload never share ids.
_id_rng = random.Random(os.urandom(32))
os.register_at_fork(after_in_child=lambda: _id_rng.seed(os.urandom(32)))
_HEX_FORMAT = {8: "016x", 16: "032x"}


def _random_id(nbytes: int) -> str:
    """A random non-zero id of ``nbytes`` bytes as lowercase hex (all-zero ids are invalid in OTLP)."""
    bits = nbytes * 8
    fmt = _HEX_FORMAT.get(nbytes) or f"0{nbytes * 2}x"
    while True:
        value = _id_rng.getrandbits(bits)
        if value:
            return format(value, fmt)


def new_trace_id() -> str:
    """A random 128-bit trace id (32 lowercase hex characters)."""
    return _random_id(16)


def new_span_id() -> str:
    """A random 64-bit span id (16 lowercase hex characters)."""
    return _random_id(8)


def _check_trace_id(trace_id: str) -> str:
    tid = str(trace_id).lower()
    if not _TRACE_ID.fullmatch(tid) or tid == "0" * 32:
        raise ValueError(f"trace_id must be 32 hex characters, not all zero; got {trace_id!r}")
    return tid


def _check_span_id(span_id: str) -> str:
    sid = str(span_id).lower()
    if not _SPAN_ID.fullmatch(sid) or sid == "0" * 16:
        raise ValueError(f"span id must be 16 hex characters, not all zero; got {span_id!r}")
    return sid


_CURRENT_SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar("arbor_span", default=None)
_AMBIENT_TRACE: contextvars.ContextVar[str | None] = contextvars.ContextVar("arbor_trace", default=None)
_CORRELATION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "arbor_correlation_id", default=None
)


def current_span() -> Span | None:
    """The span open in the current context, or None."""
    return _CURRENT_SPAN.get()


def current_trace_id() -> str | None:
    """The trace id of the current span, else of the enclosing :func:`start_trace`, else None."""
    span = _CURRENT_SPAN.get()
    return span.trace_id if span is not None else _AMBIENT_TRACE.get()


def current_span_id() -> str | None:
    """The span id of the current span, or None."""
    span = _CURRENT_SPAN.get()
    return span.span_id if span is not None else None


def get_correlation_id() -> str | None:
    """The correlation id of the current context (set by :func:`correlation_scope`), or None."""
    return _CORRELATION.get()


def _check_correlation_id(cid: str) -> str:
    if not isinstance(cid, str) or not cid.strip():
        raise ValueError("correlation id must be a non-empty string")
    if len(cid) > _MAX_CORRELATION_ID or not cid.isprintable():
        raise ValueError(
            f"correlation id must be at most {_MAX_CORRELATION_ID} printable characters; got {cid!r:.60}"
        )
    return cid


@contextmanager
def correlation_scope(cid: str | None = None) -> Iterator[str]:
    """Set the correlation id for the block (a new random one when ``cid`` is None); yields it.

    Spans opened in the block record it and the JSON log lines carry it.  Raises ValueError for an
    empty, non-printable or over-long (> 128 characters) id.
    """
    value = _check_correlation_id(cid) if cid is not None else _random_id(16)
    token = _CORRELATION.set(value)
    try:
        yield value
    finally:
        _reset(_CORRELATION, token, value)


@contextmanager
def start_trace(trace_id: str | None = None, *, id_factory: IdFactory | None = None) -> Iterator[str]:
    """Begin a new trace for the block and yield its id (random unless ``trace_id`` is given).

    Inside the block, spans with no open parent are roots of this trace; a span that was open
    outside the block is *not* their parent (the block detaches from it).
    """
    tid = _check_trace_id(trace_id) if trace_id is not None else (id_factory or _random_id)(16)
    t_token = _AMBIENT_TRACE.set(tid)
    s_token = _CURRENT_SPAN.set(None)
    try:
        yield tid
    finally:
        _reset(_CURRENT_SPAN, s_token, _NOT_OURS)
        _reset(_AMBIENT_TRACE, t_token, tid)


_NOT_OURS = object()  # a value never current: _reset then changes nothing in a foreign context


def _reset(var: contextvars.ContextVar[Any], token: contextvars.Token[Any], ours: Any) -> None:
    """Undo ``var.set(ours)`` that returned ``token``.

    If the token belongs to another context (a generator finished in another thread or context, or
    closed by the garbage collector), restore the old value only where ``ours`` is still current,
    so an unrelated context is never changed; never raise.
    """
    try:
        var.reset(token)
    except ValueError:
        if var.get() is ours:
            var.set(None if token.old_value is contextvars.Token.MISSING else token.old_value)


def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so it runs in (a copy of) the context current *now*: span, trace, correlation id.

    Use it for work handed to another thread (``Thread(target=propagate(fn))``,
    ``executor.submit(propagate(fn), ...)``); spans opened by ``fn`` then become children of the span
    that was current when ``propagate`` was called.  Every call gets its own copy of the captured
    context, so the wrapper is safe to call concurrently.
    """
    captured = contextvars.copy_context()

    @functools.wraps(fn)
    def run_with_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return run_with_context


# ----------------------------------------------------------------------------------------------
# Records and spans
# ----------------------------------------------------------------------------------------------

ROW_COLUMNS = (
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
)
_ERROR_KEY = "otel.status_description"  # where to_row() keeps the error text inside attributes


@dataclass(frozen=True, slots=True)
class SpanRecord:
    """A finished span.  Timestamps are unix seconds; attributes are redacted and JSON-safe."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    start_ts: float
    end_ts: float
    duration_ms: float
    status: Status
    attributes: dict[str, Any] = field(default_factory=dict)
    correlation_id: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the span ended with status ``ok``."""
        return self.status == "ok"

    def to_row(self) -> dict[str, Any]:
        """A flat dict for the SQLite ``spans`` table (columns :data:`ROW_COLUMNS`).

        ``attributes`` is a JSON string (sorted keys); the error text, which has no column of its
        own, is kept in it under ``"otel.status_description"`` (:meth:`from_row` takes it back out).
        """
        attrs = self.attributes
        if self.error is not None:
            attrs = {**attrs, _ERROR_KEY: self.error}
        return {
            "span_id": self.span_id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "duration_ms": self.duration_ms,
            "status": self.status,
            "attributes": _dumps(attrs, sort_keys=True),
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SpanRecord:
        """The record a :meth:`to_row` dict (or a ``spans`` table row) describes."""
        raw = row.get("attributes")
        attrs = dict(json.loads(raw)) if isinstance(raw, str | bytes) and raw else dict(raw or {})
        error = attrs.pop(_ERROR_KEY, None)
        return cls(
            trace_id=row["trace_id"],
            span_id=row["span_id"],
            parent_id=row.get("parent_id"),
            name=row["name"],
            start_ts=float(row["start_ts"]),
            end_ts=float(row["end_ts"]),
            duration_ms=float(row["duration_ms"]),
            status=row["status"],
            attributes=attrs,
            correlation_id=row.get("correlation_id"),
            error=row.get("error", error),
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field as a JSON-ready dict (attributes as an object, ``error`` included)."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "duration_ms": self.duration_ms,
            "status": self.status,
            "attributes": self.attributes,
            "correlation_id": self.correlation_id,
            "error": self.error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SpanRecord:
        """The record a :meth:`to_dict` dict (e.g. a JSONL line) describes."""
        return cls(
            trace_id=data["trace_id"],
            span_id=data["span_id"],
            parent_id=data.get("parent_id"),
            name=data["name"],
            start_ts=float(data["start_ts"]),
            end_ts=float(data["end_ts"]),
            duration_ms=float(data["duration_ms"]),
            status=data["status"],
            attributes=dict(data.get("attributes") or {}),
            correlation_id=data.get("correlation_id"),
            error=data.get("error"),
        )


def _dumps(obj: Any, *, sort_keys: bool = False) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, default=str)


class Span:
    """An open span: the context manager returned by :meth:`Tracer.span` and the handle it yields.

    Ids, name and start time are fixed once the span is entered; attributes and status may change
    until it ends.  Everything recorded is redacted at once.  A span can be entered only once.
    """

    __slots__ = (
        "_anchor",
        "_attributes",
        "_perf0",
        "_state",
        "_token",
        "_trace_hint",
        "_tracer",
        "correlation_id",
        "error",
        "name",
        "parent_id",
        "span_id",
        "start_ts",
        "status",
        "trace_id",
    )

    def __init__(
        self, tracer: Tracer, name: str, trace_id: str | None, attributes: Mapping[str, Any]
    ) -> None:
        self._tracer = tracer
        self.name = name
        self._trace_hint = trace_id
        self.trace_id = ""
        self.span_id = ""
        self.parent_id: str | None = None
        self.correlation_id: str | None = None
        self.start_ts = 0.0
        self.status: Status = "ok"
        self.error: str | None = None
        self._anchor = (0.0, 0.0)  # (wall seconds, perf seconds) of the trace's root span
        self._perf0 = 0.0
        self._state = 0  # 0 created, 1 open, 2 ended
        self._token: contextvars.Token[Span | None] | None = None
        self._attributes: dict[str, Any] = {}
        secrets = tracer._secrets
        for key, value in attributes.items():
            self._attributes[key] = MASK if is_sensitive_key(key) else _clean(value, secrets)

    def __enter__(self) -> Span:
        if self._state:
            raise RuntimeError(f"span {self.name!r} was already entered; call tracer.span() again")
        self._tracer._start(self)
        self._state = 1
        self._token = _CURRENT_SPAN.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.record_error(exc)
        if self._token is not None:
            _reset(_CURRENT_SPAN, self._token, self)
            self._token = None
        if self._state == 1:
            self._state = 2
            self._tracer._finish(self)
        return False

    @property
    def attributes(self) -> dict[str, Any]:
        """A copy of the (redacted) attributes recorded so far."""
        return dict(self._attributes)

    def set_attribute(self, key: str, value: Any) -> Span:
        """Record one attribute (redacted, made JSON-safe); returns the span for chaining."""
        key = str(key)
        self._attributes[key] = MASK if is_sensitive_key(key) else _clean(value, self._tracer._secrets)
        return self

    def set_attributes(self, attributes: Mapping[str, Any] | None = None, /, **more: Any) -> Span:
        """Record several attributes at once; returns the span."""
        for key, value in {**(attributes or {}), **more}.items():
            self.set_attribute(key, value)
        return self

    def set_status(self, status: Status, description: str | None = None) -> Span:
        """Set the status (``"ok"`` or ``"error"``); an error may carry a (redacted) description."""
        if status not in ("ok", "error"):
            raise ValueError(f"status must be 'ok' or 'error', not {status!r}")
        self.status = status
        if status == "error":
            if description is not None:
                self.error = _redact_str(str(description), self._tracer._secrets)
        else:
            self.error = None
        return self

    def record_error(self, exc: BaseException) -> Span:
        """Mark the span failed by ``exc``: status error, error ``"Type: message"``, and the
        attribute ``exception.type``."""
        self.status = "error"
        self.error = _redact_str(f"{type(exc).__name__}: {exc}", self._tracer._secrets)
        self._attributes["exception.type"] = type(exc).__name__
        return self

    def __repr__(self) -> str:
        return f"Span(name={self.name!r}, trace_id={self.trace_id}, span_id={self.span_id})"


@runtime_checkable
class SpanExporter(Protocol):
    """Receives finished spans.  ``export`` may raise; the tracer counts and swallows the error.

    Exporters may also define ``flush(timeout_s)`` and ``shutdown()``; :meth:`Tracer.flush` and
    :meth:`Tracer.shutdown` call them when present.
    """

    def export(self, records: Sequence[SpanRecord]) -> None:
        """Take a batch of finished spans."""
        ...


class Tracer:
    """Creates spans and hands finished ones to its exporters.

    Args:
        exporters: receivers of finished spans, each called as ``export([record])`` in the thread
            that ended the span.
        clock: wall clock in unix seconds, read once per root span (inject a fake or simulated one).
        perf: monotonic clock in seconds, for durations and child offsets.
        id_factory: ``f(nbytes) -> lowercase hex id`` (16 bytes for traces, 8 for spans); random
            by default, injectable for deterministic tests.  Its output is validated.
        secrets: secret values masked in this tracer's attributes and errors (in addition to the
            values registered with :func:`redact_values`).
    """

    def __init__(
        self,
        exporters: Sequence[SpanExporter] = (),
        *,
        clock: Callable[[], float] = time.time,
        perf: Callable[[], float] = time.perf_counter,
        id_factory: IdFactory | None = None,
        secrets: Iterable[object] = (),
    ) -> None:
        self._exporters: tuple[SpanExporter, ...] = tuple(exporters)
        self._clock = clock
        self._perf = perf
        self._id_factory = id_factory
        self._secrets = _normalise_secrets(secrets)
        self._lock = threading.Lock()
        self._export_failures = 0
        self._last_export_error: str | None = None

    # -- configuration --------------------------------------------------------------------------

    @property
    def exporters(self) -> tuple[SpanExporter, ...]:
        """The exporters, in call order."""
        return self._exporters

    def add_exporter(self, exporter: SpanExporter) -> None:
        """Append an exporter (thread-safe; spans ending afterwards reach it)."""
        with self._lock:
            self._exporters = (*self._exporters, exporter)

    def remove_exporter(self, exporter: SpanExporter) -> None:
        """Remove an exporter if present."""
        with self._lock:
            self._exporters = tuple(e for e in self._exporters if e is not exporter)

    def add_secrets(self, secrets: Iterable[object]) -> None:
        """Mask these secret values too in this tracer's spans from now on."""
        with self._lock:
            self._secrets = _normalise_secrets((*self._secrets, *secrets))

    @property
    def export_failures(self) -> int:
        """How many ``export`` calls raised (the spans they carried were lost for that exporter)."""
        return self._export_failures

    @property
    def last_export_error(self) -> str | None:
        """``"ExporterClass: Type: message"`` of the last failed export, or None."""
        return self._last_export_error

    # -- spans ----------------------------------------------------------------------------------

    def span(self, name: str, /, *, trace_id: str | None = None, **attributes: Any) -> Span:
        """A span named ``name``, to be used as a context manager that yields itself.

        Entering it opens the span.  Its parent is the current span (sharing its trace id); with no
        current span it is a root, of the enclosing :func:`start_trace` trace or else of a new
        trace.  ``trace_id=`` forces the trace: the span is a child only if the current span
        belongs to that trace, otherwise a root of it.  An exception leaving the block marks the
        span ``error`` and propagates.
        """
        if not name or not isinstance(name, str):
            raise ValueError("span name must be a non-empty string")
        return Span(self, name, trace_id, attributes)

    def traced(
        self, name: str | None = None, **attributes: Any
    ) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: run the function inside ``self.span(name or fn.__qualname__, **attributes)``."""

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            span_name = name or fn.__qualname__

            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                with self.span(span_name, **attributes):
                    return fn(*args, **kwargs)

            return wrapper

        return decorate

    @contextmanager
    def start_trace(self, trace_id: str | None = None) -> Iterator[str]:
        """:func:`start_trace` using this tracer's id factory for a new id."""
        with start_trace(trace_id, id_factory=self._new_id) as tid:
            yield tid

    def _new_id(self, nbytes: int) -> str:
        if self._id_factory is None:
            return _random_id(nbytes)
        value = self._id_factory(nbytes)
        return _check_trace_id(value) if nbytes == 16 else _check_span_id(value)

    def _start(self, span: Span) -> None:
        """Give ``span`` its ids, parent, correlation id and start time."""
        parent = _CURRENT_SPAN.get()
        trace_id = span._trace_hint
        if trace_id is not None:
            trace_id = _check_trace_id(trace_id)
            if parent is not None and parent.trace_id != trace_id:
                parent = None
        cid = _CORRELATION.get()
        if parent is not None:
            span.trace_id = parent.trace_id
            span.parent_id = parent.span_id
            span.correlation_id = cid if cid is not None else parent.correlation_id
            span._anchor = anchor = parent._anchor
            span._perf0 = perf0 = self._perf()
            span.start_ts = anchor[0] + (perf0 - anchor[1])
        else:
            span.trace_id = trace_id or _AMBIENT_TRACE.get() or self._new_id(16)
            span.correlation_id = cid
            span.start_ts = wall = self._clock()
            span._perf0 = perf0 = self._perf()
            span._anchor = (wall, perf0)
        span.span_id = self._new_id(8)

    def _finish(self, span: Span) -> None:
        """Turn ``span`` into a record and hand it to every exporter (none: nothing to build)."""
        elapsed = self._perf() - span._perf0
        exporters = self._exporters
        if not exporters:
            return
        if elapsed < 0.0:
            elapsed = 0.0
        batch = [
            SpanRecord(
                trace_id=span.trace_id,
                span_id=span.span_id,
                parent_id=span.parent_id,
                name=span.name,
                start_ts=span.start_ts,
                end_ts=span.start_ts + elapsed,
                duration_ms=elapsed * 1000.0,
                status=span.status,
                attributes=dict(span._attributes),
                correlation_id=span.correlation_id,
                error=span.error,
            )
        ]
        for exporter in exporters:
            try:
                exporter.export(batch)
            except Exception as exc:
                self._count_failure(exporter, exc)

    def _count_failure(self, exporter: object, exc: BaseException) -> None:
        with self._lock:
            self._export_failures += 1
            n = self._export_failures
            self._last_export_error = _redact_str(
                f"{type(exporter).__name__}: {type(exc).__name__}: {exc}", self._secrets
            )
        if n == 1 or n % 1000 == 0:
            log.warning("span export failed (%d so far): %s", n, self._last_export_error)

    # -- lifecycle ------------------------------------------------------------------------------

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Ask every exporter that can (``flush(timeout_s)``) to deliver what it holds.

        Returns False if any exporter reported that it could not finish in time or failed.
        """
        ok = True
        for exporter in self._exporters:
            fn = getattr(exporter, "flush", None)
            if callable(fn):
                try:
                    ok = (fn(timeout_s) is not False) and ok
                except Exception as exc:
                    self._count_failure(exporter, exc)
                    ok = False
        return ok

    def shutdown(self) -> None:
        """Flush, then shut down every exporter that has ``shutdown()``.  Safe to call twice."""
        self.flush()
        for exporter in self._exporters:
            fn = getattr(exporter, "shutdown", None)
            if callable(fn):
                try:
                    fn()
                except Exception as exc:
                    self._count_failure(exporter, exc)


_default_tracer = Tracer()


def get_tracer() -> Tracer:
    """The process-wide default tracer (no exporters until :func:`set_tracer` replaces it)."""
    return _default_tracer


def set_tracer(tracer: Tracer) -> Tracer:
    """Make ``tracer`` the process-wide default; returns the previous one."""
    global _default_tracer
    previous, _default_tracer = _default_tracer, tracer
    return previous


# ----------------------------------------------------------------------------------------------
# Exporters
# ----------------------------------------------------------------------------------------------


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
        text = "".join(_dumps(r.to_dict()) + "\n" for r in records)
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
        atexit.register(lambda: (b := ref()) is not None and b.shutdown())

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
                self.last_error = _redact_str(f"{type(exc).__name__}: {exc}", ())
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
        body = _dumps(
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
            self.last_error = _redact_str(message, ())
            n = self.failures
        if n == 1 or n % 1000 == 0:
            log.warning("OTLP export failed (%d so far): %s", n, self.last_error)

    def shutdown(self) -> None:
        """Close the HTTP client if this exporter created it."""
        with self._lock:
            if self._own_client and self._client is not None:
                self._client.close()
                self._client = None
