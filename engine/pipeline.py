"""The query loop: route, run an agent, check agreement, repeat, synthesise.

``Engine.stream`` yields typed events as the loop runs; ``Engine.run`` returns only the
``QueryResult``.  Ground truth (``task.verify``) judges the final answer for the report; it never
steers the loop.  The loop's parts live in :mod:`engine.loop` (routing, agent steps, agreement,
fault injection, telemetry recording, synthesis); this module runs them in order.

An ``Engine`` takes its collaborators as parameters; :func:`engine.wiring.build_runtime` is the
composition root that builds them from settings.  ``Engine()`` / ``Engine(settings)`` without a
``telemetry`` still works: it builds its telemetry through that same builder (recording to
``ARBOR_DB_PATH``) and closes it with the engine.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Generator, Iterator
from dataclasses import replace
from typing import Any

from engine.agents import AgentContext, AgentOutput
from engine.config import Settings, load_settings
from engine.events import AgentFinished, AgentStarted, Consensus, Event, Final, Retrieved
from engine.faults import Faults
from engine.flags.source import FlagSource
from engine.llm import LLMProvider, ProviderNotConfigured, make_provider
from engine.loop import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_CONSENSUS_THRESHOLD,
    DEFAULT_HYBRID_WEIGHT,
    CallLog,
    FaultInjector,
    Outcome,
    Position,
    Progress,
    QueryError,
    RequestRecorder,
    RouterFactory,
    RoutingStep,
    RunInfo,
    agent_seeds,
    agreement,
    check_router,
    features_after,
    mcts_summary,
    parse_position,
    run_agent,
    stop_decision,
    synthesise,
)
from engine.loop.cancel import CancelToken, QueryCancelled
from engine.mcts import SearchConfig, fresh_seed
from engine.models import PassageRef, QueryRequest, QueryResult, StepRecord
from engine.names import step_number
from engine.routing import GRURouter, Router, RoutingState
from engine.telemetry import RequestMeta, Telemetry
from observability.trace_context import IdSource
from observability.tracing import correlation_scope, get_correlation_id

_REQUEST_ID = re.compile(r"[!-~]{1,128}")

__all__ = [
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "DEFAULT_CONSENSUS_THRESHOLD",
    "DEFAULT_HYBRID_WEIGHT",
    "CancelToken",
    "Engine",
    "QueryCancelled",
    "QueryError",
]


class Engine:
    """The embedded engine.  Thread-safe: one instance serves many requests.

    Collaborators (each optional):

    * ``telemetry``: the store, tracer and metrics (default: built from ``settings`` by
      :func:`engine.wiring.build_telemetry`, owned and closed by this engine);
    * ``llm``: replaces the provider of every request; ``provider_factory`` builds a provider
      (with its fallback chain) from settings naming it (default: ``make_provider``);
    * ``retriever``: the corpus index (default: built from data/corpus on first use);
    * ``gru``: the trained router (default: loaded from its weights on first use);
    * ``clock``: the latency clock (seconds); ``sleep``: how injected latency is waited out;
    * ``flags``: the feature flags consulted on every request (default: those of the telemetry
      store's file; none without a store).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        telemetry: Telemetry | None = None,
        llm: LLMProvider | None = None,
        provider_factory: Callable[[Settings], LLMProvider] = make_provider,
        retriever: Any = None,
        gru: GRURouter | None = None,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
        flags: FlagSource | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        if telemetry is None:
            from engine.wiring import build_telemetry  # the default factory (wiring imports Engine)

            telemetry = build_telemetry(self.settings)
        self.telemetry = telemetry
        self._recorder = RequestRecorder(telemetry, clock)
        self._llm_override = llm
        self._provider_factory = provider_factory
        self._providers: dict[str, LLMProvider] = {}
        self._retriever = retriever
        self._routers = RouterFactory(gru)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # Request and trace ids: 32 hex characters from a private generator, no system call
        # per request (uuid4 reads the OS's entropy pool twice a request).
        self._ids = IdSource()
        store = telemetry.store
        self._flags = flags if flags is not None else FlagSource(store.path if store is not None else None)

    # -- collaborators, built once on first use ---------------------------------------------------
    def provider(self, name: str | None) -> LLMProvider:
        """The LLM provider (with its fallback chain) for ``name`` or the settings' default."""
        if self._llm_override is not None:
            return self._llm_override
        name = name or self.settings.llm_provider
        with self._lock:
            if name not in self._providers:
                self._providers[name] = self._provider_factory(
                    self.settings.model_copy(update={"llm_provider": name})
                )
            return self._providers[name]

    def retriever(self) -> Any:
        """The corpus retriever (built from data/corpus on first use)."""
        with self._lock:
            if self._retriever is None:
                from engine.rag import Retriever

                self._retriever = Retriever.from_corpus()
            return self._retriever

    def router(self, request: QueryRequest) -> Router:
        """The router the request names; raises RouterUnavailable if the GRU has no weights."""
        return self._routers(request)

    # -- the loop ---------------------------------------------------------------------------------
    def run(self, request: QueryRequest) -> QueryResult:
        """Answer ``request``; raises QueryError for an unanswerable position and
        ProviderNotConfigured when the request's LLM provider lacks its API key."""
        for event in self.stream(request, live=False):
            if isinstance(event, Final):
                return event.result
        raise AssertionError("stream ended without a Final event")  # pragma: no cover

    def stream(
        self,
        request: QueryRequest,
        *,
        live: bool = True,
        ts: float | None = None,
        simulated: bool = False,
        experiment: str | None = None,
        variant: str | None = None,
        faults: Faults | None = None,
        request_id: str | None = None,
        assignment: Any = None,
        pinned: Collection[str] = (),
        cancel: CancelToken | None = None,
    ) -> Iterator[Event]:
        """Yield the loop's events, ending with ``Final``; record the request once.

        With ``live`` the MCTS agent streams tree snapshots (it then runs in a
        worker thread).  ``ts`` stamps the record (default: now; a load test's
        simulated timeline passes its own, with ``simulated=True``, and then
        injected latency is added to the record instead of slept).  Raises
        QueryError before the first event when the position is malformed or
        already finished, and ProviderNotConfigured when a freeform request's
        LLM provider lacks its API key (both recorded as ``invalid``: a
        configuration error, not a fallback case); any other failure is
        recorded as ``error`` and re-raised; a caller that stops reading early
        leaves a ``cancelled`` record.

        Experiments: ``experiment`` and ``variant`` label the request row; ``assignment`` (an
        :class:`engine.experiments.Assignment` of the request's ``user_id``) sets both and also
        records the unit's exposure (its bucket) in the same transaction as the request row --
        the store keeps the first per (experiment, unit).  ``request_id`` replaces the random id
        (1..128 printable characters): the experiment runner derives one per (experiment, unit,
        query) so that a resumed run can tell what is recorded, and the store's primary key
        keeps a request id once.

        Feature flags (:mod:`engine.flags`) are read on every request and applied to it before
        anything else (the unit bucketed is ``user_id``, else the request id); ``pinned`` names
        the settings an experiment variant set on this request, which flags leave alone.  The
        flags that applied are on the request row (``flags``) and on the result.

        ``cancel``: another thread may cancel the query through it; the loop stops before its
        next step, before the answer, or at a live search's next snapshot, records the request
        as ``cancelled`` (with the token's reason) and raises QueryCancelled.

        Raises:
            QueryCancelled: ``cancel`` was set before the answer was put together.
            ValueError: (before anything is recorded) a malformed ``request_id``, or an
                ``assignment`` of another unit than ``request.user_id`` or contradicting
                ``experiment``/``variant``.
        """
        if request_id is not None and not _REQUEST_ID.fullmatch(request_id):
            raise ValueError("request_id must be 1..128 printable ASCII characters without spaces")
        bucket = None
        if assignment is not None:
            if assignment.unit != request.user_id:
                raise ValueError(
                    f"the assignment is for unit {assignment.unit!r}, "
                    f"the request's user_id is {request.user_id!r}"
                )
            if experiment not in (None, assignment.experiment) or variant not in (None, assignment.variant):
                raise ValueError("experiment/variant contradict the assignment")
            experiment, variant, bucket = assignment.experiment, assignment.variant, assignment.bucket
        # In flight from here on (flag look-up and recording included): the store's writer waits.
        with self.telemetry.activity.running():
            t0 = self._clock()
            tel = self.telemetry
            request_id = request_id or self._ids(16)
            request, applied = self._flags.resolve(request, request.user_id or request_id, pinned)
            flag_names = tuple(a.name for a in applied)
            correlation_id = request.correlation_id or get_correlation_id() or request_id
            wall = tel.clock()
            meta = RequestMeta(
                wall if ts is None else ts,
                request.user_id,
                simulated,
                experiment,
                variant,
                correlation_id,
                request.model_dump_json(),
                bucket,
                flags=",".join(flag_names) or None,
                clock_shift_s=0.0 if ts is None else ts - wall,  # spans and log lines go on the row's clock
            )
            run = RunInfo(request, request.resolved_task(), request_id, self._ids(16), meta)
            progress = Progress()
            injector = FaultInjector(faults or Faults(), simulated=simulated, sleep=self._sleep)
            try:
                position = parse_position(run.task_name, request)
                check_router(request, run.task_name)
                if position.task is None:
                    self.provider(request.provider)  # a provider that is not configured is rejected here
            except (QueryError, ProviderNotConfigured) as exc:
                self._recorder.failure(run, progress, "invalid", str(exc), t0, None)
                raise
            seed = request.seed if request.seed is not None else fresh_seed()
            try:
                with (
                    correlation_scope(correlation_id),
                    tel.span(
                        "query",
                        trace_id=run.trace_id,
                        request_id=run.request_id,
                        task=run.task_name,
                        seed=seed,
                        router=request.router,
                    ) as root,
                ):
                    tel.log(
                        logging.INFO,
                        f"{run.task_name} request started: router {request.router}, seed {seed}",
                        task=run.task_name,
                        router=request.router,
                        seed=seed,
                    )
                    loop = self._loop(run, position, progress, injector, seed, t0, live, cancel)
                    result, search = yield from _held(loop, root)
            except QueryCancelled as exc:
                self._recorder.failure(run, progress, "cancelled", exc.reason, t0, seed)
                raise
            except GeneratorExit:
                self._recorder.failure(
                    run, progress, "cancelled", "the caller stopped reading before the answer", t0, seed
                )
                raise
            except Exception as exc:
                self._recorder.failure(run, progress, "error", f"{type(exc).__name__}: {exc}", t0, seed)
                raise
            if flag_names:
                result = replace(result, flags=flag_names)
            self._recorder.result(result, meta, search)
            yield Final(result)

    def _loop(
        self,
        run: RunInfo,
        position: Position,
        progress: Progress,
        injector: FaultInjector,
        seed: int,
        t0: float,
        live: bool,
        cancel: CancelToken | None = None,
    ) -> Generator[Event, None, tuple[QueryResult, Any]]:
        request, task_name, tel = run.request, run.task_name, self.telemetry
        task, state = position.task, position.state
        seeds = agent_seeds(seed)
        provider_name = request.provider or self.settings.llm_provider
        llm = None
        if task is None:
            llm = CallLog(tel.traced_provider(injector.provider(self.provider(request.provider))))
        progress.calls, progress.requested_provider = llm, (provider_name if llm is not None else "none")

        passages = self._retrieve(request, task is None)
        yield Retrieved(passages)

        routing = RoutingStep(self.router(request), request, task_name)
        ov = request.overrides
        agree_at = DEFAULT_CONSENSUS_THRESHOLD if ov.consensus_threshold is None else ov.consensus_threshold
        search_config = SearchConfig(
            iterations=request.mcts_iterations,
            c=self.settings.mcts_c if ov.mcts_c is None else ov.mcts_c,
            selection=ov.mcts_selection or "ucb1",
            snapshot_every=self.settings.snapshot_every if live else 0,
            snapshot_max_nodes=120,
        )

        outputs: dict[str, AgentOutput] = {}
        features = RoutingState(query_length=len(request.query), has_rag_context=bool(passages))
        agreed = agreement(outputs)
        stop_reason = "max steps"
        mcts: dict[str, float | int | str] = {}
        search = None
        for index in range(request.max_steps):
            if cancel is not None:
                cancel.check()
            if all(a in outputs for a in routing.usable):
                stop_reason = "all agents ran"
                break
            with tel.span("route", step=index):  # the router's own time (e.g. the GRU), traced
                decision = routing.decide(index, features, set(outputs))
            agent, reason = decision.chosen, decision.reason
            progress.decided(decision)
            yield decision
            yield AgentStarted(index, agent)
            ctx = AgentContext(
                task,
                state,
                request.query,
                agreed.answer,
                passages,
                seeds[agent],
                search_config,
                llm,  # type: ignore[arg-type]  # None for a game task: its agents never call an LLM
            )
            started = self._clock()
            with tel.span(f"agent.{agent}", step=index, reason=reason) as span:
                tel.log(
                    logging.INFO,
                    f"step {step_number(index)}: routed to {agent} "
                    f"(p={decision.probabilities[agent]:.2f}; {reason})",
                    step=index,
                    agent=agent,
                )
                injector.before_agent()
                out = yield from run_agent(index, agent, task_name, ctx, live, tel.span, cancel)
                if span is not None:
                    span.set_attributes(answer=out.answer, confidence=out.confidence, exact=out.exact)
                tel.log(
                    logging.INFO,
                    f"{agent} answered {(out.answer or '')[:120]!r} with confidence {out.confidence:.2f}"
                    + (" (exact)" if out.exact else ""),
                    step=index,
                    agent=agent,
                )
            latency_ms = injector.step_latency_ms((self._clock() - started) * 1000)
            injector.after_agent(agent)
            outputs[agent] = out
            yield AgentFinished(
                index,
                agent,
                out.answer,
                out.confidence,
                out.evidence,
                latency_ms,
                out.exact,
                out.refined_from,
            )

            agreed = agreement(outputs)
            stop, why = stop_decision(
                out, agreed, agree_at, index, request.max_steps, routing.usable, outputs
            )
            if routing.fixed is not None and not stop:
                stop, why = True, f"fixed: {routing.name} runs one step"
            progress.finished(
                StepRecord(
                    index,
                    agent,
                    routing.name,
                    decision.probabilities,
                    decision.features,
                    reason,
                    out.answer,
                    out.confidence,
                    out.evidence,
                    latency_ms,
                    out.exact,
                    out.refined_from,
                )
            )
            yield Consensus(index, agreed.shown, agreed.answer, stop, why)
            if out.search is not None:
                search = out.search
                mcts = mcts_summary(task, out)
            features = features_after(
                outputs,
                agreed,
                mcts.get("root_value_01", 0.0),  # type: ignore[arg-type]  # a float in the summary
                agent,
                index,
                len(request.query),
                bool(passages),
            )
            stop_reason = why
            if stop:
                break

        if cancel is not None:
            cancel.check()
        outcome = Outcome(
            seed=seed,
            router=routing.name,
            agreement=agreed,
            outputs=outputs,
            steps=progress.steps,
            stop_reason=stop_reason,
            passages=passages,
            mcts=mcts,
            provenance=llm.provenance(provider_name) if llm is not None else ("none", None, None),
        )
        with tel.span("synthesise"):
            result = synthesise(run, position, outcome, lambda: (self._clock() - t0) * 1000)
        return injector.result(result), search

    def _retrieve(self, request: QueryRequest, freeform: bool) -> tuple[PassageRef, ...]:
        """The corpus passages for a freeform request with ``use_rag`` (else none), in a span."""
        if not (request.use_rag and freeform):
            return ()
        tel = self.telemetry
        with tel.span("rag.retrieve") as span:
            passages = tuple(
                PassageRef(p.doc, p.title, p.section, p.text, p.score)
                for p in self.retriever().search(request.query, k=4)
            )
            if span is not None:
                span.set_attribute("documents", len(passages))
            tel.log(logging.INFO, f"retrieved {len(passages)} passages", documents=len(passages))
        return passages

    def close(self) -> None:
        """Flush all pending telemetry and release the store, tracer and retriever."""
        self._flags.close()
        self.telemetry.close()
        closer = getattr(self._retriever, "close", None)
        if closer is not None:
            closer()

    def __enter__(self) -> Engine:
        """Use as a context manager that closes the engine."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the engine (flushing its telemetry)."""
        self.close()


def _held(events: Generator[Event, None, Any], span: Any) -> Generator[Event, None, Any]:
    """Yield ``events`` and return their generator's value, timing how long the caller holds each
    event (from the yield until it asks for the next: e.g. the console drawing it).  The totals go
    on ``span`` (the request's root, None when tracing is off) as ``caller_ms`` (ms) and
    ``events_streamed``: that time lies inside the span but in none of its children, so the Traces
    page can say what its untraced time was.  Closing this closes ``events``."""
    held, count = 0.0, 0
    try:
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                return stop.value
            handed = time.perf_counter()
            try:
                yield event
            finally:
                held += time.perf_counter() - handed
                count += 1
    finally:
        events.close()
        if span is not None:
            span.set_attributes(caller_ms=round(held * 1000.0, 3), events_streamed=count)
