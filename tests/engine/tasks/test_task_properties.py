"""Properties shared by all tasks: the registry, random legal play, rendering round trips, rollouts."""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.tasks import TASK_NAMES, BaseTask, Task, load_task

STARTS = {"game24": ["24: 4 7 8 8", "1 5 5 5", "13 13 1 2"], "tictactoe": [".../.../..."], "connect4": [""]}


def test_registry() -> None:
    assert set(TASK_NAMES) == {"game24", "tictactoe", "connect4"}
    for name in TASK_NAMES:
        task = load_task(name)
        assert isinstance(task, Task) and isinstance(task, BaseTask)
        assert task.name == name
        assert task.examples
        for example in task.examples:
            state = task.parse(example.text)
            assert task.parse(task.render(state)) == state
    with pytest.raises(ValueError, match="known tasks: game24, tictactoe, connect4"):
        load_task("chess")


@pytest.mark.parametrize("name", ["game24", "tictactoe", "connect4"])
@settings(max_examples=60, deadline=None)
@given(choices=st.lists(st.integers(min_value=0, max_value=10_000), max_size=45), start=st.integers(0, 2))
def test_random_play_renders_parsable_positions(name: str, choices: list[int], start: int) -> None:
    task = load_task(name)
    starts = STARTS[name]
    state = task.parse(starts[start % len(starts)])
    for pick in choices:
        if task.is_terminal(state):
            break
        actions = task.legal_actions(state)
        assert actions
        action = actions[pick % len(actions)]
        before = copy.deepcopy(state)
        child = task.apply(state, action)
        assert state == before  # apply never mutates its input
        text = task.render(child)
        assert task.parse(text) == child
        assert task.render(task.parse(text)) == text
        label = task.action_label(state, action)
        assert task.key(task.apply(state, task.parse_action(state, label))) == task.key(child)
        state = child
    if task.is_terminal(state):
        assert task.legal_actions(state) == ()
        low, high = task.reward_range
        assert len(task.returns(state)) == task.num_players
        assert all(low <= r <= high for r in task.returns(state))


@pytest.mark.parametrize("name", ["game24", "tictactoe", "connect4"])
def test_rollouts_end_in_terminal_states_within_reward_range(name: str) -> None:
    task = load_task(name)
    low, high = task.reward_range
    rng = random.Random(17)
    for text in STARTS[name]:
        state = task.parse(text)
        for _ in range(300):
            returns, end = task.rollout(state, rng.random)
            assert task.is_terminal(end)
            assert len(returns) == task.num_players
            assert all(low <= r <= high for r in returns)
            assert returns == task.returns(end)
