"""Experiment reads: per-unit metrics aggregated to per-variant sums in SQL (nothing row by row).

A unit is a row of ``exposures`` (experiment, unit = the requests' ``user_id``, variant); its
requests are the served requests (status ok or error) of the experiment with its ``user_id``
and ``variant``.  For a metric with per-request value ``v`` (:data:`UNIT_METRICS`), a unit's
value is ``num / den`` with ``num = Σ v`` and ``den`` = its requests with a value, so units
weigh equally whatever their number of requests; a unit with no value (e.g. no judged answer
for ``correctness``) is left out of that metric.  Per variant the reads return the sums that
summary statistics need: n, Σy, Σy² of the unit values; Σnum, Σnum², Σden, Σden², Σnum·den for
the ratio form (Σ num / Σ den per variant, by the delta method); and, for CUPED, the sums of
the covariate x = the unit's value of the same metric over the pre-period (by default the 7
days before the experiment started, from any of its requests), 0 for a unit with no history,
with the number of units that have some.

This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from observability.store.schema import SERVED_STATUSES

__all__ = [
    "PRE_PERIOD_S",
    "UNIT_METRICS",
    "UnitMetric",
    "VariantSums",
    "experiment_start",
    "exposure_counts",
    "variant_sums",
]

_SERVED = f"status IN ({', '.join(repr(s) for s in SERVED_STATUSES)})"

#: The CUPED pre-period: 7 days before the experiment started, in seconds.
PRE_PERIOD_S = 7 * 86_400.0


@dataclass(frozen=True, slots=True)
class UnitMetric:
    """A metric's per-request value (an SQL expression over ``requests`` columns, NULL when the
    request has none), whether higher is better, and its unit for display."""

    sql: str
    higher_is_better: bool
    unit: str
    description: str


#: The metrics experiments can name, by name.
UNIT_METRICS: dict[str, UnitMetric] = {
    "correctness": UnitMetric(
        "CASE verdict WHEN 'correct' THEN 1.0 WHEN 'incorrect' THEN 0.0 END",
        True,
        "share",
        "share of judged answers (verdict correct or incorrect) that are correct",
    ),
    "latency": UnitMetric("latency_ms", False, "ms", "end-to-end latency per request"),
    "cost": UnitMetric("COALESCE(cost_usd, 0.0)", False, "USD", "LLM cost per request"),
    "tokens": UnitMetric("COALESCE(tokens, 0)", False, "tokens", "LLM tokens per request"),
    "errors": UnitMetric(
        "CASE WHEN status = 'error' THEN 1.0 ELSE 0.0 END", False, "share", "share of requests that failed"
    ),
}


@dataclass(frozen=True, slots=True)
class VariantSums:
    """Sums over one variant's units for one metric (see the module docstring).

    ``n``: units with a value; ``sum_y``/``sum_y2``: Σ and Σ² of unit values; ``sum_num`` ...
    ``sum_num_den``: the ratio form's sums; ``sum_x``/``sum_x2``/``sum_xy``: the covariate's;
    ``with_history``: units with a pre-period value.
    """

    variant: str
    n: int
    sum_y: float
    sum_y2: float
    sum_num: float
    sum_num2: float
    sum_den: float
    sum_den2: float
    sum_num_den: float
    sum_x: float
    sum_x2: float
    sum_xy: float
    with_history: int


def exposure_counts(conn: sqlite3.Connection, experiment: str) -> dict[str, int]:
    """Exposed units per variant (what the SRM check compares with the weights)."""
    rows = conn.execute(
        "SELECT variant, COUNT(*) FROM exposures WHERE experiment = ? GROUP BY variant ORDER BY variant",
        (experiment,),
    ).fetchall()
    return {str(v): int(c) for v, c in rows}


def experiment_start(conn: sqlite3.Connection, experiment: str) -> float | None:
    """The first exposure's time (unix s), None when nothing was exposed."""
    row = conn.execute("SELECT MIN(ts) FROM exposures WHERE experiment = ?", (experiment,)).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def variant_sums(
    conn: sqlite3.Connection,
    experiment: str,
    metric: str,
    *,
    until_ts: float | None = None,
    start_ts: float | None = None,
    pre_period_s: float = PRE_PERIOD_S,
) -> dict[str, VariantSums]:
    """Per-variant sums of ``metric`` over the experiment's units, by variant name.

    Args:
        conn: a connection to the store.
        experiment: the experiment id.
        metric: a key of :data:`UNIT_METRICS`.
        until_ts: count requests with ``ts <= until_ts`` only (None: all), for lift over time.
        start_ts: the experiment's start, the end of the pre-period (None: the first exposure).
        pre_period_s: the pre-period's length in seconds (CUPED covariate).

    Raises:
        ValueError: an unknown metric or a negative pre-period.
        sqlite3.Error: the store cannot be read.
    """
    if metric not in UNIT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(UNIT_METRICS)}")
    if not pre_period_s >= 0:
        raise ValueError("pre_period_s must be >= 0")
    expr = UNIT_METRICS[metric].sql
    start = experiment_start(conn, experiment) if start_ts is None else start_ts
    sql = f"""
        WITH unit AS (
            SELECT e.variant AS variant, e.unit AS unit, SUM(r.v) AS num, COUNT(r.v) AS den
            FROM exposures AS e
            JOIN (SELECT user_id, variant, {expr} AS v FROM requests
                  WHERE experiment = :exp AND {_SERVED} AND (:until IS NULL OR ts <= :until)) AS r
              ON r.user_id = e.unit AND r.variant = e.variant
            WHERE e.experiment = :exp
            GROUP BY e.variant, e.unit
            HAVING COUNT(r.v) > 0
        ),
        pre AS (
            SELECT user_id AS unit, AVG({expr}) AS x FROM requests
            WHERE :start IS NOT NULL AND ts >= :start - :pre AND ts < :start AND {_SERVED}
              AND user_id IN (SELECT unit FROM exposures WHERE experiment = :exp)
            GROUP BY user_id
        ),
        joined AS (
            SELECT u.variant AS variant, u.num AS num, u.den AS den, u.num * 1.0 / u.den AS y,
                   COALESCE(p.x, 0.0) AS x, p.x IS NOT NULL AS has_x
            FROM unit AS u LEFT JOIN pre AS p ON p.unit = u.unit
        )
        SELECT variant, COUNT(*), SUM(y), SUM(y * y), SUM(num), SUM(num * num), SUM(den),
               SUM(den * den), SUM(num * den), SUM(x), SUM(x * x), SUM(x * y), SUM(has_x)
        FROM joined GROUP BY variant ORDER BY variant
    """
    params = {"exp": experiment, "until": until_ts, "start": start, "pre": pre_period_s}
    out: dict[str, VariantSums] = {}
    for row in conn.execute(sql, params).fetchall():
        f = [float(v) for v in row[2:12]]
        out[str(row[0])] = VariantSums(
            str(row[0]), int(row[1]), f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], int(row[12])
        )
    return out
