"""Canary releases in the store: the migration creating ``canary_runs``, ``canary_steps`` and
``canary_guardrails``, the synchronous writes of a run, and the reads the CLI and console use.

* ``canary_runs``: one row per run (``run_id``): the canary id, ``status`` (``running``,
  ``promoted``, ``rolled_back``, ``stalled``, ``stopped``, ``failed``), the current (at the end:
  final) traffic share in percent, the ``reason`` of the outcome, the ``seed``, ``simulated``
  (1: requests stamped on a simulated clock), the spec as JSON, request counts per arm and times.
* ``canary_steps``: one row per evaluation (``run_id``, ``seq``): the step index and its traffic
  share, ``ts`` (the run's clock: simulated or wall, unix s), ``wall_ts``, the ``decision``
  (``continue``, ``promote``, ``rollback``, ``stall``, ``stop``) and its ``reason``, the served
  requests in each arm's window, received in the step and in the run so far.
* ``canary_guardrails``: each guardrail's ``value``, ``threshold``, ``verdict`` (pass, fail,
  waiting) and ``detail`` at each evaluation (``run_id``, ``seq``, ``guardrail``).

Writes are synchronous (one committed transaction per evaluation), so a run stopped by SIGTERM or
killed keeps every evaluation it made.  This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

__all__ = [
    "MIGRATION",
    "CanaryGuardrailRow",
    "CanaryRunRow",
    "CanaryStepRow",
    "CanaryWriter",
    "create",
    "read_guardrails",
    "read_run",
    "read_runs",
    "read_steps",
]

RUN_STATUSES = ("running", "promoted", "rolled_back", "stalled", "stopped", "failed")
DECISIONS = ("continue", "promote", "rollback", "stall", "stop")


def create(db: Database) -> None:
    """Create the three canary tables and their indexes (the schema migration)."""
    db.table("canary_runs").create(
        {
            "run_id": str,
            "canary": str,
            "status": str,
            "share_pct": float,
            "reason": str,
            "seed": int,
            "simulated": int,
            "spec": str,
            "baseline_requests": int,
            "canary_requests": int,
            "started_ts": float,
            "finished_ts": float,
            "updated_ts": float,
        },
        pk="run_id",
        not_null={"canary", "status", "started_ts"},
    )
    db.table("canary_runs").create_index(["canary", "started_ts"], index_name="idx_canary_runs_canary")
    db.table("canary_steps").create(
        {
            "run_id": str,
            "seq": int,
            "step_index": int,
            "share_pct": float,
            "ts": float,
            "wall_ts": float,
            "decision": str,
            "reason": str,
            "baseline_window": int,
            "canary_window": int,
            "baseline_step": int,
            "canary_step": int,
            "baseline_total": int,
            "canary_total": int,
        },
        pk=("run_id", "seq"),
        not_null={"decision", "share_pct"},
    )
    db.table("canary_guardrails").create(
        {
            "run_id": str,
            "seq": int,
            "guardrail": str,
            "value": float,
            "threshold": float,
            "verdict": str,
            "detail": str,
        },
        pk=("run_id", "seq", "guardrail"),
        not_null={"verdict"},
    )


#: The migration's entry in ``observability.store.schema.MIGRATIONS``.
MIGRATION: tuple[str, Callable[[Database], None]] = ("canary runs, steps and guardrail evaluations", create)


@dataclass(frozen=True, slots=True)
class CanaryRunRow:
    """One ``canary_runs`` row (times unix s; ``spec`` decoded)."""

    run_id: str
    canary: str
    status: str
    share_pct: float
    reason: str | None
    seed: int | None
    simulated: bool
    spec: Mapping[str, Any] | None
    baseline_requests: int
    canary_requests: int
    started_ts: float
    finished_ts: float | None


@dataclass(frozen=True, slots=True)
class CanaryGuardrailRow:
    """One guardrail at one evaluation."""

    guardrail: str
    value: float | None
    threshold: float | None
    verdict: str
    detail: str


@dataclass(frozen=True, slots=True)
class CanaryStepRow:
    """One evaluation of a run, with its guardrails."""

    seq: int
    step_index: int
    share_pct: float
    ts: float
    wall_ts: float
    decision: str
    reason: str
    baseline_window: int
    canary_window: int
    baseline_step: int
    canary_step: int
    baseline_total: int
    canary_total: int
    guardrails: tuple[CanaryGuardrailRow, ...]


class CanaryWriter:
    """Synchronous writes of one run to the store file at ``path`` (already migrated by the
    engine's store); each call commits before it returns.

    Raises (every method): sqlite3.Error when the file cannot be written.
    """

    def __init__(
        self, path: Path | str, run_id: str, clock: Callable[[], float], busy_timeout_ms: int = 10_000
    ) -> None:
        self.run_id = run_id
        from observability.store.transactions import connect  # schema.py imports this module

        self._clock = clock
        self._conn = connect(Path(path), busy_timeout_ms)

    def close(self) -> None:
        self._conn.close()

    def start(
        self, canary: str, seed: int, simulated: bool, spec: Mapping[str, Any], share_pct: float
    ) -> None:
        """Insert the run's row (status ``running``)."""
        now = self._clock()
        with self._tx():
            self._conn.execute(
                "INSERT INTO canary_runs (run_id, canary, status, share_pct, seed, simulated, spec, "
                "baseline_requests, canary_requests, started_ts, updated_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    self.run_id,
                    canary,
                    "running",
                    share_pct,
                    seed,
                    int(simulated),
                    json.dumps(spec),
                    0,
                    0,
                    now,
                    now,
                ),
            )

    def evaluation(
        self,
        seq: int,
        step: Mapping[str, Any],
        guardrails: Sequence[Mapping[str, Any]],
        share_pct: float,
        counts: tuple[int, int],
    ) -> None:
        """Record evaluation ``seq`` (a ``canary_steps`` row without run_id/seq, and its guardrails)
        and the run's current share and request counts, in one transaction."""
        cols = ["run_id", "seq", *step]
        with self._tx():
            self._conn.execute(
                f"INSERT INTO canary_steps ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                (self.run_id, seq, *step.values()),
            )
            self._conn.executemany(
                "INSERT INTO canary_guardrails (run_id, seq, guardrail, value, threshold, verdict, detail) "
                "VALUES (?,?,?,?,?,?,?)",
                [
                    (self.run_id, seq, g["guardrail"], g["value"], g["threshold"], g["verdict"], g["detail"])
                    for g in guardrails
                ],
            )
            self._conn.execute(
                "UPDATE canary_runs SET share_pct = ?, baseline_requests = ?, canary_requests = ?, "
                "updated_ts = ? WHERE run_id = ?",
                (share_pct, counts[0], counts[1], self._clock(), self.run_id),
            )

    def finish(self, status: str, reason: str, share_pct: float, counts: tuple[int, int]) -> None:
        """Mark the run ``status`` with its reason, final share and request counts."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown canary status {status!r}")
        now = self._clock()
        with self._tx():
            self._conn.execute(
                "UPDATE canary_runs SET status = ?, reason = ?, share_pct = ?, baseline_requests = ?, "
                "canary_requests = ?, finished_ts = ?, updated_ts = ? WHERE run_id = ?",
                (status, reason, share_pct, counts[0], counts[1], now, now, self.run_id),
            )

    def _tx(self) -> Any:
        conn = self._conn

        class _Tx:
            def __enter__(self) -> None:
                conn.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type: Any, *_: Any) -> None:
                conn.execute("ROLLBACK" if exc_type else "COMMIT")

        return _Tx()


def _run(row: sqlite3.Row | tuple[Any, ...], names: Sequence[str]) -> CanaryRunRow:
    d = dict(zip(names, row, strict=True))
    try:
        spec = json.loads(d["spec"]) if d.get("spec") else None
    except ValueError:
        spec = None
    return CanaryRunRow(
        str(d["run_id"]),
        str(d["canary"]),
        str(d["status"]),
        float(d["share_pct"] or 0.0),
        d["reason"],
        d["seed"],
        bool(d["simulated"]),
        spec,
        int(d["baseline_requests"] or 0),
        int(d["canary_requests"] or 0),
        float(d["started_ts"]),
        d["finished_ts"],
    )


_RUN_COLS = (
    "run_id",
    "canary",
    "status",
    "share_pct",
    "reason",
    "seed",
    "simulated",
    "spec",
    "baseline_requests",
    "canary_requests",
    "started_ts",
    "finished_ts",
)


def _has_tables(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='canary_runs'").fetchone()
        is not None
    )


def read_runs(conn: sqlite3.Connection, limit: int = 200) -> list[CanaryRunRow]:
    """The newest ``limit`` runs, newest first (empty when the store predates the canary tables)."""
    if not _has_tables(conn):
        return []
    rows = conn.execute(
        f"SELECT {', '.join(_RUN_COLS)} FROM canary_runs ORDER BY started_ts DESC, run_id LIMIT ?",
        (int(limit),),
    ).fetchall()
    return [_run(r, _RUN_COLS) for r in rows]


def read_run(conn: sqlite3.Connection, run_id: str) -> CanaryRunRow | None:
    """The run ``run_id``, or None."""
    if not _has_tables(conn):
        return None
    row = conn.execute(
        f"SELECT {', '.join(_RUN_COLS)} FROM canary_runs WHERE run_id = ?", (run_id,)
    ).fetchone()
    return None if row is None else _run(row, _RUN_COLS)


def read_guardrails(conn: sqlite3.Connection, run_id: str) -> dict[int, tuple[CanaryGuardrailRow, ...]]:
    """Each evaluation's guardrails (by ``seq``), in a fixed order of names."""
    out: dict[int, list[CanaryGuardrailRow]] = {}
    for seq, name, value, threshold, verdict, detail in conn.execute(
        "SELECT seq, guardrail, value, threshold, verdict, detail FROM canary_guardrails WHERE run_id = ? "
        "ORDER BY seq, rowid",
        (run_id,),
    ):
        out.setdefault(int(seq), []).append(
            CanaryGuardrailRow(str(name), value, threshold, str(verdict), detail or "")
        )
    return {k: tuple(v) for k, v in out.items()}


def read_steps(conn: sqlite3.Connection, run_id: str) -> list[CanaryStepRow]:
    """Every evaluation of ``run_id`` in order, each with its guardrails."""
    if not _has_tables(conn):
        return []
    guards = read_guardrails(conn, run_id)
    rows = conn.execute(
        "SELECT seq, step_index, share_pct, ts, wall_ts, decision, reason, baseline_window, canary_window, "
        "baseline_step, canary_step, baseline_total, canary_total FROM canary_steps WHERE run_id = ? "
        "ORDER BY seq",
        (run_id,),
    ).fetchall()
    out = []
    for r in rows:
        b_win, c_win, b_step, c_step, b_total, c_total = (int(x or 0) for x in r[7:13])
        out.append(
            CanaryStepRow(
                seq=int(r[0]),
                step_index=int(r[1]),
                share_pct=float(r[2]),
                ts=float(r[3]),
                wall_ts=float(r[4]),
                decision=str(r[5]),
                reason=r[6] or "",
                baseline_window=b_win,
                canary_window=c_win,
                baseline_step=b_step,
                canary_step=c_step,
                baseline_total=b_total,
                canary_total=c_total,
                guardrails=guards.get(int(r[0]), ()),
            )
        )
    return out
