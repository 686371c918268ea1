"""The experiment benchmark's page timings (benchmarks/experiment_bench.py) run the page's services
on the store the benchmark builds: the page lists exactly the units and requests written (one
request per unit, by construction) and analyses every unit.  No timing is asserted."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNITS = 300


def _bench():
    spec = importlib.util.spec_from_file_location(
        "experiment_bench", ROOT / "benchmarks" / "experiment_bench.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_page_timings_see_every_unit_of_the_built_store(tmp_path: Path) -> None:
    bench = _bench()
    db = tmp_path / "bench.db"
    bench.build(db, UNITS, chunk=100)
    conn = sqlite3.connect(db)
    try:
        per_variant = dict(
            conn.execute("SELECT variant, COUNT(*) FROM exposures GROUP BY variant").fetchall()
        )
    finally:
        conn.close()
    out = bench.page_timings(db, repeat=2)
    assert out["listed"] == {"units": UNITS, "requests": UNITS, "status": "recorded"}
    assert len(out["total_rounds"]) == 2
    for step in ("list", "results", "results_frame", "charts", "report", "total"):
        assert out[step] >= 0
    assert sum(per_variant.values()) == UNITS and len(per_variant) == 2
    assert out["action"] in ("ship", "roll_back", "keep_running")
    assert out["series_points"] > 0
