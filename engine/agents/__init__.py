"""The three agents (HRM, TRM, MCTS), dispatched by task kind."""

from __future__ import annotations

from collections.abc import Callable

from engine.agents import freeform, games, puzzle24
from engine.agents.base import AgentContext, AgentOutput, AgentUnavailable
from engine.agents.mcts_agent import mcts
from engine.names import AgentName

AgentFn = Callable[[AgentContext], AgentOutput]


def agent_for(name: str, task_name: str) -> AgentFn:
    """The implementation of agent ``name`` for ``task_name``.

    Raises AgentUnavailable when the agent has no method for that task.
    """
    if name == "mcts":
        if task_name == "freeform":
            raise AgentUnavailable("MCTS needs a task with moves; freeform text has none")
        return mcts
    module = {"game24": puzzle24, "tictactoe": games, "connect4": games, "freeform": freeform}[task_name]
    return getattr(module, name)


def available_agents(task_name: str) -> tuple[AgentName, ...]:
    """Agents that can work on ``task_name``."""
    return ("hrm", "trm") if task_name == "freeform" else ("hrm", "trm", "mcts")


__all__ = ["AgentContext", "AgentOutput", "AgentUnavailable", "agent_for", "available_agents"]
