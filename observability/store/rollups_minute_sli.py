"""Migration: the per-minute SLI roll-up, ``request_rollups_minute_sli`` (see
:mod:`observability.store.rollups`).

One row per minute (``minute``, unix s, a multiple of 60) and group of the SLI dimensions
(``status``, ``verdict``, ``simulated``), with the same count columns as the minute table
(requests, latencies, cumulative latency buckets).  The SLO buckets
(:func:`observability.store.slo_reads.bucket_counts_many`: the alert replay's minutes, the SLO
charts) read their whole minutes here: a few narrow rows a minute, where the minute table by
every dimension holds about one row per request at ~25 requests a minute.

Its own trigger, ``requests_rollup_minute_sli_insert``, upserts each new request's group in the
same transaction as the row (next to the v6 and v7 triggers, which it leaves alone); the
migration creates the table and the trigger and backfills it from the stored rows.
``rollups.rebuild`` recomputes it from the minute table.  Never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import sqlite3

from observability.store.rollups import MINUTE_SLI, backfill, create_table_sql, create_trigger_sql

__all__ = ["NAME", "TRIGGER", "create_minute_sli"]

#: The migration's name in :data:`observability.store.schema.MIGRATIONS`.
NAME = "per-minute SLI request roll-ups"
TRIGGER = "requests_rollup_minute_sli_insert"


def create_minute_sli(conn: sqlite3.Connection) -> None:
    """The migration: create the per-minute SLI roll-up table and its trigger, then
    backfill it from the ``requests`` rows (inside the migration's transaction)."""
    conn.execute(create_table_sql(MINUTE_SLI))
    conn.execute(create_trigger_sql(TRIGGER, (MINUTE_SLI,)))
    backfill(conn, levels=(MINUTE_SLI,))
