"""The load generator behind ``python -m engine load``.

Wall-clock mode issues ``rate`` requests per second for ``duration_s`` seconds
(bounded: at most rate * duration requests) on ``concurrency`` worker threads.
Simulated mode runs the same real engine requests back to back but stamps them
on a simulated timeline of ``days`` days ending now, with two scheduled
incidents (a short error spike and a day-long degradation), and marks them
simulated in the store: data for SLO demos, labelled as such.  Which query,
which faults and which timestamp each request gets come from one seeded
generator, so a run is reproducible.

A run can be stopped early (``stop``, e.g. set by a SIGTERM handler): no new
request starts, the ones in flight finish (and are recorded), and the report
counts exactly the requests that were sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.faults import FaultPlan, Faults
from engine.models import QueryRequest

__all__ = [
    "DAY_S",
    "MAX_LOAD_REQUESTS",
    "STOP_POLL_S",
    "Incident",
    "LoadConfig",
    "LoadReport",
    "Planned",
    "default_incidents",
    "plan",
    "read_workload",
    "run_load",
]

DAY_S = 86_400.0
#: The most requests one run may issue (its plan is built up front: ~300 bytes a request).
MAX_LOAD_REQUESTS = 100_000
#: How often a run checks its ``stop`` callable while it waits (s).
STOP_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class Incident:
    """A window of the simulated timeline (fractions of it) with its own fault plan."""

    name: str
    start: float
    end: float
    plan: FaultPlan


def default_incidents(days: float) -> tuple[Incident, ...]:
    """A 2-hour error spike at 30% of the timeline and a 12-hour slow degradation at 70%."""
    two_hours, half_day = 2 * 3600 / (days * DAY_S), 12 * 3600 / (days * DAY_S)
    return (
        Incident("error spike", 0.30, 0.30 + two_hours, FaultPlan(error=0.4, latency_ms=300, latency_p=0.5)),
        Incident(
            "slow degradation", 0.70, 0.70 + half_day, FaultPlan(error=0.05, latency_ms=900, latency_p=0.6)
        ),
    )


@dataclass(frozen=True, slots=True)
class LoadConfig:
    rate: float = 20.0
    duration_s: float = 60.0
    concurrency: int = 4
    faults: FaultPlan = field(default_factory=FaultPlan)
    seed: int = 0
    clock: Literal["wall", "simulated"] = "wall"
    days: float = 28.0
    requests: int | None = None  # simulated mode: how many (default rate * duration)
    correlation_id: str | None = None  # shared by the run's requests (default: load-<seed>-<random>)

    def __post_init__(self) -> None:
        """Check every field and the run's size before anything is planned.

        Raises:
            ValueError: a field out of range, or more than MAX_LOAD_REQUESTS requests in the run;
                the message says which value and what is allowed.
        """
        if not 0 < self.rate <= 1000:
            raise ValueError(
                f"rate {self.rate:g} is out of range: it must be in (0, 1000] requests per second"
            )
        if not 0 < self.duration_s <= 24 * 3600:
            raise ValueError(
                f"duration {self.duration_s:g} s is out of range: it must be in (0, 86400] seconds"
            )
        if isinstance(self.concurrency, bool) or not 1 <= self.concurrency <= 64:
            raise ValueError(f"concurrency {self.concurrency} is out of range: it must be in 1..64")
        if not 0 < self.days <= 365:
            raise ValueError(f"days {self.days:g} is out of range: it must be in (0, 365]")
        if self.clock not in ("wall", "simulated"):
            raise ValueError(f"clock {self.clock!r} is not one of 'wall', 'simulated'")
        if self.requests is not None and (
            isinstance(self.requests, bool) or not 1 <= self.requests <= MAX_LOAD_REQUESTS
        ):
            raise ValueError(
                f"requests {self.requests} is out of range: it must be in 1..{MAX_LOAD_REQUESTS:,}"
            )
        if self.requests is None or self.clock != "simulated":
            planned = self.rate * self.duration_s
            if planned > MAX_LOAD_REQUESTS:
                raise ValueError(
                    f"rate x duration is {planned:,.0f} requests, more than the {MAX_LOAD_REQUESTS:,} "
                    "one run may issue: lower the rate or the duration"
                )
        if self.correlation_id is not None and not re.fullmatch(r"[!-~]{1,128}", self.correlation_id):
            raise ValueError("correlation id must be 1..128 printable characters without spaces")

    @property
    def total(self) -> int:
        """The number of requests the run issues."""
        if self.clock == "simulated" and self.requests is not None:
            return self.requests
        return max(1, int(self.rate * self.duration_s))


@dataclass(frozen=True, slots=True)
class Planned:
    """One request of the plan: when (offset in seconds), what, and its faults."""

    offset_s: float
    row: dict[str, Any]
    faults: Faults
    incident: str | None


@dataclass(frozen=True, slots=True)
class LoadReport:
    """A run's outcome.  ``issued`` is the plan's size; ``sent`` the requests that ran (fewer when
    the run was ``stopped`` early), each finished as ``ok``, ``errors`` or ``invalid``."""

    issued: int
    sent: int
    ok: int
    errors: int
    invalid: int
    wall_s: float
    p50_ms: float | None
    p95_ms: float | None
    simulated: bool
    first_ts: float
    last_ts: float
    incidents: tuple[str, ...]
    correlation_id: str
    stopped: bool = False


def read_workload(path: Path) -> list[dict[str, Any]]:
    """The JSONL rows of a workload (each with at least ``query``); raises ValueError naming a bad line."""
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("query"), str):
            raise ValueError(f"{path}:{n}: each line needs a 'query' string")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no requests")
    return rows


def plan(rows: Sequence[dict[str, Any]], cfg: LoadConfig) -> list[Planned]:
    """The whole run, decided up front from the seed.

    Raises ValueError if the run would exceed MAX_LOAD_REQUESTS (LoadConfig already refuses that)
    or ``rows`` is empty.
    """
    n = cfg.total
    if n > MAX_LOAD_REQUESTS:
        raise ValueError(f"{n:,} requests is more than the {MAX_LOAD_REQUESTS:,} one run may issue")
    if not rows:
        raise ValueError("the workload has no requests")
    rng = np.random.default_rng(cfg.seed)
    picks = rng.integers(len(rows), size=n)
    simulated = cfg.clock == "simulated"
    span_s = cfg.days * DAY_S if simulated else n / cfg.rate
    incidents = default_incidents(cfg.days) if simulated else ()
    out = []
    for i in range(n):
        offset = (i + (rng.random() if simulated else 0.0)) * span_s / n
        where = offset / span_s
        incident = next((x for x in incidents if x.start <= where < x.end), None)
        faults = (incident.plan if incident else cfg.faults).draw(rng)
        out.append(Planned(offset, rows[int(picks[i])], faults, incident.name if incident else None))
    return out


def run_load(
    engine: Any,
    rows: Sequence[dict[str, Any]],
    cfg: LoadConfig,
    *,
    progress: Callable[[int, int, int, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
    stop: Callable[[], bool] | None = None,
) -> LoadReport:
    """Run the plan against ``engine``; every request is recorded by the engine itself.

    ``progress(done, total, ok, errors)`` is called as requests finish.  ``stop`` is polled
    (at least every ``STOP_POLL_S`` seconds); once it returns True no further request starts,
    the ones running finish, and the report says ``stopped``.  It must not block: a signal
    handler that sets a flag is the intended use.
    """
    planned = plan(rows, cfg)
    simulated = cfg.clock == "simulated"
    start_ts = wall() - (cfg.days * DAY_S if simulated else 0.0)
    lock = threading.Lock()
    counts = {"ok": 0, "error": 0, "invalid": 0}
    latencies: list[float] = []
    correlation_id = cfg.correlation_id or f"load-{cfg.seed}-{uuid.uuid4().hex[:8]}"

    def one(p: Planned, seed: int) -> None:
        request = QueryRequest(
            query=p.row["query"],
            task=p.row.get("task", "auto"),
            seed=seed,
            user_id=p.row.get("user_id"),
            correlation_id=correlation_id,
        )
        status, latency = "ok", None
        try:
            for event in engine.stream(
                request,
                live=False,
                ts=start_ts + p.offset_s if simulated else None,
                simulated=simulated,
                faults=p.faults,
            ):
                result = getattr(event, "result", None)
                if result is not None:
                    latency = result.latency_ms
        except ValueError:  # QueryError: the input was rejected (recorded as invalid)
            status = "invalid"
        except Exception:  # an engine failure or an injected fault (recorded as error)
            status = "error"
        with lock:
            counts[status] += 1
            if latency is not None:
                latencies.append(latency)
            done = sum(counts.values())
        if progress is not None:
            progress(done, len(planned), counts["ok"], counts["error"])

    def stopped() -> bool:
        return stop is not None and stop()

    seeds = np.random.default_rng(cfg.seed + 1).integers(2**53, size=len(planned))
    t0 = clock()
    with ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="arbor-load") as pool:
        futures: list[Future[None]] = []
        for p, seed in zip(planned, seeds, strict=True):
            if not simulated:
                wait = t0 + p.offset_s - clock()
                if stop is None and wait > 0:
                    sleep(wait)
                while stop is not None and wait > 0 and not stop():
                    sleep(min(wait, STOP_POLL_S))
                    wait = t0 + p.offset_s - clock()
            if stopped():
                break
            futures.append(pool.submit(one, p, int(seed)))
        for f in futures:
            while not stopped():
                try:
                    f.result(timeout=STOP_POLL_S)
                    break
                except FutureTimeout:
                    continue
            if stopped():
                break
        # Stopped: requests not yet started never will; the running ones finish (and are counted).
        pool.shutdown(wait=True, cancel_futures=True)
    lat = np.array(latencies) if latencies else None
    return LoadReport(
        issued=len(planned),
        sent=sum(counts.values()),
        ok=counts["ok"],
        errors=counts["error"],
        invalid=counts["invalid"],
        wall_s=clock() - t0,
        p50_ms=None if lat is None else float(np.percentile(lat, 50)),
        p95_ms=None if lat is None else float(np.percentile(lat, 95)),
        simulated=simulated,
        first_ts=start_ts + planned[0].offset_s,
        last_ts=start_ts + planned[-1].offset_s,
        incidents=tuple(dict.fromkeys(p.incident for p in planned if p.incident)),
        correlation_id=correlation_id,
        stopped=stopped(),
    )
