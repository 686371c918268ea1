"""Incidents: windows of time in which something was known to go wrong (a load run's injected
faults, later perhaps an operator's note), kept in the store's ``incidents`` table so that charts
can mark them and a review can name them.

Columns: ``id`` (text primary key), ``kind`` (e.g. ``error_spike``, ``slow_burn``,
``provider_outage``, ``latency_regression``), ``title`` (one line of plain text), ``start_ts`` and
``end_ts`` (unix seconds, ``start_ts < end_ts``), ``simulated`` (1 for a simulated timeline),
``source`` (who recorded it, e.g. ``load:<correlation id>``) and ``description``.

This module holds the migration that creates the table (appended to
``observability.store.schema.MIGRATIONS``), the typed value read back, the rows a writer submits
and the windowed read.  It never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

__all__ = ["MIGRATION", "Incident", "create", "incident_id", "incident_row", "read_incidents"]

_NAMESPACE = uuid.UUID("4b0e3c5e-9a4f-4d0e-8f65-6f1d0c1b2a37")


@dataclass(frozen=True, slots=True)
class Incident:
    """One recorded incident: ``start_ts`` < ``end_ts`` in unix seconds; texts are plain (never
    Markdown); ``simulated`` True for an incident on a simulated timeline."""

    id: str
    kind: str
    title: str
    start_ts: float
    end_ts: float
    simulated: bool
    source: str
    description: str


def create(db: Database) -> None:
    """The ``incidents`` table and its time index (the schema migration)."""
    db.table("incidents").create(
        {
            "id": str, "kind": str, "title": str, "start_ts": float, "end_ts": float,
            "simulated": int, "source": str, "description": str,
        },
        pk="id",
        not_null={"kind", "title", "start_ts", "end_ts", "simulated"},
        defaults={"simulated": 0},
    )  # fmt: skip
    db.table("incidents").create_index(["start_ts"], index_name="idx_incidents_start_ts")


#: The migration's entry in ``observability.store.schema.MIGRATIONS``.
MIGRATION: tuple[str, Callable[[Database], None]] = ("incidents marked on the charts", create)


def incident_id(source: str, kind: str, start_ts: float) -> str:
    """A stable id for an incident of ``kind`` from ``source`` starting at ``start_ts`` (so that
    recording it twice stores it once)."""
    return uuid.uuid5(_NAMESPACE, f"{source}\x00{kind}\x00{start_ts:.3f}").hex


def incident_row(
    *,
    kind: str,
    title: str,
    start_ts: float,
    end_ts: float,
    simulated: bool,
    source: str,
    description: str = "",
) -> dict[str, Any]:
    """A row of the ``incidents`` table (for ``Store.submit("incidents", ...)``).

    Raises:
        ValueError: an empty kind, title or source, or a window that does not have
            ``start_ts < end_ts`` (both finite).
    """
    if not kind.strip() or not title.strip() or not source.strip():
        raise ValueError("an incident needs a kind, a title and a source")
    if not (float("-inf") < start_ts < end_ts < float("inf")):
        raise ValueError(f"an incident's window must have start_ts < end_ts, got {start_ts!r} .. {end_ts!r}")
    return {
        "id": incident_id(source, kind, start_ts),
        "kind": kind,
        "title": title,
        "start_ts": float(start_ts),
        "end_ts": float(end_ts),
        "simulated": int(bool(simulated)),
        "source": source,
        "description": description,
    }


def read_incidents(db: Database, since_ts: float, until_ts: float) -> list[Incident]:
    """The incidents that overlap ``(since_ts, until_ts]`` (start before ``until_ts``, end after
    ``since_ts``), oldest first.  A store without the table (an older schema opened read-only)
    has none.  Raises sqlite3.Error when the file cannot be read."""
    if not db.table("incidents").exists():
        return []
    rows = db.query(
        "SELECT id, kind, title, start_ts, end_ts, simulated, source, description FROM incidents"
        " WHERE start_ts < ? AND end_ts > ? ORDER BY start_ts, id",
        [float(until_ts), float(since_ts)],
    )
    return [
        Incident(
            id=r["id"],
            kind=r["kind"],
            title=r["title"],
            start_ts=float(r["start_ts"]),
            end_ts=float(r["end_ts"]),
            simulated=bool(r["simulated"]),
            source=r["source"] or "",
            description=r["description"] or "",
        )
        for r in rows
    ]
