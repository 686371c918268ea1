"""The experiment runner against the real engine and store: one exposure per unit (across runs and
processes) written with the unit's first request, every request labelled, the variants'
overrides reaching the engine, and resumed runs after SIGTERM and kill -9 that end with exactly
the planned units and requests, none twice.

Oracles are computed here independently of the runner: the variant from SHA-256 by hand, the
request ids from ``uuid.uuid5``, the planned request count from the arguments; rows are read
with plain ``sqlite3``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from engine import Engine
from engine.config import load_settings
from engine.experiments import load_spec
from engine.experiments.runner import (
    REQUEST_ID_NAMESPACE,
    RunBusyError,
    RunConfigError,
    RunProgress,
    _run_lock,
    run_experiment,
)

ROOT = Path(__file__).resolve().parents[3]
C4 = ROOT / "data" / "workloads" / "connect4_tactics.jsonl"
MIXED = ROOT / "data" / "workloads" / "mixed.jsonl"


def _spec(tmp_path: Path, *, budgets: tuple[int, int] = (30, 90), qpu: int = 2, workload: Path = C4,
          name: str = "spec.yaml", exp_id: str = "runner-test") -> Path:  # fmt: skip
    """A spec whose variants make MCTS answer alone with two budgets."""
    text = f"""\
id: {exp_id}
hypothesis: a bigger budget answers more tactics
variants:
  - name: small
    weight: 0.5
    overrides: {{mcts_iterations: {budgets[0]}, confidence_threshold: 1.0, max_steps: 1}}
  - name: big
    weight: 0.5
    overrides: {{mcts_iterations: {budgets[1]}, confidence_threshold: 1.0, max_steps: 1}}
workload: {{file: {workload}, queries_per_unit: {qpu}, seed: 3}}
primary_metric: correctness
target_mde: 0.1
"""
    path = tmp_path / name
    path.write_text(text)
    return path


def _variant_by_hand(experiment: str, unit: str) -> str:
    digest = hashlib.sha256(f"{experiment}:{experiment}:{unit}".encode()).digest()
    return "small" if int.from_bytes(digest[:8], "big") % 10_000 < 5_000 else "big"


def _rid(experiment: str, unit: str, k: int) -> str:
    return uuid.uuid5(REQUEST_ID_NAMESPACE, f"{experiment}/{unit}/{k}").hex


def _rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _engine(db: Path) -> Engine:
    return Engine(load_settings(db_path=db, metrics_port=0))


def _check_complete(db: Path, experiment: str, units: int, qpu: int) -> None:
    """Exactly ``units`` units, each exposed once with its first request, ``qpu`` requests each
    with the planned ids, each request recorded once (one query span each)."""
    expected_units = {f"unit-{i:06d}" for i in range(units)}
    exposures = _rows(
        db, "SELECT unit, variant, request_id, ts FROM exposures WHERE experiment = ?", (experiment,)
    )
    assert {u for u, *_ in exposures} == expected_units and len(exposures) == units
    for unit, variant, request_id, _ts in exposures:
        assert variant == _variant_by_hand(experiment, str(unit))
        assert request_id == _rid(experiment, str(unit), 0)
    requests = _rows(
        db, "SELECT request_id, user_id, variant, trace_id FROM requests WHERE experiment = ?", (experiment,)
    )
    expected_ids = {_rid(experiment, u, k) for u in expected_units for k in range(qpu)}
    assert len(requests) == units * qpu and {r[0] for r in requests} == expected_ids
    variant_of = {u: v for u, v, *_ in exposures}
    assert all(r[2] == variant_of[r[1]] for r in requests)
    traces = [r[3] for r in requests]
    query_spans = _rows(
        db,
        "SELECT trace_id, COUNT(*) FROM spans WHERE name = 'query' "
        f"AND trace_id IN ({','.join('?' * len(traces))}) GROUP BY trace_id",
        tuple(traces),
    )
    assert len(query_spans) == len(traces) and all(n == 1 for _, n in query_spans)
    # no request of the experiment under another id (a duplicate run would leave query spans behind)
    corr = _rows(db, "SELECT COUNT(*) FROM spans WHERE name = 'query' AND correlation_id = ?",
                 (f"experiment-{experiment}",))  # fmt: skip
    assert corr == [(units * qpu,)]
    assert _rows(db, "PRAGMA integrity_check") == [("ok",)]


def test_exposure_once_per_unit_across_two_runs_and_every_request_labelled(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path), slo_names=())
    db = tmp_path / "a.db"
    seen: list[RunProgress] = []
    engine = _engine(db)
    try:
        first = run_experiment(engine, spec, units=6, progress=seen.append)
        before = _rows(db, "SELECT unit, variant, bucket, request_id, ts FROM exposures ORDER BY unit")
        again = run_experiment(engine, spec, units=6)
        extended = run_experiment(engine, spec, units=9, concurrency=3)
    finally:
        engine.close()
    assert (first.sent, first.skipped, first.units_complete, first.stopped) == (12, 0, 6, False)
    assert (again.sent, again.skipped, again.units_complete) == (0, 12, 6)
    assert (extended.sent, extended.skipped, extended.units_complete) == (6, 12, 9)
    assert seen[-1].requests_done == 12 and seen[-1].units_done == 6
    # the first submitted exposure wins: later runs changed none of the first six
    after = _rows(db, "SELECT unit, variant, bucket, request_id, ts FROM exposures ORDER BY unit")
    assert after[:6] == before
    _check_complete(db, "runner-test", 9, 2)
    # the exposure is stamped with its first request's time and bucket from the hash
    for unit, _variant, bucket, request_id, ts in after:
        digest = hashlib.sha256(f"runner-test:runner-test:{unit}".encode()).digest()
        assert bucket == int.from_bytes(digest[:8], "big") % 10_000
        assert _rows(db, "SELECT ts FROM requests WHERE request_id = ?", (request_id,)) == [(ts,)]


def test_a_stopped_run_records_what_it_counts_and_a_resumed_one_completes(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path), slo_names=())
    db = tmp_path / "stop.db"
    stop = threading.Event()

    def progress(p: RunProgress) -> None:
        if p.sent >= 4:
            stop.set()

    engine = _engine(db)
    try:
        first = run_experiment(engine, spec, units=40, concurrency=3, progress=progress, stop=stop.is_set)
        assert first.stopped and 4 <= first.sent < 80
        engine.telemetry.flush()
        assert _rows(db, "SELECT COUNT(*) FROM requests WHERE experiment = 'runner-test'") == [(first.sent,)]
        second = run_experiment(engine, spec, units=40, concurrency=3)
    finally:
        engine.close()
    assert not second.stopped and (second.skipped, second.sent) == (first.sent, 80 - first.sent)
    _check_complete(db, "runner-test", 40, 2)


def test_overrides_reach_the_engine(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, budgets=(40, 160)), slo_names=())
    db = tmp_path / "o.db"
    engine = _engine(db)
    try:
        report = run_experiment(engine, spec, units=8, concurrency=2)
    finally:
        engine.close()
    assert report.ok == 16
    runs = _rows(
        db,
        "SELECT r.variant, m.iterations, m.config, r.request_json, r.agents_used FROM requests r "
        "JOIN mcts_runs m ON m.request_id = r.request_id WHERE r.experiment = 'runner-test'",
    )
    assert len(runs) == 16  # every request ran MCTS (confidence threshold 1.0 falls back to it)
    budget = {"small": 40, "big": 160}
    assert {v for v, *_ in runs} == {"small", "big"}
    for variant, iterations, config, request_json, agents in runs:
        assert json.loads(config)["iterations"] == budget[variant]
        assert 1 <= iterations <= budget[variant]  # a proven win may stop the search early
        sent = json.loads(request_json)
        assert sent["mcts_iterations"] == budget[variant] and sent["max_steps"] == 1
        assert sent["overrides"]["confidence_threshold"] == 1.0
        assert json.loads(agents) == ["mcts"]


def test_settings_that_differ_from_the_recorded_run_are_refused(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    engine = _engine(db)
    try:
        run_experiment(engine, load_spec(_spec(tmp_path), slo_names=()), units=2)
        changed = load_spec(_spec(tmp_path, budgets=(30, 500), name="changed.yaml"), slo_names=())
        with pytest.raises(RunConfigError, match=r"variants: recorded"):
            run_experiment(engine, changed, units=2)
        with pytest.raises(RunConfigError, match=r"seed: recorded 3, now 4"):
            run_experiment(engine, load_spec(_spec(tmp_path), slo_names=()), units=2, seed=4)
        with pytest.raises(RunConfigError, match="more than the"):
            run_experiment(engine, load_spec(_spec(tmp_path), slo_names=()), units=150_000)
    finally:
        engine.close()
    assert _rows(db, "SELECT COUNT(*) FROM requests") == [(4,)]  # nothing more was sent


def test_a_run_without_the_store_is_refused(tmp_path: Path) -> None:
    engine = Engine(load_settings(db_path=tmp_path / "x.db", metrics_port=0, telemetry="off"))
    try:
        with pytest.raises(RunConfigError, match="telemetry store"):
            run_experiment(engine, load_spec(_spec(tmp_path), slo_names=()), units=1)
    finally:
        engine.close()


# --------------------------------------------------------------------------- the CLI, in processes


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARBOR_")}
    env.update({"ARBOR_DB_PATH": str(db), "ARBOR_METRICS_PORT": "0", "PYTHONPATH": str(ROOT)})
    return env


def _cli(db: Path, spec: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "experiment", "run", str(spec), *args],
        cwd=ROOT, env=_env(db), capture_output=True, text=True, timeout=240,
    )  # fmt: skip


@pytest.mark.slow
def test_two_processes_share_the_units_and_expose_each_once(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    db = tmp_path / "p.db"
    one = _cli(db, spec, "--units", "4")
    assert one.returncode == 0, one.stderr
    before = _rows(db, "SELECT unit, variant, request_id, ts FROM exposures ORDER BY unit")
    two = _cli(db, spec, "--units", "7", "--concurrency", "3")
    assert two.returncode == 0, two.stderr
    summary = json.loads(two.stdout.strip().splitlines()[-1])
    assert (summary["skipped"], summary["sent"], summary["units_complete"]) == (8, 6, 7)
    assert summary["flushed"] is True and summary["signal"] is None
    assert "7/7" in two.stderr  # the progress bar
    assert _rows(db, "SELECT unit, variant, request_id, ts FROM exposures ORDER BY unit")[:4] == before
    _check_complete(db, "runner-test", 7, 2)


@pytest.mark.slow
def test_a_second_run_of_the_same_experiment_is_refused_while_one_runs(tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    db = tmp_path / "b.db"
    _engine(db).close()  # create the store
    with _run_lock(db, "runner-test"):
        busy = _cli(db, spec, "--units", "2")
    assert busy.returncode == 2 and "already being run" in busy.stderr and "Traceback" not in busy.stderr
    assert _rows(db, "SELECT COUNT(*) FROM requests") == [(0,)]
    with _run_lock(db, "runner-test"), pytest.raises(RunBusyError), _run_lock(db, "runner-test"):
        pass


@pytest.mark.slow
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nvariants: []\n")
    r = _cli(db, bad, "--units", "2")
    assert r.returncode == 2 and "bad.yaml" in r.stderr and "Traceback" not in r.stderr
    r = _cli(db, _spec(tmp_path), "--units", "0")
    assert r.returncode == 2 and "--units" in r.stderr


def _interrupted(tmp_path: Path, sig: int) -> None:
    """Start a run, interrupt it with ``sig`` once some requests are committed, resume it, check."""
    units, qpu = 60, 2
    spec = _spec(tmp_path, budgets=(2000, 4000), qpu=qpu)
    db = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "experiment", "run", str(spec), "--units", str(units),
         "--concurrency", "2"],
        # Rows committed as they come (no holding while requests run), so the test sees the run's
        # progress in the store and interrupts it in the middle on a fast machine too.
        cwd=ROOT, env={**_env(db), "ARBOR_STORE_MAX_DEFER_S": "0"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                n = _rows(db, "SELECT COUNT(*) FROM requests")[0][0] if db.exists() else 0
            except sqlite3.OperationalError:  # the child has not created the tables yet
                n = 0
            if isinstance(n, int) and n >= 10:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the run finished before it could be interrupted"
        os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "Traceback" not in err, err
    recorded = _rows(db, "SELECT COUNT(*) FROM requests")[0][0]
    assert isinstance(recorded, int) and 10 <= recorded < units * qpu
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + sig
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["stopped"] is True and summary["signal"] == signal.Signals(sig).name
        assert summary["flushed"] is True and summary["sent"] == recorded  # all it counted is stored
    # every unit with a request has its exposure (same transaction), and no exposure without one
    orphans = _rows(
        db,
        "SELECT COUNT(*) FROM exposures e "
        "WHERE NOT EXISTS (SELECT 1 FROM requests r WHERE r.request_id = e.request_id)",
    )
    assert orphans == [(0,)]
    unexposed = _rows(
        db,
        "SELECT COUNT(DISTINCT user_id) FROM requests r WHERE NOT EXISTS "
        "(SELECT 1 FROM exposures e WHERE e.experiment = r.experiment AND e.unit = r.user_id)",
    )
    assert unexposed == [(0,)]
    resumed = _cli(db, spec, "--units", str(units), "--concurrency", "2")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == recorded and summary["skipped"] + summary["sent"] == units * qpu
    _check_complete(db, "runner-test", units, qpu)


@pytest.mark.slow
def test_resume_after_sigterm(tmp_path: Path) -> None:
    _interrupted(tmp_path, signal.SIGTERM)


@pytest.mark.slow
def test_resume_after_kill_9(tmp_path: Path) -> None:
    _interrupted(tmp_path, signal.SIGKILL)
