"""SLO reads at scale: windowed counts from the per-minute roll-ups vs from the request rows.

Builds a store of ``--requests`` requests spread over ``--days`` days (a daily traffic cycle; a
task, agent, provider, router, variant and verdict mix; ~2 % errors, ~1 % invalid or cancelled;
log-normal latencies by task) through the store's own write path (``Store.submit`` in chunks,
so the roll-up trigger runs for every row), then, for each SLO of data/slos.yaml and each
window (5m 30m 1h 6h 1d 3d 28d) ending at the last request, times

* ``rollups_s``: :meth:`RollupReads.counts` (whole minutes from the roll-ups, edge minutes from
  the rows), and
* ``rows_s``: one direct aggregate over the ``requests`` rows (``COUNT``/``SUM`` with the ``ts``
  index), the best a rows-only SQLite source can do,

checking that both give the same (total, bad).  Also timed: the 28-day counts grouped by status
and every attribution dimension at once (``attribution_28d``), the SLO attribution itself (each
SLO's bad events by each dimension, ``attribution_by_slo_28d``) and every SLO's buckets for the
alert replay and the charts (``buckets_by_grid``), both ways, the p50/p95/p99
latency from the buckets vs fetching every latency into numpy, and the insert cost of request
rows with and without the triggers.
The pages' loads are timed as the application runs them (``pages``): ``build_report`` of each
SLO of data/slos.yaml over 28 days (``SqliteSLOSource``: counts for the period and the six burn
windows, and the attribution) and ``load_overview("sqlite", "28d")``, and the console's own
service calls (``console``: ``app.telemetry.overview`` and the SLO page's ``app.slo`` /
``app.alerts`` calls, caches cleared, see :func:`console_loads`); run the script with
``PYTHONPATH`` at another checkout to time that checkout's code on the same store.
Each figure is the median of ``--repeat`` runs.  Prints one JSON object.

    python benchmarks/slo_bench.py [--requests 1000000] [--days 28] [--repeat 3] [--db FILE]
        [--pages-only] [--insert-rows 50000]
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from observability.store import Store
from observability.store.rollup_reads import RollupReads

ROOT = Path(__file__).resolve().parents[1]
WINDOWS = {"5m": 300, "30m": 1800, "1h": 3600, "6h": 21600, "1d": 86400, "3d": 259200, "28d": 2419200}
TASKS = ("game24", "tictactoe", "connect4", "freeform", "chess")
TASK_P = (0.3, 0.2, 0.15, 0.3, 0.05)
TASK_LAT_MS = (60.0, 25.0, 140.0, 220.0, 300.0)
AGENTS = (["hrm"], ["hrm", "trm"], ["hrm", "mcts"], ["trm"], ["trm", "hrm", "mcts"])
PROVIDERS = ("offline", "ollama", "openai")
VARIANTS = (None, "control", "treatment")
SERVED = ("ok", "error")
T_END = 1_767_225_600.0  # 2026-01-01T00:00Z


def make_rows(n: int, days: float, seed: int, start: int) -> list[dict[str, Any]]:
    """Requests ``start .. start+n-1`` of the synthetic workload (seeded, reproducible per chunk)."""
    rng = np.random.default_rng([seed, start])
    span = days * 86400.0
    # daily cycle: rejection-sample times with density 1 + 0.6 sin(2 pi t / day)
    ts = np.empty(0)
    while ts.size < n:
        cand = rng.random(2 * n) * span
        keep = rng.random(2 * n) < (1 + 0.6 * np.sin(2 * np.pi * cand / 86400.0)) / 1.6
        ts = np.concatenate([ts, cand[keep]])
    ts = T_END - span + ts[:n]
    task = rng.choice(len(TASKS), size=n, p=TASK_P)
    status = rng.choice(4, size=n, p=(0.97, 0.02, 0.006, 0.004))
    lat = rng.lognormal(np.log(np.asarray(TASK_LAT_MS)[task]), 0.9)
    agents = rng.choice(len(AGENTS), size=n)
    provider = rng.choice(3, size=n, p=(0.8, 0.15, 0.05))
    router = rng.choice(2, size=n, p=(0.7, 0.3))
    variant = rng.choice(3, size=n, p=(0.7, 0.15, 0.15))
    wrong = rng.random(n) < 0.03
    rows = []
    for i in range(n):
        t = int(task[i])
        st = ("ok", "error", "invalid", "cancelled")[int(status[i])]
        verdict = "unknown" if TASKS[t] == "freeform" else ("incorrect" if wrong[i] else "correct")
        rows.append(
            {
                "request_id": f"b{start + i:09d}",
                "ts": float(ts[i]),
                "task": TASKS[t],
                "status": st,
                "verdict": verdict if st in SERVED else None,
                "agents_used": AGENTS[int(agents[i])],
                "provider": PROVIDERS[int(provider[i])],
                "router": ("rules", "gru")[int(router[i])],
                "variant": VARIANTS[int(variant[i])],
                "latency_ms": float(lat[i]) if st != "invalid" else None,
                "simulated": 1,
            }
        )
    return rows


def build(path: Path, n: int, days: float, seed: int, chunk: int = 20_000) -> float:
    """Write the workload through the store; returns seconds."""
    t0 = time.perf_counter()
    with Store(path, threaded=False, batch_size=chunk) as store:
        for start in range(0, n, chunk):
            store.submit("requests", make_rows(min(chunk, n - start), days, seed, start))
    return time.perf_counter() - t0


def median_time(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def slo_from_rollups(reads: RollupReads, slo: dict[str, Any], since: float, until: float) -> tuple[int, int]:
    kind = slo["kind"]
    if kind == "availability":
        w = reads.counts(since, until, ("status",), {"status": SERVED})
        err = w.get("error")
        return w.total().n, err.n if err else 0
    if kind == "latency":
        hist = reads.counts(since, until, (), {"status": SERVED}).total().histogram
        return hist.count, hist.count - hist.count_le(slo["thresholdSeconds"] * 1000)
    w = reads.counts(since, until, ("verdict",), {"status": SERVED, "verdict": ("correct", "incorrect")})
    bad = w.get("incorrect")
    return w.total().n, bad.n if bad else 0


def slo_from_rows(
    conn: sqlite3.Connection, slo: dict[str, Any], since: float, until: float
) -> tuple[int, int]:
    kind = slo["kind"]
    served = "status IN ('ok', 'error')"
    if kind == "availability":
        bad_sql, extra = "status = 'error'", ""
    elif kind == "latency":  # events: served requests with a latency (observability.store.slo_reads)
        bad_sql, extra = f"latency_ms > {slo['thresholdSeconds'] * 1000!r}", " AND latency_ms IS NOT NULL"
    else:
        bad_sql, extra = "verdict = 'incorrect'", " AND verdict IN ('correct', 'incorrect')"
    sql = f"SELECT COUNT(*), SUM({bad_sql}) FROM requests WHERE ts > ? AND ts <= ? AND {served}{extra}"
    total, bad = conn.execute(sql, [since, until]).fetchone()
    return int(total), int(bad or 0)


def page_loads(path: Path, as_of: float, repeat: int) -> dict[str, Any]:
    """Seconds (median of ``repeat``) of ``build_report`` for each SLO over 28 d and of the
    Overview's ``load_overview("sqlite", "28d")``, on the store at ``path``."""
    from datetime import timedelta

    from engine.slo_report import build_report
    from observability.overview.view import load_overview
    from observability.slo.models import load_slos
    from observability.slo.sqlite_source import SqliteSLOSource

    out: dict[str, Any] = {"build_report_28d_s": {}}
    with Store(path, threaded=False) as store:
        source = SqliteSLOSource(store.reads)
        period = timedelta(days=28)
        for slo in load_slos(ROOT / "data" / "slos.yaml"):
            t, report = median_time(lambda s=slo: build_report([s], source, as_of, period), repeat)
            fig = report.slos[0]
            out["build_report_28d_s"][slo.name] = {"s": round(t, 4), "total": fig.total, "bad": fig.bad}
        t, view = median_time(
            lambda: load_overview("sqlite", "28d", store=store, prom=None, now=as_of + 1e-6), repeat
        )
        stats = view.stats
        out["load_overview_sqlite_28d_s"] = round(t, 4)
        out["overview_28d"] = None if stats is None else {"requests": stats.requests, "p95_ms": stats.p95_ms}
    return out


def console_loads(path: Path, as_of: float, repeat: int) -> dict[str, Any]:
    """Seconds (median of ``repeat``, every cache cleared before each) of what the Overview and the
    SLO page call in app/ to draw themselves over 28 days of the store at ``path``:

    * Overview: ``app.telemetry.overview("sqlite", "28d")``, with its clock set to ``as_of`` (the
      page's window ends now; the benchmark's requests end at ``as_of``);
    * SLOs (its default view: the SLO window, as of the latest request, the SLO with the least
      budget): ``slo.store_facts``, ``slo.slo_names``, ``slo.slo_page``, ``slo.slo_series`` of the
      picked SLO and ``alerts.episodes`` (the alert replay, saved into the store's alerts table).
    """
    import logging
    import os
    import types

    os.environ.update(ARBOR_DB_PATH=str(path), ARBOR_METRICS_PORT="0", ARBOR_TELEMETRY="on")
    os.environ.pop("ARBOR_PROMETHEUS_URL", None)
    logging.getLogger("streamlit").setLevel(logging.ERROR)  # "no runtime" warnings outside a server
    import streamlit as st

    from app import alerts, runtime, slo, slo_charts, telemetry  # noqa: F401 (slo_charts: the pick)

    runtime.get_store()  # the engine and its store: start-up, not a page load
    clock = types.SimpleNamespace(time=lambda: as_of + 1e-6)

    def overview() -> Any:
        st.cache_data.clear()
        real, telemetry.time = telemetry.time, clock  # type: ignore[assignment]
        try:
            return telemetry.overview("sqlite", "28d")
        finally:
            telemetry.time = real

    def slo_page() -> dict[str, float]:
        st.cache_data.clear()
        parts: dict[str, float] = {}
        t0 = time.perf_counter()
        facts, names = slo.store_facts(), slo.slo_names()
        parts["facts_and_names_s"] = time.perf_counter() - t0
        assert not isinstance(facts, str) and not isinstance(names, str), (facts, names)
        latest = facts[1] if facts[1] is not None else as_of
        t0 = time.perf_counter()
        page = slo.slo_page("window", latest)
        parts["slo_page_s"] = time.perf_counter() - t0
        assert page.report is not None, page.message
        pick = min(
            page.report.slos, key=lambda f: f.budget_remaining if f.budget_remaining is not None else 9
        )
        t0 = time.perf_counter()
        series = slo.slo_series(pick.name, "window", latest)
        parts["slo_series_s"] = time.perf_counter() - t0
        assert not isinstance(series, str), series
        t0 = time.perf_counter()
        found = alerts.episodes("window", latest)
        parts["alert_episodes_s"] = time.perf_counter() - t0
        assert not isinstance(found, str), found
        parts["total_s"] = sum(parts.values())
        return parts

    t_overview, view = median_time(overview, repeat)
    runs = [slo_page() for _ in range(repeat)]
    slo_parts = {k: round(statistics.median(r[k] for r in runs), 4) for k in runs[0]}
    stats = view.stats
    return {
        "overview_28d_s": round(t_overview, 4),
        "overview_28d": None if stats is None else {"requests": stats.requests, "p95_ms": stats.p95_ms},
        "slo_page_window_s": slo_parts,
    }


def attribution_by_kind(path: Path, as_of: float, repeat: int) -> dict[str, Any]:
    """The SLO attribution as the SLO page computes it (``bad_by_dimension``: each SLO's bad events
    over 28 days by task, agent, provider, router and variant), from the roll-ups and from the
    rows, with whether they are equal."""
    from observability.store.slo_reads import bad_by_dimension

    out: dict[str, Any] = {}
    with Store(path, threaded=False) as store:
        for slo in yaml.safe_load((ROOT / "data" / "slos.yaml").read_text())["slos"]:
            threshold = slo["thresholdSeconds"] * 1000 if slo["kind"] == "latency" else None
            args = (store.reads, slo["kind"], as_of, WINDOWS["28d"], threshold)
            t_roll, got = median_time(lambda a=args: bad_by_dimension(*a), repeat)
            t_rows, want = median_time(lambda a=args: bad_by_dimension(*a, use_rollups=False), repeat)
            out[slo["name"]] = {
                "bad": sum(got["task"].values()),
                "equal": got == want,
                "rollups_s": round(t_roll, 4),
                "rows_s": round(t_rows, 4),
            }
    return out


def buckets_by_grid(path: Path, as_of: float, repeat: int) -> dict[str, Any]:
    """Every SLO's buckets as the SLO page reads them (``bucket_counts_many``): the alert replay's
    5-minute buckets over 28 days plus its 3-day look-back, the 28-day chart's buckets, and
    per-minute buckets, ending at ``as_of`` (late in its minute here) and 30 s earlier (mid-minute:
    the most boundary rows to read); from the per-minute SLI roll-up plus the boundary minutes'
    rows (median of ``repeat``) and from the rows (once), with whether they are equal."""
    from engine.slo_series import bucket_plan
    from observability.store.slo_reads import bucket_counts_many

    slos = yaml.safe_load((ROOT / "data" / "slos.yaml").read_text())["slos"]
    events = [(s["kind"], s["thresholdSeconds"] * 1000 if s["kind"] == "latency" else None) for s in slos]
    chart_bucket, _ = bucket_plan(WINDOWS["28d"])
    grids = {
        "replay_31d_by_300s": (WINDOWS["28d"] + WINDOWS["3d"], 300.0),
        f"chart_28d_by_{chart_bucket:g}s": (WINDOWS["28d"], chart_bucket),
        "minutes_31d": (WINDOWS["28d"] + WINDOWS["3d"], 60.0),
    }
    out: dict[str, Any] = {}
    with Store(path, threaded=False) as store:
        for label, (window, bucket) in grids.items():
            for at_label, at in (("as_of", as_of), ("as_of_minus_30s", as_of - 30.0)):
                args = (store.reads, events, at, window, bucket)
                t_roll, got = median_time(lambda a=args: bucket_counts_many(*a), repeat)
                t_rows, want = median_time(lambda a=args: bucket_counts_many(*a, use_rollups=False), 1)
                out[f"{label}@{at_label}"] = {
                    "buckets": len(got[0]),
                    "equal": got == want,
                    "rollups_s": round(t_roll, 4),
                    "rows_s": round(t_rows, 4),
                }
    return out


def insert_cost(tmp: Path, n: int, seed: int) -> dict[str, float]:
    """µs per request row committed through the store (500 rows a transaction) with every roll-up
    trigger (minute + hour, day, minute SLI), with the minute + hour one only, and without any; the rows
    arrive in time order over one day, as a live service's do."""
    rows = sorted(make_rows(n, 1.0, seed, 10**8), key=lambda r: r["ts"])
    dropped = {
        "with_triggers": (),
        "minute_hour_trigger_only": ("requests_rollup_daily_insert", "requests_rollup_minute_sli_insert"),
        "without_triggers": (
            "requests_rollup_insert",
            "requests_rollup_daily_insert",
            "requests_rollup_minute_sli_insert",
        ),
    }
    out = {}
    for label, triggers in dropped.items():
        path = tmp / f"insert-{label}.db"
        Store(path, threaded=False).close()
        conn = sqlite3.connect(path)
        for trigger in triggers:
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.commit()
        conn.close()
        with Store(path, threaded=False, batch_size=500) as store:
            t0 = time.perf_counter()
            for i in range(0, n, 500):
                store.submit("requests", rows[i : i + 500])
            out[f"us_per_row_{label}"] = round((time.perf_counter() - t0) / n * 1e6, 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=28.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default=None, help="keep the store in this file (reused when it exists)")
    parser.add_argument("--insert-rows", type=int, default=50_000, help="rows for the insert-cost figure")
    parser.add_argument("--pages-only", action="store_true", help="time only the pages' loads")
    args = parser.parse_args()
    slos = yaml.safe_load((ROOT / "data" / "slos.yaml").read_text())["slos"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        path = Path(args.db) if args.db else tmp / "slo.db"
        build_s = None if path.exists() else build(path, args.requests, args.days, args.seed)
        if args.pages_only:
            with Store(path, threaded=False) as store:  # migrates an older file first
                n_rows, as_of = store.reads.query("SELECT COUNT(*) AS n, MAX(ts) AS t FROM requests")[
                    0
                ].values()
            pages = {"requests": n_rows, "as_of": as_of, **page_loads(path, as_of, args.repeat)}
            pages["attribution_by_slo_28d"] = attribution_by_kind(path, as_of, args.repeat)
            pages["buckets_by_grid"] = buckets_by_grid(path, as_of, args.repeat)
            pages["console"] = console_loads(path, as_of, args.repeat)
            print(json.dumps(pages, indent=1))
            return
        reads = RollupReads(path)
        conn = sqlite3.connect(path)
        n_rows, as_of = conn.execute("SELECT COUNT(*), MAX(ts) FROM requests").fetchone()
        groups = conn.execute("SELECT COUNT(*) FROM request_rollups").fetchone()[0]
        result: dict[str, Any] = {
            "requests": n_rows,
            "rollup_rows": groups,
            "days": args.days,
            "build_s": None if build_s is None else round(build_s, 1),
            "as_of": as_of,
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "slos": {},
        }
        worst = {"rollups_s": 0.0, "rows_s": 0.0}
        for slo in slos:
            per: dict[str, Any] = {}
            for label, seconds in WINDOWS.items():
                since = as_of - seconds
                t_roll, got = median_time(
                    lambda s=slo, a=since: slo_from_rollups(reads, s, a, as_of), args.repeat
                )
                t_rows, want = median_time(
                    lambda s=slo, a=since: slo_from_rows(conn, s, a, as_of), args.repeat
                )
                per[label] = {
                    "total": got[0],
                    "bad": got[1],
                    "equal": got == want,
                    "rollups_s": round(t_roll, 4),
                    "rows_s": round(t_rows, 4),
                }
                worst["rollups_s"] = max(worst["rollups_s"], t_roll)
                worst["rows_s"] = max(worst["rows_s"], t_rows)
            result["slos"][slo["name"]] = per
        result["worst_s"] = {k: round(v, 4) for k, v in worst.items()}
        since = as_of - WINDOWS["28d"]
        dims = ("task", "last_agent", "provider", "router", "variant")
        t_attr, attr = median_time(
            lambda: reads.counts(since, as_of, ("status", *dims), {"status": SERVED}), args.repeat
        )
        t_attr_rows, attr_rows = median_time(
            lambda: reads.counts(since, as_of, ("status", *dims), {"status": SERVED}, use_rollups=False),
            args.repeat,
        )
        result["attribution_28d"] = {  # the joint counts by status and every dimension at once
            "groups": len(attr.groups),
            "equal": [(g.key, g.n, g.histogram.cumulative) for g in attr.groups]
            == [(g.key, g.n, g.histogram.cumulative) for g in attr_rows.groups],
            "rollups_s": round(t_attr, 4),
            "rows_s": round(t_attr_rows, 4),
        }

        def from_rows() -> list[float]:
            lat = np.array(
                [
                    r[0]
                    for r in conn.execute(
                        "SELECT latency_ms FROM requests WHERE ts > ? AND ts <= ?"
                        " AND status IN ('ok', 'error') AND latency_ms IS NOT NULL",
                        [since, as_of],
                    )
                ]
            )
            return [float(x) for x in np.quantile(lat, (0.5, 0.95, 0.99))]

        def from_buckets() -> list[Any]:
            h = reads.counts(since, as_of, (), {"status": SERVED}).total().histogram
            return [h.quantile(q) for q in (0.5, 0.95, 0.99)]

        t_q_rows, exact = median_time(from_rows, args.repeat)
        t_q_roll, est = median_time(from_buckets, args.repeat)
        result["quantiles_28d"] = {
            "exact_ms": [round(x, 2) for x in exact],
            "from_buckets_ms": [round(e.value_ms, 2) for e in est],
            "bucket_bounds_ms": [[e.lower_ms, e.upper_ms] for e in est],
            "exact_within_bounds": all(
                e.lower_ms <= x and (e.upper_ms is None or x <= e.upper_ms)
                for e, x in zip(est, exact, strict=True)
            ),
            "rollups_s": round(t_q_roll, 4),
            "rows_s": round(t_q_rows, 4),
        }
        conn.close()
        result["attribution_by_slo_28d"] = attribution_by_kind(path, as_of, args.repeat)
        result["buckets_by_grid"] = buckets_by_grid(path, as_of, args.repeat)
        result["pages"] = page_loads(path, as_of, args.repeat)
        result["console"] = console_loads(path, as_of, args.repeat)
        result["insert"] = insert_cost(tmp, args.insert_rows, args.seed)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
