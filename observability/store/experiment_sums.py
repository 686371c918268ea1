"""Experiment sufficient statistics maintained by SQLite triggers (issue 14, item 7: scale).

The row-based aggregation of :mod:`observability.store.experiment_reads` reads every request of
an experiment (10-13 s per metric for 1M exposures).  This module keeps, in the same transaction
as the rows (like :mod:`observability.store.rollups`), what the analysis needs so that it reads a
few rows per variant instead:

* ``experiment_unit_sums`` (experiment, variant, unit, metric): ``num`` = Σ v and ``den`` = the
  unit's served requests with a value ``v`` of the metric (:data:`~.experiment_reads.UNIT_METRICS`);
* ``experiment_variant_minutes`` (experiment, variant, metric, minute): the changes, in the
  requests of that minute, of the per-variant sums over *exposed* units: ``n`` (units with a
  value), Σy, Σy² of the unit values ``y = num / den``, and Σnum, Σnum², Σden, Σden², Σnum·den
  (the ratio form).  When a request changes a unit's value from ``y0`` to ``y1`` the minute gets
  ``y1 - y0``, ``y1² - y0²`` ...; summing every minute gives the experiment's sums, summing the
  minutes up to ``t`` the sums as of ``t`` (the cumulative lift series);
* ``experiment_variant_events`` (experiment, variant, minute): the variant's served requests,
  errors, judged answers, incorrect ones, and cumulative latency buckets at the bounds of
  :data:`~.rollups.BOUNDS_MS` (SLO burn per variant, exact for a latency threshold that is a bound).

Triggers: ``AFTER INSERT ON requests`` (a served request with experiment, variant and user_id)
updates the unit's sums and, when the unit is exposed in that variant, the minute's changes;
``AFTER INSERT ON exposures`` adds the unit's current contribution (requests written before their
exposure) at the exposure's minute.  The totals are exact whatever the order of the writes; the
series per minute is exact when a unit's requests are written in time order after its exposure
(as the engine writes them).  ``INSERT OR IGNORE`` of a row already stored fires nothing.
:func:`create` backfills from the stored rows (each unit's contribution at the minute of its last
request) and :func:`rebuild` recomputes the tables the same way.

This module never imports ``engine`` or streamlit.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from observability.store.experiment_reads import UNIT_METRICS
from observability.store.rollups import BOUNDS_MS, LE_COLUMNS
from observability.store.schema import SERVED_STATUSES

__all__ = [
    "EVENTS_TABLE",
    "MINUTES_TABLE",
    "SUM_COLUMNS",
    "UNIT_TABLE",
    "EventCounts",
    "covariate_sums",
    "create",
    "event_counts",
    "minute_sums",
    "rebuild",
    "variant_event_rows",
]

UNIT_TABLE = "experiment_unit_sums"
MINUTES_TABLE = "experiment_variant_minutes"
EVENTS_TABLE = "experiment_variant_events"
#: The per-variant sums, in column order (see the module docstring).
SUM_COLUMNS: tuple[str, ...] = (
    "n", "sum_y", "sum_y2", "sum_num", "sum_num2", "sum_den", "sum_den2", "sum_num_den",
)  # fmt: skip
_EVENT_COLUMNS: tuple[str, ...] = ("n", "errors", "judged", "incorrect", "lat_n", *LE_COLUMNS)
_SERVED = ", ".join(repr(s) for s in SERVED_STATUSES)
_MINUTE = "(CAST({ref}.ts AS INTEGER) / 60) * 60"


def _value_sql(metric: str, ref: str) -> str:
    """The metric's per-request value for the row ``ref`` (NEW in a trigger), reusing the read
    module's SQL expression verbatim over a one-row subquery of the row's columns."""
    cols = ", ".join(f"{ref}.{c} AS {c}" for c in ("verdict", "latency_ms", "cost_usd", "tokens", "status"))
    return f"(SELECT {UNIT_METRICS[metric].sql} FROM (SELECT {cols}))"


def _create_tables(conn: sqlite3.Connection) -> None:
    conn.execute(
        f"""CREATE TABLE {UNIT_TABLE} (
            experiment TEXT NOT NULL, variant TEXT NOT NULL, unit TEXT NOT NULL, metric TEXT NOT NULL,
            num REAL NOT NULL, den INTEGER NOT NULL,
            PRIMARY KEY (experiment, variant, unit, metric)) WITHOUT ROWID"""
    )
    sums = ", ".join(f"{c} {'INTEGER' if c == 'n' else 'REAL'} NOT NULL" for c in SUM_COLUMNS)
    conn.execute(
        f"""CREATE TABLE {MINUTES_TABLE} (
            experiment TEXT NOT NULL, variant TEXT NOT NULL, metric TEXT NOT NULL, minute INTEGER NOT NULL,
            {sums}, PRIMARY KEY (experiment, metric, variant, minute)) WITHOUT ROWID"""
    )
    events = ", ".join(f"{c} INTEGER NOT NULL" for c in _EVENT_COLUMNS)
    conn.execute(
        f"""CREATE TABLE {EVENTS_TABLE} (
            experiment TEXT NOT NULL, variant TEXT NOT NULL, minute INTEGER NOT NULL,
            {events}, PRIMARY KEY (experiment, variant, minute)) WITHOUT ROWID"""
    )


def _upsert_minutes(select_sql: str) -> str:
    cols = ", ".join(("experiment", "variant", "metric", "minute", *SUM_COLUMNS))
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in SUM_COLUMNS)
    return (
        f"INSERT INTO {MINUTES_TABLE} ({cols}) {select_sql}\n"
        f"  ON CONFLICT (experiment, metric, variant, minute) DO UPDATE SET {updates};\n"
    )


def _request_trigger_sql() -> str:
    body: list[str] = []
    exposed = (
        "EXISTS (SELECT 1 FROM exposures AS e WHERE e.experiment = NEW.experiment"
        " AND e.unit = NEW.user_id AND e.variant = NEW.variant)"
    )
    for metric in UNIT_METRICS:
        old = (
            f"FROM {UNIT_TABLE} AS u WHERE u.experiment = NEW.experiment AND u.variant = NEW.variant"
            f" AND u.unit = NEW.user_id AND u.metric = '{metric}'"
        )
        inner = (
            f"SELECT {_value_sql(metric, 'NEW')} AS v, COALESCE((SELECT u.num {old}), 0.0) AS o_num,"
            f" COALESCE((SELECT u.den {old}), 0) AS o_den"
        )
        select = (
            f"SELECT NEW.experiment, NEW.variant, '{metric}', {_MINUTE.format(ref='NEW')},"
            " (o_den = 0),"
            " (o_num + v) / (o_den + 1) - CASE WHEN o_den > 0 THEN o_num / o_den ELSE 0.0 END,"
            " ((o_num + v) / (o_den + 1)) * ((o_num + v) / (o_den + 1))"
            " - CASE WHEN o_den > 0 THEN (o_num / o_den) * (o_num / o_den) ELSE 0.0 END,"
            " v, (o_num + v) * (o_num + v) - o_num * o_num, 1,"
            " (o_den + 1) * (o_den + 1) - o_den * o_den, (o_num + v) * (o_den + 1) - o_num * o_den"
            f" FROM ({inner}) WHERE v IS NOT NULL AND {exposed}"
        )
        body.append(_upsert_minutes(select))
        body.append(
            f"INSERT INTO {UNIT_TABLE} (experiment, variant, unit, metric, num, den)"
            f" SELECT NEW.experiment, NEW.variant, NEW.user_id, '{metric}', v, 1"
            f" FROM (SELECT {_value_sql(metric, 'NEW')} AS v) WHERE v IS NOT NULL\n"
            "  ON CONFLICT (experiment, variant, unit, metric) DO UPDATE SET num = num + excluded.num,"
            " den = den + 1;\n"
        )
    return (
        "CREATE TRIGGER experiment_sums_request AFTER INSERT ON requests\n"
        f"WHEN NEW.experiment IS NOT NULL AND NEW.variant IS NOT NULL AND NEW.user_id IS NOT NULL"
        f" AND NEW.status IN ({_SERVED})\nBEGIN\n{''.join(body)}END"
    )


def _unit_contribution_select(minute_sql: str, where: str) -> str:
    y = "(u.num / u.den)"
    return (
        f"SELECT u.experiment, u.variant, u.metric, {minute_sql}, 1, {y}, {y} * {y}, u.num, u.num * u.num,"
        f" u.den, u.den * u.den, u.num * u.den FROM {UNIT_TABLE} AS u WHERE u.den > 0 AND {where}"
    )


def _exposure_trigger_sql() -> str:
    select = _unit_contribution_select(
        _MINUTE.format(ref="NEW"),
        "u.experiment = NEW.experiment AND u.variant = NEW.variant AND u.unit = NEW.unit",
    )
    head = "CREATE TRIGGER experiment_sums_exposure AFTER INSERT ON exposures BEGIN\n"
    return f"{head}{_upsert_minutes(select)}END"


def _event_values(ref: str) -> list[str]:
    lat = f"{ref}.latency_ms"
    return [
        "1",
        f"COALESCE({ref}.status = 'error', 0)",
        f"COALESCE({ref}.verdict IN ('correct', 'incorrect'), 0)",
        f"COALESCE({ref}.verdict = 'incorrect', 0)",
        f"({lat} IS NOT NULL)",
        *(f"COALESCE({lat} <= {b!r}, 0)" for b in BOUNDS_MS),
    ]


def _events_trigger_sql() -> str:
    cols = ", ".join(("experiment", "variant", "minute", *_EVENT_COLUMNS))
    values = ", ".join(["NEW.experiment", "NEW.variant", _MINUTE.format(ref="NEW"), *_event_values("NEW")])
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in _EVENT_COLUMNS)
    return (
        "CREATE TRIGGER experiment_events_request AFTER INSERT ON requests\n"
        f"WHEN NEW.experiment IS NOT NULL AND NEW.variant IS NOT NULL AND NEW.status IN ({_SERVED})\n"
        f"BEGIN\nINSERT INTO {EVENTS_TABLE} ({cols}) VALUES ({values})\n"
        f"  ON CONFLICT (experiment, variant, minute) DO UPDATE SET {updates};\nEND"
    )


def _backfill(conn: sqlite3.Connection) -> None:
    """Fill the (empty) tables from the stored rows: unit sums by GROUP BY; each exposed unit's
    contribution at the minute of its last request; the events per minute."""
    for metric in UNIT_METRICS:
        conn.execute(
            f"""INSERT INTO {UNIT_TABLE} (experiment, variant, unit, metric, num, den)
                SELECT experiment, variant, user_id, ?, SUM(v), COUNT(v) FROM
                  (SELECT experiment, variant, user_id, {UNIT_METRICS[metric].sql} AS v FROM requests
                   WHERE experiment IS NOT NULL AND variant IS NOT NULL AND user_id IS NOT NULL
                     AND status IN ({_SERVED}))
                GROUP BY experiment, variant, user_id HAVING COUNT(v) > 0""",
            (metric,),
        )
    last = (
        "(SELECT (CAST(MAX(r.ts) AS INTEGER) / 60) * 60 FROM requests AS r WHERE r.experiment = u.experiment"
        " AND r.variant = u.variant AND r.user_id = u.unit)"
    )
    exposed = (
        "EXISTS (SELECT 1 FROM exposures AS e WHERE e.experiment = u.experiment AND e.unit = u.unit"
        " AND e.variant = u.variant)"
    )
    conn.execute(_upsert_minutes(_unit_contribution_select(last, exposed) + " ORDER BY 1, 2, 3"))
    cols = ", ".join(("experiment", "variant", "minute", *_EVENT_COLUMNS))
    sums = ", ".join(f"SUM({e})" for e in _event_values("r"))
    conn.execute(
        f"""INSERT INTO {EVENTS_TABLE} ({cols})
            SELECT r.experiment, r.variant, {_MINUTE.format(ref="r")}, {sums} FROM requests AS r
            WHERE r.experiment IS NOT NULL AND r.variant IS NOT NULL AND r.status IN ({_SERVED})
            GROUP BY 1, 2, 3"""
    )


def create(conn: sqlite3.Connection) -> None:
    """Create the tables and triggers and backfill them from the stored rows (inside the caller's
    transaction, so the backfill and the triggers start from the same rows)."""
    _create_tables(conn)
    conn.execute(_request_trigger_sql())
    conn.execute(_exposure_trigger_sql())
    conn.execute(_events_trigger_sql())
    _backfill(conn)


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute the three tables from the rows in one ``BEGIN IMMEDIATE`` transaction (e.g.
    after rows were deleted or imported with the triggers off).  ``conn`` must be in autocommit mode.

    Raises:
        sqlite3.OperationalError: the tables are missing or the file stayed locked.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in (UNIT_TABLE, MINUTES_TABLE, EVENTS_TABLE):
            conn.execute(f"DELETE FROM {table}")
        _backfill(conn)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


# --------------------------------------------------------------------------- reads


def minute_sums(
    conn: sqlite3.Connection, experiment: str, metric: str
) -> dict[str, list[tuple[int, tuple[float, ...]]]]:
    """Per variant, its minutes in time order, each ``(minute, (n, sum_y, ..., sum_num_den))``:
    the changes of that minute (sum them for the totals, cumulate them for a series).

    Raises:
        ValueError: an unknown metric.
        sqlite3.Error: the store cannot be read.
    """
    if metric not in UNIT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(UNIT_METRICS)}")
    rows = conn.execute(
        f"SELECT variant, minute, {', '.join(SUM_COLUMNS)} FROM {MINUTES_TABLE}"
        " WHERE experiment = ? AND metric = ? ORDER BY variant, minute",
        (experiment, metric),
    ).fetchall()
    out: dict[str, list[tuple[int, tuple[float, ...]]]] = {}
    for row in rows:
        out.setdefault(str(row[0]), []).append((int(row[1]), tuple(float(v) for v in row[2:])))
    return out


@dataclass(frozen=True, slots=True)
class EventCounts:
    """One variant's served requests (``n``), ``errors``, ``judged`` answers, ``incorrect`` ones,
    requests with a latency (``lat_n``) and ``le`` (bound ms -> requests with latency <= bound)."""

    n: int
    errors: int
    judged: int
    incorrect: int
    lat_n: int
    le: dict[float, int]


def event_counts(
    conn: sqlite3.Connection, experiment: str, until_minute: int | None = None
) -> dict[str, EventCounts]:
    """The SLO events of each variant's served requests (minutes ``< until_minute`` when given).

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    sums = ", ".join(f"SUM({c})" for c in _EVENT_COLUMNS)
    rows = conn.execute(
        f"SELECT variant, {sums} FROM {EVENTS_TABLE} WHERE experiment = ?"
        " AND (? IS NULL OR minute < ?) GROUP BY variant ORDER BY variant",
        (experiment, until_minute, until_minute),
    ).fetchall()
    out: dict[str, EventCounts] = {}
    for row in rows:
        v = [int(x) for x in row[1:]]
        out[str(row[0])] = EventCounts(v[0], v[1], v[2], v[3], v[4], dict(zip(BOUNDS_MS, v[5:], strict=True)))
    return out


def covariate_sums(
    conn: sqlite3.Connection, experiment: str, metric: str, start_ts: float | None, pre_period_s: float
) -> dict[str, tuple[float, float, float, int]]:
    """Per variant ``(Σx, Σx², Σx·y, units with history)`` of the CUPED covariate x (the unit's
    mean of ``metric`` over its served requests in ``[start - pre_period_s, start)``, any
    experiment) over the exposed units with a value; units without history have x = 0 and add
    nothing.  It reads the pre-period's requests (by the ``ts`` index) and the exposed units'
    sums, not the experiment's requests, so its cost grows with the history, not the experiment.

    Raises:
        ValueError: an unknown metric.
        sqlite3.Error: the store cannot be read.
    """
    if metric not in UNIT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(UNIT_METRICS)}")
    if start_ts is None:
        return {}
    sql = f"""
        WITH pre AS (
            SELECT user_id AS unit, AVG({UNIT_METRICS[metric].sql}) AS x FROM requests
            WHERE ts >= :start - :pre AND ts < :start AND status IN ({_SERVED}) AND user_id IS NOT NULL
            GROUP BY user_id HAVING COUNT({UNIT_METRICS[metric].sql}) > 0
        )
        SELECT e.variant, SUM(p.x), SUM(p.x * p.x), SUM(p.x * u.num / u.den), COUNT(*)
        FROM pre AS p
        JOIN exposures AS e ON e.experiment = :exp AND e.unit = p.unit
        JOIN {UNIT_TABLE} AS u ON u.experiment = :exp AND u.variant = e.variant AND u.unit = p.unit
             AND u.metric = :metric AND u.den > 0
        GROUP BY e.variant
    """
    params = {"exp": experiment, "start": start_ts, "pre": pre_period_s, "metric": metric}
    return {
        str(r[0]): (float(r[1]), float(r[2]), float(r[3]), int(r[4]))
        for r in conn.execute(sql, params).fetchall()
    }


def variant_event_rows(
    conn: sqlite3.Connection, experiment: str, kind: str, threshold_ms: float | None, until_ts: float | None
) -> dict[str, tuple[int, int]]:
    """Per variant, (total, bad) events of an SLO ``kind`` among the experiment's served requests
    with ``ts <= until_ts`` (None: all), counted from the rows (exact, any latency threshold; the
    reference :func:`event_counts` is compared with).  Events as in
    :mod:`observability.store.slo_reads`.

    Raises:
        ValueError: an unknown kind, or a latency kind without a positive threshold.
        sqlite3.Error: the store cannot be read.
    """
    if kind == "availability":
        total, bad, params = "1", "status = 'error'", []
    elif kind == "quality":
        total, bad, params = "verdict IN ('correct', 'incorrect')", "verdict = 'incorrect'", []
    elif kind == "latency":
        if threshold_ms is None or not threshold_ms > 0:
            raise ValueError(f"a latency SLO needs a positive threshold_ms, got {threshold_ms!r}")
        total, bad, params = "latency_ms IS NOT NULL", "latency_ms > ?", [float(threshold_ms)]
    else:
        raise ValueError(f"unknown SLO kind {kind!r}")
    rows = conn.execute(
        f"SELECT variant, COALESCE(SUM({total}), 0), COALESCE(SUM(({total}) AND {bad}), 0) FROM requests"
        f" WHERE experiment = ? AND variant IS NOT NULL AND status IN ({_SERVED})"
        " AND (? IS NULL OR ts <= ?) GROUP BY variant",
        [*params, experiment, until_ts, until_ts],
    ).fetchall()
    return {str(r[0]): (int(r[1]), int(r[2])) for r in rows}
