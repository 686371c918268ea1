"""The search loop: select, expand, simulate, back up.

One iteration descends from the root by the selection rule, expands one
untried action, evaluates the new leaf (exactly if terminal, else by a
rollout, memoised by state key in the simulation cache) and backs the returns
up the path.  With ``solver`` on, exact values of terminal leaves are
propagated (MCTS-Solver): a node with a winning child, or whose children are
all proven, is proven itself and then behaves like a terminal node; proven
losses are no longer selected.  For single-player tasks a rollout that reaches
the maximum reward proves its start node, since the task is deterministic.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from math import ceil
from typing import Any

import numpy as np

from engine.mcts.selection import RULES, SelectRule, puct_expand_first
from engine.mcts.snapshots import root_actions, take_snapshot
from engine.mcts.tree import Tree
from engine.mcts.types import (
    SearchConfig,
    SearchResult,
    SearchStats,
    TerminationReason,
    TreeSnapshot,
)
from engine.tasks.base import Returns, Task, Uniform

__all__ = ["Prior", "Rollout", "SnapshotCallback", "TerminalStateError", "fresh_seed", "search"]

Rollout = Callable[[Any, Uniform], tuple[Returns, Any]]
Prior = Callable[[Any, Sequence[Any]], Sequence[float]]
SnapshotCallback = Callable[[TreeSnapshot], None]


class TerminalStateError(ValueError):
    """Raised when asked to search a position where the game is already over."""


def fresh_seed() -> int:
    """A new random seed from the OS entropy pool (recorded by the caller).

    Kept below 2**53 so that it survives JSON and JavaScript numbers (links, UI).
    """
    entropy = np.random.SeedSequence().entropy
    if not isinstance(entropy, int):  # a SeedSequence made without entropy always draws an int
        raise TypeError(f"SeedSequence entropy is {type(entropy).__name__}, expected int")
    return entropy % 2**53


def _uniform_prior(state: Any, actions: Sequence[Any]) -> list[float]:
    return [1.0 / len(actions)] * len(actions) if actions else []


def search(
    task: Task,
    state: Any,
    config: SearchConfig | None = None,
    on_snapshot: SnapshotCallback | None = None,
    *,
    rollout: Rollout | None = None,
    prior: Prior | None = None,
    select: SelectRule | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> SearchResult:
    """Run MCTS from ``state`` and return the recommended action with stats.

    ``rollout`` defaults to ``task.rollout`` (a uniformly random playout),
    ``prior`` to the task's ``prior`` if it has one, else uniform; ``select``
    overrides the rule named by ``config.selection``.  ``on_snapshot`` is
    called every ``config.snapshot_every`` iterations and once at the end.
    Raises TerminalStateError when ``state`` is terminal.
    """
    cfg = config or SearchConfig()
    if task.is_terminal(state):
        raise TerminalStateError(f"the {task.name} position is already over: there is no move to search")
    seed = cfg.seed if cfg.seed is not None else fresh_seed()
    rng = np.random.default_rng(seed)
    # Rollouts draw from a stdlib Random seeded by the search's Generator: a numpy
    # call per draw costs ~300 ns, the stdlib's ~30 ns.  Nothing touches global state.
    rand = random.Random(int(rng.integers(2**63))).random
    roll = rollout or task.rollout
    prior_fn = prior or getattr(task, "prior", None) or _uniform_prior
    use_puct = cfg.selection == "puct"
    sel = select or RULES[cfg.selection]
    lo, hi = task.reward_range
    fpu = (lo + hi) / 2
    single = task.num_players == 1
    solver = cfg.solver and task.num_players in (1, 2)

    legal, apply, is_terminal = task.legal_actions, task.apply, task.is_terminal
    returns_of, player_of, key_of = task.returns, task.current_player, task.key

    tree = Tree(task.reward_range)
    N, W, P, term = tree.N, tree.W, tree.P, tree.term
    parent, mover, children, active, untried, states = (
        tree.parent,
        tree.mover,
        tree.children,
        tree.active,
        tree.untried,
        tree.state,
    )
    add = tree.add

    def untried_of(s: Any) -> list[Any]:
        actions = list(legal(s))
        if not use_puct:
            return actions
        return sorted(zip(prior_fn(s, actions), range(len(actions)), actions, strict=True))

    add(-1, None, state, player_of(state), untried_of(state), 1.0, None)

    cache: dict[Any, Returns] | None = {} if cfg.cache else None
    hits = misses = 0
    best_terminal: Any = None
    best_return = -1e300
    widen_k, widen_a = cfg.widening_k, cfg.widening_alpha
    c = cfg.c
    snap_every = cfg.snapshot_every
    snapshots: list[TreeSnapshot] = []
    early = cfg.stop_visit_share is not None or cfg.stop_value_delta is not None
    check_every = cfg.check_every
    deadline = None
    t0 = clock()
    if cfg.time_limit_s is not None:
        deadline = t0 + cfg.time_limit_s
    last_q = None
    reason: TerminationReason = "iterations"

    def settle(node: int, value: float) -> None:
        """Record ``value`` as the exact result for the player to move at ``node``."""
        if single:
            term[node] = (value,)
        else:
            term[node] = (value, -value) if tree.player[node] == 0 else (-value, value)

    def propagate(node: int) -> None:
        """``node`` has an exact value: update its parent, and prove the parent (and so on up)
        when a winning child or a fully proven set of children decides it."""
        while (p := parent[node]) >= 0:
            exact = term[node]
            assert exact is not None  # propagate() is only called on nodes with an exact value
            v = exact[mover[node]]  # value for the player choosing at p
            if v <= lo and node in active[p]:
                active[p].remove(node)
            if v < hi:
                if untried[p] or any(term[k] is None for k in children[p]):
                    return
                # every child is proven here (checked just above): the filter only narrows the type
                v = max(t[mover[k]] for k in children[p] if (t := term[k]) is not None)
            settle(p, v)
            node = p

    iteration = 0
    for iteration in range(1, cfg.iterations + 1):
        node = 0
        while True:
            r = term[node]
            if r is not None:
                break
            unt = untried[node]
            kids = active[node]
            if unt and (
                not kids
                or (
                    (widen_k is None or len(children[node]) < ceil(widen_k * N[node] ** widen_a))
                    and (not use_puct or puct_expand_first(kids, N, W, P, N[node], c, unt[-1][0], fpu))
                )
            ):
                if use_puct:
                    pr, _, a = unt.pop()
                else:
                    pr = 1.0 / (len(children[node]) + len(unt))
                    a = unt.pop(int(rand() * len(unt)))
                s = apply(states[node], a)
                if is_terminal(s):
                    r = returns_of(s)
                    child = add(node, a, s, player_of(s), [], pr, r)
                    if single and r[0] > best_return:
                        best_return, best_terminal = r[0], s
                    if solver:
                        propagate(child)
                else:
                    child = add(node, a, s, player_of(s), untried_of(s), pr, None)
                    final = None
                    if cache is not None:
                        k = key_of(s)
                        r = cache.get(k)
                        if r is None:
                            misses += 1
                            r, final = roll(s, rand)
                            cache[k] = r
                        else:
                            hits += 1
                    else:
                        r, final = roll(s, rand)
                    if single and r[0] >= hi:
                        if final is not None and r[0] > best_return:
                            best_return, best_terminal = r[0], final
                        if solver:
                            settle(child, r[0])
                            propagate(child)
                node = child
                break
            node = sel(kids, N, W, P, N[node], c)
        while node >= 0:
            N[node] += 1
            W[node] += r[mover[node]]
            node = parent[node]

        if snap_every and iteration % snap_every == 0:
            snapshots.append(_snap(tree, task, cfg, iteration, clock() - t0))
            if on_snapshot is not None:
                on_snapshot(snapshots[-1])
        if solver and term[0] is not None and cfg.stop_on_solution:
            reason = "solved"
            break
        if deadline is not None and iteration % 16 == 0 and clock() >= deadline:
            reason = "time_limit"
            break
        if early and iteration >= cfg.min_iterations and iteration % check_every == 0:
            stop, last_q = _converged(tree, cfg, last_q)
            if stop is not None:
                reason = stop
                break

    elapsed = clock() - t0
    if (snap_every or on_snapshot is not None) and (not snapshots or snapshots[-1].iteration != iteration):
        snapshots.append(_snap(tree, task, cfg, iteration, elapsed))
        if on_snapshot is not None:
            on_snapshot(snapshots[-1])
    return _result(
        tree,
        task,
        cfg,
        seed,
        iteration,
        elapsed,
        reason,
        hits,
        misses,
        tuple(snapshots),
        best_terminal,
        None if best_terminal is None else best_return,
    )


def _converged(tree: Tree, cfg: SearchConfig, last_q: float | None) -> tuple[TerminationReason | None, float]:
    """Early termination: the reason to stop (or None) and the root value to compare next time."""
    N = tree.N
    if (
        cfg.stop_visit_share is not None
        and max(N[k] for k in tree.children[0]) >= cfg.stop_visit_share * N[0]
    ):
        return "visit_share", tree.q(0)
    q = tree.q(0)
    if cfg.stop_value_delta is not None and last_q is not None and abs(q - last_q) < cfg.stop_value_delta:
        return "value_converged", q
    return None, q


def _snap(tree: Tree, task: Task, cfg: SearchConfig, iteration: int, elapsed: float) -> TreeSnapshot:
    return take_snapshot(
        tree,
        task,
        iteration=iteration,
        elapsed_s=elapsed,
        rule=cfg.selection,
        c=cfg.c,
        top_k=cfg.snapshot_top_k,
        max_depth=cfg.snapshot_max_depth,
        max_nodes=cfg.snapshot_max_nodes,
    )


def _result(
    tree: Tree,
    task: Task,
    cfg: SearchConfig,
    seed: int,
    iterations: int,
    elapsed: float,
    reason: TerminationReason,
    hits: int,
    misses: int,
    snapshots: tuple[TreeSnapshot, ...],
    best_terminal: Any,
    best_return: float | None,
) -> SearchResult:
    root_state = tree.state[0]
    best = tree.best_child(0)
    pv = tree.principal_variation(0)
    stats = root_actions(tree, task)
    lookups = hits + misses
    search_stats = SearchStats(
        iterations=iterations,
        root_visits=tree.N[0],
        root_value=tree.q(0),
        best_action=tree.action[best],
        best_action_label=task.action_label(root_state, tree.action[best]),
        best_action_visits=tree.N[best],
        best_action_value=tree.q(best),
        action_stats=tuple(stats),
        total_simulations=misses if cfg.cache else iterations,
        cache_hits=hits,
        cache_misses=misses,
        cache_hit_rate=hits / lookups if lookups else 0.0,
        seed=seed,
        termination_reason=reason,
        elapsed_s=elapsed,
        sims_per_sec=iterations / elapsed if elapsed > 0 else float("inf"),
        tree_size=len(tree),
        max_depth=max(tree.depth),
        root_proven=tree.proven(0),
        root_status=tree.status(0),
    )
    return SearchResult(
        best_action=tree.action[best],
        stats=search_stats,
        tree=tree,
        pv=tuple(tree.label(task, i) for i in pv),
        snapshots=snapshots,
        best_terminal=best_terminal,
        best_terminal_return=best_return,
        config=cfg,
    )
