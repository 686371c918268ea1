"""HRM and TRM for freeform questions, through the configured LLM provider.

HRM splits the question into sub-questions, asks the provider each one with
the retrieved passages, and joins the answers.  TRM re-asks with the question
expanded by the terms of the current answer and stops when the answer no
longer changes.  Offline, the provider's answers are extractive (quoted
sentences with citations) and are labelled so.

Confidence here is corpus support: the share of the question's content words
that the answer's cited text covers.  It is not a quality score: the quality of
a freeform answer is unknown (None) without a judge.
"""

from __future__ import annotations

import re

from engine.agents.base import AgentContext, AgentOutput, AnswerKind
from engine.llm import LLMRequest, LLMResponse
from engine.llm.text import STOPWORDS, tokenize
from engine.models import PassageRef

__all__ = ["SYSTEM", "hrm", "support", "trm"]

SYSTEM = (
    "You are Arbor's operations assistant. Answer from the numbered passages only, cite them as [n], "
    "and say so when they do not contain the answer."
)
_SPLIT = re.compile(r"\?\s+|;\s+|\s+and then\s+|\s+and also\s+", re.I)


def _content(text: str) -> set[str]:
    return {t for t in tokenize(text.lower()) if t.isalnum() and t not in STOPWORDS}


def support(question: str, answer: str) -> float:
    """Share of the question's content words that appear in the answer, in [0, 1]."""
    q = _content(question)
    return len(q & _content(answer)) / len(q) if q else 0.0


def _context(passages: tuple[PassageRef, ...]) -> str:
    return "\n".join(f"[{i}] {p.text}" for i, p in enumerate(passages, 1))


def _ask(ctx: AgentContext, question: str) -> LLMResponse:
    prompt = f"{_context(ctx.passages)}\nQuestion: {question}" if ctx.passages else f"Question: {question}"
    return ctx.llm.complete(LLMRequest.from_prompt(prompt, system=SYSTEM))


def _kind(responses: list[LLMResponse]) -> AnswerKind:
    return "extractive" if all(r.extractive for r in responses) else "generated"


def _usage(responses: list[LLMResponse]) -> tuple[int, float]:
    return (sum(r.input_tokens + r.output_tokens for r in responses), sum(r.cost_usd for r in responses))


def hrm(ctx: AgentContext) -> AgentOutput:
    """Decompose into sub-questions, answer each from the passages, join."""
    parts = [p.strip(" ?") for p in _SPLIT.split(ctx.query) if len(p.strip(" ?")) > 3] or [ctx.query]
    responses = [_ask(ctx, part + "?") for part in parts[:4]]
    texts = [r.text.strip() for r in responses if r.text.strip()]
    answer = "\n\n".join(texts) if texts else None
    tokens, cost = _usage(responses)
    if not ctx.passages:
        return AgentOutput(
            answer,
            0.0,
            "no passages retrieved: nothing to ground an answer in",
            "none",
            tokens=tokens,
            cost_usd=cost,
        )
    conf = support(ctx.query, answer or "")
    return AgentOutput(
        answer,
        conf,
        f"{len(parts)} sub-question(s) via {responses[0].provider}; "
        f"answer covers {conf:.0%} of the question's terms",
        _kind(responses),
        tokens=tokens,
        cost_usd=cost,
    )


def trm(ctx: AgentContext, max_rounds: int = 3) -> AgentOutput:
    """Refine: re-ask with the question expanded by the answer's terms until it stops changing."""
    current = ctx.candidate
    responses: list[LLMResponse] = []
    rounds = 0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 - reported below
        extra = " ".join(sorted(_content(current or "") - _content(ctx.query)))[:400]
        reply = _ask(ctx, f"{ctx.query} {extra}".strip())
        responses.append(reply)
        text = reply.text.strip() or None
        if text == current:
            break
        current = text
    tokens, cost = _usage(responses)
    if not ctx.passages or current is None:
        return AgentOutput(
            current,
            0.0,
            "no passages retrieved: nothing to refine against",
            "none",
            tokens=tokens,
            cost_usd=cost,
            refined_from=ctx.candidate,
        )
    conf = support(ctx.query, current)
    return AgentOutput(
        current,
        conf,
        f"refined over {rounds} round(s); covers {conf:.0%} of the question's terms"
        + (" (no change)" if ctx.candidate is not None and current == ctx.candidate else ""),
        _kind(responses),
        tokens=tokens,
        cost_usd=cost,
        refined_from=ctx.candidate,
    )
