"""Experiment sufficient statistics maintained by SQLite triggers (issue 14, item 7: scale).

The row-based aggregation of :mod:`observability.store.experiment_reads` reads every request of
an experiment (10-13 s per metric for 1M exposures).  This module keeps, in the same transaction
as the rows (like :mod:`observability.store.rollups`), what the analysis needs so that it reads a
few rows per variant instead:

* ``experiment_unit_sums`` (experiment, variant, unit): per metric ``m``
  (:data:`~.experiment_reads.UNIT_METRICS`) ``num_<m>`` = Σ v and ``den_<m>`` = the unit's
  served requests with a value ``v`` of the metric;
* ``experiment_variant_minutes`` (experiment, variant, minute): per metric, columns
  ``<m>_n``, ``<m>_sum_y`` ... (:data:`SUM_COLUMNS`), the changes, in the
  requests of that minute, of the per-variant sums over *exposed* units: ``n`` (units with a
  value), Σy, Σy² of the unit values ``y = num / den``, and Σnum, Σnum², Σden, Σden², Σnum·den
  (the ratio form).  When a request changes a unit's value from ``y0`` to ``y1`` the minute gets
  ``y1 - y0``, ``y1² - y0²`` ...; summing every minute gives the experiment's sums, summing the
  minutes up to ``t`` the sums as of ``t`` (the cumulative lift series);
* ``experiment_variant_events`` (experiment, variant, minute): the variant's served requests,
  errors, judged answers, incorrect ones, and cumulative latency buckets at the bounds of
  :data:`~.rollups.BOUNDS_MS` (SLO burn per variant, exact for a latency threshold that is a bound).

Triggers: ``AFTER INSERT ON requests`` (a served request with experiment, variant and user_id)
updates the unit's row and, when the unit is exposed in that variant, the minute's changes
(two upserts per request, all metrics in each);
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
    "exposure_counts",
    "minute_sums",
    "rebuild",
    "variant_event_rows",
    "variant_totals",
]

UNIT_TABLE = "experiment_unit_sums"
MINUTES_TABLE = "experiment_variant_minutes"
EVENTS_TABLE = "experiment_variant_events"
#: The per-variant sums, in column order (see the module docstring).
SUM_COLUMNS: tuple[str, ...] = (
    "n", "sum_y", "sum_y2", "sum_num", "sum_num2", "sum_den", "sum_den2", "sum_num_den",
)  # fmt: skip
METRICS: tuple[str, ...] = tuple(UNIT_METRICS)
#: The minutes table's columns: ``<metric>_<sum>`` for every metric and sum.
_MINUTE_COLUMNS: tuple[str, ...] = tuple(f"{m}_{c}" for m in METRICS for c in SUM_COLUMNS)
_ZEROS = ", ".join("0" * len(_MINUTE_COLUMNS))
_EVENT_COLUMNS: tuple[str, ...] = ("n", "errors", "judged", "incorrect", "lat_n", *LE_COLUMNS)
_SERVED = ", ".join(repr(s) for s in SERVED_STATUSES)
_MINUTE = "(CAST({ref}.ts AS INTEGER) / 60) * 60"


def _value_sql(metric: str, ref: str) -> str:
    """The metric's per-request value for the row ``ref`` (NEW in a trigger), reusing the read
    module's SQL expression verbatim over a one-row subquery of the row's columns."""
    cols = ", ".join(f"{ref}.{c} AS {c}" for c in ("verdict", "latency_ms", "cost_usd", "tokens", "status"))
    return f"(SELECT {UNIT_METRICS[metric].sql} FROM (SELECT {cols}))"


def _create_tables(conn: sqlite3.Connection) -> None:
    units = ", ".join(f"num_{m} REAL NOT NULL, den_{m} INTEGER NOT NULL" for m in METRICS)
    conn.execute(
        f"""CREATE TABLE {UNIT_TABLE} (
            experiment TEXT NOT NULL, variant TEXT NOT NULL, unit TEXT NOT NULL, {units},
            PRIMARY KEY (experiment, variant, unit)) WITHOUT ROWID"""
    )
    sums = ", ".join(f"{c} {'INTEGER' if c.endswith('_n') else 'REAL'} NOT NULL" for c in _MINUTE_COLUMNS)
    conn.execute(
        f"""CREATE TABLE {MINUTES_TABLE} (
            experiment TEXT NOT NULL, variant TEXT NOT NULL, minute INTEGER NOT NULL,
            exposures INTEGER NOT NULL DEFAULT 0,
            {sums}, PRIMARY KEY (experiment, variant, minute)) WITHOUT ROWID"""
    )
    events = ", ".join(f"{c} INTEGER NOT NULL" for c in _EVENT_COLUMNS)
    conn.execute(
        f"""CREATE TABLE {EVENTS_TABLE} (
            experiment TEXT NOT NULL, variant TEXT NOT NULL, minute INTEGER NOT NULL,
            {events}, PRIMARY KEY (experiment, variant, minute)) WITHOUT ROWID"""
    )


def _upsert_minutes(select_sql: str) -> str:
    cols = ", ".join(("experiment", "variant", "minute", *_MINUTE_COLUMNS))
    updates = ", ".join(f"{c} = {c} + excluded.{c}" for c in _MINUTE_COLUMNS)
    return (
        f"INSERT INTO {MINUTES_TABLE} ({cols}) {select_sql}\n"
        f"  ON CONFLICT (experiment, variant, minute) DO UPDATE SET {updates};\n"
    )


def _delta_exprs(m: str) -> list[str]:
    """The eight sums' changes for metric ``m`` when a request of value ``v_m`` joins a unit
    with ``o_num_m`` / ``o_den_m`` so far (all 0 when the request has no value)."""
    v, on, od = f"v_{m}", f"o_num_{m}", f"o_den_{m}"
    ny, oy = f"(({on} + {v}) / ({od} + 1))", f"(CASE WHEN {od} > 0 THEN {on} / {od} ELSE 0.0 END)"
    exprs = [
        f"({od} = 0)",
        f"{ny} - {oy}",
        f"{ny} * {ny} - {oy} * {oy}",
        v,
        f"({on} + {v}) * ({on} + {v}) - {on} * {on}",
        "1",
        f"({od} + 1) * ({od} + 1) - {od} * {od}",
        f"({on} + {v}) * ({od} + 1) - {on} * {od}",
    ]
    return [f"CASE WHEN {v} IS NULL THEN 0 ELSE {e} END" for e in exprs]


def _request_trigger_sql() -> str:
    values = ", ".join(f"{_value_sql(m, 'NEW')} AS v_{m}" for m in METRICS)
    olds = ", ".join(
        f"COALESCE(u.num_{m}, 0.0) AS o_num_{m}, COALESCE(u.den_{m}, 0) AS o_den_{m}" for m in METRICS
    )
    inner = (
        f"SELECT nv.*, {olds} FROM (SELECT {values}) AS nv LEFT JOIN {UNIT_TABLE} AS u"
        " ON u.experiment = NEW.experiment AND u.variant = NEW.variant AND u.unit = NEW.user_id"
    )
    exposed = (
        "EXISTS (SELECT 1 FROM exposures AS e WHERE e.experiment = NEW.experiment"
        " AND e.unit = NEW.user_id AND e.variant = NEW.variant)"
    )
    deltas = ", ".join(e for m in METRICS for e in _delta_exprs(m))
    minutes = _upsert_minutes(
        f"SELECT NEW.experiment, NEW.variant, {_MINUTE.format(ref='NEW')}, {deltas}"
        f" FROM ({inner}) WHERE {exposed}"
    )
    unit_cols = ", ".join(f"num_{m}, den_{m}" for m in METRICS)
    unit_vals = ", ".join(f"COALESCE(v_{m}, 0.0), (v_{m} IS NOT NULL)" for m in METRICS)
    unit_upd = ", ".join(
        f"num_{m} = num_{m} + excluded.num_{m}, den_{m} = den_{m} + excluded.den_{m}" for m in METRICS
    )
    unit = (
        f"INSERT INTO {UNIT_TABLE} (experiment, variant, unit, {unit_cols})"
        f" SELECT NEW.experiment, NEW.variant, NEW.user_id, {unit_vals} FROM (SELECT {values}) WHERE true\n"
        f"  ON CONFLICT (experiment, variant, unit) DO UPDATE SET {unit_upd};\n"
    )
    return (
        "CREATE TRIGGER experiment_sums_request AFTER INSERT ON requests\n"
        f"WHEN NEW.experiment IS NOT NULL AND NEW.variant IS NOT NULL AND NEW.user_id IS NOT NULL"
        f" AND NEW.status IN ({_SERVED})\nBEGIN\n{minutes}{unit}END"
    )


def _unit_contribution_select(minute_sql: str, where: str) -> str:
    """A unit's whole contribution to every metric's sums (0 for a metric it has no value of)."""
    parts = []
    for m in METRICS:
        num, den = f"u.num_{m}", f"u.den_{m}"
        y = f"({num} / {den})"
        exprs = ["1", y, f"{y} * {y}", num, f"{num} * {num}", den, f"{den} * {den}", f"{num} * {den}"]
        parts += [f"CASE WHEN {den} > 0 THEN {e} ELSE 0 END" for e in exprs]
    head = f"SELECT u.experiment, u.variant, {minute_sql}, {', '.join(parts)}"
    return f"{head} FROM {UNIT_TABLE} AS u WHERE {where}"


def _exposure_trigger_sql() -> str:
    select = _unit_contribution_select(
        _MINUTE.format(ref="NEW"),
        "u.experiment = NEW.experiment AND u.variant = NEW.variant AND u.unit = NEW.unit",
    )
    head = "CREATE TRIGGER experiment_sums_exposure AFTER INSERT ON exposures BEGIN\n"
    count = (
        f"INSERT INTO {MINUTES_TABLE} (experiment, variant, minute, exposures, {', '.join(_MINUTE_COLUMNS)})"
        f" VALUES (NEW.experiment, NEW.variant, {_MINUTE.format(ref='NEW')}, 1, {_ZEROS})\n"
        "  ON CONFLICT (experiment, variant, minute) DO UPDATE SET exposures = exposures + 1;\n"
    )
    return f"{head}{count}{_upsert_minutes(select)}END"


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
    values = ", ".join(f"{UNIT_METRICS[m].sql} AS v_{m}" for m in METRICS)
    sums = ", ".join(f"COALESCE(SUM(v_{m}), 0.0), COUNT(v_{m})" for m in METRICS)
    cols = ", ".join(f"num_{m}, den_{m}" for m in METRICS)
    conn.execute(
        f"""INSERT INTO {UNIT_TABLE} (experiment, variant, unit, {cols})
            SELECT experiment, variant, user_id, {sums} FROM
              (SELECT experiment, variant, user_id, {values} FROM requests
               WHERE experiment IS NOT NULL AND variant IS NOT NULL AND user_id IS NOT NULL
                 AND status IN ({_SERVED}))
            GROUP BY experiment, variant, user_id"""
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
    conn.execute(
        f"INSERT INTO {MINUTES_TABLE} (experiment, variant, minute, exposures, {', '.join(_MINUTE_COLUMNS)})"
        f" SELECT experiment, variant, {_MINUTE.format(ref='e')}, COUNT(*), {_ZEROS}"
        " FROM exposures AS e GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        "  ON CONFLICT (experiment, variant, minute) DO UPDATE SET exposures = exposures + excluded.exposures"
    )
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
    # the experiment's start (the first exposure) without reading every exposure
    conn.execute("CREATE INDEX IF NOT EXISTS idx_exposures_experiment_ts ON exposures (experiment, ts)")
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
    cols = ", ".join(f"{metric}_{c}" for c in SUM_COLUMNS)
    rows = conn.execute(
        f"SELECT variant, minute, {cols} FROM {MINUTES_TABLE} WHERE experiment = ? ORDER BY variant, minute",
        (experiment,),
    ).fetchall()
    out: dict[str, list[tuple[int, tuple[float, ...]]]] = {}
    for row in rows:
        out.setdefault(str(row[0]), []).append((int(row[1]), tuple(float(v) for v in row[2:])))
    return out


def variant_totals(conn: sqlite3.Connection, experiment: str, metric: str) -> dict[str, tuple[float, ...]]:
    """Per variant, the experiment's sums ``(n, sum_y, ..., sum_num_den)`` of ``metric`` (every minute).

    Raises:
        ValueError: an unknown metric.
        sqlite3.Error: the store cannot be read.
    """
    if metric not in UNIT_METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(UNIT_METRICS)}")
    cols = ", ".join(f"SUM({metric}_{c})" for c in SUM_COLUMNS)
    rows = conn.execute(
        f"SELECT variant, {cols} FROM {MINUTES_TABLE} WHERE experiment = ? GROUP BY variant", (experiment,)
    ).fetchall()
    return {str(r[0]): tuple(float(v) for v in r[1:]) for r in rows}


def exposure_counts(conn: sqlite3.Connection, experiment: str) -> tuple[dict[str, int], int | None]:
    """Exposed units per variant (as :func:`.experiment_reads.exposure_counts`, from the minutes
    table) and the end (unix s, exclusive) of the experiment's last minute with any exposure or
    served request (None when there is none).

    Raises:
        sqlite3.Error: the store cannot be read.
    """
    rows = conn.execute(
        f"SELECT variant, SUM(exposures), MAX(minute) FROM {MINUTES_TABLE}"
        " WHERE experiment = ? GROUP BY variant",
        (experiment,),
    ).fetchall()
    ev = conn.execute(
        f"SELECT MAX(minute) FROM {EVENTS_TABLE} WHERE experiment = ?", (experiment,)
    ).fetchone()
    ends = [int(r[2]) for r in rows] + ([int(ev[0])] if ev and ev[0] is not None else [])
    counts = {str(r[0]): int(r[1]) for r in rows if int(r[1]) > 0}
    return counts, (max(ends) + 60 if ends else None)


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
        WITH pre AS MATERIALIZED (
            SELECT user_id AS unit, AVG({UNIT_METRICS[metric].sql}) AS x FROM requests
            WHERE ts >= :start - :pre AND ts < :start AND status IN ({_SERVED}) AND user_id IS NOT NULL
            GROUP BY user_id HAVING COUNT({UNIT_METRICS[metric].sql}) > 0
        )
        SELECT e.variant, SUM(p.x), SUM(p.x * p.x), SUM(p.x * u.num_{metric} / u.den_{metric}), COUNT(*)
        FROM pre AS p
        CROSS JOIN exposures AS e ON e.experiment = :exp AND e.unit = p.unit
        CROSS JOIN {UNIT_TABLE} AS u ON u.experiment = :exp AND u.variant = e.variant AND u.unit = p.unit
             AND u.den_{metric} > 0
        GROUP BY e.variant
    """
    params = {"exp": experiment, "start": start_ts, "pre": pre_period_s}
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
    params: list[float]
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
