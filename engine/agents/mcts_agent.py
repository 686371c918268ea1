"""The MCTS agent: runs ``engine.mcts.search`` on the task's position.

Confidence: 1 when the solver proved the recommended move's value equal to
the root's (or, for puzzles, found a rules-checked solution or proved there
is none); otherwise the visit share of the recommended move.
"""

from __future__ import annotations

from engine.agents.base import AgentContext, AgentOutput, AgentUnavailable, AnswerKind
from engine.agents.puzzle24 import extract_answer
from engine.mcts import search

__all__ = ["mcts"]


def mcts(ctx: AgentContext) -> AgentOutput:
    """Search the position; answer with the most visited (or proven best) move."""
    task = ctx.task
    if task is None:
        raise AgentUnavailable("MCTS needs a task with moves; freeform text has none")
    config = ctx.mcts.model_copy(update={"seed": ctx.seed})
    result = search(task, ctx.state, config, ctx.on_snapshot)
    s = result.stats
    where = f"{s.iterations} iterations, stopped: {s.termination_reason}"
    if task.num_players == 1:
        answer, exact = extract_answer(task, result)
        if answer is None:
            return AgentOutput(None, 0.0, f"no solution found ({where})", "none", search=result)
        kind: AnswerKind = "no_solution" if answer == "no solution" else "expression"
        why = "search exhausted: proven impossible" if kind == "no_solution" else "found and checked exactly"
        return AgentOutput(answer, 1.0, f"{answer}: {why} ({where})", kind, exact, search=result)
    tree = result.tree
    best = tree.best_child(0)
    root_proven, best_proven = tree.proven(0), tree.proven(best)
    if root_proven is not None and best_proven is not None and best_proven == root_proven:
        return AgentOutput(
            s.best_action_label,
            1.0,
            f"{s.best_action_label} proven best (value {best_proven:+g}; {where})",
            "move",
            True,
            search=result,
        )
    share = s.best_action_visits / max(s.root_visits, 1)
    return AgentOutput(
        s.best_action_label,
        share,
        f"{s.best_action_label} holds {share:.0%} of {s.root_visits} visits ({where})",
        "move",
        search=result,
    )
