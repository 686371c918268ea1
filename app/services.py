"""The only place that wires the engine, the store and clients into the console.

Long-lived objects are created once per process with ``st.cache_resource``;
callers must not mutate what these functions return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from engine.config import Settings, load_settings
from engine.explorer import ExploreOutcome, ExploreRequest, explore
from engine.mcts import TreeSnapshot
from engine.tasks import Task, load_task


@st.cache_resource
def get_settings() -> Settings:
    """The console's settings, read once from ARBOR_* variables and .env (raises ConfigError)."""
    return load_settings()


def task(name: str) -> Task:
    """The task domain called ``name``."""
    return load_task(name)


def run_exploration(
    request: ExploreRequest, on_snapshot: Callable[[TreeSnapshot], Any] | None = None
) -> ExploreOutcome:
    """Run one MCTS exploration, streaming snapshots to ``on_snapshot``."""
    return explore(request, on_snapshot)
