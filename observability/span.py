"""An open span and the trace it belongs to; built by :class:`observability.tracing.Tracer`.

**Cost.**  Entering and leaving a span is what the traced code pays, so it does the least that
keeps a span's facts: the parent (a reference), the trace (shared with the parent), the
correlation id, one ``perf`` clock read at each end and the current-span context variable.
Everything derived is computed when it is read, usually later and in another thread (the
store's writer): timestamps from the trace's anchor, and ids.

**Ids.**  A trace draws one random 64-bit base when its root opens; its spans are numbered
1, 2, ... as they open, and span number ``n``'s id is ``base + n * STEP`` (mod 2**64, ``STEP``
odd, so distinct numbers give distinct ids within a trace; across traces ids collide no more
often than random ones).  The id is a pure function of (base, number), so whichever thread
reads it first, every reader sees the same id.  A tracer built with an ``id_factory`` (tests)
draws every id from it when the span opens, as before.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from observability.redaction import clean_attributes, redact_str
from observability.span_record import SpanRecord, Status
from observability.trace_context import CORRELATION, CURRENT_SPAN, check_trace_id, reset_var

if TYPE_CHECKING:
    from observability.tracing import Tracer

__all__ = ["Span", "TraceAnchor"]

_STEP = 0x9E3779B97F4A7C15  # odd: n -> n * _STEP is a bijection modulo 2**64
_MASK = (1 << 64) - 1


class TraceAnchor:
    """What the spans under one root share: the trace id, the root's wall and ``perf`` clock
    readings (every timestamp is ``wall + (perf_then - perf)``), the random base of the span ids,
    the counter that numbers the spans, and (when the tracer has trace collectors) the list the
    ended spans gather in until the root ends (then None: a span ending later is not kept)."""

    __slots__ = ("base", "ended", "numbers", "perf", "trace_id", "wall")

    def __init__(self, trace_id: str, wall: float, perf: float, base: int, keep: bool = False) -> None:
        self.trace_id = trace_id
        self.wall = wall
        self.perf = perf
        self.base = base
        self.numbers = itertools.count(1)  # next() on it is atomic: no two spans share a number
        self.ended: list[Span] | None = [] if keep else None

    def span_id(self, number: int) -> str:
        """The id of the trace's span number ``number`` (16 lowercase hex characters, never 0)."""
        return format(((self.base + number * _STEP) & _MASK) or _STEP, "016x")


_NOT_STARTED = TraceAnchor("", 0.0, 0.0, 0)
# The context variables' methods, bound once (a span's enter and exit are the traced code's cost).
_current = CURRENT_SPAN.get
_set_current = CURRENT_SPAN.set
_reset_current = CURRENT_SPAN.reset
_correlation = CORRELATION.get


class Span:
    """An open span: the context manager returned by :meth:`Tracer.span` and the handle it yields.

    Ids, parent, name and start time are fixed once the span is entered; attributes and status
    may change until it ends.  Everything recorded is redacted whenever it is read.  A span can
    be entered only once.  Before it is entered its ids are empty strings.
    """

    __slots__ = (
        "_attributes",
        "_elapsed",
        "_number",
        "_parent",
        "_perf0",
        "_sid",
        "_state",
        "_token",
        "_trace",
        "_trace_hint",
        "_tracer",
        "correlation_id",
        "error",
        "name",
        "status",
    )

    def __init__(self, tracer: Tracer, name: str, trace_id: str | None, attributes: dict[str, Any]) -> None:
        """``attributes`` is taken over as given (the caller's fresh ``**kwargs`` dict).  The
        fields an open span needs are set when it is entered (the properties answer for a span
        never entered)."""
        self._tracer = tracer
        self.name = name
        self._trace_hint = trace_id
        self._attributes = attributes  # as given: cleaned when read (record())
        self._trace = _NOT_STARTED
        self._sid: str | None = None
        self.correlation_id: str | None = None
        self.error: str | None = None
        self.status: Status = "ok"
        self._state = 0  # 0 created, 1 open, 2 ended

    def __enter__(self) -> Span:
        if self._state:
            raise RuntimeError(f"span {self.name!r} was already entered; call tracer.span() again")
        tracer = self._tracer
        parent = _current()
        hint = self._trace_hint
        if hint is not None:
            hint = check_trace_id(hint)
            if parent is not None and parent._trace.trace_id != hint:
                parent = None
        if parent is not None and parent._state == 2:
            # Current but ended (blocks left out of order): a new root in the same trace, so
            # its spans are still handed over when it ends.
            hint, parent = parent._trace.trace_id, None
        cid = _correlation()
        self._parent = parent
        if parent is None:
            self._trace = trace = tracer._new_trace(hint)
            self.correlation_id = cid
            self._perf0 = trace.perf
        else:
            self._trace = trace = parent._trace
            self.correlation_id = cid if cid is not None else parent.correlation_id
            self._perf0 = tracer._perf()
        self._number = next(trace.numbers)
        if tracer._id_factory is not None:
            self._sid = tracer._new_id(8)
        self._state = 1
        self._token = _set_current(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is not None and not isinstance(exc, GeneratorExit):
            self.record_error(exc)
        if self._state == 1:
            token = self._token
            try:
                _reset_current(token)
            except ValueError:  # ended in another context (a generator closed elsewhere)
                reset_var(CURRENT_SPAN, token, self)
            tracer = self._tracer
            elapsed = tracer._perf() - self._perf0
            self._elapsed = elapsed if elapsed > 0.0 else 0.0
            self._state = 2
            ended = self._trace.ended
            if ended is not None:  # appending is atomic: spans of worker threads gather here too
                ended.append(self)
                if self._parent is None:
                    tracer._trace_ended(self._trace)
            if tracer._finishing:
                tracer._finish(self)
        return False

    # -- what it is (derived when read) ---------------------------------------------------------

    @property
    def trace_id(self) -> str:
        """The trace's id (32 lowercase hex characters; empty before the span is entered)."""
        return self._trace.trace_id

    @property
    def span_id(self) -> str:
        """This span's id (16 lowercase hex characters; empty before the span is entered)."""
        sid = self._sid
        if sid is None:
            if not self._state:
                return ""
            sid = self._sid = self._trace.span_id(self._number)
        return sid

    @property
    def parent_id(self) -> str | None:
        """The parent span's id, or None for a root (and a span never entered)."""
        parent = self._parent if self._state else None
        return None if parent is None else parent.span_id

    @property
    def start_ts(self) -> float:
        """When the span opened, unix seconds (the root's wall clock plus ``perf`` time since;
        0.0 for a span never entered)."""
        if not self._state:
            return 0.0
        trace = self._trace
        return trace.wall + (self._perf0 - trace.perf)

    @property
    def ended(self) -> bool:
        """True once the span's block has exited (its record is then fixed)."""
        return self._state == 2

    def record(self) -> SpanRecord:
        """The finished span as an immutable :class:`SpanRecord`.

        Raises:
            RuntimeError: the span has not ended yet.
        """
        if self._state != 2:
            raise RuntimeError(f"span {self.name!r} has not ended")
        elapsed = self._elapsed
        start = self.start_ts
        return SpanRecord(
            self._trace.trace_id,
            self.span_id,
            self.parent_id,
            self.name,
            start,
            start + elapsed,
            elapsed * 1000.0,
            self.status,
            clean_attributes(self._attributes, self._tracer._secrets),
            self.correlation_id,
            self.error,
        )

    @property
    def attributes(self) -> dict[str, Any]:
        """A copy of the attributes recorded so far, redacted and JSON-safe."""
        return clean_attributes(self._attributes, self._tracer._secrets)

    # -- what may change while it is open ------------------------------------------------------

    def set_attribute(self, key: str, value: Any) -> Span:
        """Record one attribute; returns the span for chaining.

        Ignored once the span has ended (its record is fixed then).  The value is kept as given
        and redacted and made JSON-safe whenever it is read (:attr:`attributes`,
        :meth:`record`), so pass values that will not change, not a list you go on filling.
        """
        if self._state != 2:
            self._attributes[str(key)] = value
        return self

    def set_attributes(self, attributes: Mapping[str, Any] | None = None, /, **more: Any) -> Span:
        """Record several attributes at once (as :meth:`set_attribute`); returns the span."""
        if self._state != 2:
            if attributes is not None:
                self._attributes.update((str(k), v) for k, v in attributes.items())
            self._attributes.update(more)
        return self

    def set_status(self, status: Status, description: str | None = None) -> Span:
        """Set the status (``"ok"`` or ``"error"``); an error may carry a (redacted) description."""
        if status not in ("ok", "error"):
            raise ValueError(f"status must be 'ok' or 'error', not {status!r}")
        if self._state == 2:
            return self
        self.status = status
        if status == "error":
            if description is not None:
                self.error = redact_str(str(description), self._tracer._secrets)
        else:
            self.error = None
        return self

    def record_error(self, exc: BaseException) -> Span:
        """Mark the span failed by ``exc``: status error, error ``"Type: message"``, and the
        attribute ``exception.type``."""
        self.status = "error"
        self.error = redact_str(f"{type(exc).__name__}: {exc}", self._tracer._secrets)
        self._attributes["exception.type"] = type(exc).__name__
        return self

    def __repr__(self) -> str:
        return f"Span(name={self.name!r}, trace_id={self.trace_id}, span_id={self.span_id})"
