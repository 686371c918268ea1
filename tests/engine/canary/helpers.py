"""Small canary specs on tic-tac-toe (cheap requests) and a deterministic latency clock."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from engine import Engine
from engine.config import load_settings

ROOT = Path(__file__).resolve().parents[3]
TTT = ROOT / "data" / "workloads" / "tictactoe_tactics.jsonl"


def spec_text(canary_id: str, extra: str = "", *, guardrails: str = "") -> str:
    """A canary whose arms make MCTS answer alone (100 vs 200 iterations) on tic-tac-toe tactics,
    with a short ramp: 5 -> 25 -> 50 -> 100 %, 20 requests per arm per step, window 40."""
    return (
        f"id: {canary_id}\n"
        "baseline: {mcts_iterations: 100, confidence_threshold: 1.0, max_steps: 1}\n"
        "candidate: {mcts_iterations: 200, confidence_threshold: 1.0, max_steps: 1}\n"
        f"workload: {{file: {TTT}, queries_per_unit: 2, seed: 4}}\n"
        "steps: [5, 25, 50, 100]\n"
        "window_requests: 40\n"
        "min_requests: 20\n"
        "check_every: 5\n"
        "max_requests_per_step: 4000\n"
        "rate_per_s: 2\n" + extra + ("guardrails:\n" + guardrails if guardrails else "")
    )


def write_spec(tmp_path: Path, canary_id: str, extra: str = "", *, guardrails: str = "") -> Path:
    path = tmp_path / f"{canary_id}.yaml"
    path.write_text(spec_text(canary_id, extra, guardrails=guardrails))
    return path


class StepClock:
    """A latency clock that advances 1 ms per reading: latencies count the engine's clock readings,
    so they are the same on every run and machine (no timing noise in the p95 guardrail)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.001
        return self.t


def engine(db: Path) -> Engine:
    return Engine(load_settings(db_path=db, metrics_port=0), clock=StepClock())


def simulate(db: Path, spec_file: Path, **kw: Any) -> Any:
    """Run the canary of ``spec_file`` on the simulated clock with a fresh engine on ``db``
    (``kw``: more arguments of ``run_canary``); its report."""
    from engine.canary import load_canary_spec, run_canary

    eng = engine(db)
    try:
        return run_canary(eng, load_canary_spec(spec_file), simulated=True, **kw)
    finally:
        eng.close()


def rows(db: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()
