"""Burn-rate alert episodes for the console: the SLO page's replay (persisted into the store's
``alerts`` table) and every page's sidebar badge while an alert is firing.

The replay (:func:`observability.slo.alert_store.replay_store`) runs when the SLO page loads,
once per store contents, range and ``as_of`` (cached); the badge reads the ``alerts`` table,
cached for :data:`BADGE_TTL_S` seconds. Neither raises for an unreadable store or a bad SLO
file: the episodes come back as a message, the badge is left out.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass

import streamlit as st

from app import runtime
from app.links import runbook_link
from app.slo import period_of
from observability.slo.alert_store import firing_count, replay_store, save_episodes
from observability.slo.models import DEFAULT_SLOS_PATH, SLOConfigError, load_slos
from observability.slo.replay import AlertEpisode
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import StoreError

__all__ = ["BADGE_TTL_S", "RUNBOOKS", "EpisodeRow", "alert_sidebar", "badge_text", "episodes", "firing_now"]

log = logging.getLogger(__name__)

#: How long the sidebar badge's count is reused (s).
BADGE_TTL_S = 15
#: The Runbooks page URL of each burn-rate alert severity (app.links.runbook_link).
RUNBOOKS: dict[str, str | None] = {severity: runbook_link(severity) for severity in ("page", "ticket")}


@dataclass(frozen=True)
class EpisodeRow:
    """One alert episode as the SLO page lists it (times in unix s; ``end_ts`` None: firing;
    ``runbook``: the relative URL of its runbook on the Runbooks page)."""

    slo: str
    severity: str
    windows: str
    factor: float
    start_ts: float
    end_ts: float | None
    peak_burn: float
    runbook: str | None  # the Runbooks page URL of the alert, None when it has no runbook


def _row(ep: AlertEpisode) -> EpisodeRow:
    return EpisodeRow(
        ep.slo,
        ep.severity,
        f"{ep.long_window} / {ep.short_window}",
        ep.factor,
        ep.start_ts,
        ep.end_ts,
        ep.peak_burn,
        runbook_link(ep.severity),
    )


@st.cache_data(ttl=60, show_spinner=False)
def _cached_episodes(db_path: str, stored: int, latest: float | None, range_key: str, as_of: float) -> tuple:
    """Replay and persist; keyed on the store's request count and newest request (not on its
    committed rows, which the persisting itself changes)."""
    store = runtime.get_store()
    assert store is not None
    slos = load_slos(DEFAULT_SLOS_PATH)
    found = replay_store(slos, SqliteSLOSource(store.reads), as_of, period_of(range_key))
    save_episodes(store, found)
    _cached_firing.clear()
    return tuple(_row(ep) for ep in found)


def episodes(range_key: str, as_of: float) -> tuple[EpisodeRow, ...] | str:
    """Every SLO's alert episodes over ``range_key`` ending at ``as_of``, newest first, stored in
    the ``alerts`` table on the way; a message when telemetry is off or the store or SLO file
    cannot be read. Raises ValueError for an unknown range."""
    period_of(range_key)
    store = runtime.get_store()
    if store is None:
        return "Telemetry is off: no alert episodes."
    try:
        store.wait(timeout_s=5.0)
        stored, latest = store.reads.request_facts()
        rows = _cached_episodes(str(store.path), stored, latest, range_key, as_of)
    except (sqlite3.Error, StoreError) as exc:
        return f"The alert episodes could not be replayed: {exc}"
    except SLOConfigError as exc:
        return f"The SLO file {DEFAULT_SLOS_PATH} is invalid: {exc}"
    return tuple(sorted(rows, key=lambda r: -r.start_ts))


@st.cache_data(ttl=BADGE_TTL_S, show_spinner=False)
def _cached_firing(db_path: str) -> int:
    store = runtime.get_store()
    assert store is not None
    return firing_count(store.reads)


def firing_now() -> int:
    """How many stored alerts are firing (cached :data:`BADGE_TTL_S` s); 0 when telemetry is off
    or the store cannot be read (logged)."""
    store = runtime.get_store()
    if store is None:
        return 0
    try:
        return _cached_firing(str(store.path))
    except sqlite3.Error as exc:
        log.warning("alert badge: the alerts table cannot be read: %s", exc)
        return 0


def badge_text(count: int) -> str | None:
    """The sidebar badge for ``count`` firing alerts ("2 alerts firing", shown with a 🔴 icon),
    None for none."""
    if count <= 0:
        return None
    return f"{count} alert{'s' if count != 1 else ''} firing"


def alert_sidebar() -> None:
    """Every page's sidebar badge while an alert is firing (its episodes are on the SLO page)."""
    text = badge_text(firing_now())
    if text is not None:
        st.sidebar.error(f"{text}: see the alert episodes on the SLOs page.", icon="🔴")
