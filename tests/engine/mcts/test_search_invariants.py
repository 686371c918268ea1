"""Tree invariants, determinism, and configuration behaviour of ``search``."""

from __future__ import annotations

from math import ceil, log, sqrt

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.mcts import SearchConfig, TerminalStateError, search, ucb1
from engine.mcts.selection import puct
from engine.tasks import load_task
from engine.tasks.tictactoe import minimax_value


def _random_position(task, seed: int, plies: int):
    """A position reached by ``plies`` uniformly random moves (stops before the end)."""
    rng = np.random.default_rng(seed)
    state = task.parse({"tictactoe": ".../.../...", "connect4": "", "game24": "1 5 5 5"}[task.name])
    for _ in range(plies):
        actions = list(task.legal_actions(state))
        nxt = task.apply(state, actions[int(rng.integers(len(actions)))])
        if task.is_terminal(nxt):
            break
        state = nxt
    return state


def _check_tree(tree, lo: float, hi: float) -> None:
    for i in range(len(tree)):
        child_sum = sum(tree.N[k] for k in tree.children[i])
        own = 0 if i == 0 else 1
        assert tree.N[i] >= 1
        if tree.term[i] is None:
            assert tree.N[i] == child_sum + own, f"node {i}: {tree.N[i]} != {child_sum} + {own}"
        else:
            assert tree.N[i] >= child_sum + own
        q = tree.W[i] / tree.N[i]
        assert lo - 1e-9 <= q <= hi + 1e-9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    task_name=st.sampled_from(["tictactoe", "connect4", "game24"]),
    seed=st.integers(0, 2**32),
    plies=st.integers(0, 6),
    iterations=st.integers(1, 400),
    selection=st.sampled_from(["ucb1", "puct"]),
    c=st.floats(0.0, 3.0),
    cache=st.booleans(),
    solver=st.booleans(),
    widening=st.sampled_from([None, 1.0, 2.5]),
)
def test_tree_invariants(task_name, seed, plies, iterations, selection, c, cache, solver, widening):
    task = load_task(task_name)
    state = _random_position(task, seed, plies if task_name != "game24" else min(plies, 1))
    cfg = SearchConfig(
        iterations=iterations,
        seed=seed,
        selection=selection,
        c=c,
        cache=cache,
        solver=solver,
        widening_k=widening,
    )
    result = search(task, state, cfg)
    tree = result.tree
    assert tree.N[0] == result.stats.iterations
    _check_tree(tree, *task.reward_range)
    assert result.best_action in task.legal_actions(state)
    if not cache:
        assert result.stats.cache_hits == 0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), plies=st.integers(0, 7), iterations=st.integers(50, 1500))
def test_proven_values_agree_with_minimax(seed, plies, iterations):
    """Every value the solver proves in a tic-tac-toe tree equals full minimax."""
    task = load_task("tictactoe")
    state = _random_position(task, seed, plies)
    tree = search(task, state, SearchConfig(iterations=iterations, seed=seed, stop_on_solution=False)).tree
    checked = 0
    for i in range(len(tree)):
        if tree.term[i] is None:
            continue
        s = tree.state[i]
        if task.is_terminal(s):
            continue
        # the proven value is for the mover into node i; minimax is for the player to move at i
        expected = minimax_value(s) if i == 0 else -minimax_value(s)
        assert tree.proven(i) == expected
        checked += 1
    if _wins_at_once(task, state):
        # Every root move is expanded within the first len(legal) <= 9 iterations (unvisited
        # children first, no widening) and the winning one is terminal, so the solver must have
        # proven the root (a win), which the loop above compared with minimax.
        assert tree.proven(0) == 1.0
        assert checked >= 1


def _wins_at_once(task, state) -> bool:
    """Whether the player to move can complete a line with one move (worked out by minimax on
    the child: a finished game with a line is -1 for the player who would move next)."""
    for action in task.legal_actions(state):
        child = task.apply(state, action)
        if task.is_terminal(child) and minimax_value(child) == -1:
            return True
    return False


@pytest.mark.parametrize("position", ["XX./OO./...", "XO./XO./...", "OXX/.OX/..."])
def test_an_immediate_win_is_proven_at_the_root(position):
    """Hand-picked positions where the player to move wins with one move (X completes the top
    row / left column; O to move in the third completes the diagonal): the solver proves the root
    as a win for the mover, whatever the seed."""
    task = load_task("tictactoe")
    state = task.parse(position)
    assert _wins_at_once(task, state)
    for seed in range(5):
        tree = search(task, state, SearchConfig(iterations=50, seed=seed, stop_on_solution=False)).tree
        assert tree.proven(0) == 1.0


def test_same_seed_same_tree_and_result():
    task = load_task("connect4")
    state = task.parse("4453")
    cfg = SearchConfig(iterations=800, seed=0, snapshot_every=100)
    a, b = search(task, state, cfg), search(task, state, cfg)
    for col in ("parent", "action", "N", "W", "P", "player", "term"):
        assert getattr(a.tree, col) == getattr(b.tree, col)
    assert a.best_action == b.best_action and a.pv == b.pv
    assert a.stats.seed == 0 and a.stats.cache_hits == b.stats.cache_hits
    assert [s.nodes for s in a.snapshots] == [s.nodes for s in b.snapshots]
    c = search(task, state, SearchConfig(iterations=800, seed=1))
    assert c.tree.N != a.tree.N or c.tree.action != a.tree.action


def test_missing_seed_is_drawn_and_recorded_and_reproduces():
    task = load_task("tictactoe")
    state = task.parse(".../.X./...")
    first = search(task, state, SearchConfig(iterations=300))
    again = search(task, state, SearchConfig(iterations=300, seed=first.stats.seed))
    assert first.tree.N == again.tree.N and first.tree.action == again.tree.action


def test_terminal_position_is_refused():
    task = load_task("tictactoe")
    with pytest.raises(TerminalStateError, match="already over"):
        search(task, task.parse("XXX/OO./..."), SearchConfig(iterations=10))


def test_ucb1_and_puct_pick_the_hand_computed_child():
    # three children: visits 10, 5, 1; sums of returns 6, 2, 0; parent visits 16; c = 1
    N = [16, 10, 5, 1]
    W = [0.0, 6.0, 2.0, 0.0]
    P = [1.0, 0.2, 0.3, 0.5]
    scores = [W[k] / N[k] + sqrt(log(16) / N[k]) for k in (1, 2, 3)]  # 1.127, 1.145, 1.665
    assert ucb1([1, 2, 3], N, W, P, 16, 1.0) == 1 + int(np.argmax(scores)) == 3
    assert ucb1([1, 2, 3], N, W, P, 16, 0.0) == 1  # pure exploitation: Q = 0.6 is best
    # PUCT: Q + c * P * sqrt(16) / (1 + N): 0.6+0.0727=0.673, 0.4+0.2=0.6, 0+1.0=1.0 at c=1
    assert puct([1, 2, 3], N, W, P, 16, 1.0) == 3
    assert puct([1, 2, 3], N, W, P, 16, 0.1) == 1  # 0.607, 0.42, 0.1


def test_progressive_widening_caps_children():
    task = load_task("connect4")
    k, alpha = 1.0, 0.5
    result = search(
        task,
        task.parse(""),
        SearchConfig(iterations=500, seed=3, widening_k=k, widening_alpha=alpha, solver=False),
    )
    tree = result.tree
    for i in range(len(tree)):
        assert len(tree.children[i]) <= max(1, ceil(k * tree.N[i] ** alpha))
    assert len(tree.children[0]) == ceil(k * 499**alpha) or len(tree.children[0]) == 7
    full = search(task, task.parse(""), SearchConfig(iterations=500, seed=3, solver=False)).tree
    assert len(tree) == len(full)  # one node per iteration either way
    assert max(tree.depth) > max(full.depth)  # narrower, so deeper


def test_early_termination_by_visit_share_and_time():
    task = load_task("tictactoe")
    state = task.parse("XX./OO./...")  # X to move wins at c1; O threatens c2
    r = search(
        task,
        state,
        SearchConfig(
            iterations=5000, seed=1, solver=False, stop_visit_share=0.8, min_iterations=100, check_every=50
        ),
    )
    assert r.stats.termination_reason == "visit_share"
    assert r.stats.iterations < 5000 and r.stats.best_action_label == "c1"
    assert r.stats.best_action_visits >= 0.8 * r.stats.root_visits

    ticks = iter(range(10_000))
    r = search(
        task,
        task.parse(".../.../..."),
        SearchConfig(iterations=5000, seed=1, time_limit_s=100.0),
        clock=lambda: float(next(ticks)),
    )  # one "second" per clock read
    assert r.stats.termination_reason == "time_limit" and r.stats.iterations < 5000


def test_solved_positions_stop_early_with_the_win():
    task = load_task("tictactoe")
    r = search(task, task.parse("XX./OO./..."), SearchConfig(iterations=5000, seed=2))
    assert r.stats.termination_reason == "solved"
    assert r.stats.best_action_label == "c1" and r.tree.proven(0) == 1


def test_snapshots_every_n_and_at_the_end():
    task = load_task("tictactoe")
    seen = []
    r = search(
        task,
        task.parse(".../.../..."),
        SearchConfig(iterations=250, seed=4, snapshot_every=100, snapshot_max_nodes=30),
        on_snapshot=seen.append,
    )
    assert [s.iteration for s in seen] == [100, 200, 250] == [s.iteration for s in r.snapshots]
    last = seen[-1]
    assert len(last.nodes) <= 30 and last.nodes[0].visits == 250
    assert last.pv[: len(r.pv)] == r.pv[: len(last.pv)]
    by_id = {n.id: n for n in last.nodes}
    for n in last.nodes[1:]:
        assert n.parent in by_id  # a connected top of the tree
        assert n.visits <= by_id[n.parent].visits


def test_tree_export_columns():
    task = load_task("tictactoe")
    r = search(task, task.parse(".../.../..."), SearchConfig(iterations=200, seed=5))
    cols = r.tree.export(task)
    assert len(cols["id"]) == len(r.tree) and cols["visits"][0] == 200
    assert cols["parent"][0] == -1 and set(cols["label"][1:]) <= {f"{c}{r}" for c in "abc" for r in "123"}
