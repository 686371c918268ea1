"""The store's reads for the SLO review document: the latest golden-suite run (``golden_runs``)
and the alert episodes recorded in the ``alerts`` table over a period.

Both return typed values (frozen dataclasses) and take text from the store as it is (the
renderers escape it). Times are unix seconds. This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from observability.store.reads import ReadModel

__all__ = [
    "GOLDEN_STATUSES",
    "GoldenResult",
    "GoldenRun",
    "GoldenTally",
    "RecordedEpisode",
    "latest_golden_run",
    "recorded_episodes",
]

#: The statuses a golden result can have; any other stored text is counted as an error.
GOLDEN_STATUSES: tuple[str, ...] = ("pass", "regression", "error")


class _HasStatus(Protocol):
    @property
    def status(self) -> str: ...


class GoldenTally:
    """Counts over a suite run's ``results`` (anything with a ``status``), shared by the suite's
    own result and the store's read of it: ``passed``/``failed``/``errors`` count ``pass``,
    ``regression`` and the rest (``error`` or a status the store should not hold)."""

    results: Sequence[_HasStatus]

    @property
    def passed(self) -> int:
        """How many goldens passed."""
        return sum(r.status == "pass" for r in self.results)

    @property
    def failed(self) -> int:
        """How many goldens regressed."""
        return sum(r.status == "regression" for r in self.results)

    @property
    def errors(self) -> int:
        """How many goldens could not be loaded, replayed or compared (status ``error`` or unknown)."""
        return len(self.results) - self.passed - self.failed


@dataclass(frozen=True)
class GoldenResult:
    """One golden trace's outcome in a suite run: its id (``name``), status and the first
    divergence the comparison found (None when it passed or recorded none)."""

    name: str
    status: str
    first_divergence: str | None


@dataclass(frozen=True)
class GoldenRun(GoldenTally):
    """The results of one golden-suite run (``run_id``), recorded at ``ts`` (the newest of its
    rows), in golden-id order; ``passed``/``failed``/``errors`` count pass, regression and the
    rest (``error`` or an unknown status)."""

    run_id: str
    ts: float
    results: tuple[GoldenResult, ...]


def latest_golden_run(reads: ReadModel) -> GoldenRun | None:
    """The golden-suite run with the newest ``ts`` in ``golden_runs`` (ties: the larger run id),
    or None when no run is recorded. Raises sqlite3.Error when the store cannot be read."""
    head = reads.query(
        "SELECT run_id, MAX(ts) AS ts FROM golden_runs GROUP BY run_id ORDER BY ts DESC, run_id DESC LIMIT 1"
    )
    if not head or head[0]["run_id"] is None:
        return None
    run_id = head[0]["run_id"]
    rows = reads.query(
        "SELECT golden_id, status, first_divergence FROM golden_runs WHERE run_id = ? ORDER BY golden_id",
        [run_id],
    )
    results = tuple(
        GoldenResult(
            name=str(r["golden_id"]),
            status=str(r["status"]),
            first_divergence=None if r["first_divergence"] in (None, "") else str(r["first_divergence"]),
        )
        for r in rows
    )
    return GoldenRun(run_id=str(run_id), ts=float(head[0]["ts"]), results=results)


@dataclass(frozen=True)
class RecordedEpisode:
    """One alert episode of the ``alerts`` table: ``slo`` burned faster than ``factor`` over its
    ``long_window`` and ``short_window`` from ``start_ts`` until ``end_ts`` (None: not resolved
    when recorded); ``peak_burn`` is the highest burn seen (None if not recorded); ``source``
    says who recorded it (``sqlite-replay``, Prometheus ...)."""

    alert_id: str
    slo: str
    severity: str | None
    long_window: str | None
    short_window: str | None
    factor: float | None
    start_ts: float
    end_ts: float | None
    peak_burn: float | None
    source: str | None


def _opt_float(value: object) -> float | None:
    """A stored number, or None for NULL and for anything that is not a finite number (the
    table may hold what another writer put there)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _opt_text(value: object) -> str | None:
    return None if value is None else str(value)


def recorded_episodes(
    reads: ReadModel,
    since_ts: float,
    until_ts: float,
    slos: Sequence[str] | None = None,
    limit: int = 100_000,
) -> list[RecordedEpisode]:
    """The alert episodes of the ``alerts`` table that overlap ``(since_ts, until_ts]``: started
    at or before ``until_ts`` and not resolved by ``since_ts``; only those of the SLO names
    ``slos`` when given; newest start first, at most ``limit``. Raises sqlite3.Error."""
    where = "typeof(ts) IN ('real', 'integer') AND ts <= ? AND (resolved_ts IS NULL OR resolved_ts > ?)"
    params: list[object] = [until_ts, since_ts]
    if slos is not None:
        if not slos:
            return []
        where += f" AND slo IN ({', '.join('?' * len(slos))})"
        params += list(slos)
    rows = reads.query(
        "SELECT alert_id, slo, severity, long_window, short_window, threshold, ts, resolved_ts,"
        f" burn_rate, source FROM alerts WHERE {where} ORDER BY ts DESC, alert_id LIMIT ?",
        [*params, int(limit)],
    )
    return [
        RecordedEpisode(
            alert_id=str(r["alert_id"]),
            slo=str(r["slo"]),
            severity=_opt_text(r["severity"]),
            long_window=_opt_text(r["long_window"]),
            short_window=_opt_text(r["short_window"]),
            factor=_opt_float(r["threshold"]),
            start_ts=float(r["ts"]),
            end_ts=_opt_float(r["resolved_ts"]),
            peak_burn=_opt_float(r["burn_rate"]),
            source=_opt_text(r["source"]),
        )
        for r in rows
    ]
