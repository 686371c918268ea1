"""Per-variant summaries aggregated in SQL against the same figures computed in Python from the
rows written, the SRM check on a constructed exposure loss, and the exposures migration."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlite_utils import Database

from engine.experiments import assign, metric_summaries, srm_check, stats
from observability.store import SCHEMA_VERSION, Store
from observability.store.schema import MIGRATIONS
from tests.engine.experiments.two_arms import two_arm_spec

T0 = 1_800_000_000.0
DAY = 86_400.0
SPEC = two_arm_spec("primary_metric: latency\ntarget_mde: 0.1\n")


def _fill(path: Path, units: int = 300, seed: int = 5) -> list[dict[str, Any]]:
    """Exposures and requests of ``units`` units (assigned by the real hash), plus noise the
    reads must ignore; returns every request row written."""
    rng = np.random.default_rng(seed)
    requests: list[dict[str, Any]] = []
    exposures = []
    for i in range(units):
        unit = f"u{i}"
        a = assign(SPEC.salt_value, SPEC.id, unit, SPEC.variant_names, SPEC.weights)
        exposures.append({"experiment": "exp", "unit": unit, "variant": a.variant, "bucket": a.bucket,
                          "request_id": f"{unit}-0", "ts": T0 + i})  # fmt: skip
        shift = 40.0 if a.variant == "b" else 0.0
        for k in range(int(rng.integers(1, 5))):
            verdict = [None, "correct", "incorrect"][int(rng.integers(0, 3))]
            status = ["ok", "ok", "ok", "error", "invalid"][int(rng.integers(0, 5))]
            requests.append({
                "request_id": f"{unit}-{k}", "ts": T0 + i + k * 0.1, "experiment": "exp",
                "variant": a.variant, "user_id": unit, "latency_ms": float(rng.normal(300 + shift, 50)),
                "verdict": verdict, "status": status, "cost_usd": None if k == 0 else 0.001 * k,
            })  # fmt: skip
        if i % 2 == 0:  # history in the 7 days before the start, for half the units
            requests.append({"request_id": f"{unit}-pre", "ts": T0 - 3 * DAY, "user_id": unit,
                             "latency_ms": float(rng.normal(300, 50)), "status": "ok"})  # fmt: skip
        # outside the pre-period (8 days before) and another experiment's request: both ignored
        requests.append({"request_id": f"{unit}-old", "ts": T0 - 8 * DAY, "user_id": unit,
                         "latency_ms": 9999.0, "status": "ok"})  # fmt: skip
        requests.append({"request_id": f"{unit}-other", "ts": T0 + i, "user_id": unit, "experiment": "other",
                         "variant": "a", "latency_ms": 9999.0, "status": "ok"})  # fmt: skip
    with Store(path, threaded=False) as store:
        store.submit("requests", requests)
        store.submit("exposures", exposures)
        store.flush()
    return requests


def _expected(rows: list[dict[str, Any]], metric: str) -> dict[str, dict[str, Any]]:
    """The figures worked out in Python from the rows (plain loops and numpy)."""

    def value(r: dict[str, Any]) -> float | None:
        if metric == "latency":
            return r["latency_ms"]
        if metric == "correctness":
            return {"correct": 1.0, "incorrect": 0.0}.get(r.get("verdict"))  # type: ignore[arg-type]
        if metric == "cost":
            return r.get("cost_usd") or 0.0
        raise AssertionError(metric)

    served = [r for r in rows if r.get("status", "ok") in ("ok", "error")]
    per_unit: dict[tuple[str, str], list[float]] = defaultdict(list)
    pre: dict[str, list[float]] = defaultdict(list)
    for r in served:
        v = value(r)
        if v is None:
            continue
        if r.get("experiment") == "exp":
            per_unit[(r["variant"], r["user_id"])].append(v)
        elif r.get("experiment") is None and T0 - 7 * DAY <= r["ts"] < T0:
            pre[r["user_id"]].append(v)
    out: dict[str, dict[str, Any]] = {}
    for variant in ("a", "b"):
        keys = sorted(k for k in per_unit if k[0] == variant)
        y = np.array([np.mean(per_unit[k]) for k in keys])
        num = np.array([np.sum(per_unit[k]) for k in keys])
        den = np.array([len(per_unit[k]) for k in keys], dtype=float)
        x = np.array([np.mean(pre[k[1]]) if pre[k[1]] else 0.0 for k in keys])
        has = np.array([bool(pre[k[1]]) for k in keys])
        out[variant] = {"y": y, "num": num, "den": den, "x": x, "has": has}
    return out


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("exp") / "arbor.db"
    return path, _fill(path)


@pytest.mark.parametrize("metric", ["latency", "correctness", "cost"])
def test_summaries_match_python(filled: tuple[Path, list[dict[str, Any]]], metric: str) -> None:
    path, rows = filled
    expected = _expected(rows, metric)
    with sqlite3.connect(path) as conn:
        got = metric_summaries(conn, "exp", metric)
    assert set(got) == {"a", "b"}
    for variant, e in expected.items():
        s = got[variant]
        assert s.unit.n == len(e["y"]) > 50
        assert s.unit.mean == pytest.approx(e["y"].mean(), rel=1e-9)
        assert s.unit.var == pytest.approx(e["y"].var(ddof=1), rel=1e-8)
        ratio = e["num"].sum() / e["den"].sum()
        assert s.ratio is not None and s.ratio.mean == pytest.approx(ratio, rel=1e-9)
        linearised = (e["num"] - ratio * e["den"]) / e["den"].mean()
        assert s.ratio.var == pytest.approx(linearised.var(ddof=1), rel=1e-7)
        assert s.covariate.x.mean == pytest.approx(e["x"].mean(), rel=1e-9, abs=1e-12)
        assert s.covariate.cov == pytest.approx(np.cov(e["y"], e["x"])[0, 1], rel=1e-6, abs=1e-9)
        assert s.with_history == int(e["has"].sum())
        # the pre-period requests have a latency and a cost but no verdict
        assert (s.with_history > 0) == (metric != "correctness")


def test_latency_difference_is_found(filled: tuple[Path, list[dict[str, Any]]]) -> None:
    path, rows = filled
    with sqlite3.connect(path) as conn:
        got = metric_summaries(conn, "exp", "latency")
    r = stats.mean_test(got["a"].unit, got["b"].unit)
    e = _expected(rows, "latency")
    ref = stats.mean_test(stats.Summary.from_values(e["a"]["y"]), stats.Summary.from_values(e["b"]["y"]))
    assert r.p_value == pytest.approx(ref.p_value, rel=1e-6)
    assert r.ci is not None and r.ci[0] < 40 < r.ci[1] and r.significant  # b was built 40 ms slower


def test_until_ts_counts_earlier_requests_only(filled: tuple[Path, list[dict[str, Any]]]) -> None:
    path, rows = filled
    cut = T0 + 100
    with sqlite3.connect(path) as conn:
        got = metric_summaries(conn, "exp", "latency", until_ts=cut)
    early = [r for r in rows if r["ts"] <= cut]
    e = _expected(early, "latency")
    assert got["a"].unit.n == len(e["a"]["y"]) and got["a"].unit.mean == pytest.approx(e["a"]["y"].mean())


def test_srm_check_passes_the_hash_split_and_catches_lost_exposures(tmp_path: Path) -> None:
    path = tmp_path / "srm.db"
    _fill(path, units=2000, seed=6)
    with sqlite3.connect(path) as conn:
        ok = srm_check(conn, SPEC)
        assert sum(ok.counts.values()) == 2000 and not ok.mismatch
        # a logging fault loses a third of variant b's exposures
        conn.execute("DELETE FROM exposures WHERE variant = 'b' AND CAST(SUBSTR(unit, 2) AS INTEGER) % 3 = 0")
        conn.commit()
        bad = srm_check(conn, SPEC)
    a, b = bad.counts["a"], bad.counts["b"]
    expected_p = stats.srm_p_value([a, b], [0.5, 0.5])
    assert bad.p_value == pytest.approx(expected_p) and bad.p_value < 0.001 and bad.mismatch


def test_one_exposure_per_unit_first_wins(tmp_path: Path) -> None:
    path = tmp_path / "once.db"
    with Store(path, threaded=False) as store:
        store.submit(
            "exposures", {"experiment": "exp", "unit": "u1", "variant": "a", "request_id": "r1", "ts": 1.0}
        )
        store.submit(
            "exposures", {"experiment": "exp", "unit": "u1", "variant": "a", "request_id": "r2", "ts": 2.0}
        )
        store.flush()
        assert store.query("SELECT unit, request_id, ts FROM exposures") == [
            {"unit": "u1", "request_id": "r1", "ts": 1.0}
        ]


def test_migration_keeps_the_first_exposure_per_unit(tmp_path: Path) -> None:
    version = next(i for i, (name, _) in enumerate(MIGRATIONS, 1) if name == "experiment exposures per unit")
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = Database(conn)
    for number, (name, apply) in enumerate(MIGRATIONS[: version - 1], start=1):
        apply(db)
        db.table("schema_meta").insert({"version": number, "name": name, "applied_at": 0.0})
    conn.execute(f"PRAGMA user_version = {version - 1}")
    old = [  # the per-request exposures of the earlier schema
        ("exp", "r2", "a", "alice", 10, 2.0),
        ("exp", "r1", "a", "alice", 10, 1.0),
        ("exp", "r3", "b", "bob", 70, 3.0),
        ("exp", "r4", "b", None, 71, 4.0),
        ("exp2", "r5", "a", "alice", 5, 5.0),
    ]
    conn.executemany(
        "INSERT INTO exposures (experiment, request_id, variant, user_id, bucket, ts) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        old,
    )
    conn.close()
    with Store(path, threaded=False) as store:
        assert store.schema_version == SCHEMA_VERSION
        rows = store.query(
            "SELECT experiment, unit, variant, bucket, request_id, ts FROM exposures ORDER BY ts"
        )
    assert rows == [
        {"experiment": "exp", "unit": "alice", "variant": "a", "bucket": 10, "request_id": "r1", "ts": 1.0},
        {"experiment": "exp", "unit": "bob", "variant": "b", "bucket": 70, "request_id": "r3", "ts": 3.0},
        {"experiment": "exp", "unit": "r4", "variant": "b", "bucket": 71, "request_id": "r4", "ts": 4.0},
        {"experiment": "exp2", "unit": "alice", "variant": "a", "bucket": 5, "request_id": "r5", "ts": 5.0},
    ]
