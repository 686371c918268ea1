"""The suite's history in the store's ``golden_runs`` table: writing a run, reading past runs.

One row per golden per run; the columns keep the meaning documented in :mod:`engine.golden.suite`
(the SLO review reads them).  Reads open their own read-only connection (:class:`ReadModel`).
A past run's replay is an ordinary recorded request: its spans (``spans`` by ``trace_id``) and
routing (``routing_decisions`` by ``request_id``) are in the store beside the row.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from observability.store import Store, StoreError
from observability.store.reads import ReadModel

if TYPE_CHECKING:
    from engine.golden.suite import SuiteResult

__all__ = ["SuiteRunSummary", "golden_run_rows", "record_run", "run_results", "suite_history"]

_MAX_DIVERGENCES = 20  # stored per trace (the first is also in first_divergence)


@dataclass(frozen=True, slots=True)
class SuiteRunSummary:
    """One past run from ``golden_runs``: its id, start (unix s) and counts."""

    run_id: str
    ts: float
    passed: int
    failed: int
    errors: int

    @property
    def total(self) -> int:
        """Goldens in the run."""
        return self.passed + self.failed + self.errors

    @property
    def pass_rate(self) -> float:
        """passed / total (0.0 for an empty run)."""
        return self.passed / self.total if self.total else 0.0


def golden_run_rows(result: SuiteResult) -> list[dict[str, Any]]:
    """The ``golden_runs`` rows of ``result`` (``diff`` as a dict: the store serialises it)."""
    suite_latency = result.latency.as_dict()
    rows = []
    for r in result.results:
        rows.append(
            {
                "run_id": result.run_id,
                "golden_id": r.name,
                "ts": result.ts,
                "status": r.status,
                "request_id": r.request_id,
                "trace_id": r.trace_id,
                "first_divergence": r.first_divergence,
                "diff": {
                    "divergences": [d.as_dict() for d in r.divergences[:_MAX_DIVERGENCES]],
                    "error": r.error,
                    "answer": r.answer,
                    "verdict": r.verdict,
                    "latency_samples_ms": list(r.latency_samples),
                    "latency_change": r.latency_change,
                    "suite_latency": suite_latency,
                },
                "quality": r.quality,
                "golden_quality": r.golden_quality,
                "latency_ms": r.latency_ms,
                "golden_latency_ms": r.golden_latency_ms,
            }
        )
    return rows


def record_run(store: Store, result: SuiteResult) -> SuiteResult:
    """Write ``result``'s rows to ``golden_runs`` and wait for the commit; the result with
    ``recorded`` True, or False and ``record_error`` when the store failed."""
    try:
        store.submit("golden_runs", golden_run_rows(result))
        store.flush()
    except (StoreError, sqlite3.Error, OSError) as exc:
        return dataclasses.replace(result, recorded=False, record_error=f"{type(exc).__name__}: {exc}")
    return dataclasses.replace(result, recorded=True)


def suite_history(db_path: Path, limit: int = 50) -> list[SuiteRunSummary]:
    """The last ``limit`` suite runs in the store at ``db_path``, newest first.

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    rows = ReadModel(Path(db_path)).query(
        "SELECT run_id, MIN(ts) AS ts, SUM(status = 'pass') AS passed, SUM(status = 'regression') AS failed, "
        "SUM(status = 'error') AS errors FROM golden_runs GROUP BY run_id ORDER BY ts DESC, run_id LIMIT ?",
        (int(limit),),
    )
    return [SuiteRunSummary(r["run_id"], r["ts"], r["passed"], r["failed"], r["errors"]) for r in rows]


def run_results(db_path: Path, run_id: str | None = None) -> list[dict[str, Any]]:
    """The ``golden_runs`` rows of ``run_id`` (default: the latest run), ``diff`` decoded, sorted by
    golden name; empty when there is no such run.

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    reads = ReadModel(Path(db_path))
    if run_id is None:
        latest = reads.query("SELECT run_id FROM golden_runs ORDER BY ts DESC, run_id LIMIT 1")
        if not latest:
            return []
        run_id = latest[0]["run_id"]
    rows = reads.query("SELECT * FROM golden_runs WHERE run_id = ? ORDER BY golden_id", (run_id,))
    for row in rows:
        try:
            row["diff"] = json.loads(row["diff"]) if row["diff"] else None
        except json.JSONDecodeError:
            row["diff"] = None
    return rows
