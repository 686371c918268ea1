"""Alert episodes from the SQLite store: replay every SLO's burn-rate rules over a period and
keep the episodes in the store's ``alerts`` table (upserted by a deterministic id, so replaying
again updates the same rows instead of adding new ones), and read the firing ones back.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from observability.slo.math import BucketCount
from observability.slo.models import SLO
from observability.slo.replay import AlertEpisode, bucket_width_s, lookback_s, replay_episodes
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import Store
from observability.store.reads import ReadModel

__all__ = [
    "ALERT_NAME",
    "REPLAY_SOURCE",
    "episode_rows",
    "firing_count",
    "replay_store",
    "save_episodes",
    "stored_episodes",
]

#: The alert name of the generated Prometheus rules.
ALERT_NAME = "SLOErrorBudgetBurn"
#: ``alerts.source`` of the episodes the replay writes.
REPLAY_SOURCE = "sqlite-replay"


def replay_store(
    slos: Sequence[SLO], source: SqliteSLOSource, as_of: float, period: timedelta | None = None
) -> list[AlertEpisode]:
    """Every SLO's alert episodes over ``period`` (default: the SLO's window) ending at ``as_of``,
    from one grouped per-minute query for the SLOs of the same span (all of them, usually).
    Raises sqlite3.Error for an unreadable store."""
    episodes: list[AlertEpisode] = []
    extra = lookback_s()
    width = bucket_width_s()  # 5 minutes: the same episodes as per-minute counts, fewer boundaries
    spans = [(period or slo.period).total_seconds() for slo in slos]
    minutes: dict[str, list[BucketCount]] = {}  # the SLOs of one span read their buckets together
    for span in dict.fromkeys(spans):
        group = [slo for slo, s in zip(slos, spans, strict=True) if s == span]
        for slo, found in zip(group, source.buckets_many(group, as_of, span + extra, width), strict=True):
            minutes[slo.name] = found
    for slo, span in zip(slos, spans, strict=True):
        buckets = minutes[slo.name]
        episodes += replay_episodes(
            slo.name,
            slo.objective,
            slo.period,
            as_of,
            [b.total for b in buckets],
            [b.bad for b in buckets],
            eval_period_s=span,
            bucket_s=width,
        )
    return episodes


def episode_rows(episodes: Sequence[AlertEpisode]) -> list[dict[str, Any]]:
    """Rows of the ``alerts`` table for ``episodes`` (threshold = the factor, burn_rate = the peak)."""
    return [
        {
            "alert_id": ep.alert_id,
            "name": ALERT_NAME,
            "slo": ep.slo,
            "severity": ep.severity,
            "state": "firing" if ep.firing else "resolved",
            "ts": ep.start_ts,
            "resolved_ts": ep.end_ts,
            "burn_rate": ep.peak_burn,
            "threshold": ep.factor,
            "long_window": ep.long_window,
            "short_window": ep.short_window,
            "source": REPLAY_SOURCE,
            "message": (
                f"{ep.slo}: error budget burning over {ep.factor:g}x"
                f" over {ep.long_window} and {ep.short_window}"
            ),
            "simulated": 0,
        }
        for ep in episodes
    ]


def stored_episodes(reads: ReadModel, limit: int = 200) -> list[dict[str, Any]]:
    """The stored alert episodes, newest first (at most ``limit``). Raises sqlite3.Error."""
    return reads.query(
        "SELECT alert_id, slo, severity, state, ts, resolved_ts, burn_rate, threshold, long_window,"
        " short_window, source FROM alerts ORDER BY ts DESC, alert_id LIMIT ?",
        [int(limit)],
    )


def firing_count(reads: ReadModel) -> int:
    """How many stored alerts are firing. Raises sqlite3.Error."""
    return int(reads.query("SELECT COUNT(*) AS n FROM alerts WHERE state = 'firing'")[0]["n"])


def save_episodes(store: Store, episodes: Sequence[AlertEpisode], timeout_s: float = 10.0) -> int:
    """Upsert ``episodes`` into the ``alerts`` table and wait for the commit; returns how many
    rows were written. A stored episode already resolved is never turned back into a firing one
    (a replay at an earlier ``as_of`` sees it still firing). Raises sqlite3.Error / StoreError."""
    ids = [ep.alert_id for ep in episodes]
    resolved: set[str] = set()
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        marks = ", ".join("?" * len(chunk))
        rows = store.reads.query(
            f"SELECT alert_id FROM alerts WHERE state = 'resolved' AND alert_id IN ({marks})", chunk
        )
        resolved |= {r["alert_id"] for r in rows}
    keep = [ep for ep in episodes if not (ep.firing and ep.alert_id in resolved)]
    if keep:
        store.submit("alerts", episode_rows(keep))
    store.flush(timeout_s)
    return len(keep)
