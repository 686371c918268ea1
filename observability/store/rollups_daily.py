"""Schema v7: the daily request roll-up, ``request_rollups_daily`` (see :mod:`observability.store.rollups`).

One row per day (``day``, unix s, a multiple of 86400) and group of every roll-up dimension
(status, task, last agent, provider, router, variant, verdict, simulated), with the same count
columns as the minute table.  A long window grouped by task, agent, provider, router or variant
(the SLO attribution) reads its whole days here: at ~36k requests a day the minute table holds
~30k groups a day, this one a few thousand at most, whatever the traffic.

Its own trigger, ``requests_rollup_daily_insert``, upserts each new request's group in the same
transaction as the row (next to the v6 trigger, which it leaves alone); the migration creates
the table and the trigger and backfills it from the stored rows.  ``rollups.rebuild`` recomputes
it.  Never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import sqlite3

from observability.store.rollups import DAY, backfill, create_table_sql, create_trigger_sql

__all__ = ["TRIGGER", "create_daily"]

TRIGGER = "requests_rollup_daily_insert"


def create_daily(conn: sqlite3.Connection) -> None:
    """The schema v7 migration: create the daily roll-up table and its trigger, then backfill it
    from the ``requests`` rows (inside the migration's transaction)."""
    conn.execute(create_table_sql(DAY))
    conn.execute(create_trigger_sql(TRIGGER, (DAY,)))
    backfill(conn, levels=(DAY,))
