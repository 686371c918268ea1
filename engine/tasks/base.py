"""The task protocol: what MCTS and the agents need to know about a domain.

A task is stateless; states are small immutable values (ints and tuples) so
that they hash fast and can serve as transposition keys.  Players are numbered
from 0; ``returns`` gives one reward per player.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "MAX_NUMBER_DIGITS",
    "Action",
    "BaseTask",
    "Example",
    "ParseError",
    "Returns",
    "State",
    "Task",
    "Uniform",
    "Verdict",
    "bounded_int",
    "excerpt",
]

State = Any
Action = Any
Returns = tuple[float, ...]
Uniform = Callable[[], float]
"""A source of uniform floats in [0, 1); it is seeded by the caller."""


class ParseError(ValueError):
    """Raised when a position or answer text is malformed; the message names the problem."""


#: The most digits a number in position or answer text may have before it is converted.
#: Far above any number a task accepts, far below Python's int-conversion limit (4300).
MAX_NUMBER_DIGITS = 30


def excerpt(text: str, limit: int = 40) -> str:
    """``repr(text)``, cut to about ``limit`` characters with its length said when longer
    (so an error message never echoes a 10,000-character input)."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def bounded_int(text: str, max_digits: int = MAX_NUMBER_DIGITS) -> int:
    """``int(text)`` for a string of ASCII digits, refusing more than ``max_digits`` of them
    before converting.  Raises ParseError naming the number and the limit."""
    if not text.isascii() or not text.isdigit():
        raise ParseError(f"{excerpt(text)} is not a whole number")
    if len(text) > max_digits:
        raise ParseError(f"a number with {len(text)} digits is too long (at most {max_digits} digits)")
    return int(text)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The ground-truth judgement of an answer.

    ``correct`` is the verdict; ``expected`` describes what would have been
    right (e.g. the optimal moves or one solution); ``detail`` says why.
    """

    correct: bool
    expected: str
    detail: str

    @property
    def label(self) -> str:
        """``"correct"`` or ``"incorrect"``."""
        return "correct" if self.correct else "incorrect"


@dataclass(frozen=True, slots=True)
class Example:
    """A named position for the console's example pickers."""

    label: str
    text: str


@runtime_checkable
class Task(Protocol):
    """A verifiable domain.  See DESIGN.md, "Task domains"."""

    name: str
    num_players: int
    reward_range: tuple[float, float]
    examples: tuple[Example, ...]

    def parse(self, text: str) -> State: ...
    def render(self, state: State) -> str: ...
    def describe(self, state: State) -> str: ...
    def key(self, state: State) -> Hashable: ...
    def current_player(self, state: State) -> int: ...
    def legal_actions(self, state: State) -> Sequence[Action]: ...
    def apply(self, state: State, action: Action) -> State: ...
    def is_terminal(self, state: State) -> bool: ...
    def returns(self, state: State) -> Returns: ...
    def action_label(self, state: State, action: Action) -> str: ...
    def parse_action(self, state: State, text: str) -> Action: ...
    def rollout(self, state: State, rand: Uniform) -> tuple[Returns, State]: ...
    def verify(self, state: State, answer: str) -> Verdict | None: ...


class BaseTask:
    """Default implementations shared by the concrete tasks.

    Subclasses override ``rollout`` with a fast domain-specific playout when
    the generic one (``legal_actions`` + ``apply`` per ply) is too slow.
    """

    name: str = "base"
    num_players: int = 1
    reward_range: tuple[float, float] = (0.0, 1.0)
    examples: tuple[Example, ...] = ()

    def key(self, state: State) -> Hashable:
        """A stable, hashable key for transpositions (default: the state itself)."""
        return state

    def describe(self, state: State) -> str:
        """A human-readable multi-line view (default: the position text)."""
        # BaseTask is a mixin: render() comes from the concrete task (Task protocol)
        return self.render(state)  # type: ignore[attr-defined]

    def rollout(self, state: State, rand: Uniform) -> tuple[Returns, State]:
        """Play uniformly random legal actions to the end.

        Returns the per-player returns and the terminal state reached.
        """
        # BaseTask is a mixin: these methods come from the concrete task (Task protocol)
        legal, apply, terminal = self.legal_actions, self.apply, self.is_terminal  # type: ignore[attr-defined]
        while not terminal(state):
            actions = legal(state)
            state = apply(state, actions[int(rand() * len(actions))])
        return self.returns(state), state  # type: ignore[attr-defined]  # mixin: see above
