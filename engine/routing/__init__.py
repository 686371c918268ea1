"""The meta-controller: features, routers (rules, gru, hybrid, fixed baselines) and the decision rule."""

from engine.routing.features import FEATURE_NAMES, RoutingState
from engine.routing.routers import (
    DEFAULT_WEIGHTS,
    FixedRouter,
    GRURouter,
    HybridRouter,
    Router,
    RouterUnavailable,
    RulesRouter,
    decide,
)

__all__ = [
    "DEFAULT_WEIGHTS",
    "FEATURE_NAMES",
    "FixedRouter",
    "GRURouter",
    "HybridRouter",
    "Router",
    "RouterUnavailable",
    "RoutingState",
    "RulesRouter",
    "decide",
]
