"""The end-to-end label rule (engine.routing.outcomes) on a three-agent case worked out by hand.

Fake agents (answers and seconds chosen here, so every ending can be computed on paper):
hrm answers "A" (confidence 0.5) in 1 s; trm turns the candidate "A" into "B" (exact) in 2 s
and has nothing to refine without a candidate; mcts answers "B" (exact) in 5 s.  The loop's
stop rule: an exact answer stops; otherwise two agreeing supporters or three steps.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from engine.agents import AgentOutput
from engine.loop import agreement
from engine.loop.routing import RoutingStep
from engine.models import QueryRequest
from engine.routing import RulesRouter
from engine.routing.outcomes import Ending, explore
from engine.routing.training import Trajectory, end_to_end, trajectory

SECONDS = {"hrm": 1.0, "trm": 2.0, "mcts": 5.0}


def fake_step(
    path: tuple[str, ...], agent: str, outputs: Mapping[str, AgentOutput], refined: str = "B"
) -> tuple[AgentOutput, float]:
    candidate = agreement(outputs).answer
    if agent == "hrm":
        out = AgentOutput("A", 0.5, "plan", "move")
    elif agent == "trm":
        out = (
            AgentOutput(None, 0.0, "nothing to refine", "none")
            if candidate is None
            else AgentOutput(refined, 1.0, "refined", "move", exact=True)
        )
    else:
        out = AgentOutput("B", 1.0, "proven", "move", exact=True)
    return out, SECONDS[agent]


def tree_for(right: str, refined: str = "B"):
    return explore(
        lambda path, agent, outputs: fake_step(path, agent, outputs, refined),
        ("hrm", "trm", "mcts"),
        lambda answer: answer == right,
        max_steps=3,
        agree_at=0.6,
        query_length=12,
    )


def test_every_branch_runs_to_the_loops_stop():
    tree = tree_for("B")
    # hrm then trm or mcts (both exact); trm first has no answer, so hrm or mcts follows; after
    # trm, hrm (one supporter) the loop continues to mcts.
    assert set(tree.nodes) == {
        ("hrm",), ("hrm", "trm"), ("hrm", "mcts"),
        ("trm",), ("trm", "hrm"), ("trm", "hrm", "mcts"), ("trm", "mcts"),
        ("mcts",),
    }  # fmt: skip
    assert [p for p, n in tree.nodes.items() if n.stop] == [
        ("hrm", "trm"), ("hrm", "mcts"), ("trm", "hrm", "mcts"), ("trm", "mcts"), ("mcts",),
    ]  # fmt: skip


def test_the_label_is_the_choice_that_ends_correct_fastest():
    tree = tree_for("B")
    # Choosing hrm first ends correct after hrm -> trm in 1 + 2 = 3 s; trm first ends correct at
    # best in 2 + 5 = 7 s (trm -> mcts); mcts first in 5 s.  hrm's own step is wrong (the old
    # per-step rule would have picked mcts), but its query ends correct fastest.
    assert tree.label(()) == ("hrm", Ending(("hrm", "trm"), True, 3.0))
    assert tree.label(("hrm",)) == ("trm", Ending(("hrm", "trm"), True, 3.0))
    assert tree.label(("trm",)) == ("mcts", Ending(("trm", "mcts"), True, 7.0))
    assert tree.best(("trm", "hrm")) == Ending(("trm", "hrm", "mcts"), True, 8.0)
    X, y, allowed = trajectory(tree)
    assert y.tolist() == [0, 1]  # hrm, then trm
    assert allowed.tolist() == [[True, True, True], [False, True, True]]
    # features before step 2: hrm's confidence 0.5, agreement 1.0 (one answer), last agent hrm
    assert X[1][:8].tolist() == pytest.approx([0.5, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1 / 20])


def test_correct_beats_fast_and_ties_go_to_the_faster():
    # trm now turns "A" into the wrong "C": after hrm, trm ends wrong in 3 s and mcts correct in
    # 1 + 5 = 6 s, so mcts; from the start mcts alone ends correct in 5 s (hrm's best is 6 s).
    tree = tree_for("B", refined="C")
    assert tree.label(("hrm",)) == ("mcts", Ending(("hrm", "mcts"), True, 6.0))
    assert tree.label(()) == ("mcts", Ending(("mcts",), True, 5.0))
    assert trajectory(tree)[1].tolist() == [2]
    # Only "A" is right: hrm's answer stands only where the loop stops before anyone overrides it,
    # i.e. nowhere (trm and mcts answer "B" exactly) -- so every ending is wrong and the fastest
    # wins: hrm -> trm at 3 s.
    tree = tree_for("A")
    assert tree.label(()) == ("hrm", Ending(("hrm", "trm"), False, 3.0))
    # Nobody right: a tie on correctness, so again the fastest ending.
    assert tree_for("Z").label(()) == ("hrm", Ending(("hrm", "trm"), False, 3.0))


def test_replay_and_baselines_on_the_same_runs():
    tree = tree_for("B")
    request = QueryRequest(query="24: 1 2 3 4", router="rules")
    # Rules: step 1 logits (hrm 2, trm 0, mcts 0.5) -> hrm (p 0.74); after hrm with confidence
    # 0.5: (hrm -2.5, trm 0.5, mcts 2.0) -> mcts (p 0.81), exact: stop.  6 s, correct.
    assert tree.replay(RoutingStep(RulesRouter(), request, "game24"), 3) == Ending(("hrm", "mcts"), True, 6.0)
    assert tree.fixed("hrm") == Ending(("hrm",), False, 1.0)
    assert tree.fixed("trm") == Ending(("trm",), False, 2.0)
    assert tree.fixed("mcts") == Ending(("mcts",), True, 5.0)

    traj = Trajectory(request.query, "game24", np.zeros((1, 10)), np.zeros(1), np.ones((1, 3)), tree, request)
    rows = end_to_end([traj, traj], None)["routers"]
    assert set(rows) == {"rules", "fixed:hrm", "fixed:trm", "fixed:mcts", "best"}
    assert rows["rules"] == {
        "n": 2, "correct": 2, "correct_share": 1.0, "mean_ms": 6000.0, "p50_ms": 6000.0,
        "p95_ms": 6000.0, "mean_steps": 2.0, "missed": 0, "regret_ms": 3000.0,
    }  # fmt: skip
    assert rows["fixed:hrm"]["correct_share"] == 0.0 and rows["fixed:hrm"]["missed"] == 2
    assert rows["fixed:hrm"]["regret_ms"] is None  # never correct where the best choice is
    assert rows["fixed:mcts"]["regret_ms"] == 2000.0
    assert rows["best"]["mean_ms"] == 3000.0 and rows["best"]["mean_steps"] == 2.0


def test_train_router_reports_label_agreement_and_end_to_end_on_held_out_queries(tmp_path):
    from engine.routing.training import held_out, train_router

    candidates = [f"24: {a} {b} 8 8" for a in range(1, 8) for b in range(a, 9)]
    held = [q for q in candidates if held_out(q)][:2]
    train_q = [q for q in candidates if not held_out(q)][:4]
    requests = [QueryRequest(query=q, seed=i, mcts_iterations=50) for i, q in enumerate(held + train_q)]
    report = train_router(requests, tmp_path, epochs=2, hidden=8)
    assert (report["data"]["train_queries"], report["data"]["held_out_queries"]) == (4, 2)
    e2e = report["end_to_end"]
    assert e2e["queries"] == 2 and set(e2e["by_task"]) == {"game24"}
    assert set(e2e["routers"]) == {"rules", "gru", "hybrid", "fixed:hrm", "fixed:trm", "fixed:mcts", "best"}
    assert all(row["n"] == 2 for row in e2e["routers"].values())
    best = e2e["routers"]["best"]
    for row in e2e["routers"].values():  # nobody is more correct than the best choice within the loop
        assert row["correct"] <= best["correct"] or row["mean_steps"] == 1.0
    held_steps = report["held_out"]["steps"]
    shares = [report["held_out"][f"accuracy_always_{a}"] for a in ("hrm", "trm", "mcts")]
    assert sum(shares) == pytest.approx(1.0, abs=2e-4)  # every labelled step is one of the three
    assert report["held_out"]["by_task"]["game24"]["steps"] == held_steps
    assert sum(map(sum, report["held_out"]["confusion_matrix"])) == held_steps
    assert "| fixed:mcts |" in (tmp_path / "router_report.md").read_text()
    with pytest.raises(ValueError, match="class_weight"):
        train_router(requests[:0], tmp_path, trajectories=[], class_weight="bogus")
