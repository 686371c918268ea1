"""The names of routers, LLM providers, tasks and agents, defined once for the whole engine.

Each ``Literal`` type is the typed form (pydantic models and settings use it); the tuple beside
it lists the same names in order for argparse choices, select boxes and validation messages.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "AGENTS",
    "FIXED_ROUTERS",
    "GAME_TASKS",
    "PROVIDERS",
    "QUERY_TASKS",
    "ROUTERS",
    "AgentName",
    "GameTaskName",
    "ProviderName",
    "RouterName",
    "TaskName",
    "fixed_agent",
    "step_number",
]

AgentName = Literal["hrm", "trm", "mcts"]
"""An agent of the query loop."""
AGENTS: tuple[AgentName, ...] = get_args(AgentName)

RouterName = Literal["rules", "gru", "hybrid", "fixed:hrm", "fixed:trm", "fixed:mcts"]
"""A router a query may name: the meta-controller's (``rules``, ``gru``, ``hybrid``) or a fixed
single-agent baseline (``fixed:<agent>``: that agent runs once and its output is the answer)."""
ROUTERS: tuple[RouterName, ...] = get_args(RouterName)
FIXED_ROUTERS: tuple[RouterName, ...] = tuple(r for r in ROUTERS if r.startswith("fixed:"))
"""The single-agent baselines, in ``AGENTS`` order."""


def fixed_agent(router: str) -> AgentName | None:
    """The agent a fixed router always runs (``"fixed:trm"`` -> ``"trm"``), None for any other router."""
    if router in FIXED_ROUTERS:
        return router.removeprefix("fixed:")  # type: ignore[return-value]  # a FIXED_ROUTERS suffix is an agent
    return None


ProviderName = Literal["offline", "openai", "anthropic", "lmstudio"]
"""An LLM provider (``ARBOR_LLM_PROVIDER``, a query's ``provider``)."""
PROVIDERS: tuple[ProviderName, ...] = get_args(ProviderName)

GameTaskName = Literal["game24", "tictactoe", "connect4"]
"""A task with rules (and a ground truth)."""
GAME_TASKS: tuple[GameTaskName, ...] = get_args(GameTaskName)

TaskName = Literal["auto", "game24", "tictactoe", "connect4", "freeform"]
"""What a query may name as its task: a game task, ``freeform`` text, or ``auto`` (detected)."""
QUERY_TASKS: tuple[TaskName, ...] = get_args(TaskName)


def step_number(index: int) -> int:
    """The number a step is shown with, from its stored 0-based ``index``: 1 for the first.

    Steps are stored and passed around 0-based (``StepRecord.index``, ``routing_decisions.step``,
    span attribute ``step``); every text a person reads numbers them from 1 through this."""
    return index + 1
