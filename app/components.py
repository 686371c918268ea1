"""Reusable console widgets."""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd
import streamlit as st

from app import charts
from engine.config import Settings
from engine.mcts import SearchStats, TreeSnapshot

_SIDEBAR_KEYS = (
    ("llm_provider", "LLM provider"),
    ("telemetry", "Telemetry"),
    ("db_path", "Store"),
    ("metrics_port", "Metrics port"),
    ("prometheus_url", "Prometheus"),
    ("mcts_iterations", "MCTS iterations"),
    ("mcts_c", "MCTS c"),
    ("mcts_seed", "MCTS seed"),
)


def settings_sidebar(settings: Settings) -> None:
    """The engine settings at a glance, secrets masked."""
    safe = settings.safe_dict()
    with st.sidebar.expander("Engine settings", expanded=False):
        rows = [(label, "—" if safe.get(key) is None else str(safe.get(key))) for key, label in _SIDEBAR_KEYS]
        st.dataframe(pd.DataFrame(rows, columns=["setting", "value"]), hide_index=True, width="stretch")
        st.caption("Set with ARBOR_* environment variables or .env; see the README.")


class LiveTree:
    """Draws snapshots as they arrive: a progress bar and the tree chart,
    redrawn at most every ``min_interval_s`` so drawing never dominates search."""

    def __init__(
        self,
        total_iterations: int,
        reward_range: tuple[float, float],
        *,
        min_interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._total = total_iterations
        self._range = reward_range
        self._min = min_interval_s
        self._clock = clock
        self._last = -1e9
        self._progress = st.progress(0.0, text="Starting search…")
        self._chart = st.empty()

    def __call__(self, snapshot: TreeSnapshot) -> None:
        now = self._clock()
        final = snapshot.iteration >= self._total
        if not final and now - self._last < self._min:
            return
        self._last = now
        self._progress.progress(
            min(snapshot.iteration / self._total, 1.0),
            text=f"Iteration {snapshot.iteration:,} of {self._total:,} · "
            f"{snapshot.tree_size:,} nodes · best {snapshot.best_action_label}",
        )
        self._chart.plotly_chart(charts.tree_figure(snapshot, self._range), width="stretch")

    def clear(self) -> None:
        """Remove the live view (the results take its place)."""
        self._progress.empty()
        self._chart.empty()


def stats_panel(stats: SearchStats) -> None:
    """The search's headline figures."""
    a, b, c, d = st.columns(4)
    a.metric("Best action", stats.best_action_label, help="Most visited root action (proven results first)")
    b.metric("Root value", f"{stats.root_value:+.3f}", help="Mean return for the player to move at the root")
    c.metric("Iterations", f"{stats.iterations:,}", help=f"Stopped: {stats.termination_reason}")
    d.metric(
        "Time", f"{stats.elapsed_s * 1000:,.1f} ms", help=f"{stats.sims_per_sec:,.0f} simulations per second"
    )
    e, f, g, h = st.columns(4)
    e.metric(
        "Cache hit rate",
        f"{stats.cache_hit_rate:.1%}",
        help=f"{stats.cache_hits:,} hits, {stats.cache_misses:,} misses",
    )
    f.metric("Termination", stats.termination_reason)
    g.metric("Tree nodes", f"{stats.tree_size:,}", help=f"max depth {stats.max_depth}")
    h.metric("Sims / s", f"{stats.sims_per_sec:,.0f}")
    st.caption(
        f"Seed **{stats.seed}** — the same seed and settings reproduce this run exactly. "
        f"Tree depth {stats.max_depth}; {stats.total_simulations:,} rollouts."
    )


def snapshot_table(snapshot: TreeSnapshot) -> pd.DataFrame:
    """The snapshot's nodes as a table (visits, Q, prior, the two selection terms)."""
    return pd.DataFrame(
        [
            {
                "node": n.id,
                "parent": n.parent if n.parent >= 0 else None,
                "depth": n.depth,
                "action": n.label,
                "visits": n.visits,
                "Q": round(n.value, 4),
                "prior": round(n.prior, 4),
                "exploit": round(n.exploit, 4),
                "explore": round(n.explore, 4),
                "on PV": n.on_pv,
                "proven": n.proven,
            }
            for n in snapshot.nodes
        ]
    )
