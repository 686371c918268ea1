"""The trigger-maintained experiment sums equal the row-based aggregation (the reference) on
random data: totals whatever the write order, the per-minute series when units write in time
order, the SLO events per variant, and after a rebuild (the migration's backfill)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from observability.store import Store, experiment_sums
from observability.store.experiment_reads import UNIT_METRICS, experiment_start, exposure_counts, variant_sums

T0 = 1_800_000_000.0
DAY = 86_400.0
FIELDS = ("n", "sum_y", "sum_y2", "sum_num", "sum_num2", "sum_den", "sum_den2", "sum_num_den",
          "sum_x", "sum_x2", "sum_xy", "with_history")  # fmt: skip


def _rows(
    seed: int, units: int = 120, shuffle: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    requests: list[dict[str, Any]] = []
    exposures: list[dict[str, Any]] = []
    for i in range(units):
        unit = f"u{i}"
        variant = ["a", "b", "c"][int(rng.integers(0, 3))]
        t = T0 + float(rng.uniform(0, 3 * 3600))
        exposures.append({"experiment": "exp", "unit": unit, "variant": variant, "bucket": i, "ts": t,
                          "request_id": f"{unit}-0"})  # fmt: skip
        for k in range(int(rng.integers(1, 6))):
            t += float(rng.exponential(400))
            requests.append({
                "request_id": f"{unit}-{k}", "ts": t, "experiment": "exp", "variant": variant,
                "user_id": unit,
                "latency_ms": None if rng.random() < 0.1 else float(rng.lognormal(5, 1)),
                "verdict": [None, "correct", "incorrect", "unknown"][int(rng.integers(0, 4))],
                "status": ["ok", "ok", "ok", "error", "invalid", "cancelled"][int(rng.integers(0, 6))],
                "cost_usd": None if rng.random() < 0.3 else float(rng.uniform(0, 0.01)),
                "tokens": None if rng.random() < 0.3 else int(rng.integers(0, 500)),
            })  # fmt: skip
        if rng.random() < 0.5:  # history before the start (the first exposure is near T0)
            requests.append({"request_id": f"{unit}-pre", "ts": T0 - float(rng.uniform(0, 6 * DAY)),
                             "user_id": unit, "latency_ms": float(rng.lognormal(5, 1)), "status": "ok",
                             "verdict": "correct" if rng.random() < 0.5 else "incorrect"})  # fmt: skip
        # a request in the variant the unit was not exposed to, and one of another experiment
        requests.append({"request_id": f"{unit}-stray", "ts": t + 1, "experiment": "exp", "variant": "zz",
                         "user_id": unit, "latency_ms": 5.0, "status": "ok"})  # fmt: skip
        requests.append({"request_id": f"{unit}-other", "ts": t + 2, "experiment": "other",
                         "variant": variant,
                         "user_id": unit, "latency_ms": 9.0, "status": "ok"})  # fmt: skip
    if shuffle:
        order = rng.permutation(len(requests))
        requests = [requests[j] for j in order]
    else:
        requests.sort(key=lambda r: r["ts"])
    return requests, exposures


def _write(
    path: Path, requests: list[dict[str, Any]], exposures: list[dict[str, Any]], exposures_first: bool
) -> None:
    with Store(path, threaded=False) as store:
        half = len(requests) // 2
        if exposures_first:
            store.submit("exposures", exposures)
            store.flush()
        store.submit("requests", requests[:half])
        store.flush()
        if not exposures_first:
            store.submit("exposures", exposures)
            store.flush()
        store.submit("requests", requests[half:])
        store.submit("requests", requests[:10])  # resubmitted: counted once
        store.flush()


def _fast(conn: sqlite3.Connection, metric: str) -> dict[str, tuple[float, ...]]:
    start = experiment_start(conn, "exp")
    covs = experiment_sums.covariate_sums(conn, "exp", metric, start, 7 * DAY)
    out = {}
    for variant, rows in experiment_sums.minute_sums(conn, "exp", metric).items():
        total = np.sum([d for _, d in rows], axis=0)
        if round(total[0]) == 0:
            continue
        out[variant] = (*total, *covs.get(variant, (0.0, 0.0, 0.0, 0)))
    return out


def _assert_equal(fast: dict[str, tuple[float, ...]], reference: dict[str, Any]) -> None:
    assert set(fast) == set(reference)
    for variant, ref in reference.items():
        for name, got in zip(FIELDS, fast[variant], strict=True):
            assert got == pytest.approx(float(getattr(ref, name)), rel=1e-9, abs=1e-9), (variant, name)


@pytest.mark.parametrize(("seed", "exposures_first"), [(1, True), (2, False), (3, True)])
def test_totals_equal_row_aggregation(tmp_path: Path, seed: int, exposures_first: bool) -> None:
    path = tmp_path / "arbor.db"
    requests, exposures = _rows(seed)
    _write(path, requests, exposures, exposures_first)
    with sqlite3.connect(path) as conn:
        assert experiment_sums.exposure_counts(conn, "exp")[0] == exposure_counts(conn, "exp")
        for metric in UNIT_METRICS:
            reference = variant_sums(conn, "exp", metric)
            assert len(reference) == 3
            _assert_equal(_fast(conn, metric), reference)
        # the migration's backfill (rebuild) gives the same totals
        conn.isolation_level = None
        experiment_sums.rebuild(conn)
        for metric in UNIT_METRICS:
            _assert_equal(_fast(conn, metric), variant_sums(conn, "exp", metric))
        assert experiment_sums.exposure_counts(conn, "exp")[0] == exposure_counts(conn, "exp")


def test_series_equal_row_aggregation_at_minute_ends(tmp_path: Path) -> None:
    path = tmp_path / "arbor.db"
    requests, exposures = _rows(7, shuffle=False)
    _write(path, requests, exposures, exposures_first=True)
    with sqlite3.connect(path) as conn:
        start = experiment_start(conn, "exp")
        minutes = experiment_sums.minute_sums(conn, "exp", "latency")
        marks = sorted({m for rows in minutes.values() for m, _ in rows})
        checked = 0
        for mark in marks[:: max(1, len(marks) // 8)]:
            reference = variant_sums(conn, "exp", "latency", until_ts=mark + 59.999999, start_ts=start)
            for variant, ref in reference.items():
                cum = np.sum([d for m, d in minutes[variant] if m <= mark], axis=0)
                for name, got in zip(FIELDS[:8], cum, strict=True):
                    assert got == pytest.approx(float(getattr(ref, name)), rel=1e-9, abs=1e-9)
                checked += 1
        assert checked > 10


@pytest.mark.parametrize(
    ("kind", "threshold"), [("availability", None), ("quality", None), ("latency", 250.0)]
)
def test_event_counts_equal_rows(tmp_path: Path, kind: str, threshold: float | None) -> None:
    path = tmp_path / "arbor.db"
    requests, exposures = _rows(11)
    _write(path, requests, exposures, exposures_first=False)
    with sqlite3.connect(path) as conn:
        rows = experiment_sums.variant_event_rows(conn, "exp", kind, threshold, None)
        fast = experiment_sums.event_counts(conn, "exp")
    # by hand from the rows written (each request once)
    unique = {r["request_id"]: r for r in requests}.values()
    for variant in ("a", "b", "c", "zz"):
        mine = [r for r in unique if r.get("experiment") == "exp" and r["variant"] == variant
                and r["status"] in ("ok", "error")]  # fmt: skip
        if kind == "availability":
            total, bad = len(mine), sum(r["status"] == "error" for r in mine)
            got = (fast[variant].n, fast[variant].errors)
        elif kind == "quality":
            judged = [r for r in mine if r.get("verdict") in ("correct", "incorrect")]
            total, bad = len(judged), sum(r["verdict"] == "incorrect" for r in judged)
            got = (fast[variant].judged, fast[variant].incorrect)
        else:
            lat = [r for r in mine if r.get("latency_ms") is not None]
            total, bad = len(lat), sum(r["latency_ms"] > 250.0 for r in lat)
            got = (fast[variant].lat_n, fast[variant].lat_n - fast[variant].le[250.0])
        assert rows[variant] == (total, bad) == got
        assert total > 0 or variant == "zz"
