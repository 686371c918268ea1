"""The meta-controller's 10-D feature vector, every entry in [0, 1]."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FEATURE_NAMES", "RoutingState"]

FEATURE_NAMES: tuple[str, ...] = (
    "hrm_confidence",
    "trm_confidence",
    "mcts_value",
    "consensus_score",
    "last_agent_hrm",
    "last_agent_trm",
    "last_agent_mcts",
    "iteration",
    "query_length",
    "has_rag_context",
)


@dataclass(frozen=True, slots=True)
class RoutingState:
    """What the loop knows before choosing the next agent.

    Confidences are the agents' latest (0 before they run); ``mcts_value`` is
    the MCTS root value scaled from the task's reward range to [0, 1] (0 before
    MCTS runs); ``last_agent`` is None at the first step.
    """

    hrm_confidence: float = 0.0
    trm_confidence: float = 0.0
    mcts_value: float = 0.0
    consensus_score: float = 0.0
    last_agent: str | None = None
    iteration: int = 0
    query_length: int = 0
    has_rag_context: bool = False

    def vector(self) -> np.ndarray:
        """The features in FEATURE_NAMES order: iteration/20 and query_length/10000, clipped to [0, 1]."""
        x = np.array(
            [
                self.hrm_confidence,
                self.trm_confidence,
                self.mcts_value,
                self.consensus_score,
                self.last_agent == "hrm",
                self.last_agent == "trm",
                self.last_agent == "mcts",
                self.iteration / 20,
                self.query_length / 10_000,
                self.has_rag_context,
            ],
            dtype=np.float64,
        )
        return np.clip(x, 0.0, 1.0)
