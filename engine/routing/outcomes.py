"""End-to-end outcomes of every routing choice of one query: the labels the GRU learns from,
and the routers' end-to-end results on the same runs.

For one query, :func:`explore` runs the engine's loop down every sequence of agent choices
(at most 3 + 3*2 + 3*2*1 = 15 agent runs for three agents): each agent sees the leading answer
of the agents before it, exactly as in ``Engine.stream``, and a branch ends where the loop's
own stop rule (``engine.loop.stop_decision``) ends it -- an exact answer, agreement, every
agent ran, or ``max_steps``.  A branch's *ending* is whether its final leading answer is
correct (the task's ground truth) and its total time (the sum of its agents' measured
latencies).

The label rule (:meth:`QueryTree.label`): at a routing state (the agents run so far), each
agent that has not run yet is scored by the best ending reachable after choosing it, the loop
then continuing with the best choices again; the label is the agent whose best ending is
correct, ties (both correct or both incorrect) going to the smaller total time, and exact
time ties to the first in ``AGENTS`` order (hrm, trm, mcts).

:meth:`QueryTree.replay` walks the same runs with any router (``RoutingStep``, so fallback
and "already ran" override apply as in the engine), and :meth:`QueryTree.fixed` gives the
single-agent baseline (one agent, its answer, no continuation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from engine.agents import AgentOutput
from engine.loop.consensus import agreement, stop_decision
from engine.loop.routing import RoutingStep, features_after
from engine.models import AGENTS
from engine.routing.features import RoutingState

__all__ = ["Ending", "Node", "QueryTree", "StepFn", "explore"]

Path = tuple[str, ...]
#: Runs ``agent`` after the agents of ``path`` (their outputs given): (its output, seconds).
StepFn = Callable[[Path, str, Mapping[str, AgentOutput]], tuple[AgentOutput, float]]


@dataclass(frozen=True, slots=True)
class Node:
    """The loop after the agents of ``path`` ran, in order.

    ``outputs`` are their outputs (without search trees); ``seconds`` the last agent's
    latency; ``answer`` the leading answer now; ``correct`` whether it is right;
    ``stop``/``reason`` the loop's stop rule after this step; ``mcts_value`` the latest MCTS
    root value scaled to 0..1 (0 before MCTS ran), as the routing features carry it.
    """

    path: Path
    outputs: Mapping[str, AgentOutput]
    seconds: float
    answer: str | None
    correct: bool
    stop: bool
    reason: str
    mcts_value: float
    agreement_score: float


@dataclass(frozen=True, slots=True)
class Ending:
    """Where a sequence of choices ends: the agents run, correct or not, total seconds."""

    path: Path
    correct: bool
    seconds: float

    def key(self) -> tuple[bool, float]:
        """Sort key: correct endings first, then the faster one."""
        return (not self.correct, self.seconds)


@dataclass(frozen=True, slots=True)
class QueryTree:
    """Every node the loop can reach for one query (keyed by the agents run, in order)."""

    usable: tuple[str, ...]
    nodes: Mapping[Path, Node]
    query_length: int

    def seconds(self, path: Path) -> float:
        """Total agent seconds of ``path``."""
        return sum(self.nodes[path[: i + 1]].seconds for i in range(len(path)))

    def best(self, path: Path) -> Ending:
        """The best ending reachable from the node ``path`` (itself when the loop stops there; ``()``
        is the start of the query)."""
        node = self.nodes.get(path)
        if node is not None and node.stop:
            return Ending(path, node.correct, self.seconds(path))
        return min((self.best((*path, a)) for a in self.fresh(path)), key=Ending.key)

    def fresh(self, path: Path) -> list[str]:
        """The usable agents that have not run after ``path``, in ``AGENTS`` order."""
        return [a for a in AGENTS if a in self.usable and a not in path]

    def label(self, path: Path) -> tuple[str, Ending]:
        """The labelled agent at the state after ``path`` (see the module docstring) and the best
        ending it leads to."""
        choices = [(a, self.best((*path, a))) for a in self.fresh(path)]
        agent, ending = min(choices, key=lambda c: (*c[1].key(), AGENTS.index(c[0])))
        return agent, ending

    def features(self, path: Path) -> RoutingState:
        """The routing features the engine computes before choosing after ``path``."""
        if not path:
            return RoutingState(query_length=self.query_length)
        node = self.nodes[path]
        return features_after(
            node.outputs,
            agreement(node.outputs),
            node.mcts_value,
            path[-1],
            len(path) - 1,
            self.query_length,
            False,
        )

    def replay(self, routing: RoutingStep, max_steps: int) -> Ending:
        """Where ``routing`` (a fresh RoutingStep of the router) takes this query."""
        path: Path = ()
        for index in range(max_steps):
            if all(a in path for a in routing.usable):
                break
            decision = routing.decide(index, self.features(path), set(path))
            path = (*path, decision.chosen)
            if self.nodes[path].stop:
                break
        node = self.nodes[path]
        return Ending(path, node.correct, self.seconds(path))

    def fixed(self, agent: str) -> Ending:
        """The single-agent baseline: ``agent`` runs once and its answer is the answer."""
        node = self.nodes[(agent,)]
        return Ending((agent,), node.correct, node.seconds)


def explore(
    step: StepFn,
    usable: tuple[str, ...],
    correct: Callable[[str | None], bool],
    *,
    max_steps: int,
    agree_at: float,
    query_length: int,
    mcts_value: Callable[[AgentOutput], float | None] = lambda out: None,
) -> QueryTree:
    """Run every sequence of agent choices the loop allows (see the module docstring).

    ``step`` runs one agent; ``correct`` judges a leading answer against the ground truth;
    ``mcts_value`` gives an output's MCTS root value in 0..1 (None without a search).  Each
    node's outputs are kept without their search trees.  Raises whatever ``step`` raises.
    """
    nodes: dict[Path, Node] = {}

    def grow(path: Path, outputs: dict[str, AgentOutput], mv: float) -> None:
        for agent in (a for a in AGENTS if a in usable and a not in path):
            out, seconds = step(path, agent, outputs)
            value = mcts_value(out)
            slim = {**outputs, agent: dataclasses.replace(out, search=None)}
            agreed = agreement(slim)
            stop, reason = stop_decision(out, agreed, agree_at, len(path), max_steps, usable, slim)
            here = (*path, agent)
            nv = mv if value is None else value
            nodes[here] = Node(
                here, slim, seconds, agreed.answer, correct(agreed.answer), stop, reason, nv, agreed.score
            )
            if not stop:
                grow(here, slim, nv)

    grow((), {}, 0.0)
    return QueryTree(tuple(a for a in AGENTS if a in usable), nodes, query_length)
