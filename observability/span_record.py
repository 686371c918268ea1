"""A finished span as an immutable record, and its row / dict / JSON forms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ERROR_KEY", "SpanRecord", "Status", "dumps_json"]

Status = Literal["ok", "error"]

ERROR_KEY = "otel.status_description"
"""Where :meth:`SpanRecord.to_row` keeps the error text inside ``attributes``."""


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

    def to_row(self, *, encode: bool = True) -> dict[str, Any]:
        """A flat dict for the SQLite ``spans`` table, keyed and ordered as the store's
        :class:`observability.store.SpanRow` (tests/observability/test_store_schema.py checks it).

        ``attributes`` is a JSON string (sorted keys), or with ``encode=False`` the same mapping
        as a dict in sorted key order, for a store that serialises it (no JSON text to check);
        the error text, which has no column of its own, is kept in it under
        ``"otel.status_description"`` (:meth:`from_row` takes it back out).
        """
        attrs = self.attributes
        if self.error is not None:
            attrs = {**attrs, ERROR_KEY: self.error}
        return {
            "span_id": self.span_id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "name": self.name,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "duration_ms": self.duration_ms,
            "status": self.status,
            "attributes": dumps_json(attrs, sort_keys=True) if encode else dict(sorted(attrs.items())),
            "correlation_id": self.correlation_id,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SpanRecord:
        """The record a :meth:`to_row` dict (or a ``spans`` table row) describes."""
        raw = row.get("attributes")
        attrs = dict(json.loads(raw)) if isinstance(raw, str | bytes) and raw else dict(raw or {})
        error = attrs.pop(ERROR_KEY, None)
        return cls.from_dict({**row, "attributes": attrs, "error": row.get("error", error)})

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


def dumps_json(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON (UTF-8 kept, anything unknown as its ``str``), as span rows and JSONL use."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys, default=str)
