"""The confidence rule (``engine.loop.confidence``) applied to a recorded trace: its steps are
rebuilt from the ``agent.<name>`` spans, which carry each step's number, answer, confidence and
whether it was exact.  No streamlit here, so it is tested as a pure function."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.loop.confidence import ConfidenceExplanation, RuleStep, final_confidence

__all__ = ["steps_from_spans", "trace_confidence"]

_REFINERS = frozenset({"trm"})
"""Agents handed the leading answer as their starting candidate (HRM and MCTS never see it)."""


def steps_from_spans(spans: Sequence[Any]) -> list[RuleStep] | None:
    """The steps of a trace from its agent spans (objects with ``name`` and ``attributes``), in
    step order; None when a step's span lacks its step number or confidence (an agent that
    failed, or a trace recorded without them)."""
    raw: list[tuple[int, str, str | None, float, bool]] = []
    for span in spans:
        name, attrs = getattr(span, "name", ""), getattr(span, "attributes", None)
        if not isinstance(name, str) or not name.startswith("agent.") or not isinstance(attrs, dict):
            continue
        step, confidence, answer = attrs.get("step"), attrs.get("confidence"), attrs.get("answer")
        if not isinstance(step, int) or isinstance(step, bool) or not isinstance(confidence, int | float):
            return None
        if answer is not None and not isinstance(answer, str):
            return None
        raw.append((step, name.removeprefix("agent."), answer, float(confidence), attrs.get("exact") is True))
    if not raw:
        return None
    out: list[RuleStep] = []
    for step, agent, answer, confidence, exact in sorted(raw):
        given = final_confidence(out).answer if agent in _REFINERS else None
        out.append(RuleStep(step, agent, answer, confidence, exact, given))
    return out


def trace_confidence(
    spans: Sequence[Any], recorded: float | None
) -> tuple[ConfidenceExplanation | None, str]:
    """The rule applied to a trace's agent spans, and a note for the reader: the arithmetic when it
    reproduces the ``recorded`` confidence (to 1e-9), else why it cannot be shown.  Raises nothing
    on malformed spans (the note says so)."""
    steps = steps_from_spans(spans)
    if steps is None:
        return None, "The steps' spans are incomplete: the confidence cannot be recomputed from them."
    try:
        explained = final_confidence(steps)
    except ValueError as exc:
        return None, f"The recorded steps are not valid confidences: {exc}"
    if recorded is None or abs(explained.value - recorded) > 1e-9:
        shown = "none" if recorded is None else f"{recorded:.2f}"
        return explained, (
            f"The rule applied to the recorded steps gives {explained.value:.2f}, not the recorded "
            f"{shown}: this request was answered under an earlier rule or its steps were not all recorded."
        )
    return explained, explained.text
