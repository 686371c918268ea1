"""Migration: the Experiments list's request counts from an index.

``requests(experiment, variant)`` becomes ``requests(experiment, variant, status)``, so the
per-variant, per-status counts of :func:`observability.store.experiment_runs.recorded_units`
read the index alone instead of every request row of the experiment (the largest part of the
Experiments page on a store with 1M requests of one experiment).  Whatever used the old index
uses the new one's prefix.
"""

from __future__ import annotations

from sqlite_utils import Database

__all__ = ["NAME", "migrate"]

NAME = "experiment request counts from an index"


def migrate(db: Database) -> None:
    """Replace ``idx_requests_experiment`` by ``idx_requests_experiment_status``."""
    db.conn.execute("DROP INDEX IF EXISTS idx_requests_experiment")
    db.conn.execute("CREATE INDEX idx_requests_experiment_status ON requests (experiment, variant, status)")
