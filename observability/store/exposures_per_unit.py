"""Migration: experiment exposures per unit (issue 14).

``exposures`` was keyed by (experiment, request_id); an experiment exposes a unit (the request's
``user_id``) once, at its first request, so the table is rebuilt keyed by (experiment, unit),
carrying over the earliest row per unit, with an index on ``requests(experiment, variant, user_id)``
for the per-variant aggregation.
"""

from __future__ import annotations

from sqlite_utils import Database

__all__ = ["NAME", "migrate"]

NAME = "experiment exposures per unit"


def migrate(db: Database) -> None:
    """exposures keyed by (experiment, unit) instead of (experiment, request_id): a unit (the
    request's user_id) is exposed once, at its first request.  Existing rows are carried over,
    the earliest per (experiment, user_id, or request_id when there is no user_id)."""
    conn = db.conn
    conn.execute(
        """CREATE TABLE exposures_v7 (
            experiment TEXT NOT NULL, unit TEXT NOT NULL, variant TEXT NOT NULL, bucket INTEGER,
            request_id TEXT, ts FLOAT NOT NULL, PRIMARY KEY (experiment, unit))"""
    )
    conn.execute(
        """INSERT OR IGNORE INTO exposures_v7 (experiment, unit, variant, bucket, request_id, ts)
           SELECT experiment, COALESCE(user_id, request_id), variant, bucket, request_id, ts
           FROM exposures ORDER BY ts, request_id"""
    )
    conn.execute("DROP TABLE exposures")
    conn.execute("ALTER TABLE exposures_v7 RENAME TO exposures")
    conn.execute("CREATE INDEX idx_exposures_variant ON exposures (experiment, variant)")
    conn.execute("CREATE INDEX idx_requests_experiment_unit ON requests (experiment, variant, user_id)")
