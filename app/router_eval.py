"""The Routing page's "Compare routers over a workload" service: run routers over a held-out
workload through the console's real engine (``engine.routing.evaluation``), in a background
thread that the page can stop, and keep the last result in a JSON file.

Where the result lives: ``router_evaluation.json`` beside the store (``ARBOR_DB_PATH``'s
directory, ``data/runtime/`` by default, git-ignored), overwritten by every finished or stopped
comparison and read back when a session has none of its own.  A file (not a store table) because
the result is one document per console, read whole, and needs no migration.

Pure of Streamlit except for :func:`start`, which checks the operator permission and gets the
console's engine.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from app import auth, runtime
from app.names import ROUTERS
from engine.models import QueryRequest
from engine.routing.evaluation import RouterRow, evaluate_routers, evaluation_workload, pareto_front

__all__ = [
    "BASELINES",
    "DEADLINE_S",
    "RESULT_FILE",
    "ComparisonJob",
    "ComparisonSpec",
    "SavedComparison",
    "default_router",
    "load_saved",
    "pareto_points",
    "result_path",
    "rows_table",
    "save",
    "start",
    "task_table",
]

RESULT_FILE = "router_evaluation.json"
#: Total wall time a comparison may take; it stops (keeping what finished) after that.
DEADLINE_S = 900.0
#: The fixed single-agent baselines among the routers.
BASELINES: tuple[str, ...] = tuple(r for r in ROUTERS if r.startswith("fixed:"))
_FORMAT = 1


class ComparisonSpec(BaseModel):
    """What to compare: ``routers`` (distinct, known), ``per_task`` positions per task (1..50),
    the workload and request ``seed``, and MCTS ``mcts_iterations`` per search."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    routers: tuple[str, ...] = Field(min_length=1)
    per_task: int = Field(5, ge=1, le=50)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    mcts_iterations: int = Field(300, ge=1, le=10_000)

    @field_validator("routers")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [r for r in value if r not in ROUTERS]
        if unknown:
            raise ValueError(f"unknown router {unknown[0]!r}: expected some of {', '.join(ROUTERS)}")
        if len(set(value)) != len(value):
            raise ValueError("each router at most once")
        return value


def default_router() -> str:
    """The router a request gets when it names none (``QueryRequest``'s default)."""
    return str(QueryRequest.model_fields["router"].default)


def result_path() -> Path:
    """Where the last comparison is saved: :data:`RESULT_FILE` beside the store."""
    return runtime.get_settings().db_path.parent / RESULT_FILE


@dataclass(frozen=True, slots=True)
class SavedComparison:
    """A comparison's result as saved: the spec, when, the default router at the time, and the
    evaluation's JSON (``RouterEvaluation.to_json()``: overall and per-task rows, Pareto fronts)."""

    spec: ComparisonSpec
    saved_at: str
    default_router: str
    evaluation: dict[str, Any]
    wall_s: float
    deadline_hit: bool = False

    @property
    def overall(self) -> list[dict[str, Any]]:
        """One row per router over the whole workload."""
        rows = self.evaluation.get("overall")
        return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []

    @property
    def by_task(self) -> dict[str, list[dict[str, Any]]]:
        """Per task, one row per router."""
        section = self.evaluation.get("by_task")
        if not isinstance(section, dict):
            return {}
        return {
            str(t): [r for r in rows if isinstance(r, dict)]
            for t, rows in section.items()
            if isinstance(rows, list)
        }

    def to_json(self) -> dict[str, Any]:
        """The file's content."""
        return {
            "format": _FORMAT,
            "saved_at": self.saved_at,
            "default_router": self.default_router,
            "spec": self.spec.model_dump(mode="json"),
            "wall_s": round(self.wall_s, 3),
            "deadline_hit": self.deadline_hit,
            "evaluation": self.evaluation,
        }


def save(result: SavedComparison, path: Path | None = None) -> Path:
    """Write ``result`` to ``path`` (default :func:`result_path`) atomically; raises OSError."""
    path = path or result_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result.to_json(), indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def load_saved(path: Path | None = None) -> tuple[SavedComparison | None, str | None]:
    """The saved comparison at ``path`` (default :func:`result_path`): (result, None), (None,
    None) when there is none, or (None, why it cannot be read) -- never raises."""
    path = path or result_path()
    if not path.exists():
        return None, None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"The saved comparison {path} cannot be read: {type(exc).__name__}: {exc}"
    try:
        if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
            raise ValueError(f"not a format-{_FORMAT} comparison file")
        evaluation = raw["evaluation"]
        if not isinstance(evaluation, dict) or not isinstance(evaluation.get("overall"), list):
            raise ValueError("it has no evaluation rows")
        return (
            SavedComparison(
                ComparisonSpec.model_validate(raw["spec"]),
                str(raw["saved_at"]),
                str(raw["default_router"]),
                evaluation,
                float(raw.get("wall_s", math.nan)),
                bool(raw.get("deadline_hit", False)),
            ),
            None,
        )
    except (KeyError, TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        return None, f"The saved comparison {path} is not usable: {type(exc).__name__}: {exc}"


@dataclass(slots=True, eq=False)
class ComparisonJob:
    """A comparison running in a background thread: progress (``done`` of ``total`` runs), a
    stop request, and when finished the ``result`` (or ``error``) and where it was saved.

    Mutable on purpose (the thread updates progress); kept in one session's state, never shared.
    """

    spec: ComparisonSpec
    total: int
    done: int = 0
    result: SavedComparison | None = None
    error: str | None = None
    saved_to: Path | None = None
    save_error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the thread is still working."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Ask the comparison to stop before its next position (what finished is kept)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """Whether a stop was asked for."""
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the thread (up to ``timeout`` seconds); True when it has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


_STORE_WAIT_S = 10.0


def _run(
    job: ComparisonJob,
    engine: Any,
    positions: Sequence[Any],
    path: Path,
    deadline_s: float,
    clock: Callable[[], float],
) -> None:
    started = clock()
    hit = {"deadline": False}

    def progress(done: int, total: int) -> None:
        job.done = done

    def stop() -> bool:
        if clock() - started > deadline_s:
            hit["deadline"] = True
        return job.stopping or hit["deadline"]

    try:
        evaluation = evaluate_routers(
            engine,
            positions,
            job.spec.routers,
            seed=job.spec.seed,
            mcts_iterations=job.spec.mcts_iterations,
            progress=progress,
            stop=stop,
        )
    except Exception as exc:  # shown on the page; the thread must not die silently
        job.error = f"The comparison failed: {type(exc).__name__}: {exc}"
        return
    store = getattr(getattr(engine, "telemetry", None), "store", None)
    if store is not None:  # the runs behind the figures are in the store (and on Traces) when it says done
        store.wait(timeout_s=_STORE_WAIT_S)
    job.result = SavedComparison(
        job.spec,
        datetime.now(UTC).isoformat(timespec="seconds"),
        default_router(),
        evaluation.to_json(),
        clock() - started,
        hit["deadline"],
    )
    if not evaluation.positions:
        return  # stopped before the first position: nothing worth replacing the saved result
    try:
        job.saved_to = save(job.result, path)
    except OSError as exc:
        job.save_error = f"The result could not be saved to {path}: {exc}"


def start(
    spec: ComparisonSpec,
    *,
    engine: Any = None,
    path: Path | None = None,
    deadline_s: float = DEADLINE_S,
    clock: Callable[[], float] = time.monotonic,
) -> ComparisonJob:
    """Build the held-out workload (``evaluation_workload(seed, per_task)``) and start running
    ``spec.routers`` over it through the console's engine (default ``runtime.get_engine()``) in
    a background thread; the result is saved to ``path`` (default :func:`result_path`).
    Operators only (stops the script run otherwise).  Raises ValueError for a workload that
    cannot be built."""
    auth.require_operator("compare_routers")
    positions = evaluation_workload(spec.seed, spec.per_task)
    job = ComparisonJob(spec, total=len(positions) * len(spec.routers))
    thread = threading.Thread(
        target=_run,
        args=(job, engine or runtime.get_engine(), positions, path or result_path(), deadline_s, clock),
        name="arbor-router-eval",
        daemon=True,
    )
    job._thread = thread
    thread.start()
    return job


# -- tables and the chart's points ----------------------------------------------------------------

_COLUMNS = {
    "router": "router",
    "n": "positions",
    "correct_share": "correct share",
    "mean_steps": "mean steps",
    "p50_ms": "p50 ms",
    "p95_ms": "p95 ms",
    "mean_regret": "regret",
    "mean_latency_regret_ms": "latency regret ms",
    "best_share": "best share",
    "errors": "errors",
}


def _kind(router: str, default: str) -> str:
    if router == default:
        return "default"
    return "baseline" if router in BASELINES else "router"


def rows_table(rows: Sequence[Mapping[str, Any]], default: str) -> pd.DataFrame:
    """One line per router: its kind (default / router / baseline) and figures (see
    ``engine.routing.evaluation``'s definitions)."""
    table = pd.DataFrame(
        [{**{label: r.get(key) for key, label in _COLUMNS.items()}} for r in rows],
        columns=list(_COLUMNS.values()),
    )
    for column in list(_COLUMNS.values())[1:]:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)  # None: a blank
    table.insert(1, "kind", [_kind(str(r.get("router")), default) for r in rows])
    return table


def task_table(by_task: Mapping[str, Sequence[Mapping[str, Any]]], default: str) -> pd.DataFrame:
    """The per-task rows stacked, with a ``task`` column first."""
    parts = [rows_table(rows, default).assign(task=task) for task, rows in by_task.items()]
    if not parts:
        return pd.DataFrame(columns=["task", "router", "kind", *list(_COLUMNS.values())[1:]])
    table = pd.concat(parts, ignore_index=True)
    return table[["task", *[c for c in table.columns if c != "task"]]]


def _row(raw: Mapping[str, Any]) -> RouterRow | None:
    try:
        return RouterRow(**{k: raw[k] for k in RouterRow.__dataclass_fields__})
    except (KeyError, TypeError):
        return None


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """One router on the chart: p95 latency (ms), correct share, kind, on the front or not."""

    router: str
    p95_ms: float
    correct_share: float
    kind: str
    on_front: bool


def pareto_points(rows: Sequence[Mapping[str, Any]], default: str) -> list[ParetoPoint]:
    """The chart's points: routers with a latency, and whether each is on the Pareto front of
    correct share (higher is better) against p95 latency (lower is better) -- the chart's axes
    (``pareto_front`` applied to p95 in place of p50)."""
    parsed = [r for r in (_row(raw) for raw in rows) if r is not None and r.p95_ms is not None]
    front = set(pareto_front([replace(r, p50_ms=r.p95_ms) for r in parsed]))
    return [
        ParetoPoint(r.router, float(r.p95_ms), r.correct_share, _kind(r.router, default), r.router in front)  # type: ignore[arg-type]
        for r in parsed
    ]
