"""The console's choices and their labels: tasks, routers, LLM providers, MCTS selection rules.

Pure (no streamlit import): the names come from the engine's own definitions (``engine.models``'
``RouterName`` / ``ProviderName`` and ``engine.explorer.ExploreRequest``), so a router or provider
the engine adds shows up here without a second list to keep in step.  Pages import these through
``app`` modules, never from the engine directly.
"""

from __future__ import annotations

from typing import get_args

from engine.explorer import ExploreRequest
from engine.models import AGENTS, ProviderName, RouterName
from engine.pipeline import DEFAULT_CONFIDENCE_THRESHOLD

__all__ = [
    "AGENTS",
    "CONSOLE_TASKS",
    "DEFAULT_CONFIDENCE_THRESHOLD",
    "EXPLORER_TASKS",
    "PROVIDERS",
    "ROUTERS",
    "ROUTER_LABELS",
    "SELECTIONS",
    "TASK_LABELS",
    "ProviderName",
    "RouterName",
]

#: The meta-controller's routers, in the engine's order (rules first: it needs no trained weights).
ROUTERS: tuple[RouterName, ...] = get_args(RouterName)
#: The LLM providers a request may name (None in a request means "the configured one").
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)
_ROUTER_NOTES = {"gru": "trained", "hybrid": "rules + gru"}
_ROUTER_NOTES.update({r: "baseline" for r in ROUTERS if r.startswith("fixed:")})
#: How the Query console shows each router: the name, and what it is when the name alone does not say.
ROUTER_LABELS: dict[str, str] = {r: f"{r} ({_ROUTER_NOTES[r]})" if r in _ROUTER_NOTES else r for r in ROUTERS}
#: The console's name for each task a query can name (the explorer searches all but freeform).
TASK_LABELS: dict[str, str] = {
    "game24": "Game of 24",
    "tictactoe": "Tic-tac-toe",
    "connect4": "Connect four",
    "freeform": "Freeform question",
}
#: The tasks the MCTS explorer can search, in the engine's order.
EXPLORER_TASKS: tuple[str, ...] = get_args(ExploreRequest.model_fields["task"].annotation)
#: The explorer's node-selection rules.
SELECTIONS: tuple[str, ...] = get_args(ExploreRequest.model_fields["selection"].annotation)
#: The Query console's task choices: auto-detection first.
CONSOLE_TASKS: dict[str, str] = {"auto": "Auto-detect", **TASK_LABELS}
