"""Which traces to list: the validated filter of :func:`observability.traces.list_traces`.

Besides the Traces page's own widgets (status, task, latency bounds, id, a window back from now,
a row limit), a filter can carry what a deep link from the SLO page asks for: the request's
verdict, its last agent, provider, router and experiment variant (the SLO attribution's
dimensions; :data:`NO_VALUE` selects requests without one), a strict latency bound (the latency
SLO's bad events are the requests *slower than* its threshold) and a time range
``after_ts < ts <= until_ts`` (an SLO window ending at ``as_of``).

Pure (no streamlit, no engine); re-exported by :mod:`observability.traces`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "FIELD_LABELS",
    "NO_VALUE",
    "ORDERS",
    "STATUSES",
    "VERDICTS",
    "TraceFilter",
    "TraceFilterError",
    "parse_filter",
]

STATUSES: tuple[str, ...] = ("ok", "error", "invalid", "cancelled")
#: The verdicts a request row can hold.
VERDICTS: tuple[str, ...] = ("correct", "incorrect", "unknown")
#: The value that selects requests without one (as the SLO attribution names them).
NO_VALUE = "(none)"

Status = Literal["ok", "error", "invalid", "cancelled"]
Verdict = Literal["correct", "incorrect", "unknown"]

FIELD_LABELS = {
    "statuses": "Status", "task": "Task", "min_latency_ms": "Min latency (ms)",
    "max_latency_ms": "Max latency (ms)", "id_text": "Id", "window_s": "Time window (s)", "limit": "Limit",
    "verdict": "Verdict", "agent": "Last agent", "provider": "Provider", "router": "Router",
    "variant": "Variant", "over_latency_ms": "Slower than (ms)", "after_ts": "After (unix s)",
    "until_ts": "Until (unix s)", "query_text": "Query text", "order": "Sort by",
    "experiment": "Experiment", "correlation_id": "Correlation id",
}  # fmt: skip
#: How a trace list can be sorted (``TraceFilter.order``), with its label.
ORDERS: dict[str, str] = {
    "newest": "newest first", "oldest": "oldest first", "slowest": "slowest first",
    "fastest": "fastest first", "status": "status (cancelled, error, invalid, ok)",
}  # fmt: skip
Order = Literal["newest", "oldest", "slowest", "fastest", "status"]
_VALUE = r"^(\(none\)|[A-Za-z0-9_.:@+-]{1,100})$"  # an attribution value, or NO_VALUE
_NAME = r"^[A-Za-z0-9_.:@+-]{1,128}$"  # an experiment or canary id, a correlation id


class TraceFilterError(ValueError):
    """A filter that cannot be used; ``problems`` has one line per bad field, for the operator."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


class TraceFilter(BaseModel):
    """Which traces to list.  Empty fields do not filter.

    ``statuses``: any of ok / error / invalid / cancelled (empty: all).  ``task``: the resolved
    task (game24, tictactoe, connect4, freeform).  ``min_latency_ms``/``max_latency_ms``: bounds
    on the request's latency in ms, inclusive (a request without a latency is excluded when a
    bound is set); ``over_latency_ms``: latency strictly above it.  ``id_text``: a request id,
    trace id or correlation id, or the start of one (case-sensitive).  ``window_s``: only
    requests of the last ``window_s`` seconds.  ``after_ts``/``until_ts`` (unix s): only
    requests with ``after_ts < ts <= until_ts``.  ``verdict``: correct / incorrect / unknown.
    ``agent`` (the request's last agent), ``provider``, ``router``, ``variant``: that value, or
    :data:`NO_VALUE` for requests without one.  ``experiment`` (an experiment's or canary's id)
    and ``correlation_id``: exactly that value.  ``query_text``: requests whose query contains it
    (case-insensitive for ASCII letters; ``%`` and ``_`` are literal).  ``order``: one of
    :data:`ORDERS` (default newest first).  ``limit``: at most this many traces, in that order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    statuses: tuple[Status, ...] = ()
    task: str | None = Field(None, max_length=50, pattern=r"^[a-z0-9_]+$")
    min_latency_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    max_latency_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    id_text: str | None = Field(None, max_length=200)
    window_s: float | None = Field(None, gt=0, allow_inf_nan=False)
    limit: int = Field(200, ge=1, le=5000)
    verdict: Verdict | None = None
    agent: str | None = Field(None, pattern=_VALUE)
    provider: str | None = Field(None, pattern=_VALUE)
    router: str | None = Field(None, pattern=_VALUE)
    variant: str | None = Field(None, pattern=_VALUE)
    experiment: str | None = Field(None, pattern=_NAME)
    correlation_id: str | None = Field(None, pattern=_NAME)
    over_latency_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    after_ts: float | None = Field(None, ge=0, allow_inf_nan=False)
    until_ts: float | None = Field(None, ge=0, allow_inf_nan=False)
    query_text: str | None = Field(None, max_length=200)
    order: Order = "newest"

    @field_validator(
        "task",
        "id_text",
        "agent",
        "provider",
        "router",
        "variant",
        "experiment",
        "correlation_id",
        "query_text",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("statuses")
    @classmethod
    def _dedupe(cls, value: tuple[Status, ...]) -> tuple[Status, ...]:
        return tuple(dict.fromkeys(value))

    @field_validator("id_text")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and (not value.isprintable() or any(c.isspace() for c in value)):
            raise ValueError("an id has no spaces or control characters")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> TraceFilter:
        lo, hi = self.min_latency_ms, self.max_latency_ms
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"the minimum latency ({lo:g} ms) is above the maximum ({hi:g} ms)")
        after, until = self.after_ts, self.until_ts
        if after is not None and until is not None and after >= until:
            raise ValueError(f"the time range is empty: after {after:g} is not before until {until:g}")
        return self

    @property
    def dimensions(self) -> dict[str, str]:
        """The attribution filters set, by roll-up dimension name (``last_agent``, ``provider``,
        ``router``, ``variant``), with the value as the store's roll-ups keep it (``''``: none)."""
        given = {"last_agent": self.agent, "provider": self.provider, "router": self.router}
        given["variant"] = self.variant
        return {dim: "" if v == NO_VALUE else v for dim, v in given.items() if v is not None}


def parse_filter(values: Mapping[str, Any]) -> TraceFilter:
    """A :class:`TraceFilter` from raw widget values.

    Raises:
        TraceFilterError: one clear line per bad field (e.g. "Min latency (ms): Input should be
            greater than or equal to 0").
    """
    try:
        return TraceFilter(**values)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            label = FIELD_LABELS.get(field, field or "Filter")
            problems.append(f"{label}: {str(err['msg']).removeprefix('Value error, ')}")
        raise TraceFilterError(problems) from None
