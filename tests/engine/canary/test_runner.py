"""The canary runner against the real engine and store, on the simulated clock: injected errors
on the canary arm roll back at the first step with enough data (error ratio), injected latency
rolls back on p95 latency, a healthy candidate promotes to 100 %, and the SLO-burn guardrail trips
on its own.  Oracles: the bucket split from SHA-256 by hand, counts read back with plain sqlite3."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.engine.canary.helpers import rows, simulate, write_spec


def _bucket(canary: str, unit: str) -> int:
    digest = hashlib.sha256(f"{canary}:{canary}:{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000


def _evaluations(db: Path, run_id: str) -> list[tuple[object, ...]]:
    return rows(
        db,
        "SELECT seq, step_index, share_pct, decision, reason, baseline_window, canary_window "
        "FROM canary_steps WHERE run_id = ? ORDER BY seq",
        (run_id,),
    )


def _guards(db: Path, run_id: str, seq: int) -> dict[str, tuple[object, ...]]:
    got = rows(
        db,
        "SELECT guardrail, value, threshold, verdict FROM canary_guardrails WHERE run_id = ? AND seq = ?",
        (run_id, seq),
    )
    return {str(g): (v, t, verdict) for g, v, t, verdict in got}


def test_errors_on_the_canary_arm_roll_back_at_the_first_step_with_enough_data(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    report = simulate(db, write_spec(tmp_path, "faulty", "faults: {canary: 'error=0.3'}\n"))
    assert report.status == "rolled_back" and report.share_pct == 0.0 and report.step_index == 0
    assert report.reason.startswith("rolled back at step 1 (5 %): error_ratio: canary ")
    assert report.errors["baseline"] == 0 and report.errors["canary"] > 0  # injected on the canary only
    evals = _evaluations(db, report.run_id)
    # every evaluation before the last waited for data; the last is the first with 20 requests per arm
    *before, last = evals
    assert all(e[3] == "continue" and e[6] < 20 for e in before)
    assert (
        last[3] == "rollback"
        and last[6] >= 20
        and last[5] >= 20
        and "[injected faults: canary: error=0.3]" in str(last[4])
    )
    g = _guards(db, report.run_id, int(last[0]))
    value, threshold, verdict = g["error_ratio"]
    assert (
        verdict == "fail" and float(value) > float(threshold) == 0.005
    )  # baseline 0 % -> the +0.5 point margin
    assert g["p95_latency"][2] == "pass"
    # the run row, and every request labelled with the canary id and its arm by the bucket split
    run = rows(
        db,
        "SELECT status, share_pct, seed, simulated, canary_requests FROM canary_runs WHERE run_id = ?",
        (report.run_id,),
    )
    assert run == [("rolled_back", 0.0, 4, 1, report.sent["canary"])]
    reqs = rows(db, "SELECT user_id, variant, status, simulated FROM requests WHERE experiment = 'faulty'")
    assert len(reqs) == report.sent["baseline"] + report.sent["canary"]
    for unit, variant, status, simulated in reqs:
        assert variant == ("canary" if _bucket("faulty", str(unit)) < 500 else "baseline")
        assert simulated == 1 and (variant == "canary" or status == "ok")


def test_latency_on_the_canary_arm_rolls_back_on_p95(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    report = simulate(db, write_spec(tmp_path, "slow", "faults: {canary: 'latency_ms=400'}\n"))
    assert report.status == "rolled_back" and report.step_index == 0
    assert report.reason.startswith("rolled back at step 1 (5 %): p95_latency: canary p95 ")
    assert report.guardrails["error_ratio"]["verdict"] == "pass"
    assert report.guardrails["p95_latency"]["value"] > 400 > report.guardrails["p95_latency"]["threshold"]
    # the injected latency is in the recorded rows of the canary arm only
    lat = dict(
        rows(db, "SELECT variant, MIN(latency_ms) FROM requests WHERE experiment = 'slow' GROUP BY variant")
    )
    assert float(lat["canary"]) >= 400 > float(lat["baseline"])


def test_a_healthy_canary_promotes_to_100(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    progress: list[object] = []
    report = simulate(db, write_spec(tmp_path, "healthy"), progress=progress.append)
    assert report.status == "promoted" and report.share_pct == 100.0, report.reason
    evals = _evaluations(db, report.run_id)
    promotes = [(e[1], e[2]) for e in evals if e[3] == "promote"]
    assert promotes == [(0, 5.0), (1, 25.0), (2, 50.0)]
    assert {e[3] for e in evals} <= {"continue", "promote"}
    for e in evals:
        if e[3] == "promote":
            assert all(v[2] == "pass" for v in _guards(db, report.run_id, int(e[0])).values())
    assert rows(db, "SELECT status, share_pct FROM canary_runs WHERE run_id = ?", (report.run_id,)) == [
        ("promoted", 100.0)
    ]
    assert progress  # the caller saw the run move


def test_the_slo_burn_guardrail_trips_on_its_own(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    spec_file = write_spec(
        tmp_path,
        "burn",
        "faults: {canary: 'error=0.3'}\n",
        guardrails="  error_ratio: {enabled: false}\n  slo_burn: {slos: [availability]}\n",
    )
    report = simulate(db, spec_file)
    assert report.status == "rolled_back"
    assert report.reason.startswith(
        "rolled back at step 1 (5 %): slo_burn:availability: availability page rule"
    )
    assert "error_ratio" not in report.guardrails
    g = report.guardrails["slo_burn:availability"]
    assert g["verdict"] == "fail" and g["value"] > g["threshold"]
