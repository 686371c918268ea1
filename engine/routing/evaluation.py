"""End-to-end router evaluation: every router on held-out positions with ground truth.

A router is judged by what the operator gets: the final answer of a whole engine run, checked by
the task's own verifier (tic-tac-toe: minimax; connect four: bounded negamax, depth 5; Game of
24: the exhaustive solver), and how long the run took.  Nothing here is the router's agreement
with training labels.

Definitions (per router r, over the positions q of the workload; a run that raised counts as
incorrect, is excluded from the latency figures and is counted in ``errors``):

* ``correct_share``: the share of positions whose final answer the verifier accepts.
* ``mean_steps``: mean number of loop steps (agent runs) per answered position.
* ``p50_ms`` / ``p95_ms`` / ``mean_ms``: the engine's recorded end-to-end latency
  (``QueryResult.latency_ms``, ground-truth check included, the same for every router) over the
  answered runs; percentiles by linear interpolation (``numpy.percentile``'s default).
* best router of q: the router with the highest correctness on q (1 correct, 0 otherwise),
  ties broken by the lower latency, then by the order of ``routers``; runs that raised rank last.
* ``mean_regret``: the mean over q of ``correct(best(q)) - correct_r(q)`` -- the share of
  positions that some router answered correctly and r did not (0 = never worse than the best).
* ``best_share``: the share of positions where r is the best router (ties broken as above).
* ``mean_latency_regret_ms``: the mean over the positions r answered as correctly as the best of
  ``latency_r(q) - latency_best(q)`` (>= 0: the time r spent beyond the best router).

Pareto front (correctness against latency, per task or overall): a router is on the front unless
another router is at least as correct (``correct_share``) and at least as fast (``p50_ms``) and
strictly better in one of them.  A router with no answered run has no latency and is never on it.

Held out: every position is one the GRU router never trained on -- ``training.held_out(query)``
is true for it, and the GRU's training set (``training.train_router``) leaves exactly those
queries out -- and one with a ground truth (the verifier gives a verdict for it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from engine.models import QueryRequest
from engine.names import GAME_TASKS, ROUTERS
from engine.routing.training import held_out
from engine.tasks import connect4, game24, load_task, tictactoe

__all__ = [
    "DEFAULT_ROUTERS",
    "EvalPosition",
    "RouterEvaluation",
    "RouterRow",
    "RunOutcome",
    "evaluate_routers",
    "evaluation_workload",
    "pareto_front",
    "summarise",
]

DEFAULT_ROUTERS: tuple[str, ...] = ROUTERS
"""Every router the engine accepts: the meta-controller's and the fixed single-agent baselines."""
ALL = "all"
"""The ``task`` of a row over the whole workload."""
_MAX_DRAWS = 200_000
_CONNECT4_DEPTH = 5  # the verifier's depth (``Connect4.verify``)


@dataclass(frozen=True, slots=True)
class EvalPosition:
    """A held-out position with ground truth: the query text, its task and its kind.

    ``kind``: tic-tac-toe ``win_in_1``/``must_block``/``other`` (``tictactoe.classify``); connect
    four ``win_in_1``/``must_block``/``win_in_3``/``win_in_5`` (``connect4.classify_deep``); Game
    of 24 ``solvable``/``unsolvable``.
    """

    query: str
    task: str
    kind: str


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One router's run on one position: the verifier's verdict, latency (ms) and steps.

    ``error`` is the exception's text when the run raised (then ``correct`` is False,
    ``latency_ms`` None and ``steps`` 0).
    """

    position: int
    task: str
    router: str
    correct: bool
    latency_ms: float | None
    steps: int
    answer: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RouterRow:
    """One router's figures over one task (``task == "all"``: the whole workload); see the module
    docstring for each definition.  Latencies in ms, None when no run was answered."""

    router: str
    task: str
    n: int
    errors: int
    correct: int
    correct_share: float
    mean_steps: float | None
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None
    mean_regret: float
    best_share: float
    mean_latency_regret_ms: float | None


@dataclass(frozen=True, slots=True)
class RouterEvaluation:
    """The result of :func:`evaluate_routers` (or :func:`summarise` of an outcome table).

    ``rows``: one :class:`RouterRow` per router over the whole workload (``task == "all"``) in
    ``routers`` order, then per task.  ``stopped``: the run was stopped early (the figures cover
    the positions completed by every router).
    """

    routers: tuple[str, ...]
    positions: tuple[EvalPosition, ...]
    outcomes: tuple[RunOutcome, ...]
    rows: tuple[RouterRow, ...]
    seed: int | None = None
    stopped: bool = False

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks of the workload, in first-seen order."""
        return tuple(dict.fromkeys(p.task for p in self.positions))

    def row(self, router: str, task: str = ALL) -> RouterRow:
        """The row of ``router`` over ``task`` (default: the whole workload); raises KeyError."""
        for r in self.rows:
            if r.router == router and r.task == task:
                return r
        raise KeyError(f"no row for router {router!r} and task {task!r}")

    def pareto(self, task: str = ALL) -> tuple[str, ...]:
        """The routers on the correctness/latency Pareto front of ``task`` (``routers`` order)."""
        return pareto_front([r for r in self.rows if r.task == task])

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary: routers, rows (overall and per task), Pareto fronts, counts."""
        return {
            "seed": self.seed,
            "stopped": self.stopped,
            "positions": len(self.positions),
            "positions_by_task": {t: sum(p.task == t for p in self.positions) for t in self.tasks},
            "routers": list(self.routers),
            "overall": [_row_json(self.row(r)) for r in self.routers],
            "by_task": {t: [_row_json(self.row(r, t)) for r in self.routers] for t in self.tasks},
            "pareto": {ALL: list(self.pareto()), **{t: list(self.pareto(t)) for t in self.tasks}},
            "errors": [
                {"router": o.router, "query": self.positions[o.position].query, "error": o.error}
                for o in self.outcomes
                if o.error is not None
            ][:20],
        }


def _row_json(row: RouterRow) -> dict[str, Any]:
    out = asdict(row)
    for key, value in out.items():
        if isinstance(value, float):
            out[key] = round(value, 4)
    return out


class _Engine(Protocol):
    def run(self, request: QueryRequest) -> Any: ...


# -- the workload ---------------------------------------------------------------------------------
def _accept(query: str, seen: set[str]) -> bool:
    if query in seen or not held_out(query):
        return False
    seen.add(query)
    return True


def _tictactoe(rng: np.random.Generator, n: int) -> list[EvalPosition]:
    task = tictactoe.TicTacToe()
    pool = [(s, k) for s in tictactoe.reachable_states() if (k := tictactoe.classify(s)) is not None]
    out: list[EvalPosition] = []
    seen: set[str] = set()
    for i in rng.permutation(len(pool)):
        state, kind = pool[int(i)]
        query = f"tictactoe: {task.render(state)}"
        if _accept(query, seen):
            out.append(EvalPosition(query, "tictactoe", kind))
            if len(out) == n:
                break
    return out


def _connect4(rng: np.random.Generator, n: int) -> list[EvalPosition]:
    task = connect4.Connect4()
    kinds = ("win_in_1", "must_block", "win_in_3", "win_in_5")
    quota = math.ceil(n / len(kinds))
    found: dict[str, list[EvalPosition]] = {k: [] for k in kinds}
    seen: set[str] = set()
    for _ in range(_MAX_DRAWS):
        if sum(len(v) for v in found.values()) >= n:
            break
        state = connect4.random_position(lambda lo, hi: int(rng.integers(lo, hi)))
        query = f"connect4: {task.render(state)}"
        if query in seen or not held_out(query):
            continue
        kind = connect4.classify_deep(state, _CONNECT4_DEPTH)
        if kind is None or len(found[kind]) >= quota:
            continue
        seen.add(query)
        found[kind].append(EvalPosition(query, "connect4", kind))
    return [p for k in kinds for p in found[k]][:n]


def _game24(rng: np.random.Generator, n: int) -> list[EvalPosition]:
    puzzles = game24.all_puzzles()
    out: list[EvalPosition] = []
    seen: set[str] = set()
    for i in rng.permutation(len(puzzles)):
        numbers = puzzles[int(i)]
        query = "24: " + " ".join(map(str, numbers))
        if _accept(query, seen):
            out.append(
                EvalPosition(query, "game24", "solvable" if game24.is_solvable(numbers) else "unsolvable")
            )
            if len(out) == n:
                break
    return out


def evaluation_workload(
    seed: int = 0, per_task: int = 20, tasks: Sequence[str] = GAME_TASKS
) -> tuple[EvalPosition, ...]:
    """Up to ``per_task`` held-out positions with ground truth for each of ``tasks`` (deterministic
    for ``seed``): tic-tac-toe positions where not every move is optimal, connect-four tactics
    balanced over win-in-1 / must-block / win-in-3 / win-in-5, Game of 24 puzzles as they come
    (about three in four solvable).  Raises ValueError for ``per_task`` < 1 or an unknown task."""
    if per_task < 1:
        raise ValueError("per_task must be at least 1")
    unknown = [t for t in tasks if t not in GAME_TASKS]
    if unknown:
        raise ValueError(f"unknown task {unknown[0]!r}: expected some of {', '.join(GAME_TASKS)}")
    makers = {"tictactoe": _tictactoe, "connect4": _connect4, "game24": _game24}
    positions: list[EvalPosition] = []
    for i, task in enumerate(tasks):
        positions += makers[task](np.random.default_rng([seed, i]), per_task)
    return tuple(positions)


# -- running and summarising ----------------------------------------------------------------------
def _verify(position: EvalPosition, answer: str | None) -> bool:
    """The task's own verifier on ``answer`` (False for no answer)."""
    if not answer:
        return False
    task = load_task(position.task)
    state = task.parse(QueryRequest(query=position.query).position_text())
    verdict = task.verify(state, answer)
    return verdict is not None and verdict.correct


def evaluate_routers(
    engine: _Engine,
    positions: Sequence[EvalPosition],
    routers: Sequence[str] = DEFAULT_ROUTERS,
    *,
    seed: int = 0,
    mcts_iterations: int = 1000,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> RouterEvaluation:
    """Run every router in ``routers`` on every position through ``engine.run`` and summarise.

    Each position gets one request seed (drawn from ``seed``), the same for every router, so the
    routers are compared on identical runs of their agents.  A run that raises (e.g. the GRU
    without weights) is recorded as an error, not re-raised.  ``progress(done, total)`` is called
    after each run; ``stop()`` is polled before each position and ends the evaluation early
    (``stopped``).  Raises ValueError for an empty or unknown ``routers``.
    """
    routers = tuple(routers)
    if not routers:
        raise ValueError("name at least one router")
    bad = [r for r in routers if r not in ROUTERS]
    if bad:
        raise ValueError(f"unknown router {bad[0]!r}: expected some of {', '.join(ROUTERS)}")
    seeds = np.random.default_rng(seed).integers(0, 2**53, size=len(positions))
    outcomes: list[RunOutcome] = []
    total, done, stopped = len(positions) * len(routers), 0, False
    completed: list[EvalPosition] = []
    for i, position in enumerate(positions):
        if stop is not None and stop():
            stopped = True
            break
        for router in routers:
            request = QueryRequest(
                query=position.query,
                task=position.task,  # type: ignore[arg-type]  # an EvalPosition's task is a game task
                router=router,  # type: ignore[arg-type]  # checked against ROUTERS above
                seed=int(seeds[i]),
                mcts_iterations=mcts_iterations,
            )
            try:
                result = engine.run(request)
            except Exception as exc:  # an evaluation reports failures, it does not stop at one
                outcomes.append(
                    RunOutcome(i, position.task, router, False, None, 0, None, f"{type(exc).__name__}: {exc}")
                )
            else:
                answer = result.answer or None
                outcomes.append(
                    RunOutcome(
                        i,
                        position.task,
                        router,
                        _verify(position, answer),
                        float(result.latency_ms),
                        len(result.steps),
                        answer,
                    )
                )
            done += 1
            if progress is not None:
                progress(done, total)
        completed.append(position)
    return summarise(outcomes, routers, tuple(completed), seed=seed, stopped=stopped)


def _best(runs: dict[str, RunOutcome], routers: tuple[str, ...]) -> str:
    """The best router on one position: correct first, then faster, then earlier in ``routers``."""

    def key(i_r: tuple[int, str]) -> tuple[int, int, float, int]:
        i, r = i_r
        o = runs[r]
        failed = o.error is not None or o.latency_ms is None
        return (0 if o.correct else 1, 1 if failed else 0, math.inf if failed else o.latency_ms, i)  # type: ignore[return-value]

    return min(enumerate(routers), key=key)[1]


def summarise(
    outcomes: Iterable[RunOutcome],
    routers: Sequence[str],
    positions: Sequence[EvalPosition],
    *,
    seed: int | None = None,
    stopped: bool = False,
) -> RouterEvaluation:
    """The rows of an outcome table (one :class:`RunOutcome` per router and position index of
    ``positions``).  Raises ValueError when a (position, router) run is missing or repeated."""
    routers = tuple(routers)
    table: dict[int, dict[str, RunOutcome]] = {}
    for o in outcomes:
        runs = table.setdefault(o.position, {})
        if o.router in runs:
            raise ValueError(f"two runs of router {o.router!r} on position {o.position}")
        runs[o.router] = o
    for i in range(len(positions)):
        missing = [r for r in routers if r not in table.get(i, {})]
        if missing:
            raise ValueError(f"position {i} has no run of router {missing[0]!r}")
    table = {i: table[i] for i in range(len(positions))}
    best = {i: _best(runs, routers) for i, runs in table.items()}
    tasks = tuple(dict.fromkeys(p.task for p in positions))
    rows: list[RouterRow] = []
    for task in (ALL, *tasks):
        idx = [i for i in table if task == ALL or positions[i].task == task]
        rows += [_row(r, task, idx, table, best) for r in routers]
    flat = tuple(o for i in table for o in table[i].values())
    return RouterEvaluation(routers, tuple(positions), flat, tuple(rows), seed, stopped)


def _row(
    router: str, task: str, idx: list[int], table: dict[int, dict[str, RunOutcome]], best: dict[int, str]
) -> RouterRow:
    runs = [table[i][router] for i in idx]
    answered = [o for o in runs if o.error is None and o.latency_ms is not None]
    lat = np.array([o.latency_ms for o in answered], dtype=float)
    n = len(runs)
    correct = sum(o.correct for o in runs)
    regret = [int(table[i][best[i]].correct) - int(table[i][router].correct) for i in idx]
    extra = [
        table[i][router].latency_ms - table[i][best[i]].latency_ms  # type: ignore[operator]
        for i in idx
        if table[i][router].correct == table[i][best[i]].correct
        and table[i][router].latency_ms is not None
        and table[i][best[i]].latency_ms is not None
    ]
    return RouterRow(
        router=router,
        task=task,
        n=n,
        errors=n - len(answered),
        correct=correct,
        correct_share=correct / n if n else 0.0,
        mean_steps=float(np.mean([o.steps for o in answered])) if answered else None,
        p50_ms=float(np.percentile(lat, 50)) if answered else None,
        p95_ms=float(np.percentile(lat, 95)) if answered else None,
        mean_ms=float(lat.mean()) if answered else None,
        mean_regret=float(np.mean(regret)) if regret else 0.0,
        best_share=sum(best[i] == router for i in idx) / n if n else 0.0,
        mean_latency_regret_ms=float(np.mean(extra)) if extra else None,
    )


def pareto_front(rows: Sequence[RouterRow]) -> tuple[str, ...]:
    """The routers of ``rows`` that no other row dominates on (``correct_share`` up, ``p50_ms``
    down): dominated means another is at least as good in both and strictly better in one."""
    timed = [r for r in rows if r.p50_ms is not None]
    front = []
    for r in timed:
        dominated = any(
            o.correct_share >= r.correct_share
            and o.p50_ms <= r.p50_ms  # type: ignore[operator]
            and (o.correct_share > r.correct_share or o.p50_ms < r.p50_ms)  # type: ignore[operator]
            for o in timed
            if o is not r
        )
        if not dominated:
            front.append(r.router)
    return tuple(front)
