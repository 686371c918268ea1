"""``python -m engine train-router``: label routing states with the end-to-end outcome of the
query, train the GRU, and write the weights with a training report.

Labelling: for every routing state of a query, each agent that has not run yet is chosen in turn and
the rest of the query is run to completion by the engine's own loop (the same agent inputs,
agreement and stop rule, the loop continuing with the best choices again); the label is the agent
whose choice ends with a correct final answer (the task's ground truth), ties -- both ending correct
or both not -- going to the smaller total agent time (each agent run timed as the fastest of three
runs; equal times to the first of hrm, trm, mcts).  A query's training sequence follows its labelled
choices from the first step to the loop's stop.  Agents are seeded from the request's seed exactly
as in the engine, so the answers are deterministic; only the timings are measured.  Freeform queries
have no ground truth and are left out.

The report also replays every router (rules, gru, hybrid, the single-agent baselines
``fixed:hrm|trm|mcts``, and the best choice per query) over the same held-out runs, so label
agreement sits next to end-to-end correct share and latency; see :mod:`engine.routing.outcomes`.
Labelling is bounded: at most 15 agent runs per query (three agents, three steps) and an
optional total deadline after which the remaining queries are skipped (and the report says so).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.agents import AgentContext, AgentOutput, agent_for, available_agents
from engine.mcts import SearchConfig
from engine.models import AGENTS, QueryRequest
from engine.routing.features import FEATURE_NAMES
from engine.routing.gru_train import TrainLog, forward, train
from engine.routing.outcomes import Ending, QueryTree, explore
from engine.routing.routers import GRURouter, HybridRouter, Router, RulesRouter

__all__ = [
    "BASELINES",
    "MAX_STEPS",
    "Trajectory",
    "end_to_end",
    "evaluate",
    "held_out",
    "label_query",
    "report_markdown",
    "train_router",
    "trajectory",
    "workload_requests",
]

MAX_STEPS = 3
#: The single-agent baselines scored on label agreement and end to end.
BASELINES = ("hrm", "trm", "mcts")


@dataclass(frozen=True, slots=True)
class Trajectory:
    """One query's routing states and labels, and the runs they came from (``tree``)."""

    query: str
    task: str
    X: np.ndarray  # (T, 10)
    y: np.ndarray  # (T,)
    allowed: np.ndarray  # (T, 3) agents not yet run
    tree: QueryTree | None = None
    request: QueryRequest | None = None


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


def trajectory(tree: QueryTree) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The labelled sequence of ``tree``: features before each step (T, 10), labels (T,) as
    ``AGENTS`` indices and the agents still allowed (T, 3), following the labels to the stop."""
    xs, ys, masks = [], [], []
    path: tuple[str, ...] = ()
    while True:
        agent, _ = tree.label(path)
        fresh = tree.fresh(path)
        xs.append(tree.features(path).vector())
        ys.append(AGENTS.index(agent))
        masks.append([a in fresh for a in AGENTS])
        path = (*path, agent)
        if tree.nodes[path].stop:
            break
    return np.array(xs), np.array(ys), np.array(masks, dtype=bool)


def label_query(
    request: QueryRequest,
    *,
    seed: int,
    clock: Callable[[], float] = time.perf_counter,
    repeats: int = 3,
) -> Trajectory | None:
    """Run every routing choice of one query to its end (see the module docstring) and label
    it; None for freeform text.  ``seed`` seeds the agents as the engine does for a request
    with that seed; MCTS runs ``request.mcts_iterations``.  Raises QueryError for a malformed
    or finished position."""
    from engine.loop import DEFAULT_CONSENSUS_THRESHOLD, agent_seeds, parse_position

    task_name = request.resolved_task()
    if task_name == "freeform":
        return None
    position = parse_position(task_name, request)
    task, state = position.task, position.state
    if task is None:  # freeform: no position to score (its requests returned above)
        raise ValueError(f"{task_name}: no task to train on")
    seeds = agent_seeds(seed)
    usable = tuple(a for a in available_agents(task_name) if a != "mcts" or request.use_mcts)
    config = SearchConfig(iterations=request.mcts_iterations)
    lo, hi = task.reward_range

    def step(
        path: tuple[str, ...], agent: str, outputs: Mapping[str, AgentOutput]
    ) -> tuple[AgentOutput, float]:
        from engine.loop import agreement

        lead = agreement(outputs).answer
        ctx = AgentContext(task, state, request.query, lead, (), seeds[agent], config, None)  # type: ignore[arg-type]
        return _timed(agent_for(agent, task_name), ctx, clock, repeats)

    def mcts_value(out: AgentOutput) -> float | None:
        return None if out.search is None else (out.search.stats.root_value - lo) / (hi - lo)

    tree = explore(
        step,
        usable,
        lambda answer: _quality(task, state, answer) == 1.0,
        max_steps=min(request.max_steps, MAX_STEPS),
        agree_at=DEFAULT_CONSENSUS_THRESHOLD,
        query_length=len(request.query),
        mcts_value=mcts_value,
    )
    X, y, allowed = trajectory(tree)
    return Trajectory(request.query, task_name, X, y, allowed, tree, request)


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
    """Label agreement (share of valid steps where the router picks the labelled agent) of the
    GRU, the rules router, the majority class and the single-agent baselines (``always_hrm``
    etc.: that agent at every step), and the GRU's confusion matrix (rows: label, columns:
    prediction; order hrm, trm, mcts)."""
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
    out: dict[str, Any] = {
        "steps": int(v.sum()),
        "accuracy_gru": round(float((gru_pred[v] == y[v]).mean()), 4),
        "accuracy_rules": round(float((rules_pred[v] == y[v]).mean()), 4),
        "accuracy_majority": round(float((maj_pred[v] == y[v]).mean()), 4),
    }
    for agent in BASELINES:
        out[f"accuracy_always_{agent}"] = round(float((y[v] == AGENTS.index(agent)).mean()), 4)
    out["confusion_matrix"] = conf.tolist()
    return out


def _summary(endings: list[Ending], best: list[Ending]) -> dict[str, Any]:
    """Correct share, latency (ms: mean, p50, p95 of the summed agent times), mean agents run,
    and against the best choice per query: ``missed`` (queries the best choice answers
    correctly and this router does not) and ``regret_ms`` (mean extra time on the queries both
    answer correctly)."""
    ms = np.array([e.seconds * 1000 for e in endings])
    both = [
        (e.seconds - b.seconds) * 1000 for e, b in zip(endings, best, strict=True) if e.correct and b.correct
    ]
    return {
        "n": len(endings),
        "correct": sum(e.correct for e in endings),
        "correct_share": round(sum(e.correct for e in endings) / len(endings), 4),
        "mean_ms": round(float(ms.mean()), 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "mean_steps": round(float(np.mean([len(e.path) for e in endings])), 3),
        "missed": sum(b.correct and not e.correct for e, b in zip(endings, best, strict=True)),
        "regret_ms": round(float(np.mean(both)), 3) if both else None,
    }


def end_to_end(trajs: list[Trajectory], gru: GRURouter | None) -> dict[str, Any]:
    """Every router replayed over the queries' recorded runs (see ``QueryTree.replay``): rules,
    gru and hybrid (when ``gru`` is given), ``fixed:<agent>`` (one agent, its answer) and
    ``best`` (the labelled choices), overall and per task, as :func:`_summary` rows."""
    from engine.loop import RoutingStep

    routers: dict[str, Callable[[], Router] | str] = {"rules": RulesRouter}
    if gru is not None:
        routers["gru"] = lambda: gru
        routers["hybrid"] = lambda: HybridRouter(RulesRouter(), gru, 0.5)
    for agent in BASELINES:
        routers[f"fixed:{agent}"] = agent
    per: dict[str, list[tuple[str, Ending]]] = {name: [] for name in (*routers, "best")}
    for t in trajs:
        if t.tree is None or t.request is None:
            continue
        tree = t.tree
        max_steps = min(t.request.max_steps, MAX_STEPS)
        for name, make in routers.items():
            if isinstance(make, str):
                ending = tree.fixed(make) if make in tree.usable else None
            else:
                ending = tree.replay(RoutingStep(make(), t.request, t.task), max_steps)
            if ending is not None:
                per[name].append((t.task, ending))
        per["best"].append((t.task, tree.best(())))
    best = per["best"]
    tasks = sorted({task for task, _ in best})

    def rows(task: str | None) -> dict[str, Any]:
        keep = [i for i, (tk, _) in enumerate(best) if task in (None, tk)]
        b = [best[i][1] for i in keep]
        return {
            name: _summary([endings[i][1] for i in keep], b)
            for name, endings in per.items()
            if keep and len(endings) == len(best)
        }

    return {
        "queries": len(best),
        "latency": "sum of the agents' measured times (fastest of 3 runs each), no telemetry",
        "routers": rows(None),
        "by_task": {task: rows(task) for task in tasks},
    }


#: Deeper connect-four tactics added to the training queries (per kind): positions where the
#: agents differ (win-in-5 is where MCTS ends correct and HRM often does not).
DEEP_CONNECT4 = {"win_in_3": 100, "win_in_5": 150}


def deep_connect4(rng: np.random.Generator, quota: dict[str, int] = DEEP_CONNECT4) -> list[str]:
    """Random connect-four positions (4..29 random moves) whose tactic
    (``engine.tasks.connect4.classify_deep``, depth 5) is one of ``quota``'s kinds, up to its
    count each (at most 200,000 draws)."""
    from engine.tasks import connect4

    task = connect4.Connect4()
    found: dict[str, list[str]] = {k: [] for k in quota}
    for _ in range(200_000):
        if all(len(found[k]) >= n for k, n in quota.items()):
            break
        state = connect4.random_position(lambda lo, hi: int(rng.integers(lo, hi)))
        kind = connect4.classify_deep(state)
        if kind in found and len(found[kind]) < quota[kind]:
            found[kind].append("connect4: " + task.render(state))
    return [q for k in quota for q in found[k]]


def workload_requests(root: Path, limit_per_task: int | None = None, seed: int = 0) -> list[QueryRequest]:
    """The training queries: shipped workloads, random game positions and deeper connect-four
    tactics (:func:`deep_connect4`), all seeded."""
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
    queries += deep_connect4(rng)
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
    deadline_s: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    class_weight: str = "balanced",
    trajectories: list[Trajectory] | None = None,
) -> dict[str, Any]:
    """Label, split, train, evaluate; write router_gru.npz, router_heldout.npz and the report.

    ``deadline_s`` bounds the labelling (seconds of ``clock``): queries not started by then are
    skipped and counted in the report's ``data.skipped_for_deadline``.  Raises ValueError when
    fewer than two queries (one to train, one held out) were labelled.

    ``class_weight`` ``balanced`` weighs each training step by n / (3 * n_label) so that the rare
    labels (MCTS) count as much in the loss as the common ones; ``sqrt`` by its square root;
    ``none`` weighs every step 1.
    ``trajectories`` (already labelled) skips the labelling."""
    if class_weight not in ("balanced", "sqrt", "none"):
        raise ValueError(f"class_weight must be 'balanced', 'sqrt' or 'none', not {class_weight!r}")
    trajs = list(trajectories or [])
    requests = [] if trajectories is not None else list(requests)
    started, skipped = clock(), 0
    for i, request in enumerate(requests):
        if deadline_s is not None and clock() - started > deadline_s:
            skipped = len(requests) - i
            break
        traj = label_query(request, seed=request.seed if request.seed is not None else i, clock=clock)
        if traj is not None and len(traj.y):
            trajs.append(traj)
        if progress:
            progress(i + 1)
    labelling_s = clock() - started
    train_set = [t for t in trajs if not held_out(t.query)]
    test_set = [t for t in trajs if held_out(t.query)]
    if not train_set or not test_set:
        raise ValueError(f"{len(trajs)} labelled queries: need at least one to train on and one held out")
    Xtr, ytr, vtr, atr = _pad(train_set)
    Xte, yte, vte, ate = _pad(test_set)
    counts = np.bincount(ytr[vtr.astype(bool)], minlength=3)
    per_class = counts.sum() / (len(AGENTS) * np.maximum(counts, 1))
    exponent = {"balanced": 1.0, "sqrt": 0.5, "none": 0.0}[class_weight]
    step_weight = vtr * per_class[ytr] ** exponent
    weights, log = train(Xtr, ytr, step_weight, atr, hidden=hidden, epochs=epochs, seed=seed)
    majority = int(np.argmax(counts))
    held = evaluate(weights, Xte, yte, vte, ate, majority)
    held["by_task"] = {
        task: {k: v for k, v in evaluate(weights, *_pad(subset), majority).items() if k != "confusion_matrix"}
        for task in sorted({t.task for t in test_set})
        if (subset := [t for t in test_set if t.task == task])
    }
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
        held,
        evaluate(weights, Xtr, ytr, vtr, atr, majority),
    )
    report["training"]["class_weight"] = class_weight
    report["data"]["skipped_for_deadline"] = skipped
    report["data"]["labelling_s"] = round(labelling_s, 1)
    report["end_to_end"] = end_to_end(test_set, GRURouter(weights))
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


def _e2e_table(rows: dict[str, Any]) -> str:
    lines = [
        "| router | correct | correct share | mean ms | p50 ms | p95 ms | mean steps | missed | regret ms |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        regret = "—" if r["regret_ms"] is None else r["regret_ms"]
        lines.append(
            f"| {name} | {r['correct']}/{r['n']} | {r['correct_share']} | {r['mean_ms']} | {r['p50_ms']} | "
            f"{r['p95_ms']} | {r['mean_steps']} | {r['missed']} | {regret} |"
        )
    return "\n".join(lines)


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown model card."""
    d, h, tr = report["data"], report["held_out"], report["training"]
    rows = "\n".join(
        f"| {a} | " + " | ".join(str(v) for v in row) + " |"
        for a, row in zip(AGENTS, h["confusion_matrix"], strict=True)
    )
    agreement_rows = "\n".join(
        f"| {k.removeprefix('accuracy_').replace('_', ' ')} | {v} |"
        for k, v in h.items()
        if k.startswith("accuracy_")
    )
    e2e = report.get("end_to_end") or {}
    per_task = "\n\n".join(
        f"### {task}\n{_e2e_table(rows_)}" for task, rows_ in (e2e.get("by_task") or {}).items()
    )
    return f"""# Router model card: GRU meta-controller

{report["model"]["architecture"]}; features: {", ".join(report["model"]["features"])}.

## Labels
{report["labelling"]}

## Data
{d["queries"]} queries ({", ".join(f"{k}: {v}" for k, v in d["by_task"].items())});
{d["train_queries"]} for training ({d["train_steps"]} routing steps, labels {d["train_label_counts"]}),
{d["held_out_queries"]} held out (split by a hash of the query text).

## Held-out label agreement ({h["steps"]} steps)
Share of steps where the router picks the labelled agent: agreement with the labels, not quality.

| router | agreement |
| --- | --- |
{agreement_rows}

Confusion matrix of the GRU (rows: label, columns: prediction):

| label | hrm | trm | mcts |
| --- | --- | --- | --- |
{rows}

## Held-out end to end ({e2e.get("queries", 0)} queries)
Every router replayed over the same recorded agent runs; latency is {e2e.get("latency", "")}.
`best` is the labelled choice per query; `missed` counts queries it answers correctly and the
router does not; regret is the mean extra time where both are correct.

{_e2e_table(e2e.get("routers") or {})}

{per_task}

## Training
{tr["epochs"]} epochs, hidden {tr["hidden"]}, {tr["optimizer"]}, seed {tr["seed"]},
final loss {tr["final_loss"]}.
"""
