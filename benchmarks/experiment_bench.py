"""Time the experiment analysis on a store with N exposures (default 1M): the trigger-maintained
sums (``analyze``) against the row-based SQL aggregation of one metric, and check they agree.

    .venv/bin/python benchmarks/experiment_bench.py [--units 1000000] [--db FILE] [--keep]

Prints one JSON object per measurement.  Building the store (through the triggers) takes minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from engine.experiments import load_spec
from engine.experiments.analysis import analyze, open_store
from observability.store import Store
from observability.store.experiment_reads import variant_sums

SPEC = Path(__file__).resolve().parents[1] / "data" / "experiments" / "mcts_iterations.yaml"
T0 = 1_800_000_000.0


def build(path: Path, units: int, seed: int = 1, chunk: int = 20_000) -> float:
    """Write ``units`` exposures with one request each (spread over 14 days, in time order); seconds taken."""
    spec = load_spec(SPEC)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with Store(path, threaded=False) as store:
        for lo in range(0, units, chunk):
            n = min(chunk, units - lo)
            ts = T0 + (lo + np.arange(n)) * (14 * 86_400 / units)
            arm = rng.random(n) < 0.5
            correct = rng.random(n) < np.where(arm, 0.55, 0.5)
            lat = rng.lognormal(np.where(arm, 4.2, 4.0), 0.4)
            exposures, requests = [], []
            for i in range(n):
                unit = f"u{lo + i}"
                variant = spec.variant_names[1] if arm[i] else spec.variant_names[0]
                exposures.append(
                    {
                        "experiment": spec.id,
                        "unit": unit,
                        "variant": variant,
                        "bucket": 0,
                        "request_id": f"{unit}-0",
                        "ts": float(ts[i]),
                    }
                )
                requests.append(
                    {
                        "request_id": f"{unit}-0",
                        "ts": float(ts[i]),
                        "experiment": spec.id,
                        "variant": variant,
                        "user_id": unit,
                        "latency_ms": float(lat[i]),
                        "verdict": "correct" if correct[i] else "incorrect",
                        "status": "ok",
                    }
                )
            store.submit("exposures", exposures)
            store.submit("requests", requests)
            store.flush()
    return time.perf_counter() - t0


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
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        analysis = analyze(conn, spec)
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


if __name__ == "__main__":
    main()
