"""Hash assignment: the bucket formula against digests computed outside Python, cumulative
weights at their edges, the split over many units, and stickiness across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.experiments import assignment, stats

ROOT = Path(__file__).resolve().parents[3]


def test_bucket_matches_sha256sum() -> None:
    # printf 'arbor:mcts-iterations:unit-1' | sha256sum -> 61c6901b9ee7f95d...; the first 8 bytes
    # as a big-endian unsigned integer: 0x61c6901b9ee7f95d = 1640402971 x 2³² + 2666002781
    # = 7045454389766535517; mod 10000 = 9197.  For 'alice': 0x14c0ff1d6982ed4f mod 10000 = 7247.
    assert assignment.bucket("arbor", "mcts-iterations", "unit-1") == 9197
    assert assignment.bucket("arbor", "mcts-iterations", "alice") == 7247
    assert (1640402971 * 2**32 + 2666002781) % 10000 == 9197


def test_cumulative_weights_at_the_edges() -> None:
    names, weights = ["a", "b", "c"], [0.5, 0.3, 0.2]
    assert assignment.bucket_bounds(weights) == (5000, 8000, 10000)
    assert assignment.variant_for_bucket(0, names, weights) == "a"
    assert assignment.variant_for_bucket(4999, names, weights) == "a"
    assert assignment.variant_for_bucket(5000, names, weights) == "b"
    assert assignment.variant_for_bucket(7999, names, weights) == "b"
    assert assignment.variant_for_bucket(8000, names, weights) == "c"
    assert assignment.variant_for_bucket(9999, names, weights) == "c"
    # thirds: 3333.33 -> 3333, 6666.67 -> 6667, 10000
    assert assignment.bucket_bounds([1 / 3, 1 / 3, 1 / 3]) == (3333, 6667, 10000)
    # a zero-weight variant gets no bucket
    assert assignment.bucket_bounds([0.5, 0.0, 0.5]) == (5000, 5000, 10000)


@pytest.mark.parametrize(
    ("weights", "message"), [([0.5, 0.4], "sum to 1"), ([1.2, -0.2], r"\[0, 1\]"), ([], "at least one")]
)
def test_bad_weights_are_rejected(weights: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assignment.bucket_bounds(weights)


def test_split_follows_the_weights() -> None:
    names, weights = ["a", "b", "c"], [0.5, 0.3, 0.2]
    counts = dict.fromkeys(names, 0)
    for i in range(20_000):
        counts[assignment.assign("s", "exp", f"u{i}", names, weights).variant] += 1
    # SHA-256 buckets behave like uniform draws: no sample-ratio mismatch at the 0.001 level
    assert stats.srm_p_value([counts[n] for n in names], weights) > 0.001
    # a different salt reshuffles: most units keep nothing in common with the first salt's variants
    moved = sum(
        assignment.assign("s", "exp", f"u{i}", names, weights).variant
        != assignment.assign("t", "exp", f"u{i}", names, weights).variant
        for i in range(2000)
    )
    assert moved > 600  # independent draws would move 1 - (0.25 + 0.09 + 0.04) = 62 % of them


_CHILD = """
import json, sys
from engine.experiments.assignment import assign
names, weights = ["control", "treatment", "third"], [0.45, 0.45, 0.10]
out = {u: [assign("salt-1", "exp-x", u, names, weights).bucket,
           assign("salt-1", "exp-x", u, names, weights).variant] for u in sys.argv[1:]}
print(json.dumps(out))
"""


def test_assignment_is_sticky_across_processes() -> None:
    units = [f"user-{i}" for i in range(300)] + ["ünïcode", "a:b:c", " spaced "]
    results = []
    for hashseed in ("1", "2"):  # a different str hash per process: the assignment must not care
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, *units], capture_output=True, text=True, env=env, check=True,
            timeout=120,
        )  # fmt: skip
        results.append(json.loads(proc.stdout))
    assert results[0] == results[1]
    here = {
        u: [a.bucket, a.variant]
        for u in units
        for a in [
            assignment.assign("salt-1", "exp-x", u, ["control", "treatment", "third"], [0.45, 0.45, 0.10])
        ]
    }
    assert results[0] == here


def test_exposure_row(tmp_path: Path) -> None:
    from observability.store import Store

    a = assignment.assign("s", "exp", "u1", ["a", "b"], [0.5, 0.5])
    with Store(tmp_path / "x.db", threaded=False) as store:
        store.submit("exposures", a.exposure_row("r1", 5.0)._asdict())
        store.submit("exposures", a.exposure_row("r2", 6.0)._asdict())  # a resumed run: ignored
        store.flush()
        rows = store.query("SELECT experiment, unit, variant, bucket, request_id, ts FROM exposures")
    assert rows == [{"experiment": "exp", "unit": "u1", "variant": a.variant, "bucket": a.bucket,
                     "request_id": "r1", "ts": 5.0}]  # fmt: skip
