"""The MCTS explorer service: validated input in, a typed outcome out.

Pages call ``explore``; expected failures (a malformed position, a finished
game) come back as ``ExploreOutcome.error`` rather than exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.agents.puzzle24 import extract_answer
from engine.mcts import SearchConfig, SearchResult, TerminalStateError, TreeSnapshot, search
from engine.tasks import ParseError, Task, Verdict, load_task

__all__ = ["ExploreOutcome", "ExploreRequest", "answer_of", "explore"]


class ExploreRequest(BaseModel):
    """What an operator asks the explorer for (validated user input)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: Literal["tictactoe", "connect4", "game24"]
    position: str = Field("", max_length=10_000)
    iterations: int = Field(1000, ge=1, le=100_000)
    c: float = Field(1.414, ge=0.0, le=100.0)
    selection: Literal["ucb1", "puct"] = "ucb1"
    seed: int | None = Field(None, ge=0, lt=2**63)
    snapshot_every: int = Field(50, ge=1, le=100_000)
    snapshot_top_k: int = Field(4, ge=1, le=20)

    def config(self) -> SearchConfig:
        """The search configuration this request stands for."""
        return SearchConfig(
            iterations=self.iterations,
            c=self.c,
            selection=self.selection,
            seed=self.seed,
            snapshot_every=self.snapshot_every,
            snapshot_top_k=self.snapshot_top_k,
        )


@dataclass(frozen=True, slots=True)
class ExploreOutcome:
    """A finished exploration, or the reason it could not run.

    ``answer`` is what the search recommends in the task's answer format
    (a move, or for Game of 24 an expression or "no solution"); None when the
    search found nothing it can stand behind.  ``verdict`` is the ground
    truth's judgement of that answer, None when the position has none.
    """

    request: ExploreRequest
    error: str | None = None
    result: SearchResult | None = None
    board: str = ""
    answer: str | None = None
    verdict: Verdict | None = None
    reward_range: tuple[float, float] = (-1.0, 1.0)


def answer_of(task: Task, result: SearchResult) -> str | None:
    """The search's answer in the task's format.

    Games: the best root action's label.  Single-player puzzles: the best
    terminal found if it has the maximum reward, "no solution" if the search
    proved that none exists, else None (not found within the budget).
    """
    if task.num_players > 1:
        return result.stats.best_action_label
    return extract_answer(task, result)[0]


def explore(
    request: ExploreRequest, on_snapshot: Callable[[TreeSnapshot], Any] | None = None
) -> ExploreOutcome:
    """Parse the position, search it, and check the answer against ground truth."""
    task = load_task(request.task)
    try:
        state = task.parse(request.position)
    except ParseError as exc:
        return ExploreOutcome(request, error=f"Invalid {request.task} position: {exc}")
    board = task.describe(state)
    try:
        result = search(task, state, request.config(), on_snapshot)
    except TerminalStateError as exc:
        return ExploreOutcome(request, error=str(exc).capitalize() + ".", board=board)
    answer = answer_of(task, result)
    verdict = task.verify(state, answer) if answer is not None else None
    return ExploreOutcome(
        request,
        result=result,
        board=board,
        answer=answer,
        verdict=verdict,
        reward_range=task.reward_range,
    )
