"""Verifiable task domains behind one protocol (see ``engine.tasks.base``)."""

from __future__ import annotations

from collections.abc import Callable

from engine.names import GAME_TASKS
from engine.tasks.base import BaseTask, Example, ParseError, Task, Verdict
from engine.tasks.connect4 import Connect4
from engine.tasks.game24 import Game24
from engine.tasks.tictactoe import TicTacToe

_TASKS: dict[str, Callable[[], Task]] = dict(zip(GAME_TASKS, (Game24, TicTacToe, Connect4), strict=True))
TASK_NAMES: tuple[str, ...] = GAME_TASKS


def load_task(name: str) -> Task:
    """A task object by name (``"game24"``, ``"tictactoe"``, ``"connect4"``).

    Tasks are stateless, so each call simply builds a fresh instance.
    Raises ValueError naming the known tasks for any other name.
    """
    cls = _TASKS.get(name)
    if cls is None:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASK_NAMES)}")
    return cls()


__all__ = [
    "TASK_NAMES",
    "BaseTask",
    "Connect4",
    "Example",
    "Game24",
    "ParseError",
    "Task",
    "TicTacToe",
    "Verdict",
    "load_task",
]
