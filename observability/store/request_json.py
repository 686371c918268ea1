"""Migration: ``requests.request_json``, the full validated request of each row (issue 13).

The ``requests`` row lacked use_mcts, use_rag, mcts_iterations, max_steps and overrides, so a stored
request could not be replayed.  This column holds the request's JSON as the engine validated it
(``QueryRequest.model_dump_json()``: every field by its own name, ``seed`` as asked, which may be
null: the seed actually used is the row's ``seed``), redacted like the query.  Rows written before
this migration have NULL: such a request cannot be captured as a golden trace.
"""

from __future__ import annotations

from sqlite_utils import Database

__all__ = ["NAME", "add_request_json"]

NAME = "full request json on requests"


def add_request_json(db: Database) -> None:
    """Add the nullable TEXT column ``requests.request_json``."""
    db.table("requests").add_column("request_json", str)
