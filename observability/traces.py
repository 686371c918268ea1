"""Traces read back from the telemetry store: a filtered list of requests, and one trace in detail.

A *trace* is one request's telemetry: its ``requests`` row, spans, log lines, routing decisions
and MCTS runs.  :func:`list_traces` lists requests newest first through a validated
:class:`TraceFilter`; :func:`trace_detail` assembles one trace with its spans ordered depth-first
as a tree (depth and offset from the trace start, for a waterfall).  Results are frozen
dataclasses; a value the store does not hold is ``None`` (shown as unknown), never invented.
Times: ``ts``/``start_ts`` in unix seconds, every ``*_ms`` in milliseconds.  No streamlit, no engine.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from observability.store import Store
from observability.trace_filter import (  # the filter lives there; re-exported for callers of this module
    FIELD_LABELS,
    NO_VALUE,
    ORDERS,
    STATUSES,
    TraceFilter,
    TraceFilterError,
    parse_filter,
)
from observability.tracing import ERROR_KEY  # where a span row keeps its error text, in attributes

__all__ = [
    "ERROR_KEY", "FIELD_LABELS", "NO_VALUE", "ORDERS", "STATUSES", "LogLine", "MctsRunInfo",
    "RequestInfo", "RoutingStep", "SpanNode", "TraceDetail", "TraceFilter", "TraceFilterError",
    "TraceSummary", "WaterfallRow", "build_span_tree", "count_traces", "list_traces", "parse_filter",
    "step_outcomes", "trace_detail", "trace_id_for_request", "untraced_notes", "waterfall_rows",
]  # fmt: skip

_T = TypeVar("_T")


# ------------------------------------------------------------------------------------------ the records


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """The request a trace belongs to, as recorded (None: not recorded)."""

    request_id: str
    trace_id: str | None
    correlation_id: str | None
    ts: float
    task: str | None
    query: str | None
    answer: str | None
    answer_kind: str | None
    status: str
    verdict: str | None
    quality: float | None
    confidence: float | None
    agents_used: tuple[str, ...]
    stop_reason: str | None
    latency_ms: float | None
    seed: int | None
    router: str | None
    provider: str | None
    error: str | None
    user_id: str | None
    experiment: str | None
    variant: str | None
    simulated: bool
    tokens: int | None
    cost_usd: float | None
    fallback_from: str | None = None  # LLM providers that failed before a fallback answered
    fallback_error: str | None = None  # how the first of them failed
    flags: str | None = None  # the feature flags that applied, comma-separated


@dataclass(frozen=True, slots=True)
class TraceSummary:
    """One row of the trace list: a request, its span count and its spans' wall time
    (``span_ms``: last end - first start in ms, None without spans)."""

    request: RequestInfo
    span_count: int
    span_ms: float | None


@dataclass(frozen=True, slots=True)
class SpanNode:
    """A span in depth-first tree order.

    ``depth`` is 0 for a top-level span.  ``offset_ms`` is the start relative to the trace's
    first span start (ms); ``offset_ms``/``duration_ms`` are None when the row lacks them.
    ``orphan``: the span names a parent that is not in the trace (shown at the top level).
    ``error`` is the span's error text; ``attributes`` exclude it.
    """

    span_id: str
    parent_id: str | None
    name: str
    depth: int
    offset_ms: float | None
    duration_ms: float | None
    status: str | None
    attributes: dict[str, Any]
    error: str | None
    correlation_id: str | None
    orphan: bool
    #: Duration minus the time its children cover (ms; overlapping children counted once,
    #: children clipped to this span); the whole duration for a leaf; None without times.
    self_ms: float | None = None
    #: The stretches inside this span that none of its children covers, as ``(offset_ms,
    #: duration_ms)`` from the trace start: untraced time.  Empty for a leaf (its self time is
    #: its own traced work); for a span with children they add up to its ``self_ms``.
    gaps: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class LogLine:
    """One stored log line of the trace (``offset_ms`` from the trace start, None if unknown)."""

    seq: int
    ts: float
    offset_ms: float | None
    level: str
    logger: str | None
    message: str
    span_id: str | None
    span_name: str | None
    correlation_id: str | None
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RoutingStep:
    """One routing decision of the request (probabilities by agent, confidence of the chosen agent)."""

    step: int
    agent: str
    reason: str | None
    confidence: float | None
    probabilities: dict[str, float]
    latency_ms: float | None


@dataclass(frozen=True, slots=True)
class MctsRunInfo:
    """An MCTS search the request ran; ``node_count`` is the number of tree nodes stored for it
    (0 when only the summary was recorded) and ``config`` the search configuration."""

    run_id: str
    task: str | None
    position: str | None
    iterations: int | None
    seed: int | None
    best_action: str | None
    root_value: float | None
    termination_reason: str | None
    tree_size: int | None
    cache_hit_rate: float | None
    elapsed_ms: float | None
    node_count: int
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TraceDetail:
    """Everything recorded about one trace.

    ``start_ts`` is the first span start (the request's ``ts`` when there are no spans, unix s);
    ``duration_ms`` is last span end - first span start (None without spans).  ``notes`` say
    what was odd about the rows (orphan spans, a broken parent cycle, several requests).
    """

    trace_id: str
    request: RequestInfo | None
    start_ts: float | None
    duration_ms: float | None
    spans: tuple[SpanNode, ...]
    logs: tuple[LogLine, ...]
    routing: tuple[RoutingStep, ...]
    mcts_runs: tuple[MctsRunInfo, ...]
    correlation_ids: tuple[str, ...]
    notes: tuple[str, ...]


# ------------------------------------------------------------------------------------------ decoding


def _json(value: Any) -> Any:
    """A JSON column's value decoded (text that is not JSON is kept as text)."""
    try:
        return json.loads(value) if isinstance(value, str | bytes) else value
    except ValueError:
        return value


def _dict(value: Any) -> dict[str, Any]:
    decoded = _json(value)
    return {} if decoded is None else dict(decoded) if isinstance(decoded, dict) else {"value": decoded}


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _int(value: Any) -> int | None:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _agents(value: Any) -> tuple[str, ...]:
    decoded = _json(value)
    return tuple(str(a) for a in decoded) if isinstance(decoded, list) else ()


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "str": str, "str | None": _text, "float": float, "float | None": _float, "int": int, "int | None": _int,
    "bool": bool, "tuple[str, ...]": _agents, "dict[str, Any]": _dict,
}  # fmt: skip


def _from_row(cls: type[_T], row: Mapping[str, Any], **given: Any) -> _T:
    """An instance of the dataclass ``cls`` from a store row: each field is converted by its
    annotation (missing or mistyped values become None); ``given`` fields are taken as they are."""
    values = {
        f.name: given[f.name] if f.name in given else _CONVERTERS[str(f.type)](row.get(f.name))
        for f in fields(cls)  # type: ignore[arg-type]
    }
    return cls(**values)


# ------------------------------------------------------------------------------------------ the list


def _store_filters(flt: TraceFilter, now: float | None) -> dict[str, Any]:
    """``flt`` as the keyword filters of the store's trace reads (``now`` anchors its window)."""
    since = None if flt.window_s is None else (time.time() if now is None else now) - flt.window_s
    return dict(
        statuses=flt.statuses,
        task=flt.task,
        min_latency_ms=flt.min_latency_ms,
        max_latency_ms=flt.max_latency_ms,
        since_ts=since,
        id_prefix=flt.id_text,
        verdict=flt.verdict,
        over_latency_ms=flt.over_latency_ms,
        after_ts=flt.after_ts,
        until_ts=flt.until_ts,
        dimensions=flt.dimensions,
        query_text=flt.query_text,
        experiment=flt.experiment,
        correlation_id=flt.correlation_id,
    )


def list_traces(store: Store, flt: TraceFilter, *, now: float | None = None) -> list[TraceSummary]:
    """Requests matching ``flt``, in ``flt.order`` (default newest first: ``ts`` descending, then
    request id), at most ``flt.limit``, each with its span count and span wall time.

    ``now`` (unix s, default the clock) anchors ``flt.window_s``.

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    rows = store.reads.trace_summaries(limit=flt.limit, order=flt.order, **_store_filters(flt, now))
    return [
        TraceSummary(_from_row(RequestInfo, row), int(row["span_count"] or 0), _float(row["span_ms"]))
        for row in rows
    ]


def count_traces(store: Store, flt: TraceFilter, *, cap: int = 10_000, now: float | None = None) -> int:
    """How many requests match ``flt`` (ignoring its limit), counting at most ``cap + 1``: a
    result above ``cap`` means "more than ``cap``" (the count stays bounded on a large store).

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    return store.reads.trace_count(cap=cap, **_store_filters(flt, now))


def trace_id_for_request(store: Store, request_id: str) -> str | None:
    """The trace id recorded for ``request_id``, or None (unknown request, or no trace id)."""
    return _text(store.reads.trace_id_for_request(request_id))


# ------------------------------------------------------------------------------------------ the tree


def _start(row: Mapping[str, Any]) -> float | None:
    return _float(row.get("start_ts"))


def _end(row: Mapping[str, Any]) -> float | None:
    start, end, duration = _start(row), _float(row.get("end_ts")), _float(row.get("duration_ms"))
    return end if end is not None or start is None or duration is None else start + duration / 1000.0


def _offset(ts: Any, origin: float | None) -> float | None:
    """Milliseconds from ``origin`` to ``ts`` (unix s), None when either is unknown."""
    t = _float(ts)
    return None if t is None or origin is None else (t - origin) * 1000.0


def _order_key(row: Mapping[str, Any]) -> tuple[bool, float, str]:
    start = _start(row)
    return (start is None, start if start is not None else 0.0, str(row["span_id"]))


def _self_time(
    start: float | None,
    duration_ms: float | None,
    children: Sequence[tuple[float | None, float | None]],
    trace_start: float | None,
) -> tuple[float | None, tuple[tuple[float, float], ...]]:
    """A span's self time (ms) and its untraced gaps (``(offset_ms, duration_ms)`` from
    ``trace_start``): the parts of ``[start, start + duration]`` that no child interval
    (``(start, end)``, unix s) covers.  Children are clipped to the span and overlapping ones
    merged; children without times are ignored.  ``(duration, ())`` for a leaf, ``(None, ())``
    when the span's own times are unknown."""
    if start is None or duration_ms is None:
        return None, ()
    spans = sorted((s, e) for s, e in children if s is not None and e is not None)
    if not spans:
        return duration_ms, ()
    end = start + duration_ms / 1000.0
    origin = start if trace_start is None else trace_start
    gaps: list[tuple[float, float]] = []
    cursor = start  # everything before it is covered (or already a gap)
    for child_start, child_end in spans:
        lo, hi = max(child_start, start), min(child_end, end)
        if hi <= cursor:
            continue
        if lo > cursor:
            gaps.append(((cursor - origin) * 1000.0, (lo - cursor) * 1000.0))
        cursor = max(cursor, hi)
    if cursor < end:
        gaps.append(((cursor - origin) * 1000.0, (end - cursor) * 1000.0))
    return sum(d for _, d in gaps), tuple(gaps)


def build_span_tree(
    rows: Sequence[Mapping[str, Any]], trace_start: float | None = None
) -> tuple[tuple[SpanNode, ...], tuple[str, ...]]:
    """Order span rows depth-first as a tree; return the nodes and notes on anything odd.

    Siblings are ordered by start time (then span id; spans without a start last).  A span
    whose parent is missing from ``rows`` is shown at the top level (``orphan``); a span that
    is its own parent is a top-level span.  Spans caught in a parent cycle are unreachable
    from the top: the earliest of them is promoted to the top level to break the cycle, so
    every span appears exactly once.
    ``offset_ms`` is measured from ``trace_start`` (unix s; default the earliest span start).
    Each node's ``self_ms`` is its duration minus what its children cover and ``gaps`` the
    uncovered stretches (untraced time), so when siblings do not overlap a root's duration is
    the sum of the self times of its tree (leaves: traced work; parents: their gaps).
    """
    by_id: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        by_id.setdefault(str(row["span_id"]), row)
    if trace_start is None:
        starts = [s for s in map(_start, by_id.values()) if s is not None]
        trace_start = min(starts) if starts else None
    children: dict[str, list[str]] = {sid: [] for sid in by_id}
    roots: list[str] = []
    orphans: set[str] = set()
    for sid, row in by_id.items():
        parent = _text(row.get("parent_id"))
        if parent is None or parent == sid:
            roots.append(sid)
        elif parent not in by_id:
            roots.append(sid)
            orphans.add(sid)
        else:
            children[parent].append(sid)
    for kids in children.values():
        kids.sort(key=lambda k: _order_key(by_id[k]))

    ordered: list[tuple[str, int]] = []
    seen: set[str] = set()

    def walk(top: str) -> None:
        stack = [(top, 0)]
        while stack:
            sid, depth = stack.pop()
            if sid in seen:
                continue
            seen.add(sid)
            ordered.append((sid, depth))
            stack.extend((k, depth + 1) for k in reversed(children[sid]) if k not in seen)

    for root in sorted(roots, key=lambda k: _order_key(by_id[k])):
        walk(root)
    promoted: list[str] = []
    while len(seen) < len(by_id):  # what is left hangs off a parent cycle
        rest = sorted((sid for sid in by_id if sid not in seen), key=lambda k: _order_key(by_id[k]))
        promoted.append(rest[0])
        walk(rest[0])

    nodes = []
    for sid, depth in ordered:
        row = by_id[sid]
        attributes = _dict(row.get("attributes"))
        error = _text(attributes.pop(ERROR_KEY, None))
        start, end, duration = _start(row), _end(row), _float(row.get("duration_ms"))
        if duration is None and start is not None and end is not None:
            duration = (end - start) * 1000.0
        spans_under = [(_start(by_id[k]), _end(by_id[k])) for k in children[sid] if k not in promoted]
        self_ms, gaps = _self_time(start, duration, spans_under, trace_start)
        given = {"span_id": sid, "depth": depth, "offset_ms": _offset(start, trace_start)}
        given |= {"duration_ms": duration, "attributes": attributes, "error": error, "orphan": sid in orphans}
        given |= {"self_ms": self_ms, "gaps": gaps}
        nodes.append(_from_row(SpanNode, row, **given))
    notes = []
    if orphans:
        notes.append(f"{len(orphans)} span(s) name a parent missing from this trace: shown at the top level.")
    if promoted:
        notes.append(f"{len(promoted)} group(s) of spans have parent links in a cycle: broken at the top.")
    return tuple(nodes), tuple(notes)


# ------------------------------------------------------------------------------------------ the detail


def _probabilities(value: Any) -> dict[str, float]:
    return {str(k): p for k, v in _dict(value).items() if (p := _float(v)) is not None}


def trace_detail(store: Store, trace_id: str) -> TraceDetail | None:
    """Everything the store holds about ``trace_id``, or None when it holds nothing (no request,
    span or log line with that trace id).

    Routing decisions and MCTS runs are those of the trace's request (its ``requests`` row, or
    else the ``request_id`` attribute of one of its spans).

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    reads = store.reads
    request_rows = reads.requests_for_trace(trace_id)
    span_rows = reads.spans_for_trace(trace_id)
    log_rows = reads.logs_for_trace(trace_id)
    if not request_rows and not span_rows and not log_rows:
        return None
    request = _from_row(RequestInfo, request_rows[0]) if request_rows else None
    notes: list[str] = []
    if len(request_rows) > 1:
        notes.append(f"{len(request_rows)} requests carry this trace id; the first is shown.")

    starts = [s for s in map(_start, span_rows) if s is not None]
    ends = [e for e in map(_end, span_rows) if e is not None]
    start_ts = min(starts) if starts else (request.ts if request is not None else None)
    duration_ms = (max(ends) - min(starts)) * 1000.0 if starts and ends else None
    spans, tree_notes = build_span_tree(span_rows)
    notes += tree_notes

    names = {s.span_id: s.name for s in spans}
    logs = tuple(
        _from_row(LogLine, row, offset_ms=_offset(row["ts"], start_ts), span_name=names.get(row["span_id"]))
        for row in log_rows
    )

    span_rids = (rid for s in spans if isinstance(rid := s.attributes.get("request_id"), str) and rid)
    request_id = request.request_id if request is not None else next(span_rids, None)
    routing: tuple[RoutingStep, ...] = ()
    runs: tuple[MctsRunInfo, ...] = ()
    if request_id is not None:
        routing = tuple(
            _from_row(RoutingStep, row, probabilities=_probabilities(row.get("probabilities")))
            for row in reads.routing_for_request(request_id)
        )
        runs = tuple(_from_row(MctsRunInfo, row) for row in reads.mcts_runs_for_request(request_id))
    own = [request.correlation_id] if request is not None else []
    cids = dict.fromkeys(
        c for c in [*own, *(s.correlation_id for s in spans), *(x.correlation_id for x in logs)] if c
    )
    return TraceDetail(
        trace_id=trace_id, request=request, start_ts=start_ts, duration_ms=duration_ms, spans=spans,
        logs=logs, routing=routing, mcts_runs=runs, correlation_ids=tuple(cids), notes=tuple(notes),
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ self time


@dataclass(frozen=True, slots=True)
class WaterfallRow:
    """One row of a waterfall: a span (``span`` set) or an untraced gap inside its parent
    (``span`` None, ``parent`` the span it lies in).  ``offset_ms`` from the trace start."""

    depth: int
    offset_ms: float
    duration_ms: float
    span: SpanNode | None
    parent: SpanNode | None = None

    @property
    def label(self) -> str:
        """The span's name, or ``"untraced"``."""
        return self.span.name if self.span is not None else "untraced"


def waterfall_rows(spans: Sequence[SpanNode], min_gap_ms: float = 0.0) -> list[WaterfallRow]:
    """``spans`` (in :func:`build_span_tree` order) as waterfall rows, with each span's untraced
    gaps of at least ``min_gap_ms`` as rows of their own one level below it, placed among its
    children by start time.  Spans without times get no row (their children still do)."""
    rows: list[WaterfallRow] = []
    inf = float("inf")

    def subtree(i: int) -> int:
        """Emit span ``i`` and everything under it; return the index after its subtree."""
        span = spans[i]
        if span.offset_ms is not None and span.duration_ms is not None:
            rows.append(WaterfallRow(span.depth, span.offset_ms, span.duration_ms, span))
        kids: list[int] = []
        j = i + 1
        while j < len(spans) and spans[j].depth > span.depth:
            if spans[j].depth == span.depth + 1:
                kids.append(j)
            j += 1
        items: list[tuple[float, int, int | WaterfallRow]] = [
            (o, 0, WaterfallRow(span.depth + 1, o, d, None, span)) for o, d in span.gaps if d >= min_gap_ms
        ]
        items += [(inf if spans[k].offset_ms is None else spans[k].offset_ms, 1, k) for k in kids]  # type: ignore[misc]
        for _, _, item in sorted(items, key=lambda t: (t[0], t[1])):
            if isinstance(item, WaterfallRow):
                rows.append(item)
            else:
                subtree(item)
        return j

    i = 0
    while i < len(spans):
        i = subtree(i)
    return rows


def untraced_notes(spans: Sequence[SpanNode], request_latency_ms: float | None = None) -> tuple[str, ...]:
    """Sentences that say, from the spans' own records, where untraced time went.

    A span with ``caller_ms`` held a stream: its caller (e.g. the console drawing each event) had
    the events that long, inside the span but in none of its children.  ``snapshots_streamed``
    (the MCTS agent's live tree snapshots, taken while the search runs in a worker) or
    ``events_streamed`` (the request's events) say how many; a root's held time excludes what
    its descendants report.  Only spans with at least 1 ms (and 5 % of their duration) untraced
    get a sentence; so does a request whose latency exceeds its spans.  Durations in ms, one
    decimal."""
    notes = []
    parents = {s.span_id: s.parent_id for s in spans}

    def below(top: str) -> list[SpanNode]:
        out = []
        for s in spans:
            p = s.parent_id
            while p is not None and p != top and p in parents:
                p = parents[p]
            if p == top and s.span_id != top:
                out.append(s)
        return out

    for span in spans:
        caller = _float(span.attributes.get("caller_ms"))
        if caller is None or span.duration_ms is None or span.self_ms is None or not span.gaps:
            continue
        if span.self_ms < max(1.0, 0.05 * span.duration_ms):
            continue  # too little untraced time to be worth a sentence
        kids = [k for k in spans if k.parent_id == span.span_id and k.duration_ms is not None]
        covered = (
            ", ".join(f"{k.name} {k.duration_ms:,.1f} ms" for k in kids)
            if len(kids) <= 3
            else f"{len(kids)} child spans cover {span.duration_ms - span.self_ms:,.1f} ms"
        )
        head = f"{span.name} lasted {span.duration_ms:,.1f} ms ({covered}), {span.self_ms:,.1f} ms untraced"
        snapshots = _int(span.attributes.get("snapshots_streamed"))
        if snapshots is not None:
            notes.append(
                f"{head}: the caller held the live stream for {caller:,.1f} ms while taking {snapshots} "
                "tree snapshot(s) (the console drawing each one), and the span stays open until the "
                "last is taken, while the search runs in a worker."
            )
            continue
        inner = [s for s in below(span.span_id) if _float(s.attributes.get("caller_ms")) is not None]
        inner_ms = sum(_float(s.attributes.get("caller_ms")) or 0.0 for s in inner)
        inner_n = sum(_int(s.attributes.get("snapshots_streamed")) or 0 for s in inner)
        events = (_int(span.attributes.get("events_streamed")) or 0) - inner_n
        own = max(caller - inner_ms, 0.0)
        rest = max(span.self_ms - own, 0.0)
        notes.append(
            f"{head}: the caller held the stream for {own:,.1f} ms of it over {events} event(s) "
            "(routing decisions, agent steps, agreement: the console drawing each one); the other "
            f"{rest:,.1f} ms are the loop's own code between spans (building the router, checking "
            "agreement)."
        )
    roots = [s.duration_ms for s in spans if s.depth == 0 and s.duration_ms is not None]
    if request_latency_ms is not None and roots:
        extra = request_latency_ms - max(roots)
        if extra >= 0.05 * request_latency_ms and extra >= 0.5:
            notes.append(
                f"The request's latency ({request_latency_ms:,.1f} ms) is {extra:,.1f} ms longer than its "
                f"spans ({max(roots):,.1f} ms): time before the query span opened (reading the position, "
                "loading the task) or after it closed, or injected latency, which no span covers."
            )
    return tuple(notes)


# ------------------------------------------------------------------------------------------ outcomes

_FAILED = {"error": "failed", "cancelled": "was cancelled", "invalid": "was rejected"}


def step_outcomes(detail: TraceDetail) -> tuple[str, ...]:
    """What became of each routing step of ``detail`` (one text per ``detail.routing`` entry), from
    its row, spans and log lines: ``"finished"`` for a step recorded with its confidence or
    latency; for one recorded unfinished (the request ended first), ``"answered; request failed
    at <stage>: <error>"`` when the agent's span or log line shows it answered, else ``"did not
    finish: request failed at <stage>: <error>"``.  ``<stage>`` is the innermost span that failed
    (``"the query loop, after the agent"`` when only the root did), or unknown."""
    request = detail.request
    status = request.status if request is not None else "error"
    error = (request.error if request is not None else None) or "no error recorded"
    failed = [s for s in detail.spans if s.status == "error"]
    innermost = max(failed, key=lambda s: (s.depth, s.offset_ms or 0.0), default=None)
    out = []
    for step in detail.routing:
        if step.confidence is not None or step.latency_ms is not None:
            out.append("finished")
            continue
        name = f"agent.{step.agent}"
        agent_spans = [
            s for s in detail.spans if s.name == name and _int(s.attributes.get("step")) == step.step
        ]
        logged = any(
            x.attributes.get("agent") == step.agent
            and _int(x.attributes.get("step")) == step.step
            and x.message.startswith(f"{step.agent} answered")
            for x in detail.logs
        )
        answered = logged or any(s.status == "ok" and "answer" in s.attributes for s in agent_spans)
        if innermost is None:
            stage = "an unknown stage"
        elif innermost.depth == 0 and answered:
            stage = f"the {innermost.name} loop, after {step.agent} answered"
        else:
            stage = innermost.name
        ended = f"request {_FAILED.get(status, status)} at {stage}: {error}"
        out.append(f"answered; {ended}" if answered else f"did not finish: {ended}")
    return tuple(out)
