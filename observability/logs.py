"""Structured logs: one JSON object per line, carrying the correlation and trace ids, secrets masked.

::

    configure_logging("INFO", path="data/runtime/arbor.log", secrets=[settings.openai_api_key])
    logging.getLogger("arbor.pipeline").info("routed to %s", agent, extra={"task": "game24"})
    # {"ts":"2025-01-01T12:00:00.123Z","level":"INFO","logger":"arbor.pipeline","message":"routed to mcts",
    #  "correlation_id":"req-42","trace_id":"…","span_id":"…","task":"game24"}

The ids come from :mod:`observability.tracing`'s context variables as they are when the record
is handled.  Our handlers run synchronously in the logging thread, so they are the ids of the code
that logged.  (A ``QueueHandler`` in front would lose them unless a filter copies them onto the
record first; the formatter prefers ``correlation_id``/``trace_id``/``span_id`` found on the record.)

:class:`RedactingFilter` rewrites the record itself (message merged with its args, extra fields,
exception text), so every handler behind it, and every later handler that sees the same record,
gets the masked text.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from observability.redaction import MASK, is_sensitive_key, normalise_secrets, redact_str, redact_value
from observability.tracing import current_span, get_correlation_id

__all__ = [
    "DEFAULT_LOGGERS",
    "JsonFormatter",
    "LogCallbackHandler",
    "RedactingFilter",
    "configure_logging",
    "unconfigure_logging",
]

DEFAULT_LOGGERS: tuple[str, ...] = ("arbor", "engine", "observability", "app")
"""Logger hierarchies :func:`configure_logging` installs on: ``arbor.*`` plus the packages' own
``logging.getLogger(__name__)`` loggers (``engine.llm.transport``, ...)."""

_CONTEXT_KEYS = ("correlation_id", "trace_id", "span_id")
_CORE_KEYS = frozenset({"ts", "level", "logger", "message", *_CONTEXT_KEYS, "exc", "stack"})
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("x", logging.INFO, "x", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
_MARK = "_arbor_handler"  # set on handlers configure_logging installed


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line.

    Keys: ``ts`` (ISO-8601 UTC, milliseconds, ``Z``), ``level``, ``logger``, ``message``,
    ``correlation_id``, ``trace_id``, ``span_id`` (null outside a scope/span), then every ``extra=``
    field (one that collides with a key above is written as ``extra.<name>``), ``exc`` (the
    formatted exception) and ``stack`` when present.  Values that JSON cannot hold become strings.
    """

    def to_dict(self, record: logging.LogRecord) -> dict[str, Any]:
        """The fields of the JSON line for ``record``."""
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        span = current_span()
        fields: dict[str, Any] = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None) or get_correlation_id(),
            "trace_id": getattr(record, "trace_id", None) or (span.trace_id if span else None),
            "span_id": getattr(record, "span_id", None) or (span.span_id if span else None),
        }
        for key, value in _extra_fields(record).items():
            if key in _CONTEXT_KEYS:
                continue
            fields[f"extra.{key}" if key in _CORE_KEYS else key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            fields["exc"] = record.exc_text
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        return fields

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON (no trailing newline; the handler adds it)."""
        return json.dumps(self.to_dict(record), ensure_ascii=False, separators=(",", ":"), default=str)


class RedactingFilter(logging.Filter):
    """Masks secrets in a record before any handler formats it; never drops a record.

    Masked: the given ``secrets`` (str or ``SecretStr``, 4+ characters) and anything shaped like an
    ``sk-...`` key, in the
    message (merged with its args, so a secret passed as an argument is caught), in ``extra=``
    fields (whose values are masked whole when the key names a credential, e.g. ``api_key``), and
    in the exception and stack text.
    """

    def __init__(self, secrets: Iterable[object] = (), name: str = "") -> None:
        super().__init__(name)
        self.secrets = normalise_secrets(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always True."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format/args pair: keep both, as text, rather than lose the record
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact_str(message, self.secrets)
        record.args = None
        for key, value in _extra_fields(record).items():
            setattr(record, key, MASK if is_sensitive_key(key) else redact_value(value, self.secrets))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_str(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact_str(record.stack_info, self.secrets)
        return True


class LogCallbackHandler(logging.Handler):
    """Hands each record, as the :class:`JsonFormatter` dict, to ``fn`` (e.g. to store log lines
    with their trace id).  Errors of ``fn`` go to :meth:`logging.Handler.handleError`."""

    def __init__(self, fn: Callable[[dict[str, Any]], Any], level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._fn = fn
        self._json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        """Call ``fn`` with the record's fields."""
        try:
            self._fn(self._json.to_dict(record))
        except Exception:
            self.handleError(record)


def _level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(str(level).upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r}; use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    return value


def unconfigure_logging(loggers: Sequence[str] = DEFAULT_LOGGERS) -> None:
    """Remove (and close) the handlers :func:`configure_logging` installed on ``loggers``, and let
    them propagate again."""
    for name in loggers:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, _MARK, False):
                logger.removeHandler(handler)
                handler.close()
        logger.propagate = True


def configure_logging(
    level: int | str = "INFO",
    *,
    stream: IO[str] | None = None,
    path: str | os.PathLike[str] | None = None,
    secrets: Iterable[object] = (),
    loggers: Sequence[str] = DEFAULT_LOGGERS,
    callback: Callable[[dict[str, Any]], Any] | None = None,
    propagate: bool = False,
) -> list[logging.Handler]:
    """Send the ``loggers`` hierarchies (default :data:`DEFAULT_LOGGERS`) to JSON-line handlers.

    Handlers: ``stream`` (stderr when neither ``stream`` nor ``path`` nor ``callback`` is given),
    a UTF-8 append-mode file at ``path`` (parent directories created), and a
    :class:`LogCallbackHandler` for ``callback``; each has a :class:`JsonFormatter` and a
    :class:`RedactingFilter` with ``secrets``.  Idempotent: the handlers of an earlier call are
    removed and closed first, so calling twice never duplicates lines.  ``propagate=False`` (the
    default) keeps the records away from the root logger's (unredacted, non-JSON) handlers.
    Returns the installed handlers.
    """
    lvl = _level(level)
    handlers: list[logging.Handler] = []
    if stream is not None or (path is None and callback is None):
        handlers.append(logging.StreamHandler(stream if stream is not None else sys.stderr))
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="a", encoding="utf-8"))
    if callback is not None:
        handlers.append(LogCallbackHandler(callback))
    redactor = RedactingFilter(secrets)
    formatter = JsonFormatter()
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(redactor)
        setattr(handler, _MARK, True)
    unconfigure_logging(loggers)
    for name in loggers:
        logger = logging.getLogger(name)
        logger.setLevel(lvl)
        logger.propagate = propagate
        for handler in handlers:
            logger.addHandler(handler)
    return handlers
