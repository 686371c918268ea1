"""A flat search tree: parallel Python lists indexed by node id.

Parallel lists keep the hot loop to plain list indexing and make the tree
cheap to export (``Tree.export`` gives one numpy array per column).  Node 0 is
the root.  ``W[i]`` sums the returns of the player who chose the move into
node ``i`` (``mover[i]``); for the root, ``mover`` is the player to move there,
so ``W[0] / N[0]`` is the root value from the root player's perspective.
``term[i]`` holds the exact returns of a terminal or proven node, else None.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.mcts.solver import ProofStatus, proof_status
from engine.tasks.base import Task

__all__ = ["Tree"]


class Tree:
    """The search tree.  Grow it only through ``add``."""

    __slots__ = (
        "N",
        "P",
        "W",
        "action",
        "active",
        "children",
        "depth",
        "mover",
        "parent",
        "player",
        "reward_range",
        "state",
        "term",
        "untried",
    )

    def __init__(self, reward_range: tuple[float, float]) -> None:
        self.reward_range = reward_range
        self.parent: list[int] = []
        self.action: list[Any] = []
        self.children: list[list[int]] = []
        self.active: list[list[int]] = []  # children still worth selecting (not proven losses)
        self.untried: list[list[Any]] = []
        self.N: list[int] = []
        self.W: list[float] = []
        self.P: list[float] = []
        self.player: list[int] = []
        self.mover: list[int] = []
        self.depth: list[int] = []
        self.state: list[Any] = []
        self.term: list[tuple[float, ...] | None] = []

    def __len__(self) -> int:
        return len(self.N)

    def add(
        self,
        parent: int,
        action: Any,
        state: Any,
        player: int,
        untried: list[Any],
        prior: float,
        term: tuple[float, ...] | None,
    ) -> int:
        """Append a node and link it under ``parent`` (-1 for the root); returns its id."""
        i = len(self.N)
        self.parent.append(parent)
        self.action.append(action)
        self.children.append([])
        self.active.append([])
        self.untried.append(untried)
        self.N.append(0)
        self.W.append(0.0)
        self.P.append(prior)
        self.player.append(player)
        self.state.append(state)
        self.term.append(term)
        if parent >= 0:
            self.mover.append(self.player[parent])
            self.depth.append(self.depth[parent] + 1)
            self.children[parent].append(i)
            self.active[parent].append(i)
        else:
            self.mover.append(player)
            self.depth.append(0)
        return i

    def q(self, i: int) -> float:
        """Mean return of node ``i`` for its mover (0.0 when unvisited)."""
        n = self.N[i]
        return self.W[i] / n if n else 0.0

    def proven(self, i: int) -> float | None:
        """The exact value of node ``i`` for its mover, if known."""
        t = self.term[i]
        return None if t is None else t[self.mover[i]] + 0.0  # + 0.0: a draw reads 0, never -0

    def status(self, i: int) -> ProofStatus:
        """The proof status of node ``i`` for its mover (win / loss / draw / exact / unproven)."""
        return proof_status(self.proven(i), self.reward_range)

    def best_child(self, i: int) -> int:
        """The child to recommend: a proven best-possible result first, never a
        proven worst-possible one while another exists; then the most visited,
        ties broken by mean value.  -1 when ``i`` has no children."""
        kids = self.children[i]
        if not kids:
            return -1
        lo, hi = self.reward_range

        def rank(k: int) -> tuple[int, int, float]:
            v = self.proven(k)
            tier = 1 if v is None else 2 if v >= hi else 0 if v <= lo else 1
            return tier, self.N[k], self.q(k)

        return max(kids, key=rank)

    def principal_variation(self, start: int = 0, max_len: int = 64) -> list[int]:
        """Node ids from ``start`` following ``best_child`` (excluding ``start``)."""
        pv: list[int] = []
        node = start
        while len(pv) < max_len:
            node = self.best_child(node)
            if node < 0:
                break
            pv.append(node)
        return pv

    def label(self, task: Task, i: int) -> str:
        """The action label of node ``i`` as seen from its parent's state."""
        p = self.parent[i]
        return "root" if p < 0 else task.action_label(self.state[p], self.action[i])

    def export(self, task: Task) -> dict[str, np.ndarray]:
        """Columns of the whole tree as numpy arrays (one row per node)."""
        n = len(self)
        visits = np.asarray(self.N, dtype=np.int64)
        return {
            "id": np.arange(n, dtype=np.int64),
            "parent": np.asarray(self.parent, dtype=np.int64),
            "depth": np.asarray(self.depth, dtype=np.int32),
            "label": np.asarray([self.label(task, i) for i in range(n)], dtype=object),
            "visits": visits,
            "value": np.divide(
                np.asarray(self.W, dtype=np.float64), visits, out=np.zeros(n), where=visits > 0
            ),
            "prior": np.asarray(self.P, dtype=np.float64),
            "player": np.asarray(self.player, dtype=np.int8),
            "proven": np.asarray(
                [np.nan if t is None else t[m] for t, m in zip(self.term, self.mover, strict=True)]
            ),
        }
