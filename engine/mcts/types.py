"""Typed values the search hands out: configuration, stats, snapshots, result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.mcts.solver import ProofStatus, solver_value

__all__ = [
    "ActionStat",
    "SearchConfig",
    "SearchResult",
    "SearchStats",
    "Selection",
    "SnapshotNode",
    "TerminationReason",
    "TreeSnapshot",
]

Selection = Literal["ucb1", "puct"]
TerminationReason = Literal[
    "iterations",  # the iteration budget was spent
    "time_limit",  # config.time_limit_s elapsed
    "visit_share",  # the best root action holds stop_visit_share of the visits
    "value_converged",  # the root value moved less than stop_value_delta over a window
    "solved",  # the root's value is proven (a forced result or a max-reward solution)
    "exhausted",  # every node of the game tree is expanded and proven
]


class SearchConfig(BaseModel):
    """Search parameters, validated.

    ``seed=None`` draws a fresh seed, which is recorded in the stats; 0 is a
    real seed.  ``widening_k=None`` turns progressive widening off; otherwise a
    node may have at most ``ceil(widening_k * N ** widening_alpha)`` children.
    Early termination is off unless ``stop_visit_share`` or
    ``stop_value_delta`` is set; it is checked every ``check_every`` iterations
    after ``min_iterations``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    iterations: int = Field(1000, ge=1, le=1_000_000)
    seed: int | None = Field(None, ge=0, lt=2**63)
    c: float = Field(1.414, ge=0.0, le=100.0)
    selection: Selection = "ucb1"
    rollout: Literal["random"] = "random"
    widening_k: float | None = Field(None, gt=0.0)
    widening_alpha: float = Field(0.5, gt=0.0, le=1.0)
    cache: bool = True
    solver: bool = True
    stop_visit_share: float | None = Field(None, gt=0.5, le=1.0)
    stop_value_delta: float | None = Field(None, gt=0.0)
    stop_on_solution: bool = True
    min_iterations: int = Field(100, ge=1)
    check_every: int = Field(100, ge=1)
    time_limit_s: float | None = Field(None, gt=0.0)
    snapshot_every: int = Field(0, ge=0)
    snapshot_top_k: int = Field(4, ge=1, le=50)
    snapshot_max_depth: int = Field(6, ge=1, le=50)
    snapshot_max_nodes: int = Field(200, ge=1, le=5000)

    @model_validator(mode="after")
    def _check(self) -> SearchConfig:
        if self.check_every > self.iterations and (self.stop_visit_share or self.stop_value_delta):
            raise ValueError("check_every must not exceed iterations when early termination is on")
        return self


@dataclass(frozen=True, slots=True)
class ActionStat:
    """One root action: visits, mean value for the player choosing it, prior.

    ``proven`` is the solver's exact value for the player choosing it (None if unproven) and
    ``status`` its reading (``engine.mcts.solver.proof_status``)."""

    action: Any
    label: str
    visits: int
    value: float
    prior: float
    proven: float | None = None
    status: ProofStatus = "unproven"

    @property
    def shown_value(self) -> float:
        """The solver-true value: the proven one if there is one, else the mean Q."""
        return solver_value(self.value, self.proven)


@dataclass(frozen=True, slots=True)
class SearchStats:
    """What a search did; mirrors the reference framework's stats."""

    iterations: int
    root_visits: int
    root_value: float
    best_action: Any
    best_action_label: str
    best_action_visits: int
    best_action_value: float
    action_stats: tuple[ActionStat, ...]
    total_simulations: int
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float
    seed: int
    termination_reason: TerminationReason
    elapsed_s: float
    sims_per_sec: float
    tree_size: int
    max_depth: int
    root_proven: float | None = None  # the solver's exact root value (player to move), if proven
    root_status: ProofStatus = "unproven"

    @property
    def shown_root_value(self) -> float:
        """The solver-true root value: the proven one if the root is proven, else the mean Q."""
        return solver_value(self.root_value, self.root_proven)


@dataclass(frozen=True, slots=True)
class SnapshotNode:
    """One node of a tree snapshot.

    ``value`` is the mean return for the player who chose ``action``;
    ``exploit`` and ``explore`` are the two terms of the selection score seen
    from the parent (0 for the root).  ``proven`` is the solver's exact value
    for that same player (None if unproven), ``status`` its reading.
    """

    id: int
    parent: int  # -1 for the root
    depth: int
    label: str  # the action that led here ("root" for the root)
    visits: int
    value: float
    prior: float
    exploit: float
    explore: float
    on_pv: bool
    proven: float | None = None
    status: ProofStatus = "unproven"

    @property
    def shown_value(self) -> float:
        """The solver-true value: the proven one if there is one, else the mean Q."""
        return solver_value(self.value, self.proven)


@dataclass(frozen=True, slots=True)
class TreeSnapshot:
    """The top of the tree after ``iteration`` iterations (principal variation
    plus the top-k children per node), small enough to draw live.

    ``actions`` holds every root action as it stood then (most visited first), so
    views of a scrubbed snapshot show that moment, not the end of the search.
    ``root_value`` is the root's mean Q; ``root_proven``/``root_status`` the solver's
    exact value and its reading, both for the player to move at the root."""

    iteration: int
    elapsed_s: float
    tree_size: int
    nodes: tuple[SnapshotNode, ...]
    pv: tuple[str, ...]  # action labels along the principal variation
    root_value: float
    best_action_label: str
    actions: tuple[ActionStat, ...] = ()
    root_proven: float | None = None
    root_status: ProofStatus = "unproven"

    @property
    def shown_root_value(self) -> float:
        """The solver-true root value: the proven one if the root is proven, else the mean Q."""
        return solver_value(self.root_value, self.root_proven)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The outcome of ``search``: the recommended action, stats, snapshots,
    the tree, and for single-player tasks the best terminal state found."""

    best_action: Any
    stats: SearchStats
    tree: Any  # engine.mcts.tree.Tree
    pv: tuple[str, ...]
    snapshots: tuple[TreeSnapshot, ...] = field(default=())
    best_terminal: Any = None
    best_terminal_return: float | None = None
    config: SearchConfig | None = None
