"""Routers: features in, a probability per agent (hrm, trm, mcts) out.

A router is stateful across the steps of one request only through the value
``start()`` returns and ``step`` threads along (the GRU's hidden state), so
one router object serves many requests and threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.models import AGENTS, AgentName

__all__ = [
    "DEFAULT_WEIGHTS",
    "FixedRouter",
    "GRURouter",
    "HybridRouter",
    "Router",
    "RouterUnavailable",
    "RulesRouter",
    "decide",
]

#: Whom an unsure router falls back to: the first of these that has not run yet.
_FALLBACK_ORDER: tuple[AgentName, ...] = ("mcts", "hrm", "trm")
DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "data" / "models" / "router_gru.npz"


class RouterUnavailable(RuntimeError):
    """Raised when a router cannot be built (e.g. the GRU has no trained weights)."""


def _softmax(z: np.ndarray, mask: np.ndarray) -> np.ndarray:
    z = np.where(mask, z, -np.inf)
    z = z - z[mask].max()
    e = np.exp(z)
    return e / e.sum()


class Router(Protocol):
    name: str

    def start(self) -> Any: ...
    def step(self, x: np.ndarray, mask: np.ndarray, state: Any) -> tuple[np.ndarray, Any]: ...


class RulesRouter:
    """Hand-written rules as logits, then a softmax over the available agents.

    First step: decompose (HRM) before searching.  HRM unsure: search (MCTS),
    the more the less sure it was.  MCTS ran without agreement: refine (TRM).
    An agent that just ran is discouraged from running again.
    """

    name = "rules"

    def start(self) -> None:
        return None

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Raw scores for (hrm, trm, mcts) from a feature vector."""
        hrm_c, _trm_c, _mv, cons, last_h, last_t, last_m, it, _ql, _rag = x
        first = 1.0 if it == 0 else 0.0
        z_hrm = 2.0 * first - 2.5 * last_h
        z_mcts = 0.5 + 3.0 * last_h * (1.0 - hrm_c) - 2.5 * last_m
        z_trm = 0.0 + 2.0 * last_m * (1.0 - cons) + 1.0 * last_h * hrm_c - 2.5 * last_t
        return np.array([z_hrm, z_trm, z_mcts])

    def step(self, x: np.ndarray, mask: np.ndarray, state: None) -> tuple[np.ndarray, None]:
        return _softmax(self.logits(x), mask), None


class FixedRouter:
    """A single-agent baseline: always the one agent ``agent`` (probability 1), for one step only.

    The loop runs that agent once and answers with its output: no fallback, no "already ran"
    override, no second step (see :class:`engine.loop.routing.RoutingStep`).  Its name is
    ``fixed:<agent>``.
    """

    def __init__(self, agent: AgentName) -> None:
        if agent not in AGENTS:
            raise ValueError(f"unknown agent {agent!r}: expected one of {', '.join(AGENTS)}")
        self.agent: AgentName = agent
        self.name = f"fixed:{agent}"

    def start(self) -> None:
        return None

    def step(self, x: np.ndarray, mask: np.ndarray, state: None) -> tuple[np.ndarray, None]:
        """Probability 1 on the fixed agent (whatever the features and the mask say)."""
        p = np.zeros(len(AGENTS))
        p[AGENTS.index(self.agent)] = 1.0
        return p, None


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class GRURouter:
    """A GRU cell (10 -> 64) and a linear softmax head (64 -> 3), numpy inference.

    h' = (1 - z) * h + z * tanh(W_h x + U_h (r * h) + b_h), with update gate
    z = sigmoid(W_z x + U_z h + b_z) and reset gate r = sigmoid(W_r x + U_r h + b_r);
    p = softmax(W_o h' + b_o) over the available agents.  Features are first
    standardised with the training data's mean and deviation (stored with the weights).
    """

    name = "gru"
    KEYS = ("W_z", "U_z", "b_z", "W_r", "U_r", "b_r", "W_h", "U_h", "b_h", "W_o", "b_o")

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        missing = [k for k in self.KEYS if k not in weights]
        if missing:
            raise RouterUnavailable(f"GRU weights lack {', '.join(missing)}")
        self.w = {k: np.asarray(weights[k], dtype=np.float64) for k in self.KEYS}
        n_in = self.w["W_z"].shape[1]
        self.x_mean = np.asarray(weights.get("x_mean", np.zeros(n_in)), dtype=np.float64)
        self.x_std = np.asarray(weights.get("x_std", np.ones(n_in)), dtype=np.float64)
        self.hidden = self.w["U_z"].shape[0]

    @classmethod
    def load(cls, path: Path = DEFAULT_WEIGHTS) -> GRURouter:
        """Load weights from an .npz file; raises RouterUnavailable if it is missing."""
        if not path.exists():
            raise RouterUnavailable(f"no trained GRU weights at {path}: run `python -m engine train-router`")
        with np.load(path) as data:
            return cls({k: data[k] for k in data.files})

    def start(self) -> np.ndarray:
        return np.zeros(self.hidden)

    def cell(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """One GRU step on raw features (standardised here): the next hidden state."""
        w = self.w
        x = (x - self.x_mean) / self.x_std
        z = _sigmoid(w["W_z"] @ x + w["U_z"] @ h + w["b_z"])
        r = _sigmoid(w["W_r"] @ x + w["U_r"] @ h + w["b_r"])
        h_new = np.tanh(w["W_h"] @ x + w["U_h"] @ (r * h) + w["b_h"])
        return (1.0 - z) * h + z * h_new

    def step(self, x: np.ndarray, mask: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = self.cell(x, state)
        return _softmax(self.w["W_o"] @ h + self.w["b_o"], mask), h


class HybridRouter:
    """``weight * rules + (1 - weight) * gru``, both over the same mask."""

    name = "hybrid"

    def __init__(self, rules: RulesRouter, gru: GRURouter, weight: float = 0.5) -> None:
        self.rules, self.gru, self.weight = rules, gru, weight

    def start(self) -> np.ndarray:
        return self.gru.start()

    def step(self, x: np.ndarray, mask: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p_rules, _ = self.rules.step(x, mask, None)
        p_gru, h = self.gru.step(x, mask, state)
        return self.weight * p_rules + (1.0 - self.weight) * p_gru, h


def decide(
    probs: np.ndarray, available: tuple[AgentName, ...], ran: set[str], threshold: float
) -> tuple[AgentName, str]:
    """Pick the agent: argmax, unless the router is unsure (top probability below
    ``threshold``: fall back to the first agent not yet run in the order mcts,
    hrm, trm) or the top agent already ran (take the best one that has not).
    Returns (agent, reason).  Raises ValueError if every available agent ran.
    """
    order = sorted(available, key=lambda a: -probs[AGENTS.index(a)])
    fresh = [a for a in order if a not in ran]
    if not fresh:
        raise ValueError("every available agent already ran")
    top = order[0]
    p_top = probs[AGENTS.index(top)]
    if p_top < threshold:
        pick: AgentName = next(a for a in _FALLBACK_ORDER if a in fresh)
        return pick, f"fallback: top probability {p_top:.2f} ({top}) < threshold {threshold:.2f}, so {pick}"
    if top in ran:
        pick = fresh[0]
        return pick, f"override: {top} already ran ({p_top:.2f}), so the next best {pick}"
    return top, f"argmax: {top} at {p_top:.2f}"
