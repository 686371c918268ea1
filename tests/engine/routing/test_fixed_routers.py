"""Fixed single-agent routers through the real Engine: one step, that agent, its answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine import Engine, QueryError, QueryRequest
from engine.agents import AgentContext, agent_for
from engine.config import load_settings
from engine.experiments.specs import VariantOverrides
from engine.loop import agent_seeds, parse_position
from engine.mcts import SearchConfig
from engine.names import FIXED_ROUTERS, ROUTERS, fixed_agent
from engine.routing import FixedRouter

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def engine():
    e = Engine(load_settings(telemetry="off", metrics_port=0))
    yield e
    e.close()


def _direct(agent: str, request: QueryRequest, seed: int):
    """The agent's own output, run outside the loop with the seed the loop gives it."""
    task_name = request.resolved_task()
    position = parse_position(task_name, request)
    ctx = AgentContext(
        position.task,
        position.state,
        request.query,
        None,
        (),
        agent_seeds(seed)[agent],
        SearchConfig(iterations=request.mcts_iterations, snapshot_every=0, snapshot_max_nodes=120),
        None,  # type: ignore[arg-type]  # game tasks never call an LLM
    )
    return agent_for(agent, task_name)(ctx)


def test_names_list_the_three_baselines():
    assert FIXED_ROUTERS == ("fixed:hrm", "fixed:trm", "fixed:mcts")
    assert set(FIXED_ROUTERS) < set(ROUTERS)
    assert [fixed_agent(r) for r in ROUTERS] == [None, None, None, "hrm", "trm", "mcts"]
    with pytest.raises(ValueError, match="unknown agent"):
        FixedRouter("llm")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        QueryRequest(query="24: 1 2 3 4", router="fixed:llm")


# connect4 "4455": X to move wins by force at its second move in column 3 or 6 (the task's own
# example, worked out by hand: X on d1 e1 -> c1 makes an open three b1..f1 that O cannot stop).
# TRM answers column 4 there (not a win); the rules router would go on after it, a fixed router not.
@pytest.mark.parametrize("router", FIXED_ROUTERS)
@pytest.mark.parametrize("query", ["connect4: 4455", "24: 4 7 8 8", "tictactoe: X.O/.X./..O"])
def test_fixed_router_runs_exactly_its_agent_once_and_answers_with_it(engine, router, query):
    agent = router.removeprefix("fixed:")
    request = QueryRequest(query=query, router=router, seed=11, mcts_iterations=300)
    result = engine.run(request)
    assert [s.agent for s in result.steps] == [agent]
    assert result.agents_used == [agent]
    assert result.router == router
    step = result.steps[0]
    assert step.router == router
    assert step.reason.startswith("fixed:")
    assert step.probabilities == {a: (1.0 if a == agent else 0.0) for a in ("hrm", "trm", "mcts")}
    own = _direct(agent, request, 11)
    assert step.answer == own.answer
    assert result.answer == (own.answer or "")


def test_no_second_step_even_when_the_answer_is_wrong(engine):
    # TRM alone on "4455" answers column 4; ground truth (columns 3 and 6 win) marks it incorrect.
    fixed = engine.run(QueryRequest(query="connect4: 4455", router="fixed:trm", seed=11))
    assert len(fixed.steps) == 1 and fixed.answer == "4" and fixed.verdict == "incorrect"
    assert fixed.stop_reason == "fixed: fixed:trm runs one step"


def test_fixed_mcts_that_cannot_run_is_a_clear_error(engine):
    with pytest.raises(QueryError, match="mcts cannot work on freeform"):
        engine.run(QueryRequest(query="how do canaries work?", router="fixed:mcts"))
    with pytest.raises(QueryError, match="turns MCTS off"):
        engine.run(QueryRequest(query="24: 4 7 8 8", router="fixed:mcts", use_mcts=False))


def test_freeform_fixed_hrm_is_one_step(engine):
    result = engine.run(QueryRequest(query="how do canaries work?", router="fixed:hrm", seed=2))
    assert [s.agent for s in result.steps] == ["hrm"]


def test_experiment_overrides_accept_fixed_routers():
    assert VariantOverrides(router="fixed:mcts").router == "fixed:mcts"
    with pytest.raises(ValidationError):
        VariantOverrides(router="fixed:nobody")


def test_cli_query_takes_a_fixed_router(tmp_path):
    env = {"ARBOR_TELEMETRY": "off", "ARBOR_METRICS_PORT": "0", "ARBOR_DB_PATH": str(tmp_path / "a.db")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine",
            "query",
            "connect4: 4455",
            *("--router", "fixed:trm", "--seed", "1"),
            "--json",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["router"] == "fixed:trm" and [s["agent"] for s in out["steps"]] == ["trm"]


def test_workload_rows_take_fixed_routers(tmp_path):
    from engine.workload import read_workload

    path = tmp_path / "w.jsonl"
    path.write_text('{"query": "24: 4 7 8 8", "router": "fixed:mcts"}\n')
    assert read_workload(path)[0]["router"] == "fixed:mcts"
    path.write_text('{"query": "24: 4 7 8 8", "router": "fixed:llm"}\n')
    with pytest.raises(ValueError, match="router 'fixed:llm' is not one of rules, gru, hybrid, fixed:hrm"):
        read_workload(path)
