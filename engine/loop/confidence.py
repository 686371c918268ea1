"""The one rule that turns a request's steps into its final answer, confidence and agreement.

The loop's synthesis, the stop rule (through :func:`engine.loop.consensus.agreement`), the
Query console and the README all use :func:`final_confidence`, so a reader can recompute the
final figure from the step table:

1. **Verified.**  If a step's answer is *exact* (checked by the task's rules or proven by
   exhaustive search), the first such answer is the final answer with confidence **1.0**.
2. **No answer.**  If no step answered, confidence is **0.0**.
3. **Combined.**  Otherwise only *independent* steps count.  A step is independent unless it
   was handed the leading answer as its starting candidate and gave that same answer back
   unchanged (and unverified): TRM refining the candidate and keeping it ("beats 0 of 6
   alternatives", "no change") repeats an answer, it does not vouch for it a second time.  HRM
   and MCTS never see the candidate, so their answers are always independent.

   Independent steps are grouped by answer; the chosen answer has the largest summed
   confidence (ties: more steps, then the earlier step).  With ``c_i`` the confidences of the
   independent steps that gave it and ``d_j`` those of the independent steps that gave another
   answer::

       agreement  A = sum(c_i) / (sum(c_i) + sum(d_j))        (1 with no other answer)
       combined   C = 1 - prod(1 - c_i)                       (noisy-OR of the supporters)
       confidence = A * C

   ``A`` is shown only when at least two independent answers exist (step 1 has no agreement
   to show); when every independent confidence is 0 it is the supporters' share of the
   independent answers by count.

For freeform text the step confidences are corpus support (the share of the question's terms
the cited text covers), not a judged quality; the same rule applies and the figure keeps that
label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "RULE",
    "ConfidenceExplanation",
    "RuleStep",
    "StepLike",
    "StepRole",
    "final_confidence",
    "is_independent",
    "step_role",
]

RULE = (
    "Verified (rules-checked or proven) answer: 1.0. Otherwise only independent steps count (a step "
    "that got the leading answer as its candidate and returned it unchanged is a repeat, not "
    "counted): confidence = agreement × combined, where agreement = the chosen answer's share of the "
    "independent steps' summed confidence and combined = 1 − ∏(1 − c) over the independent steps "
    "that gave the chosen answer."
)
"""The rule in one paragraph, as the console shows it."""

Basis = Literal["verified", "combined", "none"]


class StepLike(Protocol):
    """What the rule reads of a step (``engine.models.StepRecord`` has all of it).

    ``index`` is 0-based; ``refined_from`` the candidate answer the agent started from (None
    when it worked without one)."""

    @property
    def index(self) -> int: ...
    @property
    def agent(self) -> str: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def confidence(self) -> float: ...
    @property
    def exact(self) -> bool: ...
    @property
    def refined_from(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RuleStep:
    """A step as the rule reads it (a :class:`StepLike`), for callers that hold no
    ``StepRecord``: the loop's votes, a trace's agent spans."""

    index: int
    agent: str
    answer: str | None
    confidence: float
    exact: bool
    refined_from: str | None


@dataclass(frozen=True, slots=True)
class ConfidenceExplanation:
    """The final answer and confidence of a run of steps, and the terms they came from.

    ``value`` is the confidence (0..1); ``basis`` which case of the rule applied;
    ``agreement`` the chosen answer's share of independent confidence (None when fewer than two
    independent answers exist: nothing to agree with); ``combined`` the noisy-OR of the
    supporters' confidences (None unless ``basis == "combined"``); ``supporters`` the
    independent steps (1-based step number, agent, confidence) that gave the answer;
    ``dissent`` those that gave another; ``repeats`` the steps not counted because they
    returned the candidate they were given; ``text`` all of it in words, with the arithmetic.
    """

    value: float
    answer: str | None
    basis: Basis
    agreement: float | None
    combined: float | None
    supporters: tuple[tuple[int, str, float], ...]
    dissent: tuple[tuple[int, str, float], ...]
    repeats: tuple[tuple[int, str], ...]
    text: str

    @property
    def supporter_agents(self) -> tuple[str, ...]:
        """The agents of :attr:`supporters`, in step order."""
        return tuple(agent for _, agent, _ in self.supporters)


StepRole = Literal["verified", "independent", "repeat", "no answer"]


def step_role(answer: str | None, exact: bool, refined_from: str | None) -> StepRole:
    """How the rule counts a step with this ``answer``: ``verified`` (exact), ``independent``,
    ``repeat`` (returned unchanged the candidate it was handed: not counted) or ``no answer``."""
    if answer is None:
        return "no answer"
    if exact:
        return "verified"
    return "repeat" if refined_from is not None and answer == refined_from else "independent"


def is_independent(step: StepLike) -> bool:
    """Whether ``step``'s answer counts as independent evidence: it answered, and it was not handed
    that same answer as its starting candidate -- unless it verified it (``exact``)."""
    return step_role(step.answer, step.exact, step.refined_from) in ("verified", "independent")


def _names(items: Sequence[tuple[int, str, float]]) -> str:
    return ", ".join(f"{agent} (step {n}) {c:.2f}" for n, agent, c in items)


def final_confidence(steps: Sequence[StepLike]) -> ConfidenceExplanation:
    """Apply the rule (module docstring, :data:`RULE`) to ``steps`` in the order they ran.

    Returns the final answer, its confidence in 0..1 and the terms, in words.  Raises
    ValueError when a step's confidence is outside 0..1 (not a confidence).
    """
    for s in steps:
        if not 0.0 <= s.confidence <= 1.0:
            raise ValueError(f"step {s.index + 1} ({s.agent}): confidence {s.confidence!r} is not in 0..1")
    for s in steps:
        if s.exact and s.answer is not None:
            return ConfidenceExplanation(
                1.0,
                s.answer,
                "verified",
                None,
                None,
                ((s.index + 1, s.agent, s.confidence),),
                (),
                (),
                f"1.00: verified by {s.agent} (step {s.index + 1}), rules-checked or proven exact",
            )
    answered = [s for s in steps if s.answer is not None]
    if not answered:
        return ConfidenceExplanation(
            0.0, None, "none", None, None, (), (), (), "0.00: no step produced an answer"
        )
    votes = [s for s in answered if is_independent(s)]
    repeats = tuple((s.index + 1, s.agent) for s in answered if not is_independent(s))
    groups: dict[str, list[StepLike]] = {}
    for s in votes:
        groups.setdefault(s.answer, []).append(s)  # type: ignore[arg-type]  # answered above
    order = list(groups)
    lead = max(order, key=lambda a: (sum(s.confidence for s in groups[a]), len(groups[a]), -order.index(a)))
    backers = groups[lead]
    others = [s for s in votes if s.answer != lead]
    mine, total = sum(s.confidence for s in backers), sum(s.confidence for s in votes)
    share = mine / total if total > 0 else len(backers) / len(votes)
    miss = 1.0
    for s in backers:
        miss *= 1.0 - s.confidence
    combined = 1.0 - miss
    value = share * combined
    supporters = tuple((s.index + 1, s.agent, s.confidence) for s in backers)
    dissent = tuple((s.index + 1, s.agent, s.confidence) for s in others)
    shown = share if len(votes) >= 2 else None
    if len(backers) == 1:
        s0 = backers[0]
        combined_text = f"combined: {s0.agent} (step {s0.index + 1}) alone, {combined:.2f}"
    else:
        combined_text = (
            "combined: 1 − "
            + " × ".join(f"(1 − {s.confidence:.2f})" for s in backers)
            + f" = {combined:.2f} over {_names(supporters)}"
        )
    if shown is None:
        text = (
            f"{value:.2f} = combined {combined:.2f} (no second independent answer: no agreement to weigh); "
        )
        text += combined_text
    else:
        if total > 0:
            share_text = f"agreement: {mine:.2f} of {total:.2f} independent confidence backs this answer" + (
                f" (against {_names(dissent)})" if dissent else ""
            )
        else:
            share_text = (
                f"agreement: {len(backers)} of {len(votes)} independent answers (all at confidence 0)"
            )
        text = f"{value:.2f} = agreement {share:.2f} × combined {combined:.2f}; {share_text}; {combined_text}"
    if repeats:
        text += "; not counted (returned the candidate it was given unchanged): " + ", ".join(
            f"{agent} (step {n})" for n, agent in repeats
        )
    return ConfidenceExplanation(value, lead, "combined", shown, combined, supporters, dissent, repeats, text)
