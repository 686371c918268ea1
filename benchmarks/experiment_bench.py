"""Time the experiment analysis on a store with N exposures (default 1M): the trigger-maintained
sums (``analyze``) against the row-based SQL aggregation of one metric, and check they agree.

    .venv/bin/python benchmarks/experiment_bench.py [--units 1000000] [--db FILE] [--keep]

Prints one JSON object per measurement.  Building the store (through the triggers) takes minutes.
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=1_000_000)
    ap.add_argument("--db", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = Path(args.db) if args.db else Path(tempfile.mkdtemp()) / "experiment_bench.db"
    if not path.exists():
        print(json.dumps({"build_s": round(build(path, args.units), 1), "units": args.units}), flush=True)
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


if __name__ == "__main__":
    main()
