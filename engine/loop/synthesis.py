"""The loop's last step: turn what the agents agreed on into the request's ``QueryResult``.

Ground truth (``task.verify``) judges the final answer for the report here; it never steers
the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from engine.agents import AgentOutput
from engine.loop.confidence import final_confidence
from engine.loop.consensus import Agreement
from engine.loop.recording import RunInfo
from engine.loop.steps import Position
from engine.models import PassageRef, QueryResult, StepRecord

__all__ = ["Outcome", "synthesise"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a request's loop ended with.

    ``provenance`` is ``(provider, fallback_from, fallback_error)`` of the LLM calls
    (see :meth:`engine.loop.recording.CallLog.provenance`); ``mcts`` the MCTS summary of the
    last search (empty when MCTS did not run).
    """

    seed: int
    router: str
    agreement: Agreement
    outputs: Mapping[str, AgentOutput]
    steps: Sequence[StepRecord]
    stop_reason: str
    passages: tuple[PassageRef, ...] = ()
    mcts: Mapping[str, float | int | str] = field(default_factory=dict)
    provenance: tuple[str, str | None, str | None] = ("none", None, None)


def synthesise(
    run: RunInfo, position: Position, outcome: Outcome, elapsed_ms: Callable[[], float]
) -> QueryResult:
    """The result of ``run``: the leading answer, its kind and confidence, the ground truth's
    verdict where the task has one, the steps, and what it cost; ``elapsed_ms()`` is read last,
    for the request's total latency (verification included).

    Answer and confidence are :func:`engine.loop.confidence.final_confidence` of the recorded
    steps -- the documented rule a reader can recompute from the step table."""
    outputs, task = outcome.outputs, position.task
    explained = final_confidence(outcome.steps)
    answer = explained.answer
    kind = "none"
    if answer is not None:
        kind = next(outputs[a].kind for a in explained.supporter_agents)
    verdict_label, detail, quality = "unknown", "no ground truth for freeform text", None
    if task is not None:
        verdict = task.verify(position.state, answer) if answer is not None else None
        if verdict is not None:
            verdict_label, detail, quality = verdict.label, verdict.detail, 1.0 if verdict.correct else 0.0
        else:
            detail = "no answer" if answer is None else "no ground truth for this position"
    elif kind == "extractive":
        detail = "extractive answer quoted from the corpus; quality unknown"
    steps = list(outcome.steps)
    provider, fallback_from, fallback_error = outcome.provenance
    return QueryResult(
        request_id=run.request_id,
        trace_id=run.trace_id,
        task=run.task_name,
        query=run.request.query,
        answer=answer or "",
        answer_kind=kind,
        verdict=verdict_label,  # type: ignore[arg-type]  # a Verdict's label is a VerdictLabel
        verdict_detail=detail,
        quality=quality,
        confidence=explained.value,
        agents_used=list(dict.fromkeys(step.agent for step in steps)),
        steps=steps,
        stop_reason=outcome.stop_reason,
        latency_ms=elapsed_ms(),
        seed=outcome.seed,
        router=outcome.router,
        provider=provider if task is None else "none",
        fallback_from=fallback_from if task is None else None,
        fallback_error=fallback_error if task is None else None,
        passages=outcome.passages,
        mcts=dict(outcome.mcts),
        tokens=sum(o.tokens for o in outputs.values()),
        cost_usd=sum(o.cost_usd for o in outputs.values()),
    )
