"""Reads for the experiment runner: what an experiment has recorded so far, so that a resumed run
sends only what is missing, and the experiment's row in ``experiments`` (its run settings).

This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from observability.store.transactions import connect

__all__ = ["experiment_row", "reader", "recorded_request_ids", "recorded_units"]


@contextmanager
def reader(path: Path | str, busy_timeout_ms: int = 5000) -> Iterator[sqlite3.Connection]:
    """A short-lived read-only (``query_only``) connection to the store file at ``path``.

    Raises:
        sqlite3.Error: the file cannot be opened.
    """
    conn = connect(Path(path), busy_timeout_ms)
    try:
        conn.execute("PRAGMA query_only = ON")
        yield conn
    finally:
        conn.close()


def recorded_request_ids(conn: sqlite3.Connection, experiment: str) -> set[str]:
    """The ids of every request of ``experiment`` in the store, whatever its status (committed
    rows only: flush the store first to see your own writes)."""
    rows = conn.execute("SELECT request_id FROM requests WHERE experiment = ?", (experiment,))
    return {str(r[0]) for r in rows}


def recorded_units(conn: sqlite3.Connection, experiment: str) -> dict[str, dict[str, int]]:
    """Per variant of ``experiment``: ``units`` exposed (rows of ``exposures``) and ``requests``
    recorded by status (``ok``, ``error``, ``invalid``, ``cancelled``)."""
    out: dict[str, dict[str, int]] = {}
    for variant, n in conn.execute(
        "SELECT variant, COUNT(*) FROM exposures WHERE experiment = ? GROUP BY variant", (experiment,)
    ):
        out.setdefault(str(variant), {})["units"] = int(n)
    for variant, status, n in conn.execute(
        "SELECT variant, status, COUNT(*) FROM requests WHERE experiment = ? GROUP BY variant, status",
        (experiment,),
    ):
        out.setdefault(str(variant), {}).setdefault("units", 0)
        out[str(variant)][str(status)] = int(n)
    return out


def experiment_row(conn: sqlite3.Connection, experiment: str) -> dict[str, Any] | None:
    """The ``experiments`` row of ``experiment`` with its JSON columns decoded, or None."""
    cur = conn.execute("SELECT * FROM experiments WHERE experiment = ?", (experiment,))
    row = cur.fetchone()
    if row is None:
        return None
    out = dict(zip([d[0] for d in cur.description], row, strict=True))
    for col in ("variants", "metrics", "config", "decision_reasons"):
        if isinstance(out.get(col), str):
            try:
                out[col] = json.loads(out[col])
            except ValueError:
                out[col] = None
    return out
