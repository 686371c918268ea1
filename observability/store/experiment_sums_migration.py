"""Migration: the experiment sufficient-statistics tables and triggers (issue 14, item 7).

The tables are defined in :mod:`observability.store.experiment_sums`, imported when the
migration runs (that module reads :mod:`observability.store.schema`, which lists this one).
"""

from __future__ import annotations

from sqlite_utils import Database

__all__ = ["NAME", "migrate"]

NAME = "experiment sufficient statistics"


def migrate(db: Database) -> None:
    """Create and backfill ``experiment_unit_sums``, ``experiment_variant_minutes`` and
    ``experiment_variant_events`` with their triggers."""
    from observability.store import experiment_sums

    experiment_sums.create(db.conn)
