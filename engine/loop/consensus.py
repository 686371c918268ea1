"""Agreement between the agents' answers and the loop's stop rule.

Pure functions of the agents' outputs so far: the query loop, the router's training labels
(``engine.routing.training``) and any replay of a trace apply the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.agents import AgentOutput

__all__ = ["DEFAULT_CONSENSUS_THRESHOLD", "Agreement", "agreement", "stop_decision"]

DEFAULT_CONSENSUS_THRESHOLD = 0.6
"""Share of the summed confidence the leading answer needs (with two supporters) to stop."""


@dataclass(frozen=True, slots=True)
class Agreement:
    """The leading answer and how much the agents agree on it.

    ``score`` is the leading answer's share of all confidence (0..1); ``confidence`` the
    answer's own (0..1); ``exact`` whether a rules-checked or proven answer leads;
    ``supporters`` the agents that gave it, in the order they answered.
    """

    score: float
    answer: str | None
    confidence: float
    exact: bool
    supporters: tuple[str, ...]


def agreement(outputs: Mapping[str, AgentOutput]) -> Agreement:
    """The leading answer of ``outputs`` (agent -> output) and how much the agents agree on it.

    An exact answer (rules-checked or proven) leads outright.  Otherwise the answer with the
    largest summed confidence leads; the score is its share of all confidence (of all answers
    when every confidence is 0).  The leading answer's confidence is score * noisy-OR of its
    supporters' confidences.
    """
    answers = {a: o.answer for a, o in outputs.items() if o.answer is not None}
    if not answers:
        return Agreement(0.0, None, 0.0, False, ())
    confidence = {a: outputs[a].confidence for a in answers}
    groups: dict[str, list[str]] = {}
    for agent, answer in answers.items():
        groups.setdefault(answer, []).append(agent)
    exact = [a for a in answers if outputs[a].exact]
    if exact:
        lead = answers[exact[0]]
    else:
        lead = max(groups, key=lambda ans: (sum(confidence[a] for a in groups[ans]), len(groups[ans])))
    backers = groups[lead]
    total = sum(confidence.values())
    mine = sum(confidence[a] for a in backers)
    score = mine / total if total > 0 else len(backers) / len(answers)
    if exact:
        return Agreement(score, lead, 1.0, True, tuple(backers))
    miss = float(np.prod([1.0 - confidence[a] for a in backers]))
    return Agreement(score, lead, score * (1.0 - miss), False, tuple(backers))


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

    Stops on an exact answer, on two or more supporters with ``agreement.score >= agree_at``,
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
