"""Per-minute request roll-ups (issue 12, item 8): the trigger, the v6 migration's backfill, the
rebuild, windowed counts with exact edges, and quantiles from the buckets.

The oracle is plain Python over the rows as the test wrote them (the first submission of a
request id wins): minute = floor(ts / 60) * 60, last agent = agents_used[-1], bucket counts
``latency <= bound``; numpy for the quantiles.  The file is read with our own ``sqlite3``
connections where the stored table is the point.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sqlite_utils import Database

from engine.__main__ import main
from observability.metrics.catalogue import BUCKETS
from observability.store import Store
from observability.store.rollup_reads import Histogram, whole_minutes
from observability.store.rollups import BOUNDS_MS, DIMENSIONS, LE_COLUMNS, rebuild
from observability.store.schema import MIGRATIONS, SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[2]
STATUSES = ("ok", "ok", "ok", "error", "invalid", "cancelled")
TASKS = ("game24", "tictactoe", None)
AGENTS: tuple[list[str] | None, ...] = (["hrm"], ["hrm", "mcts"], ["trm", "hrm"], [], None)
PROVIDERS = ("offline", "ollama", None)
ROUTERS = ("rules", "gru")
VARIANTS = (None, "control", "treatment")
VERDICTS = ("correct", "incorrect", "unknown", None)


def random_rows(seed: int, n: int, t0: float = 6_000.0, span_s: float = 900.0) -> list[dict[str, Any]]:
    """``n`` request rows over ``span_s`` seconds from ``t0``; some on exact minute and bucket
    boundaries, some without latency, about one in eight reusing an earlier id (a resubmission
    with different content: the stored row is the first)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        pick = rng.random()
        if pick < 0.1:
            ts = t0 + 60.0 * int(rng.integers(0, int(span_s // 60)))  # exactly on a minute boundary
        else:
            ts = float(t0 + rng.random() * span_s)
        lat_pick = rng.random()
        latency: float | None
        if lat_pick < 0.1:
            latency = None
        elif lat_pick < 0.2:
            latency = float(rng.choice(BOUNDS_MS))  # exactly on a bucket bound: counted as <= bound
        else:
            latency = float(rng.lognormal(np.log(120.0), 1.5))
        rid = f"r{int(rng.integers(0, i))}" if i > 0 and rng.random() < 0.12 else f"r{i}"
        rows.append(
            {
                "request_id": rid,
                "ts": ts,
                "status": STATUSES[int(rng.integers(len(STATUSES)))],
                "task": TASKS[int(rng.integers(len(TASKS)))],
                "agents_used": AGENTS[int(rng.integers(len(AGENTS)))],
                "provider": PROVIDERS[int(rng.integers(len(PROVIDERS)))],
                "router": ROUTERS[int(rng.integers(len(ROUTERS)))],
                "variant": VARIANTS[int(rng.integers(len(VARIANTS)))],
                "verdict": VERDICTS[int(rng.integers(len(VERDICTS)))],
                "simulated": int(rng.integers(2)),
                "latency_ms": latency,
            }
        )
    return rows


def first_wins(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: dict[str, dict[str, Any]] = {}
    for r in rows:
        kept.setdefault(r["request_id"], r)
    return list(kept.values())


def dims_of(r: dict[str, Any]) -> dict[str, Any]:
    agents = r.get("agents_used")
    return {
        "status": r["status"],
        "task": r.get("task"),
        "last_agent": agents[-1] if agents else None,
        "provider": r.get("provider"),
        "router": r.get("router"),
        "variant": r.get("variant"),
        "verdict": r.get("verdict"),
        "simulated": r.get("simulated", 0),
    }


def counts_of(rows: list[dict[str, Any]]) -> list[float]:
    """[n, lat_n, lat_sum_ms, le_...] of ``rows``, the oracle's way."""
    lats = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    return [len(rows), len(lats), sum(lats), *(sum(1 for x in lats if x <= b) for b in BOUNDS_MS)]


HOURLY_DIMS = ("status", "verdict", "simulated")


def expected_rollup(rows: list[dict[str, Any]], hourly: bool = False) -> dict[tuple[Any, ...], list[float]]:
    period, dims = (3600, HOURLY_DIMS) if hourly else (60, DIMENSIONS)
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in first_wins(rows):
        d = dims_of(r)
        key = (int(r["ts"]) // period * period, *("" if d[k] is None else d[k] for k in dims))
        groups[key].append(r)
    return {k: counts_of(v) for k, v in groups.items()}


def stored_rollup(path: Path, hourly: bool = False) -> dict[tuple[Any, ...], list[float]]:
    conn = sqlite3.connect(path)
    try:
        if hourly:
            cols, table = ("hour", *HOURLY_DIMS), "request_rollups_hourly"
        else:
            cols, table = ("minute", *DIMENSIONS), "request_rollups"
        counts = ("n", "lat_n", "lat_sum_ms", *LE_COLUMNS)
        rows = conn.execute(f"SELECT {', '.join(cols + counts)} FROM {table}").fetchall()
    finally:
        conn.close()
    return {tuple(r[: len(cols)]): list(r[len(cols) :]) for r in rows}


def expected_daily(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[float]]:
    """The daily roll-up the oracle's way: day = floor(ts / 86400) * 86400, every dimension."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in first_wins(rows):
        d = dims_of(r)
        groups[(int(r["ts"]) // 86400 * 86400, *("" if d[k] is None else d[k] for k in DIMENSIONS))].append(r)
    return {k: counts_of(v) for k, v in groups.items()}


def stored_daily(path: Path) -> dict[tuple[Any, ...], list[float]]:
    conn = sqlite3.connect(path)
    try:
        cols = ("day", *DIMENSIONS)
        counts = ("n", "lat_n", "lat_sum_ms", *LE_COLUMNS)
        rows = conn.execute(f"SELECT {', '.join(cols + counts)} FROM request_rollups_daily").fetchall()
    finally:
        conn.close()
    return {tuple(r[: len(cols)]): list(r[len(cols) :]) for r in rows}


def assert_same(
    actual: dict[tuple[Any, ...], list[float]], expected: dict[tuple[Any, ...], list[float]]
) -> None:
    assert actual.keys() == expected.keys()
    for key, want in expected.items():
        got = actual[key]
        assert got[:2] == want[:2] and got[3:] == want[3:], key
        assert got[2] == pytest.approx(want[2], rel=1e-12), key


def write(path: Path, rows: list[dict[str, Any]], chunk: int = 37) -> None:
    """Submit ``rows`` in chunks (several transactions, duplicates across and within them)."""
    with Store(path, threaded=False) as store:
        for i in range(0, len(rows), chunk):
            store.submit("requests", rows[i : i + chunk])


# ----------------------------------------------------------------------------- the trigger


def test_the_daily_rollup_equals_a_group_by_of_the_rows_over_days(tmp_path: Path) -> None:
    path = tmp_path / "days.db"
    rows = random_rows(5, 600, t0=86_400.0 - 1800.0, span_s=3 * 86_400.0)  # four calendar days
    rows += [dict(rows[0], request_id="at-midnight", ts=2 * 86_400.0)]  # exactly on a day boundary
    write(path, rows)
    daily = stored_daily(path)
    assert_same(daily, expected_daily(rows))
    assert {key[0] for key in daily} == {0, 86_400, 172_800, 259_200}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollup_equals_a_group_by_of_the_rows_after_a_random_workload(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "r.db"
    rows = random_rows(seed, 600)
    assert len(first_wins(rows)) < len(rows)  # the workload does resubmit
    write(path, rows)
    assert_same(stored_rollup(path), expected_rollup(rows))
    assert_same(stored_rollup(path, hourly=True), expected_rollup(rows, hourly=True))


def test_a_request_submitted_twice_is_counted_once(tmp_path: Path) -> None:
    path = tmp_path / "dup.db"
    row = {"request_id": "a", "ts": 125.0, "status": "ok", "task": "game24", "latency_ms": 3.0}
    with Store(path, threaded=False) as store:
        store.submit("requests", [row, {**row, "latency_ms": 900.0}])  # twice in one transaction
        store.submit("requests", row)  # and again later
        store.submit_bundle({"requests": [row]})
    conn = sqlite3.connect(path)
    got = conn.execute("SELECT minute, n, lat_n, lat_sum_ms, le_5, le_1000 FROM request_rollups").fetchall()
    conn.close()
    assert got == [(120, 1, 1, 3.0, 1, 1)]


def test_malformed_agents_json_written_by_sql_does_not_lose_the_request(tmp_path: Path) -> None:
    path = tmp_path / "raw.db"
    Store(path, threaded=False).close()
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO requests (request_id, ts, status, agents_used) VALUES ('x', 61.0, 'ok', 'not json')"
    )
    conn.commit()
    assert conn.execute("SELECT minute, last_agent, n, lat_n FROM request_rollups").fetchall() == [
        (60, "", 1, 0)
    ]
    conn.close()


def test_bounds_are_the_request_histograms_and_include_every_slo_threshold() -> None:
    assert tuple(round(b * 1000, 6) for b in BUCKETS["mcts_request_duration_seconds"]) == BOUNDS_MS
    slos = yaml.safe_load((ROOT / "data" / "slos.yaml").read_text())["slos"]
    thresholds = [s["thresholdSeconds"] for s in slos if "thresholdSeconds" in s]
    assert thresholds  # the latency SLO exists
    for t in thresholds:
        assert t * 1000 in BOUNDS_MS


# ----------------------------------------------------------------------------- migration and rebuild


#: The migration that creates the roll-ups (later migrations may follow it).
ROLLUPS_VERSION = next(
    i for i, (name, _) in enumerate(MIGRATIONS, 1) if name == "per-minute request roll-ups"
)


def build_v5_file(path: Path, rows: list[dict[str, Any]]) -> None:
    """A store file as schema v5 left it (the migrations up to v5), holding ``rows`` (raw SQL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = Database(conn)
    v5 = [name for name, _ in MIGRATIONS].index("per-minute request roll-ups")  # the migrations before it
    for number, (name, apply) in enumerate(MIGRATIONS[:v5], start=1):
        apply(db)
        db.table("schema_meta").insert({"version": number, "name": name, "applied_at": 0.0})
    conn.execute(f"PRAGMA user_version = {v5}")

    cols = ("request_id", "ts", "status", "task", "agents_used", "provider", "router", "variant", "verdict")
    conn.execute("BEGIN")
    for r in rows:
        values = [json.dumps(r[c]) if c == "agents_used" and r[c] is not None else r[c] for c in cols]
        conn.execute(
            f"INSERT OR IGNORE INTO requests ({', '.join(cols)}, simulated, latency_ms) VALUES "
            f"({', '.join('?' * (len(cols) + 2))})",
            [*values, r["simulated"], r["latency_ms"]],
        )
    conn.execute("COMMIT")
    assert "request_rollups" not in db.table_names()
    conn.close()


def test_the_v6_migration_backfills_the_rollups_of_an_older_file(tmp_path: Path) -> None:
    assert SCHEMA_VERSION >= 6  # v6 is the roll-ups migration; later issues append more
    path = tmp_path / "v5.db"
    old, new = random_rows(7, 400), random_rows(8, 200, t0=6_600.0)
    for r in new:
        r["request_id"] = "n" + r["request_id"]
    build_v5_file(path, old)
    write(path, new)  # opening migrates (backfill); the new rows go through the trigger
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    assert_same(stored_rollup(path), expected_rollup(old + new))
    assert_same(stored_rollup(path, hourly=True), expected_rollup(old + new, hourly=True))
    assert_same(stored_daily(path), expected_daily(old + new))


def test_rebuild_equals_the_incremental_rollup_and_repairs_a_damaged_one(tmp_path: Path) -> None:
    path = tmp_path / "rb.db"
    rows = random_rows(11, 500)
    write(path, rows)
    incremental = stored_rollup(path)
    hourly = stored_rollup(path, hourly=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DELETE FROM request_rollups WHERE minute % 120 = 0")
    conn.execute("UPDATE request_rollups SET n = n + 5")
    conn.execute("UPDATE request_rollups_hourly SET le_500 = 0")
    conn.execute("UPDATE request_rollups_daily SET n = n + 2")
    stale_day = (8_640_000, "ok", "", "", "", "", "", "", 0, 3, 0, 0.0, *(0,) * len(LE_COLUMNS))  # no request
    daily_cols = ", ".join(("day", *DIMENSIONS, "n", "lat_n", "lat_sum_ms", *LE_COLUMNS))
    marks = ", ".join("?" * len(stale_day))
    conn.execute(f"INSERT INTO request_rollups_daily ({daily_cols}) VALUES ({marks})", stale_day)
    cols = ", ".join(("minute", *DIMENSIONS, "n", "lat_n", "lat_sum_ms", *LE_COLUMNS))
    stale = (999_960, "ok", "", "", "", "", "", "", 0, 3, 0, 0.0, *(0,) * len(LE_COLUMNS))  # no request there
    conn.execute(f"INSERT INTO request_rollups ({cols}) VALUES ({', '.join('?' * len(stale))})", stale)
    with pytest.raises(ValueError, match="multiple of 3600"):
        rebuild(conn, chunk_s=600)
    report = rebuild(conn, chunk_s=3600)  # several slices, and one far after the last request
    conn.close()
    assert report.requests == len(first_wins(rows)) and report.groups == len(incremental)
    assert_same(stored_rollup(path), incremental)
    assert_same(stored_rollup(path, hourly=True), hourly)
    assert_same(incremental, expected_rollup(rows))
    assert_same(stored_daily(path), expected_daily(rows))


def test_cli_rebuild_rollups(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cli.db"
    rows = random_rows(12, 100)
    write(path, rows)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM request_rollups")
    conn.commit()
    conn.close()
    assert main(["store", "rebuild-rollups", "--db", str(path), "--json"]) == 0
    out = capsys.readouterr().out
    assert f'"requests": {len(first_wins(rows))}' in out
    assert_same(stored_rollup(path), expected_rollup(rows))
    with pytest.raises(SystemExit) as exc:
        main(["store", "rebuild-rollups", "--db", str(tmp_path / "missing.db")])
    assert exc.value.code == 2
    assert "no telemetry store" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()


# ----------------------------------------------------------------------------- windowed counts


def oracle_window(
    rows: list[dict[str, Any]], since: float, until: float, by: tuple[str, ...]
) -> dict[tuple[Any, ...], list[float]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in first_wins(rows):
        if since < r["ts"] <= until:
            d = dims_of(r)
            groups[tuple(d[k] for k in by)].append(r)
    return {k: counts_of(v) for k, v in groups.items()}


def as_counts(window: Any) -> dict[tuple[Any, ...], list[float]]:
    return {
        g.key: [g.n, g.histogram.count, g.histogram.sum_ms, *g.histogram.cumulative] for g in window.groups
    }


T0 = 6_000.0  # a multiple of 60
WINDOWS = [
    (T0, T0 + 900.0),  # the whole span, starting exactly on a minute (rows at T0 excluded)
    (T0 - 1.0, T0 + 900.0),  # ... and just before it (rows at T0 included)
    (T0 + 60.0, T0 + 120.0),  # exactly one minute: (60, 120] is no whole minute [m, m+60)
    (T0 + 59.5, T0 + 120.0),  # a whole minute [60, 120) plus the row at 120
    (T0 + 10.0, T0 + 50.0),  # shorter than a minute, inside one
    (T0 + 50.0, T0 + 70.0),  # shorter than a minute, across a boundary
    (T0 + 120.0, T0 + 120.0),  # empty
    (T0 + 123.4, T0 + 845.6),  # ragged edges, many whole minutes
    (0.0, 1e9),  # wider than the data
]


@pytest.mark.parametrize("window", WINDOWS)
def test_windowed_counts_equal_a_direct_count_of_the_rows(
    tmp_path: Path, window: tuple[float, float]
) -> None:
    path = tmp_path / "w.db"
    rows = random_rows(21, 700, t0=T0)
    write(path, rows)
    since, until = window
    with Store(path, threaded=False) as store:
        for by in [(), ("status",), ("task", "last_agent"), DIMENSIONS]:
            got = store.reads.rollups.counts(since, until, by)
            want = oracle_window(rows, since, until, by)
            assert_same(as_counts(got), want)
            assert_same(as_counts(store.reads.rollups.counts(since, until, by, use_rollups=False)), want)
        served = store.reads.rollups.counts(
            since, until, ("task",), {"status": ("ok", "error"), "variant": (None,)}
        )
    picked = [r for r in first_wins(rows) if r["status"] in ("ok", "error") and r["variant"] is None]
    assert_same(as_counts(served), oracle_window(picked, since, until, ("task",)))


def test_whole_minutes_come_from_the_rollups(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    rows = random_rows(22, 500, t0=T0)
    write(path, rows)
    since, until = T0 + 30.5, T0 + 600.0
    assert whole_minutes(since, until) == (int(T0) + 60, int(T0) + 600)
    with Store(path, threaded=False) as store:
        before = store.reads.rollups.counts(since, until, ("status",))
        # Rows of whole minutes deleted behind the roll-ups' back: the roll-up read does not change,
        # the rows-only read does.
        conn = sqlite3.connect(path)
        conn.execute("DELETE FROM requests WHERE ts >= ? AND ts < ?", [T0 + 60, T0 + 600])
        conn.commit()
        conn.close()
        after = store.reads.rollups.counts(since, until, ("status",))
        rows_only = store.reads.rollups.counts(since, until, ("status",), use_rollups=False)
    assert before.rollup_span == (int(T0) + 60, int(T0) + 600)
    assert as_counts(after) == as_counts(before)
    assert rows_only.total().n < before.total().n
    want_edges = sum(1 for r in first_wins(rows) if since < r["ts"] < T0 + 60 or T0 + 600 <= r["ts"] <= until)
    assert after.edge_rows == want_edges


HOURS_T0 = 7_200.0  # a multiple of 3600
HOUR_WINDOWS = [
    (HOURS_T0, HOURS_T0 + 4 * 3600.0),  # exactly four hours: three whole ones, the row at the end
    (HOURS_T0 - 0.25, HOURS_T0 + 3 * 3600.0 + 59.5),  # ragged edges: hours, minutes and rows
    (HOURS_T0 + 1800.0, HOURS_T0 + 9000.0),  # half hours on both sides of one whole hour
    (HOURS_T0 + 3599.0, HOURS_T0 + 7201.0),  # one whole hour, two seconds of rows around it
]


@pytest.mark.parametrize("window", HOUR_WINDOWS)
def test_windows_of_hours_read_the_hourly_rollup_and_stay_exact(
    tmp_path: Path, window: tuple[float, float]
) -> None:
    path = tmp_path / "h.db"
    rows = random_rows(41, 1500, t0=HOURS_T0, span_s=4 * 3600.0)
    write(path, rows)
    since, until = window
    with Store(path, threaded=False) as store:
        for by in [(), ("status",), HOURLY_DIMS]:
            got = store.reads.rollups.counts(since, until, by)
            assert got.hourly_span is not None
            assert_same(as_counts(got), oracle_window(rows, since, until, by))
        got = store.reads.rollups.counts(since, until, ("verdict",), {"status": ("ok", "error")})
        assert got.hourly_span is not None
        picked = [r for r in first_wins(rows) if r["status"] in ("ok", "error")]
        assert_same(as_counts(got), oracle_window(picked, since, until, ("verdict",)))
        by_task = store.reads.rollups.counts(since, until, ("task",))  # not an hourly dimension
        assert by_task.hourly_span is None and by_task.rollup_span is not None
        assert_same(as_counts(by_task), oracle_window(rows, since, until, ("task",)))


def test_whole_hours_come_from_the_hourly_rollup(tmp_path: Path) -> None:
    path = tmp_path / "hh.db"
    rows = random_rows(42, 800, t0=HOURS_T0, span_s=3 * 3600.0)
    write(path, rows)
    since, until = HOURS_T0 + 10.0, HOURS_T0 + 3 * 3600.0
    with Store(path, threaded=False) as store:
        before = store.reads.rollups.counts(since, until, ("status",))
        assert before.hourly_span == (int(HOURS_T0) + 3600, int(HOURS_T0) + 3 * 3600)
        conn = sqlite3.connect(path)  # rows and minute roll-ups of the whole hours, gone
        conn.execute("DELETE FROM requests WHERE ts >= ? AND ts < ?", [HOURS_T0 + 3600, HOURS_T0 + 3 * 3600])
        conn.execute("DELETE FROM request_rollups WHERE minute >= ?", [HOURS_T0 + 3600])
        conn.commit()
        conn.close()
        assert as_counts(store.reads.rollups.counts(since, until, ("status",))) == as_counts(before)


def test_bad_windows_and_dimensions_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "b.db"
    with Store(path, threaded=False) as store:
        with pytest.raises(ValueError, match="since_ts <= until_ts"):
            store.reads.rollups.counts(10.0, 5.0)
        with pytest.raises(ValueError, match="finite"):
            store.reads.rollups.counts(0.0, math.inf)
        with pytest.raises(ValueError, match="unknown roll-up dimension 'colour'"):
            store.reads.rollups.counts(0.0, 10.0, ("colour",))


# ----------------------------------------------------------------------------- quantiles


def test_quantile_worked_by_hand() -> None:
    # 4 latencies in (0, 1] ms and 6 in (250, 500] ms; cumulative le: 1 -> 4, ..., 250 -> 4, 500 -> 10.
    cum = tuple(4 if b < 500 else 10 for b in BOUNDS_MS)
    h = Histogram(BOUNDS_MS, cum, 10, 0.0)
    # q = 0.5: rank 5 falls in (250, 500] (4 below it, 6 in it): 250 + 250 * (5 - 4) / 6.
    est = h.quantile(0.5)
    assert est is not None and est.value_ms == pytest.approx(250 + 250 / 6)
    # the exact median lies between order statistics 4 and 5 (0-based, h = 0.5 * 9), both in (250, 500]
    assert (est.lower_ms, est.upper_ms) == (250.0, 500.0)
    # q = 0.4: rank 4 is reached by the first bucket: 0 + 1 * 4 / 4 = 1 ms; but h = 3.6 lies between
    # order statistics 3 (in (0, 1]) and 4 (in (250, 500]): the exact quantile is in [0, 500].
    est = h.quantile(0.4)
    assert est is not None and est.value_ms == pytest.approx(1.0)
    assert (est.lower_ms, est.upper_ms, est.max_error_ms) == (0.0, 500.0, 500.0)
    # q = 0.2: rank 2 in the first bucket: 0 + 1 * 2 / 4; both order statistics there.
    est = h.quantile(0.2)
    assert est is not None and est.value_ms == pytest.approx(0.5)
    assert (est.lower_ms, est.upper_ms, est.max_error_ms) == (0.0, 1.0, 1.0)
    assert h.count_le(500.0) == 10 and h.count_le(250.0) == 4
    with pytest.raises(ValueError, match="not a roll-up bucket bound"):
        h.count_le(300.0)
    # Beyond the top bound: Prometheus answers the top bound; the error is unbounded.
    top = Histogram(BOUNDS_MS, (0,) * len(BOUNDS_MS), 3, 90_000.0)
    est = top.quantile(0.9)
    assert est is not None and est.value_ms == 10_000.0 and est.upper_ms is None and est.max_error_ms is None
    assert Histogram().quantile(0.5) is None
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        h.quantile(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_quantiles_from_buckets_bracket_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    lat = rng.lognormal(np.log(80.0), 1.2, size=int(rng.integers(1, 3000)))
    cum = tuple(int(np.sum(lat <= b)) for b in BOUNDS_MS)
    h = Histogram(BOUNDS_MS, cum, len(lat), float(lat.sum()))
    for q in (0.01, 0.25, 0.5, 0.9, 0.95, 0.99):
        est = h.quantile(q)
        assert est is not None
        for method in ("linear", "lower", "higher", "nearest", "inverted_cdf"):
            exact = float(np.quantile(lat, q, method=method))
            assert est.lower_ms <= exact, (q, method)
            if est.upper_ms is not None:
                assert exact <= est.upper_ms, (q, method)
        assert est.lower_ms <= est.value_ms
        if est.upper_ms is not None:
            assert est.value_ms <= est.upper_ms


def test_window_histogram_matches_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    rows = random_rows(31, 800, t0=T0)
    write(path, rows)
    since, until = T0 + 7.0, T0 + 853.0
    with Store(path, threaded=False) as store:
        hist = store.reads.rollups.counts(since, until, where={"status": ("ok", "error")}).total().histogram
    lat = np.array(
        [
            r["latency_ms"]
            for r in first_wins(rows)
            if since < r["ts"] <= until and r["status"] in ("ok", "error") and r["latency_ms"] is not None
        ]
    )
    assert hist.count == len(lat) and hist.sum_ms == pytest.approx(lat.sum())
    est = hist.quantile(0.95)
    assert est is not None
    exact = float(np.quantile(lat, 0.95))
    assert est.lower_ms <= exact and (est.upper_ms is None or exact <= est.upper_ms)
    assert Counter(lat <= 500.0)[True] == hist.count_le(500.0)
