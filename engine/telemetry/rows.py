"""The rows one recorded request writes to the store, built in the store's writer thread.

:class:`~engine.telemetry.recorder.Telemetry` holds a request's spans and log lines until the
request is recorded, then hands the store ONE deferred job; that job calls these functions to turn
the request's result (or failure), its spans, its :class:`LogLine` s and its MCTS run into rows of
``requests``, ``routing_decisions``, ``spans``, ``logs``, ``mcts_runs`` and ``mcts_nodes`` (the
row types are :mod:`observability.store`'s).  Free text (query, answer, errors, log messages and
text attributes, the MCTS position) is redacted with the given secrets.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from engine.events import RouteDecision
from engine.models import QueryResult, StepRecord
from observability.redaction import redact_str
from observability.store import ExposureRow, LogRow, MctsNodeRow, MctsRunRow, RequestRow, RoutingRow
from observability.tracing import Span, SpanRecord

__all__ = [
    "FailedRequest",
    "LogLine",
    "RequestMeta",
    "exposure_rows",
    "failure_request_row",
    "log_rows",
    "on_request_clock",
    "redacted_request",
    "result_rows",
    "routing_rows",
]

_NODE_COLUMNS = MctsNodeRow._fields  # run_id, node_id, parent_id, depth, label, visits, value, prior
# trace_id, seq, ts, level, logger, message, correlation_id, span_id, attributes
_LOG_COLUMNS = LogRow._fields


class LogLine(NamedTuple):
    """One held log line (a tuple: it is built on the query's path; rows are made later)."""

    ts: float
    level: int
    logger: str
    message: str
    #: The span it was logged in (None: the request's own outcome line); its id is read when
    #: the row is built, in the writer thread, so logging never makes a span id.
    span: Span | None
    correlation_id: str | None
    attributes: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class RequestMeta:
    """How a request was run, for its record: when, by whom, under which experiment."""

    ts: float
    user_id: str | None = None
    simulated: bool = False
    experiment: str | None = None
    variant: str | None = None
    correlation_id: str | None = None
    #: The validated request as JSON (``QueryRequest.model_dump_json()``), stored for replay.
    request_json: str | None = None
    #: The unit's assignment bucket in [0, 10000) (``engine.experiments.assign``), for its exposure.
    bucket: int | None = None
    #: The feature flags that applied, comma-separated by name (None: none).
    flags: str | None = None
    #: Seconds added to the request's span and log timestamps to put them on the row's clock:
    #: ``ts`` minus the wall clock when the request started (0 unless the caller passed its own
    #: ``ts``, e.g. the load generator's simulated timeline).  Durations are unchanged.
    clock_shift_s: float = 0.0


def on_request_clock(
    spans: list[SpanRecord], lines: list[LogLine], shift_s: float
) -> tuple[list[SpanRecord], list[LogLine]]:
    """``spans`` and log ``lines`` moved by ``shift_s`` seconds (:attr:`RequestMeta.clock_shift_s`)
    onto the request row's clock; durations and order unchanged.  The same lists when it is 0."""
    if not shift_s:
        return spans, lines
    moved = [dataclasses.replace(s, start_ts=s.start_ts + shift_s, end_ts=s.end_ts + shift_s) for s in spans]
    return moved, [line._replace(ts=line.ts + shift_s) for line in lines]


def exposure_rows(request_id: str, meta: RequestMeta) -> list[dict[str, Any]]:
    """The ``exposures`` row a request of an experiment writes with its request row (in the same
    transaction): its unit (``user_id``), variant and bucket, this request's id and time.  The
    table keeps the first row per (experiment, unit), so only the unit's first recorded request
    counts; later ones change nothing.  Empty unless the request has an experiment, a variant
    and a unit."""
    if not (meta.experiment and meta.variant and meta.user_id):
        return []
    return [
        ExposureRow(meta.experiment, meta.user_id, meta.variant, meta.bucket, request_id, meta.ts)._asdict()
    ]


def log_rows(trace_id: str, lines: list[LogLine], secrets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """``logs`` rows of a trace, in order; messages and text attributes redacted (``secrets`` as
    :func:`~observability.redaction.normalise_secrets` returns them)."""
    # Zipped with the row type's columns, in LogRow's field order (as the MCTS node rows below).
    return [
        dict(
            zip(
                _LOG_COLUMNS,
                (
                    trace_id,
                    seq,
                    line.ts,
                    logging.getLevelName(line.level),
                    line.logger,
                    redact_str(line.message, secrets),
                    line.correlation_id,
                    None if line.span is None else line.span.span_id,
                    _redacted(line.attributes, secrets) or None,
                ),
                strict=True,
            )
        )
        for seq, line in enumerate(lines)
    ]


def _redacted(attributes: dict[str, Any], secrets: tuple[str, ...]) -> dict[str, Any]:
    return {k: redact_str(v, secrets) if isinstance(v, str) else v for k, v in attributes.items()}


def redacted_request(row: dict[str, Any], secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """``row`` (a ``requests`` row as a dict) with its free text (query, answer, error,
    fallback_error, request_json) redacted (``secrets`` normalised, as for :func:`log_rows`)."""
    return {
        k: redact_str(v, secrets)
        if k in ("query", "answer", "error", "fallback_error", "request_json") and isinstance(v, str)
        else v
        for k, v in row.items()
    }


def result_rows(
    result: QueryResult,
    meta: RequestMeta,
    search: Any,
    spans: list[SpanRecord],
    secrets: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Every row one finished request writes (built in the store's writer thread)."""
    rows: dict[str, Any] = {
        "requests": redacted_request(
            RequestRow(
                request_id=result.request_id,
                trace_id=result.trace_id,
                ts=meta.ts,
                task=result.task,
                query=result.query,
                answer=result.answer,
                answer_kind=result.answer_kind,
                verdict=result.verdict,
                quality=result.quality,
                confidence=result.confidence,
                agents_used=result.agents_used,
                stop_reason=result.stop_reason,
                latency_ms=result.latency_ms,
                seed=result.seed,
                router=result.router,
                provider=result.provider,
                status="ok",
                user_id=meta.user_id,
                experiment=meta.experiment,
                variant=meta.variant,
                correlation_id=meta.correlation_id,
                simulated=int(meta.simulated),
                tokens=result.tokens,
                cost_usd=result.cost_usd,
                fallback_from=result.fallback_from,
                fallback_error=result.fallback_error,
                request_json=meta.request_json,
                flags=meta.flags,
            )._asdict(),
            secrets,
        ),
        "routing_decisions": routing_rows(result.request_id, result.steps),
        "spans": [s.to_row(encode=False) for s in spans],
        "exposures": exposure_rows(result.request_id, meta),
    }
    if search is not None:
        s = search.stats
        run_id = f"{result.request_id}-mcts"
        final = search.snapshots[-1] if search.snapshots else None
        rows["mcts_runs"] = MctsRunRow(
            run_id=run_id,
            request_id=result.request_id,
            ts=meta.ts,
            task=result.task,
            position=redact_str(result.query, secrets),
            iterations=s.iterations,
            seed=s.seed,
            best_action=s.best_action_label,
            root_value=s.shown_root_value,  # solver-true: the proven value once the root is proven
            termination_reason=s.termination_reason,
            tree_size=s.tree_size,
            cache_hit_rate=s.cache_hit_rate,
            elapsed_ms=s.elapsed_s * 1000,
            config=search.config.model_dump() if search.config is not None else {},
        )._asdict()
        rows["mcts_nodes"] = (
            []
            if final is None
            else [
                # Many rows per search: zipped with the row type's columns (~0.4 µs a row) rather
                # than built as a MctsNodeRow (~1.7 µs); the values follow MctsNodeRow's field order.
                dict(
                    zip(
                        _NODE_COLUMNS,
                        (run_id, n.id, n.parent, n.depth, n.label, n.visits, n.value, n.prior),
                        strict=True,
                    )
                )
                for n in final.nodes
            ]
        )
    return rows


@dataclasses.dataclass(frozen=True, slots=True)
class FailedRequest:
    """A request that failed (``error``), was rejected (``invalid``) or stopped (``cancelled``),
    with the routing decisions it got to: ``steps`` finished, ``unfinished`` decided but not
    finished.  ``latency_ms`` in milliseconds."""

    request_id: str
    trace_id: str
    task: str
    query: str
    status: str
    error: str
    latency_ms: float
    seed: int | None
    router: str
    meta: RequestMeta
    steps: Sequence[StepRecord] = ()
    unfinished: Sequence[RouteDecision] = ()
    #: (provider, fallback_from, fallback_error) as far as the request got (all None: unknown)
    provenance: tuple[str | None, str | None, str | None] = (None, None, None)


def failure_request_row(f: FailedRequest) -> dict[str, Any]:
    """The ``requests`` row (not yet redacted) of a failed request: error cut to 2000 characters,
    verdict ``unknown``, the agents of its finished and unfinished steps in order of first use."""
    meta = f.meta
    return RequestRow(
        request_id=f.request_id,
        trace_id=f.trace_id,
        ts=meta.ts,
        task=f.task,
        query=f.query,
        status=f.status,
        error=f.error[:2000],
        latency_ms=f.latency_ms,
        seed=f.seed,
        router=f.router,
        provider=f.provenance[0],
        fallback_from=f.provenance[1],
        fallback_error=f.provenance[2],
        verdict="unknown",
        agents_used=list(dict.fromkeys([*(s.agent for s in f.steps), *(d.chosen for d in f.unfinished)])),
        user_id=meta.user_id,
        simulated=int(meta.simulated),
        experiment=meta.experiment,
        variant=meta.variant,
        correlation_id=meta.correlation_id,
        request_json=meta.request_json,
        flags=meta.flags,
    )._asdict()


def routing_rows(
    request_id: str, steps: Sequence[StepRecord], unfinished: Sequence[RouteDecision] = ()
) -> list[dict[str, Any]]:
    """``routing_decisions`` rows: the finished steps, then the steps decided but not finished
    (no confidence, no latency)."""
    done = [
        (s.index, s.agent, s.reason, s.probabilities, s.features, s.confidence, s.latency_ms) for s in steps
    ]
    undone = [(d.step, d.chosen, d.reason, d.probabilities, d.features, None, None) for d in unfinished]
    return [
        RoutingRow(
            request_id=request_id,
            step=step,
            agent=agent,
            reason=reason,
            probabilities=probabilities,
            features=list(features),
            confidence=confidence,
            latency_ms=latency_ms,
        )._asdict()
        for step, agent, reason, probabilities, features, confidence, latency_ms in done + undone
    ]
