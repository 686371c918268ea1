"""Solver-true values and statuses against full minimax (engine.tasks.tictactoe is the oracle),
and the snapshot series of a search that solves early."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.mcts import SearchConfig, proof_status, search, solver_value
from engine.tasks import load_task
from engine.tasks.tictactoe import minimax_value, reachable_states

TTT = load_task("tictactoe")
STATUS_OF = {1: "win", 0: "draw", -1: "loss"}  # a minimax value read as a status, by definition


def test_proof_status_reads_the_reward_range():
    assert proof_status(None, (-1.0, 1.0)) == "unproven"
    assert proof_status(1.0, (-1.0, 1.0)) == "win"
    assert proof_status(-1.0, (-1.0, 1.0)) == "loss"
    assert proof_status(0.0, (-1.0, 1.0)) == "draw"
    assert proof_status(1.0, (0.0, 1.0)) == "win"  # Game of 24: a solution
    assert proof_status(0.0, (0.0, 1.0)) == "loss"  # Game of 24: proven impossible
    assert proof_status(0.25, (0.0, 1.0)) == "exact"
    with pytest.raises(ValueError, match="low < high"):
        proof_status(0.0, (1.0, 1.0))
    assert solver_value(0.275, 0.0) == 0.0
    assert solver_value(0.275, None) == 0.275


# (position, the value worked out by hand for the player to move)
#   X.O/.X./..O: X to move must block c2; after that neither side can force a line: a draw.
#   XO./.X./...: O to move must block c3 (a1-b2-c3), then X a2 threatens a3 and c2 at once: O loses.
#   XO./.../...: X to move plays b2 (threat c3), O blocks c3, X a2 forks a3 / c2: X wins.
HAND = [("X.O/.X./..O", 0), ("XO./.X./...", -1), ("XO./.../...", 1)]


@pytest.mark.parametrize(("position", "by_hand"), HAND)
@pytest.mark.parametrize("seed", [0, 7, 12345])
def test_solved_root_shows_the_minimax_value_and_status(position, by_hand, seed):
    state = TTT.parse(position)
    assert minimax_value(state) == by_hand  # the hand value agrees with the oracle
    result = search(TTT, state, SearchConfig(iterations=20_000, seed=seed, snapshot_every=25))
    stats = result.stats
    assert stats.termination_reason == "solved"
    assert stats.root_status == STATUS_OF[by_hand]
    assert stats.shown_root_value == by_hand
    last = result.snapshots[-1]
    assert last.iteration == stats.iterations
    assert last.root_status == STATUS_OF[by_hand] and last.shown_root_value == by_hand
    assert last.nodes[0].status == STATUS_OF[by_hand] and last.nodes[0].shown_value == by_hand


def _small_positions(count: int, max_empty: int, seed: int) -> list[tuple[int, int]]:
    """``count`` non-terminal reachable positions with at most ``max_empty`` empty cells."""
    pool = [
        s for s in reachable_states() if not TTT.is_terminal(s) and 9 - (s[0] | s[1]).bit_count() <= max_empty
    ]
    rng = np.random.default_rng(seed)
    return [pool[i] for i in rng.choice(len(pool), size=count, replace=False)]


@pytest.mark.parametrize("state", _small_positions(40, 5, seed=2026))
def test_every_proven_node_and_action_matches_minimax(state):
    """With at most 5 empty cells the solver proves the root within the budget; the root, every
    proven root action and every proven snapshot node carry minimax's value and status."""
    result = search(TTT, state, SearchConfig(iterations=5_000, seed=3, snapshot_every=10, snapshot_top_k=9))
    stats, tree = result.stats, result.tree
    expected_root = minimax_value(state)
    assert stats.root_status == STATUS_OF[expected_root]
    assert stats.shown_root_value == expected_root
    for a in stats.action_stats:
        child = TTT.apply(state, a.action)
        # the action's value is for the player choosing it: minus minimax for the player to move next
        want = -minimax_value(child)
        if a.proven is not None:
            assert (a.proven, a.status, a.shown_value) == (want, STATUS_OF[want], want)
        else:
            assert a.status == "unproven" and a.shown_value == a.value
    for snap in result.snapshots:
        for n in snap.nodes:
            if n.proven is None:
                assert n.status == "unproven"
                continue
            s = tree.state[n.id]  # snapshot node ids are tree node ids
            want = minimax_value(s) if n.parent < 0 else -minimax_value(s)
            assert (n.proven, n.status, n.shown_value) == (want, STATUS_OF[want], want)


def test_the_issue_position_shows_a_proven_draw_and_a_proven_losing_move():
    """X.O/.X./..O with seed 7: the rollouts average +0.275 at the root and +0.6 on b3, but b3
    loses (O answers c2) and the position is a draw; the views must say so."""
    state = TTT.parse("X.O/.X./..O")
    result = search(TTT, state, SearchConfig(iterations=1000, seed=7, snapshot_every=50))
    stats = result.stats
    assert stats.root_value != 0.0  # the mean Q is not the answer...
    assert (stats.root_status, stats.shown_root_value) == ("draw", 0.0)  # ...the proof is
    b3 = next(a for a in stats.action_stats if a.label == "b3")
    assert minimax_value(TTT.apply(state, b3.action)) == 1  # O to move after b3 wins
    assert b3.status == "loss" and b3.shown_value == -1.0


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32),
    every=st.integers(1, 400),
    position=st.sampled_from(["X.O/.X./..O", "XO./.X./...", "XO./.../...", "XOX/.O./..."]),
)
def test_an_early_solve_still_yields_a_readable_snapshot_series(seed, every, position):
    """The series is non-empty, strictly increasing in iterations, ends at the solve point and
    every snapshot's root actions add up to its iteration count (one root-child visit each)."""
    result = search(
        TTT, TTT.parse(position), SearchConfig(iterations=50_000, seed=seed, snapshot_every=every)
    )
    snaps = result.snapshots
    assert result.stats.termination_reason == "solved"
    assert snaps
    its = [s.iteration for s in snaps]
    assert its == sorted(set(its))
    assert its[-1] == result.stats.iterations
    assert snaps[-1].root_status != "unproven"
    for s in snaps:
        assert sum(a.visits for a in s.actions) == s.iteration


def test_snapshot_actions_are_the_tree_at_that_iteration():
    """The root actions a snapshot carries equal those of a search stopped at that iteration
    (same seed: the search is deterministic), not the final ones."""
    c4 = load_task("connect4")
    state = c4.parse("4453")
    full = search(c4, state, SearchConfig(iterations=400, seed=5, snapshot_every=100))
    for snap in full.snapshots:
        short = search(c4, state, SearchConfig(iterations=snap.iteration, seed=5))
        assert [(a.label, a.visits) for a in snap.actions] == [
            (a.label, a.visits) for a in short.stats.action_stats
        ]
