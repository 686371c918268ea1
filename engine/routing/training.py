"""``python -m engine train-router``: label routing states from the engine's own
runs, train the GRU, and write the weights with a training report.

Labelling: at each step of a query, every agent that has not run yet is tried
from the same state; the label is the agent whose step most improved verified
quality (the task's ground truth, 1 correct / 0 otherwise) per second of its
latency (the fastest of three runs), ties going to the faster agent.  The loop then continues with the
labelled agent's output, as the engine would.  Freeform queries have no
verified quality and are left out.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.agents import AgentContext, AgentOutput, agent_for, available_agents
from engine.mcts import SearchConfig
from engine.models import AGENTS, QueryRequest
from engine.routing.features import FEATURE_NAMES, RoutingState
from engine.routing.gru_train import TrainLog, forward, train
from engine.routing.routers import RulesRouter

__all__ = [
    "MAX_STEPS",
    "Trajectory",
    "evaluate",
    "held_out",
    "label_query",
    "report_markdown",
    "train_router",
    "workload_requests",
]

MAX_STEPS = 3


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One query's routing states and labels."""

    query: str
    task: str
    X: np.ndarray  # (T, 10)
    y: np.ndarray  # (T,)
    allowed: np.ndarray  # (T, 3) agents not yet run


def _quality(task: Any, state: Any, answer: str | None) -> float:
    if answer is None:
        return 0.0
    verdict = task.verify(state, answer)
    return 1.0 if verdict is not None and verdict.correct else 0.0


def _timed(
    fn: Callable[[AgentContext], AgentOutput], ctx: AgentContext, clock: Callable[[], float], repeats: int = 3
) -> tuple[AgentOutput, float]:
    """The agent's output and its fastest of ``repeats`` runs in seconds (agents are
    deterministic for a given seed, so repeats only remove timing noise)."""
    best = float("inf")
    out = None
    for _ in range(repeats):
        t0 = clock()
        out = fn(ctx)
        best = min(best, clock() - t0)
    assert out is not None
    return out, max(best, 1e-6)


def label_query(
    request: QueryRequest,
    *,
    seed: int,
    clock: Callable[[], float] = time.perf_counter,
    iterations: int = 1000,
) -> Trajectory | None:
    """Run one query with counterfactual agent trials; None for freeform text."""
    from engine.loop import (  # the loop's own agreement and stop rules
        DEFAULT_CONSENSUS_THRESHOLD,
        agreement,
        parse_position,
        stop_decision,
    )

    task_name = request.resolved_task()
    if task_name == "freeform":
        return None
    position = parse_position(task_name, request)
    task, state = position.task, position.state
    if task is None:  # freeform: no position to score (its requests returned above)
        raise ValueError(f"{task_name}: no task to train on")
    rng = np.random.default_rng(seed)
    seeds = {a: int(rng.integers(2**53)) for a in AGENTS}
    usable = available_agents(task_name)
    config = SearchConfig(iterations=iterations)
    outputs: dict[str, AgentOutput] = {}
    features = RoutingState(query_length=len(request.query))
    xs, ys, masks = [], [], []
    for index in range(MAX_STEPS):
        fresh = [a for a in usable if a not in outputs]
        if not fresh:
            break
        lead = agreement(outputs)
        before = _quality(task, state, lead.answer)
        trials: dict[str, tuple[float, float, AgentOutput]] = {}
        for agent in fresh:
            ctx = AgentContext(task, state, request.query, lead.answer, (), seeds[agent], config, None)  # type: ignore[arg-type]
            out, dt = _timed(agent_for(agent, task_name), ctx, clock)
            after = _quality(task, state, agreement({**outputs, agent: out}).answer)
            trials[agent] = (after - before, dt, out)
        label = max(fresh, key=lambda a: (trials[a][0] / trials[a][1], -trials[a][1]))
        xs.append(features.vector())
        ys.append(AGENTS.index(label))
        masks.append([a in fresh for a in AGENTS])
        out = trials[label][2]
        outputs[label] = out
        agreed = agreement(outputs)
        stop, _ = stop_decision(out, agreed, DEFAULT_CONSENSUS_THRESHOLD, index, MAX_STEPS, usable, outputs)
        if stop:
            break
        features = RoutingState(
            hrm_confidence=outputs["hrm"].confidence if "hrm" in outputs else 0.0,
            trm_confidence=outputs["trm"].confidence if "trm" in outputs else 0.0,
            mcts_value=features.mcts_value
            if out.search is None
            else (out.search.stats.root_value - task.reward_range[0])
            / (task.reward_range[1] - task.reward_range[0]),
            consensus_score=agreed.score,
            last_agent=label,
            iteration=index + 1,
            query_length=len(request.query),
        )
    return Trajectory(request.query, task_name, np.array(xs), np.array(ys), np.array(masks, dtype=bool))


def _pad(trajs: list[Trajectory]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    T = max(len(t.y) for t in trajs)
    B = len(trajs)
    X = np.zeros((B, T, len(FEATURE_NAMES)))
    y = np.zeros((B, T), dtype=np.int64)
    valid = np.zeros((B, T))
    allowed = np.ones((B, T, len(AGENTS)), dtype=bool)
    for b, t in enumerate(trajs):
        n = len(t.y)
        X[b, :n], y[b, :n], valid[b, :n], allowed[b, :n] = t.X, t.y, 1.0, t.allowed
    return X, y, valid, allowed


def held_out(query: str, share: float = 0.2) -> bool:
    """A stable split by query text: about ``share`` of queries are held out."""
    return int(hashlib.sha256(query.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def evaluate(
    weights: dict[str, np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    allowed: np.ndarray,
    majority: int,
) -> dict[str, Any]:
    """Accuracy of the GRU, the rules router and the majority class on valid steps, and
    the GRU's confusion matrix (rows: label, columns: prediction; order hrm, trm, mcts)."""
    probs, _ = forward(weights, X, allowed)
    gru_pred = probs.argmax(axis=2)
    rules = RulesRouter()
    rules_pred = np.zeros_like(y)
    for b in range(X.shape[0]):
        for t in range(X.shape[1]):
            rules_pred[b, t] = int(np.argmax(rules.step(X[b, t], allowed[b, t], None)[0]))
    maj_pred = np.where(allowed[..., majority], majority, np.argmax(allowed, axis=2))
    v = valid.astype(bool)
    conf = np.zeros((3, 3), dtype=int)
    for true, pred in zip(y[v], gru_pred[v], strict=True):
        conf[true, pred] += 1
    return {
        "steps": int(v.sum()),
        "accuracy_gru": round(float((gru_pred[v] == y[v]).mean()), 4),
        "accuracy_rules": round(float((rules_pred[v] == y[v]).mean()), 4),
        "accuracy_majority": round(float((maj_pred[v] == y[v]).mean()), 4),
        "confusion_matrix": conf.tolist(),
    }


def workload_requests(root: Path, limit_per_task: int | None = None, seed: int = 0) -> list[QueryRequest]:
    """The training queries: shipped workloads plus random game positions (seeded)."""
    from engine.tasks import load_task

    rng = np.random.default_rng(seed)
    queries: list[str] = []
    game24 = [json.loads(line)["query"] for line in (root / "game24.jsonl").read_text().splitlines() if line]
    queries += [game24[i] for i in rng.choice(len(game24), size=min(300, len(game24)), replace=False)]
    for name in ("tictactoe_tactics.jsonl", "connect4_tactics.jsonl"):
        queries += [json.loads(line)["query"] for line in (root / name).read_text().splitlines() if line]
    for name, prefix, n in (("tictactoe", "tictactoe: ", 300), ("connect4", "connect4: ", 200)):
        task = load_task(name)
        for _ in range(n):
            state = task.parse("" if name == "connect4" else ".../.../...")
            for _ in range(int(rng.integers(0, 12 if name == "connect4" else 7))):
                actions = list(task.legal_actions(state))
                nxt = task.apply(state, actions[int(rng.integers(len(actions)))])
                if task.is_terminal(nxt):
                    break
                state = nxt
            queries.append(prefix + task.render(state))
    queries = list(dict.fromkeys(queries))
    if limit_per_task:
        queries = queries[: limit_per_task * 3]
    return [QueryRequest(query=q, seed=i) for i, q in enumerate(queries)]


def train_router(
    requests: Iterable[QueryRequest],
    out_dir: Path,
    *,
    epochs: int = 300,
    hidden: int = 64,
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Label, split, train, evaluate; write router_gru.npz, router_heldout.npz and the report."""
    trajs = []
    for i, request in enumerate(requests):
        traj = label_query(request, seed=request.seed or i)
        if traj is not None and len(traj.y):
            trajs.append(traj)
        if progress:
            progress(i + 1)
    train_set = [t for t in trajs if not held_out(t.query)]
    test_set = [t for t in trajs if held_out(t.query)]
    Xtr, ytr, vtr, atr = _pad(train_set)
    Xte, yte, vte, ate = _pad(test_set)
    weights, log = train(Xtr, ytr, vtr, atr, hidden=hidden, epochs=epochs, seed=seed)
    counts = np.bincount(ytr[vtr.astype(bool)], minlength=3)
    majority = int(np.argmax(counts))
    report = _report(
        trajs,
        train_set,
        test_set,
        counts,
        majority,
        log,
        hidden,
        epochs,
        seed,
        evaluate(weights, Xte, yte, vte, ate, majority),
        evaluate(weights, Xtr, ytr, vtr, atr, majority),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    # numpy's stub types savez's **kwds as allow_pickle's bool; the arrays are written as named entries
    np.savez(out_dir / "router_gru.npz", **weights)  # type: ignore[arg-type]
    np.savez(out_dir / "router_heldout.npz", X=Xte, y=yte, valid=vte, allowed=ate, majority=majority)
    (out_dir / "router_report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "router_report.md").write_text(report_markdown(report))
    return report


def _report(
    trajs: list[Trajectory],
    train_set: list[Trajectory],
    test_set: list[Trajectory],
    counts: np.ndarray,
    majority: int,
    log: TrainLog,
    hidden: int,
    epochs: int,
    seed: int,
    held: dict[str, Any],
    fit: dict[str, Any],
) -> dict[str, Any]:
    by_task: dict[str, int] = {}
    for t in trajs:
        by_task[t.task] = by_task.get(t.task, 0) + 1
    return {
        "model": {
            "architecture": f"GRU 10->{hidden}, linear 3, softmax over available agents",
            "features": list(FEATURE_NAMES),
            "agents": list(AGENTS),
        },
        "labelling": __doc__.split("Labelling:")[1].strip().split("\n\n")[0].replace("\n", " "),
        "data": {
            "queries": len(trajs),
            "by_task": by_task,
            "train_queries": len(train_set),
            "held_out_queries": len(test_set),
            "train_steps": int(counts.sum()),
            "train_label_counts": dict(zip(AGENTS, counts.tolist(), strict=True)),
            "majority_class": AGENTS[majority],
        },
        "training": {
            "epochs": epochs,
            "hidden": hidden,
            "optimizer": "Adam lr=0.01, l2=1e-4, batch 128",
            "seed": seed,
            "final_loss": round(log.final_loss, 5),
        },
        "held_out": held,
        "train_fit": fit,
    }


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown model card."""
    d, h, tr = report["data"], report["held_out"], report["training"]
    rows = "\n".join(
        f"| {a} | " + " | ".join(str(v) for v in row) + " |"
        for a, row in zip(AGENTS, h["confusion_matrix"], strict=True)
    )
    return f"""# Router model card: GRU meta-controller

{report["model"]["architecture"]}; features: {", ".join(report["model"]["features"])}.

## Labels
{report["labelling"]}

## Data
{d["queries"]} queries ({", ".join(f"{k}: {v}" for k, v in d["by_task"].items())});
{d["train_queries"]} for training ({d["train_steps"]} routing steps, labels {d["train_label_counts"]}),
{d["held_out_queries"]} held out (split by a hash of the query text).

## Held-out accuracy ({h["steps"]} steps)
| router | accuracy |
| --- | --- |
| GRU | {h["accuracy_gru"]} |
| rules | {h["accuracy_rules"]} |
| majority class ({d["majority_class"]}) | {h["accuracy_majority"]} |

Confusion matrix of the GRU (rows: label, columns: prediction):

| label | hrm | trm | mcts |
| --- | --- | --- | --- |
{rows}

## Training
{tr["epochs"]} epochs, hidden {tr["hidden"]}, {tr["optimizer"]}, seed {tr["seed"]},
final loss {tr["final_loss"]}.
"""
