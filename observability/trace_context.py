"""Trace context: ids, the current span, the ambient trace and the correlation id.

They follow the running code through :mod:`contextvars` (per thread and asyncio task, never
leaking between them); :func:`propagate` carries them into another thread.  No module-level
mutable state: the context variables hold per-context values, and each tracer owns its
:class:`IdSource`.  :mod:`observability.tracing` re-exports the public names.
"""

from __future__ import annotations

import contextvars
import functools
import os
import random
import re
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from observability.tracing import Span

__all__ = [
    "AMBIENT_TRACE",
    "CORRELATION",
    "CURRENT_SPAN",
    "NOT_OURS",
    "IdFactory",
    "IdSource",
    "check_span_id",
    "check_trace_id",
    "correlation_scope",
    "current_span",
    "current_span_id",
    "current_trace_id",
    "get_correlation_id",
    "new_span_id",
    "new_trace_id",
    "propagate",
    "random_id",
    "reset_var",
    "start_trace",
]

IdFactory = Callable[[int], str]
P = ParamSpec("P")
R = TypeVar("R")

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_SPAN_ID = re.compile(r"[0-9a-f]{16}")
_MAX_CORRELATION_ID = 128
_HEX_FORMAT = {8: "016x", 16: "032x"}


def random_id(nbytes: int) -> str:
    """A random non-zero id of ``nbytes`` bytes as lowercase hex (all-zero ids are invalid in OTLP),
    from the operating system's generator (for the occasional id; a tracer uses an :class:`IdSource`)."""
    while True:
        value = int.from_bytes(os.urandom(nbytes))
        if value:
            return format(value, _HEX_FORMAT.get(nbytes) or f"0{nbytes * 2}x")


class IdSource:
    """Fast random ids for one owner (a tracer, an engine): a private PRNG (not the global one,
    which tests and tools seed) seeded from ``os.urandom``, about 5x faster than ``os.urandom``
    per id.  Ids need to be unique, not unpredictable.  No system call per id (a call that
    releases the GIL on a request's path lets a waiting background thread in, see
    :mod:`observability.activity`): a forked child reseeds through ``os.register_at_fork``, so
    processes of one workload never share ids.  Thread-safe (``getrandbits`` is atomic)."""

    __slots__ = ("__weakref__", "_rng")

    def __init__(self) -> None:
        self._rng = random.Random(os.urandom(32))
        if hasattr(os, "register_at_fork"):
            ref = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _reseed(ref))

    def __call__(self, nbytes: int) -> str:
        """A random non-zero id of ``nbytes`` bytes as lowercase hex."""
        return format(self.bits(nbytes * 8), _HEX_FORMAT.get(nbytes) or f"0{nbytes * 2}x")

    def bits(self, nbits: int) -> int:
        """A random non-zero integer of ``nbits`` bits."""
        while True:
            value = self._rng.getrandbits(nbits)
            if value:
                return value


def _reseed(ref: weakref.ReferenceType[IdSource]) -> None:
    source = ref()
    if source is not None:
        source._rng.seed(os.urandom(32))


def new_trace_id() -> str:
    """A random 128-bit trace id (32 lowercase hex characters)."""
    return random_id(16)


def new_span_id() -> str:
    """A random 64-bit span id (16 lowercase hex characters)."""
    return random_id(8)


def check_trace_id(trace_id: str) -> str:
    """``trace_id`` lowercased; raises ValueError unless it is 32 hex characters, not all zero."""
    tid = str(trace_id).lower()
    if not _TRACE_ID.fullmatch(tid) or tid == "0" * 32:
        raise ValueError(f"trace_id must be 32 hex characters, not all zero; got {trace_id!r}")
    return tid


def check_span_id(span_id: str) -> str:
    """``span_id`` lowercased; raises ValueError unless it is 16 hex characters, not all zero."""
    sid = str(span_id).lower()
    if not _SPAN_ID.fullmatch(sid) or sid == "0" * 16:
        raise ValueError(f"span id must be 16 hex characters, not all zero; got {span_id!r}")
    return sid


CURRENT_SPAN: contextvars.ContextVar[Span | None] = contextvars.ContextVar("arbor_span", default=None)
"""The span open in the current context (per thread / asyncio task: a context variable)."""
AMBIENT_TRACE: contextvars.ContextVar[str | None] = contextvars.ContextVar("arbor_trace", default=None)
CORRELATION: contextvars.ContextVar[str | None] = contextvars.ContextVar("arbor_correlation_id", default=None)


def current_span() -> Span | None:
    """The span open in the current context, or None."""
    return CURRENT_SPAN.get()


def current_trace_id() -> str | None:
    """The trace id of the current span, else of the enclosing :func:`start_trace`, else None."""
    span = CURRENT_SPAN.get()
    return span.trace_id if span is not None else AMBIENT_TRACE.get()


def current_span_id() -> str | None:
    """The span id of the current span, or None."""
    span = CURRENT_SPAN.get()
    return span.span_id if span is not None else None


def get_correlation_id() -> str | None:
    """The correlation id of the current context (set by :func:`correlation_scope`), or None."""
    return CORRELATION.get()


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
    value = _check_correlation_id(cid) if cid is not None else random_id(16)
    token = CORRELATION.set(value)
    try:
        yield value
    finally:
        reset_var(CORRELATION, token, value)


@contextmanager
def start_trace(trace_id: str | None = None, *, id_factory: IdFactory | None = None) -> Iterator[str]:
    """Begin a new trace for the block and yield its id (random unless ``trace_id`` is given).

    Inside the block, spans with no open parent are roots of this trace; a span that was open
    outside the block is *not* their parent (the block detaches from it).
    """
    tid = check_trace_id(trace_id) if trace_id is not None else (id_factory or random_id)(16)
    t_token = AMBIENT_TRACE.set(tid)
    s_token = CURRENT_SPAN.set(None)
    try:
        yield tid
    finally:
        reset_var(CURRENT_SPAN, s_token, NOT_OURS)
        reset_var(AMBIENT_TRACE, t_token, tid)


NOT_OURS = object()
"""A value never current: :func:`reset_var` with it changes nothing in a foreign context."""


def reset_var(var: contextvars.ContextVar[Any], token: contextvars.Token[Any], ours: Any) -> None:
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
