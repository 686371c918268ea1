"""The loop's agent steps: the position the agents work on, running one agent, its MCTS summary.

With ``live`` the MCTS agent runs in a worker thread so that its tree snapshots can be yielded
as :class:`~engine.events.MctsSnapshot` events while it searches; otherwise agents run inline.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Generator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.agents import AgentContext, AgentOutput, agent_for
from engine.events import Event, MctsSnapshot
from engine.loop.cancel import CancelToken
from engine.models import AGENTS, QueryRequest
from engine.tasks import ParseError, Task, load_task
from observability.tracing import current_span, propagate

__all__ = ["Position", "QueryError", "agent_seeds", "mcts_summary", "parse_position", "run_agent"]


class QueryError(ValueError):
    """The request is well-formed but cannot be answered (e.g. a malformed position)."""


@dataclass(frozen=True, slots=True)
class Position:
    """What the agents work on: the task and its parsed state (both None for freeform text)."""

    task_name: str
    task: Task | None
    state: Any


def parse_position(task_name: str, request: QueryRequest) -> Position:
    """Parse ``request``'s position for ``task_name``.

    Raises:
        QueryError: the position is malformed or the game is already over.
    """
    if task_name == "freeform":
        return Position(task_name, None, None)
    task = load_task(task_name)
    try:
        state = task.parse(request.position_text())
    except ParseError as exc:
        raise QueryError(f"invalid {task_name} position: {exc}") from None
    if task.is_terminal(state):
        raise QueryError(f"the {task_name} position is already over: there is nothing to answer")
    return Position(task_name, task, state)


def agent_seeds(seed: int) -> dict[str, int]:
    """Each agent's own seed, drawn from the request's ``seed`` in ``AGENTS`` order."""
    rng = np.random.default_rng(seed)
    return {a: int(rng.integers(2**53)) for a in AGENTS}


#: How long (s) closing a live step waits for its search to stop at its next snapshot.
STOP_JOIN_S = 30.0


class _SearchStopped(Exception):
    """Raised inside a live search's snapshot callback to end the search early."""


def run_agent(
    index: int,
    agent: str,
    task_name: str,
    ctx: AgentContext,
    live: bool,
    span: Callable[[str], AbstractContextManager[Any]] = lambda _name: nullcontext(),
    cancel: CancelToken | None = None,
) -> Generator[Event, None, AgentOutput]:
    """Run ``agent`` on ``ctx`` (step ``index``); yields MCTS snapshots when ``live``, returns its
    output.  An agent's exception is re-raised in the caller's thread.

    The MCTS agent runs inside ``span("mcts.search")`` (the telemetry's span factory).  When
    ``live``, the current span (the agent's) also gets ``snapshots_streamed`` and ``caller_ms``:
    how long the caller held the stream at those yields (ms), e.g. the console drawing each tree,
    which the agent's span lasts on top of the search when the caller is slower than it.

    A live search stops at its next snapshot (an iteration boundary) when ``cancel`` is set --
    then QueryCancelled is raised -- or when the caller closes this generator (the worker is
    joined, at most :data:`STOP_JOIN_S` s, so no search outlives its query)."""
    fn = agent_for(agent, task_name)
    if agent != "mcts":
        return fn(ctx)
    if not live:
        with span("mcts.search"):
            return fn(ctx)
    # Run the search in a worker so its snapshots can be yielded as they come.
    inbox: queue.Queue[Any] = queue.Queue()
    done = object()
    box: dict[str, Any] = {}
    closed = threading.Event()

    def on_snapshot(snapshot: Any) -> None:
        if closed.is_set() or (cancel is not None and cancel.cancelled):
            raise _SearchStopped
        inbox.put(snapshot)

    def work() -> None:
        try:
            with span("mcts.search"):
                box["out"] = fn(dataclasses.replace(ctx, on_snapshot=on_snapshot))
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc
        finally:
            inbox.put(done)

    worker = threading.Thread(target=propagate(work), name="arbor-mcts", daemon=True)
    worker.start()
    streamed, held = 0, 0.0
    owner = current_span()
    try:
        while (item := inbox.get()) is not done:
            handed = time.perf_counter()
            yield MctsSnapshot(index, item)
            held += time.perf_counter() - handed
            streamed += 1
    finally:  # also when the caller stops reading: the search ends at its next snapshot
        closed.set()
        worker.join(STOP_JOIN_S)
        if owner is not None:
            owner.set_attributes(snapshots_streamed=streamed, caller_ms=round(held * 1000.0, 3))
    if isinstance(box.get("error"), _SearchStopped) and cancel is not None:
        cancel.check()
    if "error" in box:
        raise box["error"]
    out: AgentOutput = box["out"]
    return out


def mcts_summary(task: Task | None, out: AgentOutput) -> dict[str, float | int | str]:
    """The result's ``mcts`` summary of an output that carries a search (``out.search``):
    iterations, root value (raw and scaled to 0..1 by the task's reward range), best action,
    cache hit rate, why it stopped, tree size, elapsed ms, seed, the root's proof status and its
    solver-true value (the proven one once proven; ``root_value`` stays the mean Q).
    Raises ValueError without one."""
    if out.search is None:
        raise ValueError("the agent's output carries no search")
    s = out.search.stats
    lo, hi = task.reward_range if task is not None else (0.0, 1.0)
    return {
        "iterations": s.iterations,
        "root_value": s.root_value,
        "root_value_01": (s.root_value - lo) / (hi - lo),
        "best_action": s.best_action_label,
        "cache_hit_rate": s.cache_hit_rate,
        "termination_reason": s.termination_reason,
        "tree_size": s.tree_size,
        "elapsed_ms": s.elapsed_s * 1000,
        "seed": s.seed,
        "root_status": s.root_status,  # the solver's proof status of the root (or "unproven")
        "root_value_shown": s.shown_root_value,  # solver-true: the proven value once proven, else Q
    }
