"""Generic Monte Carlo Tree Search over any ``engine.tasks.Task``.

>>> from engine.tasks import load_task
>>> from engine.mcts import SearchConfig, search
>>> task = load_task("tictactoe")
>>> result = search(task, task.parse("X.O/.X./..O"), SearchConfig(iterations=1000, seed=7))
"""

from engine.mcts.search import TerminalStateError, fresh_seed, search
from engine.mcts.selection import RULES, puct, ucb1
from engine.mcts.solver import STATUS_LABELS, ProofStatus, proof_status, solver_value
from engine.mcts.tree import Tree
from engine.mcts.types import (
    ActionStat,
    SearchConfig,
    SearchResult,
    SearchStats,
    SnapshotNode,
    TerminationReason,
    TreeSnapshot,
)

__all__ = [
    "RULES",
    "STATUS_LABELS",
    "ActionStat",
    "ProofStatus",
    "SearchConfig",
    "SearchResult",
    "SearchStats",
    "SnapshotNode",
    "TerminalStateError",
    "TerminationReason",
    "Tree",
    "TreeSnapshot",
    "fresh_seed",
    "proof_status",
    "puct",
    "search",
    "solver_value",
    "ucb1",
]
