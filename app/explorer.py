"""The MCTS explorer's services (pages/mcts.py): search one position, streaming tree snapshots.

Running a search is an operator action: :func:`run_exploration` refuses anyone else
(``auth.require_operator``) whatever the page shows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app import auth
from app.links import ExplorerLink, explorer_link_params, parse_explorer_link
from app.mcts_views import COLOUR_LEGEND, SIGN_CONVENTION, stop_note
from app.messages import ValidationError, validation_problems
from app.names import EXPLORER_TASKS, SELECTIONS, TASK_LABELS
from app.runtime import get_settings, task
from engine.explorer import ExploreOutcome, ExploreRequest, explore
from engine.mcts import TreeSnapshot

__all__ = [
    "COLOUR_LEGEND",
    "EXPLORER_TASKS",
    "SELECTIONS",
    "SIGN_CONVENTION",
    "TASKS",
    "ExploreOutcome",
    "ExploreRequest",
    "ExplorerLink",
    "ValidationError",
    "explorer_link_params",
    "get_settings",
    "parse_explorer_link",
    "run_exploration",
    "stop_note",
    "task",
    "validation_problems",
]

#: The explorer's task choices and their labels, in the engine's order.
TASKS: dict[str, str] = {name: TASK_LABELS[name] for name in EXPLORER_TASKS}


def run_exploration(
    request: ExploreRequest, on_snapshot: Callable[[TreeSnapshot], Any] | None = None
) -> ExploreOutcome:
    """Run one MCTS exploration, streaming snapshots to ``on_snapshot`` (operators only).
    A position the task cannot read comes back as an outcome with ``error`` set."""
    auth.require_operator("run_search")
    return explore(request, on_snapshot)
