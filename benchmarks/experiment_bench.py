"""Time the experiment analysis on a store with N exposures (default 1M): the trigger-maintained
sums (``analyze``) against the row-based SQL aggregation of one metric, and check they agree; then
what the Experiments page does on that store (``page_s``: the app/experiments.py services with
their Streamlit caches cleared) and, unless ``--no-apptest``, an AppTest render of the page.

    .venv/bin/python benchmarks/experiment_bench.py [--units 1000000] [--db FILE] [--repeat 3]
        [--page-only] [--no-apptest]

``--db FILE``: the store to use; built there (and kept) when the file does not exist, so a second
run reuses it (``--page-only``: only the page's figures, on an existing store).  Without it the
store is built in a temporary directory.  Prints one JSON object per measurement.  Building the
store (through the triggers) takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.experiments import load_spec
from engine.experiments.analysis import analyze, open_store
from observability.slo.models import load_slos
from observability.store import Store
from observability.store.experiment_reads import variant_sums

SPEC = Path(__file__).resolve().parents[1] / "data" / "experiments" / "mcts_iterations.yaml"
T0 = 1_800_000_000.0


def build(path: Path, units: int, seed: int = 1, chunk: int = 50_000) -> float:
    """Write ``units`` exposures with one request each (spread over 14 days, in time order) by
    raw ``executemany`` in one transaction per chunk (the triggers fire as for any writer);
    seconds taken."""
    spec = load_spec(SPEC)
    rng = np.random.default_rng(seed)
    with Store(path, threaded=False):
        pass  # create and migrate the file
    conn = sqlite3.connect(path, isolation_level=None)
    t0 = time.perf_counter()
    for lo in range(0, units, chunk):
        n = min(chunk, units - lo)
        ts = T0 + (lo + np.arange(n)) * (14 * 86_400 / units)
        arm = rng.random(n) < 0.5
        correct = rng.random(n) < np.where(arm, 0.55, 0.5)
        lat = rng.lognormal(np.where(arm, 4.2, 4.0), 0.4)
        names = [spec.variant_names[1] if a else spec.variant_names[0] for a in arm]
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO exposures (experiment, unit, variant, bucket, request_id, ts)"
            " VALUES (?, ?, ?, 0, ?, ?)",
            [(spec.id, f"u{lo + i}", names[i], f"u{lo + i}-0", float(ts[i])) for i in range(n)],
        )
        conn.executemany(
            "INSERT INTO requests (request_id, ts, experiment, variant, user_id, latency_ms, verdict, status,"
            " query, task) VALUES (?, ?, ?, ?, ?, ?, ?, 'ok', 'q', 'connect4')",
            [
                (
                    f"u{lo + i}-0",
                    float(ts[i]),
                    spec.id,
                    names[i],
                    f"u{lo + i}",
                    float(lat[i]),
                    "correct" if correct[i] else "incorrect",
                )
                for i in range(n)
            ],
        )
        conn.execute("COMMIT")
    conn.close()
    return time.perf_counter() - t0


def trigger_cost(n: int = 20_000) -> dict[str, float]:
    """µs per committed request row (with experiment, variant, user_id and an exposure) with the
    experiment triggers and without them (dropped), raw executemany in one transaction."""
    out = {}
    for label in ("with_triggers", "without"):
        path = Path(tempfile.mkdtemp()) / "cost.db"
        with Store(path, threaded=False):
            pass
        conn = sqlite3.connect(path, isolation_level=None)
        if label == "without":
            for name in ("experiment_sums_request", "experiment_sums_exposure", "experiment_events_request"):
                conn.execute(f"DROP TRIGGER {name}")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO exposures (experiment, unit, variant, bucket, request_id, ts)"
            " VALUES ('e', ?, 'a', 0, ?, ?)",
            [(f"u{i}", f"r{i}", T0 + i) for i in range(n)],
        )
        conn.execute("COMMIT")
        t = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO requests (request_id, ts, experiment, variant, user_id, latency_ms, verdict, status,"
            " query, task) VALUES (?, ?, 'e', 'a', ?, 100.0, 'correct', 'ok', 'q', 'game24')",
            [(f"r{i}", T0 + i, f"u{i}") for i in range(n)],
        )
        conn.execute("COMMIT")
        out[label] = (time.perf_counter() - t) / n * 1e6
        conn.close()
    return out


def page_timings(path: Path, repeat: int) -> dict[str, object]:
    """Seconds each Experiments-page service (app/experiments.py) takes on the store at ``path``
    for the bench's experiment, with the ``st.cache_data`` caches cleared before every round (the
    settings and the engine, ``st.cache_resource``, are built once, as in a running console:
    ``runtime_s``).  Per step the fastest of ``repeat`` rounds and every round's total.

    Sets ``ARBOR_DB_PATH`` (and ``ARBOR_METRICS_PORT=0``) for this process."""
    os.environ["ARBOR_DB_PATH"] = str(path)
    os.environ["ARBOR_METRICS_PORT"] = "0"
    import streamlit as st
    import streamlit.logger

    streamlit.logger.set_log_level("ERROR")  # "No runtime found": expected outside a server

    from app import experiments as ex
    from app import experiments_charts, runtime

    st.cache_resource.clear()
    st.cache_data.clear()
    t = time.perf_counter()
    runtime.get_engine()
    runtime_s = time.perf_counter() - t
    spec_id = load_spec(SPEC).id
    rounds: list[dict[str, float]] = []
    for _ in range(repeat):
        st.cache_data.clear()
        step: dict[str, float] = {}
        t = time.perf_counter()
        listing = ex.list_experiments()
        step["list"] = time.perf_counter() - t
        spec = listing.specs[spec_id]
        t = time.perf_counter()
        res = ex.results(spec)  # analyze (SLO file read included) + decide
        step["results"] = time.perf_counter() - t
        if res.analysis is None or res.decision is None:
            raise SystemExit(f"no results on {path}: {res.message}")
        t = time.perf_counter()
        ex.results_frame(res.analysis)
        step["results_frame"] = time.perf_counter() - t
        t = time.perf_counter()
        experiments_charts.forest_figure(res.analysis)
        experiments_charts.cumulative_lift_figure(res.analysis.series, spec.primary_metric)
        step["charts"] = time.perf_counter() - t
        t = time.perf_counter()
        ex.report_files(res.analysis, res.decision)
        step["report"] = time.perf_counter() - t
        step["total"] = sum(step.values())
        rounds.append(step)
    out: dict[str, object] = {k: round(min(r[k] for r in rounds), 3) for k in rounds[0]}
    out["total_rounds"] = [round(r["total"], 3) for r in rounds]
    out["runtime_s"] = round(runtime_s, 3)
    row = next(r for r in listing.rows if r.id == spec_id)
    out["listed"] = {"units": row.units, "requests": row.requests, "status": row.status}
    out["series_points"] = sum(len(p) for p in res.analysis.series.values())
    out["action"] = res.decision.action
    return out


def apptest_timing(path: Path, repeat: int) -> dict[str, object]:
    """Seconds of AppTest renders of pages/experiments.py through the console's router on the
    store at ``path`` (the caches cleared before each: a cold render, engine included after the
    first), and of a rerun with the caches warm.  Needs :func:`page_timings`' environment."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    main = str(Path(__file__).resolve().parents[1] / "app" / "main.py")
    cold: list[float] = []
    warm = 0.0
    for _ in range(repeat):
        st.cache_data.clear()
        at = AppTest.from_file(main, default_timeout=600)
        at.run()
        at.query_params["experiment"] = load_spec(SPEC).id
        t = time.perf_counter()
        at.switch_page("../pages/experiments.py").run()
        cold.append(time.perf_counter() - t)
        if at.exception:
            raise SystemExit(f"the page raised: {at.exception}")
        t = time.perf_counter()
        at.run()
        warm = time.perf_counter() - t
    return {"cold_s": [round(x, 3) for x in cold], "warm_rerun_s": round(warm, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--db", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-apptest", action="store_true", help="skip the AppTest render of the page")
    ap.add_argument("--page-only", action="store_true", help="only the page timings (store must exist)")
    args = ap.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "experiment_bench.db"
    if not path.exists():
        print(json.dumps({"build_s": round(build(path, args.units), 1), "units": args.units}), flush=True)
    if args.page_only and not path.exists():
        raise SystemExit(f"--page-only needs an existing store: {path} does not exist")
    if args.page_only:
        _page(path, args)
        return
    spec = load_spec(SPEC)
    conn = open_store(path)
    slos = load_slos()  # read once, as the page caches them (parsing the YAML alone takes 0.1-0.3 s)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        analysis = analyze(conn, spec, slos=slos)
        times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "analyze_s": [round(x, 3) for x in times],
                "metrics": len(analysis.metrics),
                "units": dict(analysis.srm.counts),
                "source": analysis.source,
            }
        ),
        flush=True,
    )
    t = time.perf_counter()
    rows = variant_sums(conn, spec.id, "correctness")
    row_s = time.perf_counter() - t
    m = analysis.metric("correctness")
    assert m is not None
    worst = max(
        abs(m.variant(name).mean - s.sum_y / s.n) / abs(s.sum_y / s.n)  # type: ignore[union-attr]
        for name, s in rows.items()
    )
    print(
        json.dumps({"row_aggregation_one_metric_s": round(row_s, 2), "max_rel_diff_mean": worst}), flush=True
    )
    conn.close()
    print(json.dumps({"us_per_request_row": {k: round(v, 1) for k, v in trigger_cost().items()}}), flush=True)
    _page(path, args)


def _page(path: Path, args: argparse.Namespace) -> None:
    print(json.dumps({"page_s": page_timings(path, args.repeat)}), flush=True)
    if not args.no_apptest:
        print(json.dumps({"apptest_page_s": apptest_timing(path, args.repeat)}), flush=True)


if __name__ == "__main__":
    main()
