"""Agreement between the agents' answers and the loop's stop rule.

Pure functions of the agents' outputs so far: the query loop, the router's training labels
(``engine.routing.training``) and any replay of a trace apply the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from engine.agents import AgentOutput
from engine.loop.confidence import ConfidenceExplanation, RuleStep, final_confidence

__all__ = ["DEFAULT_CONSENSUS_THRESHOLD", "Agreement", "agreement", "stop_decision"]

DEFAULT_CONSENSUS_THRESHOLD = 0.6
"""Share of the independent confidence the leading answer needs (with two independent supporters) to stop."""


@dataclass(frozen=True, slots=True)
class Agreement:
    """The leading answer and how much the agents agree on it (see :mod:`engine.loop.confidence`).

    ``score`` is the leading answer's share of the independent answers' confidence (0..1; 1.0
    with a single independent answer, 0.0 with none) -- the router's ``consensus_score``
    feature; ``shown`` the same share when there is something to agree with (two or more
    independent answers), else None; ``confidence`` the answer's confidence by the rule (0..1);
    ``exact`` whether a rules-checked or proven answer leads; ``supporters`` the agents whose
    independent answers back it, in the order they answered; ``explanation`` the rule's terms.
    """

    score: float
    answer: str | None
    confidence: float
    exact: bool
    supporters: tuple[str, ...]
    shown: float | None = None
    explanation: ConfidenceExplanation | None = None


def agreement(outputs: Mapping[str, AgentOutput]) -> Agreement:
    """The leading answer of ``outputs`` (agent -> output, in the order they ran) and how much the
    agents agree on it, by the rule of :func:`engine.loop.confidence.final_confidence`: an exact
    answer leads outright (confidence 1.0); otherwise only independent answers count (an agent
    that returned the candidate it was given unchanged repeats it) and the confidence is
    agreement x noisy-OR of the supporters' confidences."""
    votes = [
        RuleStep(i, agent, o.answer, o.confidence, o.exact, o.refined_from)
        for i, (agent, o) in enumerate(outputs.items())
    ]
    ex = final_confidence(votes)
    if ex.answer is None:
        return Agreement(0.0, None, 0.0, False, (), None, ex)
    score = 1.0 if ex.agreement is None else ex.agreement
    return Agreement(
        score, ex.answer, ex.value, ex.basis == "verified", ex.supporter_agents, ex.agreement, ex
    )


def stop_decision(
    out: AgentOutput,
    agreement: Agreement,
    agree_at: float,
    index: int,
    max_steps: int,
    usable: tuple[str, ...],
    outputs: Mapping[str, AgentOutput],
) -> tuple[bool, str]:
    """Whether the loop stops after step ``index`` (0-based) produced ``out``, and why.

    Stops on an exact answer, on two or more independent supporters with
    ``agreement.score >= agree_at``,
    when every usable agent ran, or at ``max_steps``; the reason is the text recorded with the
    step (``"verified: ..."``, ``"agreement: ..."``, ``"all agents ran"``, ``"max steps"``,
    ``"continue: ..."``).
    """
    if out.exact:
        return True, f"verified: {out.evidence}"
    if len(agreement.supporters) >= 2 and agreement.score >= agree_at:
        return (
            True,
            f"agreement: {', '.join(agreement.supporters)} agree ({agreement.score:.2f} >= {agree_at})",
        )
    if all(a in outputs for a in usable):
        return True, "all agents ran"
    if index + 1 >= max_steps:
        return True, "max steps"
    if len(agreement.supporters) < 2:
        return False, "continue: no second agent backs the leading answer yet"
    return False, f"continue: agreement {agreement.score:.2f} < {agree_at}"
