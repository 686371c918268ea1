"""The ordered comparison of a replay against its golden, naming every divergence.

Order (the first divergence is the first of these that differs): the routing sequence (length,
then per step the agent, the probabilities within a tolerance, the reason), the span tree (names
and shape in pre-order, then each span's behaviour attributes), the answer, the verdict, and the
quality (no lower than the golden's minus a tolerance; higher is never a regression).  Latency is
not compared here: it never fails a trace (the suite judges it across all traces).

Messages name the place exactly, e.g. ``routing step 2: expected trm, got mcts (p_trm 0.61 -> 0.38)``
or ``answer: expected 8*(7+4-8), got no solution``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from engine.golden.format import GoldenFile, GoldenSpan, GoldenStep, span_paths
from engine.names import step_number

__all__ = ["Divergence", "Observation", "Section", "compare"]

Section = Literal["routing", "spans", "answer", "verdict", "quality"]

#: Relative tolerance of floating-point span attributes (e.g. confidences): rounding differences
#: between machines are not behaviour.
_ATTR_REL_TOL = 1e-9


@dataclass(frozen=True, slots=True)
class Observation:
    """What one replay did, in the golden file's terms (``latency_ms``: total, ms;
    ``span_latency_ms``: span path -> ms)."""

    answer: str
    verdict: str
    quality: float | None
    routing: tuple[GoldenStep, ...]
    spans: tuple[GoldenSpan, ...]
    latency_ms: float
    span_latency_ms: dict[str, float]
    request_id: str
    trace_id: str


@dataclass(frozen=True, slots=True)
class Divergence:
    """One difference between golden and replay: its ``section``, where exactly, the two values
    and the full message.  ``where`` is ``routing step N`` (N the step's number, from 1), ``routing`` (the
    number of steps), ``span PATH`` (PATH as :func:`~engine.golden.format.span_paths` names it: in
    the golden's tree, or the replay's for an unexpected span), ``answer``, ``verdict`` or ``quality``."""

    section: Section
    where: str
    expected: Any
    got: Any
    message: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (for the ``diff`` column and ``--json``)."""
        return {
            "section": self.section,
            "where": self.where,
            "expected": self.expected,
            "got": self.got,
            "message": self.message,
        }


def _fmt(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _prob(value: float | None) -> str:
    return "none" if value is None else f"{value:.6f}"


def _routing(golden: list[GoldenStep], got: tuple[GoldenStep, ...], tol: float) -> list[Divergence]:
    out: list[Divergence] = []
    for g, o in zip(golden, got, strict=False):
        where = f"routing step {step_number(g.step)}"
        if g.agent != o.agent:
            gp, op = g.probabilities.get(g.agent), o.probabilities.get(g.agent)
            detail = f" (p_{g.agent} {gp:.2f} -> {op:.2f})" if gp is not None and op is not None else ""
            out.append(
                Divergence(
                    "routing", where, g.agent, o.agent, f"{where}: expected {g.agent}, got {o.agent}{detail}"
                )
            )
            continue
        for agent in sorted(set(g.probabilities) | set(o.probabilities)):
            gp, op = g.probabilities.get(agent), o.probabilities.get(agent)
            if gp is None or op is None or abs(gp - op) > tol:
                out.append(
                    Divergence(
                        "routing",
                        where,
                        gp,
                        op,
                        f"{where}: p_{agent} {_prob(gp)} -> {_prob(op)} (tolerance {tol:g})",
                    )
                )
                break
        if g.reason != o.reason:
            out.append(
                Divergence(
                    "routing",
                    where,
                    g.reason,
                    o.reason,
                    f"{where}: reason expected {g.reason!r}, got {o.reason!r}",
                )
            )
    if len(golden) != len(got):
        where = "routing"
        extra = (
            f"step {step_number(golden[len(got)].step)} ({golden[len(got)].agent}) missing"
            if len(golden) > len(got)
            else f"extra step {step_number(got[len(golden)].step)} ({got[len(golden)].agent})"
        )
        out.append(
            Divergence(
                "routing",
                where,
                len(golden),
                len(got),
                f"routing: expected {len(golden)} steps, got {len(got)}: {extra}",
            )
        )
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=_ATTR_REL_TOL, abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _spans(golden: list[GoldenSpan], got: tuple[GoldenSpan, ...]) -> list[Divergence]:
    gp, op = list(span_paths(golden)), list(span_paths(list(got)))
    gnames, onames = [p for p, _ in gp], [p for p, _ in op]
    if gnames != onames:
        for i, (a, b) in enumerate(zip(gnames, onames, strict=False)):
            if a != b:
                message = f"span tree at span #{i}: expected {a}, got {b}"
                return [Divergence("spans", f"span {a}", a, b, message)]
        if len(gnames) > len(onames):
            missing = gnames[len(onames)]
            message = f"span tree: expected {missing}, missing"
            return [Divergence("spans", f"span {missing}", missing, None, message)]
        extra = onames[len(gnames)]
        return [Divergence("spans", f"span {extra}", None, extra, f"span tree: unexpected span {extra}")]
    out: list[Divergence] = []
    for (path, gs), (_, os_) in zip(gp, op, strict=True):
        for key in sorted(set(gs.attributes) | set(os_.attributes)):
            want, have = gs.attributes.get(key), os_.attributes.get(key)
            if key not in os_.attributes or key not in gs.attributes or not _same(want, have):
                where = f"span {path}"
                message = f"{where}: {key} expected {_short(want)}, got {_short(have)}"
                out.append(Divergence("spans", where, want, have, message))
    return out


def compare(
    golden: GoldenFile, observed: Observation, *, prob_tolerance: float, quality_tolerance: float
) -> tuple[Divergence, ...]:
    """Every divergence of ``observed`` from ``golden``, in the comparison order (empty: a pass).

    ``prob_tolerance``: largest absolute difference of a routing probability that is not a
    divergence; ``quality_tolerance``: quality may fall this far below the golden's.
    """
    out = _routing(golden.routing, observed.routing, prob_tolerance)
    out += _spans(golden.spans, observed.spans)
    if golden.answer != observed.answer:
        out.append(
            Divergence(
                "answer",
                "answer",
                golden.answer,
                observed.answer,
                f"answer: expected {golden.answer or '(empty)'}, got {observed.answer or '(empty)'}",
            )
        )
    if golden.verdict != observed.verdict:
        out.append(
            Divergence(
                "verdict",
                "verdict",
                golden.verdict,
                observed.verdict,
                f"verdict: expected {golden.verdict}, got {observed.verdict}",
            )
        )
    gq, oq = golden.quality, observed.quality
    if gq is not None and (oq is None or oq < gq - quality_tolerance):
        out.append(
            Divergence(
                "quality",
                "quality",
                gq,
                oq,
                f"quality: expected at least {_fmt(gq - quality_tolerance)} (golden {_fmt(gq)}), "
                f"got {_fmt(oq)}",
            )
        )
    return tuple(out)
