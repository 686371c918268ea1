"""Per-request cost of the feature-flag look-up (``FlagSource.resolve``), the part every request pays.

On a fresh temporary store with ``--flags`` flags (each ``use_rag=false`` at 50 %, targeted to
connect4; the requests are game24, so the flags are read and evaluated but none applies, plus one
flag at 100 % with no targeting that applies), three cases, each ``--repeats`` look-ups, printed as
one JSON object per case (microseconds per look-up, median and p95 of ``--rounds`` rounds):

* ``no_flags``: an empty ``flags`` table (the version query only);
* ``cached``: ``--flags`` flags, unchanged between requests (version query + evaluation);
* ``changed``: a flag change before every look-up (version query + re-read + validation).

    python benchmarks/flag_bench.py [--flags 10] [--repeats 2000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.flags import FlagSource, FlagSpec, FlagStore, Targeting
from engine.models import QueryRequest


def _measure(source: FlagSource, repeats: int, before: object = None) -> float:
    request = QueryRequest(query="24: 4 7 8 8", user_id="u1")
    total = 0.0
    for i in range(repeats):
        if before is not None:
            before(i)  # type: ignore[operator]
        t0 = time.perf_counter()
        source.resolve(request, f"unit-{i}")
        total += time.perf_counter() - t0
    return total / repeats * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        store = FlagStore(db)
        source = FlagSource(db)
        cases: dict[str, list[float]] = {"no_flags": [], "cached": [], "changed": []}
        for _ in range(args.rounds):
            cases["no_flags"].append(_measure(source, args.repeats))
        for i in range(args.flags):
            store.set(FlagSpec(name=f"flag-{i:03d}", key="use_rag", value=False, rollout_pct=50,
                               targeting=Targeting(tasks=("connect4",))), "bench")  # fmt: skip
        store.set(FlagSpec(name="zz-applies", key="max_steps", value=2, rollout_pct=100), "bench")
        source.resolve(QueryRequest(query="24: 1 2 3 4"), "warm")  # imports the evaluation once
        for _ in range(args.rounds):
            cases["cached"].append(_measure(source, args.repeats))
        spec = FlagSpec(name="flag-000", key="use_rag", value=False, rollout_pct=50)
        for _ in range(args.rounds):
            cases["changed"].append(
                _measure(source, max(1, args.repeats // 10), lambda i: store.set(spec, f"bench-{i}"))
            )
        source.close()
    for name, values in cases.items():
        print(json.dumps({
            "benchmark": "flag_lookup", "case": name, "flags": 0 if name == "no_flags" else args.flags + 1,
            "us_per_lookup_median": round(statistics.median(values), 2),
            "us_per_lookup_max_round": round(max(values), 2), "rounds": args.rounds,
        }))  # fmt: skip


if __name__ == "__main__":
    main()
