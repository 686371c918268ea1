"""The load generator behind ``python -m engine load``.

Wall-clock mode issues ``rate`` requests per second for ``duration_s`` seconds
(bounded: at most rate * duration requests) on ``concurrency`` worker threads.
Simulated mode runs the same real engine requests back to back but stamps them
on a simulated timeline of ``days`` days ending now, shaped by a daily and weekly
traffic pattern (:class:`TrafficPattern`), with scheduled incidents
(:func:`default_incidents`: a fast error burn, a provider outage, a slow error burn
and a latency regression), and marks them simulated in the store, where the
incidents are recorded too: data for SLO demos (``make demo``), labelled as such.
Which query, which faults and which timestamp each request gets come from one
seeded generator, so a run is reproducible.

A workload row may carry, besides ``query`` and ``task``: ``router`` (rules, gru,
hybrid, fixed:hrm, fixed:trm, fixed:mcts),
``mcts_iterations`` (1..10000) and ``weight`` (its relative share of the
picks, > 0; default 1).

A run can be stopped early (``stop``, e.g. set by a SIGTERM handler): no new
request starts, the ones in flight finish (and are recorded), and the report
counts exactly the requests that were sent.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from engine.faults import FaultPlan, Faults
from engine.models import QueryRequest
from engine.names import ROUTERS
from observability.store import Store
from observability.store.incidents import incident_row

__all__ = [
    "DAY_S",
    "DEMO_FAULTS",
    "MAX_LOAD_REQUESTS",
    "STOP_POLL_S",
    "Incident",
    "LoadConfig",
    "LoadReport",
    "Planned",
    "TrafficPattern",
    "default_incidents",
    "incident_windows",
    "plan",
    "read_workload",
    "run_load",
]

DAY_S = 86_400.0
#: The most requests one run may issue (its plan is built up front: ~300 bytes a request).
MAX_LOAD_REQUESTS = 100_000
#: How often a run checks its ``stop`` callable while it waits (s).
STOP_POLL_S = 0.1


HOUR_S = 3600.0
#: ``make demo``'s faults outside the incidents: a rare error and a rare slow request, so the SLO
#: charts have a baseline (the Makefile passes the same text; a test checks they agree).
DEMO_FAULTS = "error=0.0005,latency_ms=650@0.005"
_ROUTERS = ROUTERS


@dataclass(frozen=True, slots=True)
class TrafficPattern:
    """Relative request intensity over a simulated timeline (a rate shape, not a rate):

    ``rate(t) = (1 + daily_amplitude * cos(2 pi (h(t) - peak_hour_utc) / 24)) * w(t)``

    where ``h(t)`` is the UTC hour of day (fractional) and ``w(t)`` is ``weekend_factor`` on
    Saturdays and Sundays (UTC), 1 otherwise.  A run of ``n`` requests gives each UTC hour of
    the timeline ``n`` times its share of the integral of ``rate``, rounded by largest
    remainder (so every hour's count is within 1 of that), spread uniformly within the hour.
    """

    daily_amplitude: float = 0.6
    peak_hour_utc: float = 15.0
    weekend_factor: float = 0.4

    def __post_init__(self) -> None:
        """Raises ValueError for an amplitude outside [0, 1), a peak outside [0, 24) or a
        weekend factor outside (0, 1]."""
        if not 0.0 <= self.daily_amplitude < 1.0:
            raise ValueError(f"daily amplitude {self.daily_amplitude:g} must be in [0, 1)")
        if not 0.0 <= self.peak_hour_utc < 24.0:
            raise ValueError(f"peak hour {self.peak_hour_utc:g} must be in [0, 24)")
        if not 0.0 < self.weekend_factor <= 1.0:
            raise ValueError(f"weekend factor {self.weekend_factor:g} must be in (0, 1]")

    def _day_factor(self, ts: float) -> float:
        weekend = datetime.fromtimestamp(ts, UTC).weekday() >= 5
        return self.weekend_factor if weekend else 1.0

    def rate(self, ts: float) -> float:
        """The relative intensity at unix time ``ts`` (dimensionless, > 0)."""
        phase = 2 * math.pi * ((ts % DAY_S) / HOUR_S - self.peak_hour_utc) / 24
        return (1 + self.daily_amplitude * math.cos(phase)) * self._day_factor(ts)

    def integral(self, lo: float, hi: float) -> float:
        """The integral of :meth:`rate` over ``[lo, hi]`` (seconds x intensity), in closed form;
        ``lo`` and ``hi`` must lie within one UTC day (as the hour bins do)."""
        k = 2 * math.pi / DAY_S
        shift = self.peak_hour_utc * HOUR_S

        def antiderivative(t: float) -> float:
            return t + self.daily_amplitude * math.sin(k * ((t % DAY_S) - shift)) / k

        day_start = lo - lo % DAY_S
        value = antiderivative(hi - day_start) - antiderivative(lo - day_start)
        return value * self._day_factor(lo)

    def hour_bins(self, start_ts: float, end_ts: float) -> list[tuple[float, float, float]]:
        """``(lo, hi, weight)`` for every UTC hour (clipped to the timeline) of
        ``[start_ts, end_ts)``: weight = the integral of the rate over the bin."""
        bins = []
        lo = start_ts
        while lo < end_ts:
            hi = min(end_ts, (math.floor(lo / HOUR_S) + 1) * HOUR_S)
            bins.append((lo, hi, self.integral(lo, hi)))
            lo = hi
        return bins

    def offsets(self, n: int, start_ts: float, span_s: float, rng: np.random.Generator) -> np.ndarray:
        """``n`` sorted offsets (s from ``start_ts``) following the pattern (see the class doc)."""
        bins = self.hour_bins(start_ts, start_ts + span_s)
        weights = np.array([w for _, _, w in bins])
        exact = n * weights / weights.sum()
        counts = np.floor(exact).astype(np.int64)
        short = n - int(counts.sum())
        if short:
            counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
        lows = np.repeat([lo for lo, _, _ in bins], counts)
        widths = np.repeat([hi - lo for lo, hi, _ in bins], counts)
        return np.sort(lows + rng.random(n) * widths - start_ts)


@dataclass(frozen=True, slots=True)
class Incident:
    """A scheduled incident of the simulated timeline, with its own fault plan.

    It starts at ``hour_utc`` on the UTC day that lies at fraction ``at`` of the timeline and
    lasts ``duration_s`` (both clipped to the timeline).  ``name`` is its title (plain text);
    ``kind`` names what goes wrong; ``description`` says what the plan injects and what the
    SLO alerts are expected to do.
    """

    name: str
    kind: str
    at: float
    hour_utc: float
    duration_s: float
    plan: FaultPlan
    description: str = ""

    def window(self, start_ts: float, span_s: float) -> tuple[float, float]:
        """The incident's ``(start, end)`` in unix seconds on a timeline from ``start_ts``."""
        end_ts = start_ts + span_s
        day = start_ts + self.at * span_s
        lo = min(max(day - day % DAY_S + self.hour_utc * HOUR_S, start_ts), end_ts)
        return lo, min(lo + self.duration_s, end_ts)


def default_incidents(days: float) -> tuple[Incident, ...]:
    """The simulated timeline's four incidents, placed at fractions of it (durations capped at
    a quarter of a timeline of ``days`` days).  Against data/slos.yaml (availability 99 %, latency
    95 % under 500 ms, 28 days):

    * a 2-hour error spike at 14:00 UTC a quarter in: half the requests fail, a page;
    * a 3-hour LLM provider outage (60 % of provider calls fail, so freeform requests error);
    * a 60-hour slow burn (2.5 % of requests fail): no page, a ticket once the 3-day burn
      passes its factor;
    * a 36-hour latency regression (15 % of requests 900 ms slower): a latency ticket.
    """
    cap = 0.25 * days * DAY_S

    def hours(h: float) -> float:
        return min(h * HOUR_S, cap)

    return (
        Incident(
            "Error spike after a bad deploy", "error_spike", 0.25, 14.0, hours(2),
            FaultPlan(error=0.5),
            "Half of all requests fail for two hours: a fast burn of the availability budget (page).",
        ),
        Incident(
            "LLM provider outage", "provider_outage", 0.42, 9.0, hours(3),
            FaultPlan(provider_error=0.6),
            "60 % of LLM provider calls fail for three hours; requests that need the provider"
            " (freeform) fail with it.",
        ),
        Incident(
            "Slow burn: intermittent storage errors", "slow_burn", 0.55, 6.0, hours(60),
            FaultPlan(error=0.025),
            "2.5 % of requests fail for 60 hours: too slow to page, a ticket on the availability SLO.",
        ),
        Incident(
            "Latency regression: search cache disabled", "latency_regression", 0.80, 10.0, hours(36),
            FaultPlan(latency_ms=900, latency_p=0.15),
            "15 % of requests take 900 ms longer for 36 hours: a ticket on the latency SLO.",
        ),
    )  # fmt: skip


def incident_windows(
    incidents: Sequence[Incident], start_ts: float, span_s: float
) -> list[tuple[Incident, float, float]]:
    """Each incident with its window ``(start, end)`` (unix s) on the timeline; empty ones dropped."""
    out = []
    for x in incidents:
        lo, hi = x.window(start_ts, span_s)
        if lo < hi:
            out.append((x, lo, hi))
    return out


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
    pattern: TrafficPattern | None = TrafficPattern()  # simulated mode: None gives a flat timeline

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
    start_ts: float = 0.0  # where the timeline begins (unix s; simulated: days before the run)
    incidents_recorded: int = 0  # incident rows submitted to the store


def _row_problem(row: dict[str, Any]) -> str | None:
    """What is wrong with a row's optional fields (router, mcts_iterations, weight), or None."""
    if "router" in row and row["router"] not in _ROUTERS:
        return f"router {row['router']!r} is not one of {', '.join(_ROUTERS)}"
    its = row.get("mcts_iterations", 1)
    if isinstance(its, bool) or not isinstance(its, int) or not 1 <= its <= 10_000:
        return f"mcts_iterations {its!r} must be an integer in 1..10000"
    weight = row.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
        return f"weight {weight!r} must be a positive number"
    return None


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
        problem = _row_problem(row)
        if problem:
            raise ValueError(f"{path}:{n}: {problem}")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: no requests")
    return rows


def _picks(rows: Sequence[dict[str, Any]], n: int, rng: np.random.Generator) -> np.ndarray:
    """Which row each request runs: uniform, or in proportion to the rows' ``weight``."""
    weights = np.array([float(r.get("weight", 1)) for r in rows])
    if np.all(weights == 1.0):
        return rng.integers(len(rows), size=n)
    return rng.choice(len(rows), size=n, p=weights / weights.sum())


def plan(rows: Sequence[dict[str, Any]], cfg: LoadConfig, start_ts: float = 0.0) -> list[Planned]:
    """The whole run, decided up front from the seed.  ``start_ts`` (unix s) is where a simulated
    timeline begins: the traffic pattern and the incidents are placed in UTC from it.

    Raises ValueError if the run would exceed MAX_LOAD_REQUESTS (LoadConfig already refuses that)
    or ``rows`` is empty.
    """
    n = cfg.total
    if n > MAX_LOAD_REQUESTS:
        raise ValueError(f"{n:,} requests is more than the {MAX_LOAD_REQUESTS:,} one run may issue")
    if not rows:
        raise ValueError("the workload has no requests")
    rng = np.random.default_rng(cfg.seed)
    picks = _picks(rows, n, rng)
    simulated = cfg.clock == "simulated"
    span_s = cfg.days * DAY_S if simulated else n / cfg.rate
    windows = incident_windows(default_incidents(cfg.days), start_ts, span_s) if simulated else []
    pattern = cfg.pattern if simulated else None
    offsets = None if pattern is None else pattern.offsets(n, start_ts, span_s, rng)
    out = []
    for i in range(n):
        if offsets is not None:
            offset = float(offsets[i])
        else:
            offset = (i + (rng.random() if simulated else 0.0)) * span_s / n
        ts = start_ts + offset
        incident = next((x for x, lo, hi in windows if lo <= ts < hi), None)
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
    store: Store | None = None,
) -> LoadReport:
    """Run the plan against ``engine``; every request is recorded by the engine itself.

    ``progress(done, total, ok, errors)`` is called as requests finish.  ``stop`` is polled
    (at least every ``STOP_POLL_S`` seconds); once it returns True no further request starts,
    the ones running finish, and the report says ``stopped``.  It must not block: a signal
    handler that sets a flag is the intended use.

    On a simulated timeline the incidents the run injected (up to its last sent request) are
    submitted to ``store`` (when given) as ``incidents`` rows, source ``load:<correlation id>``.
    """
    simulated = cfg.clock == "simulated"
    start_ts = wall() - (cfg.days * DAY_S if simulated else 0.0)
    planned = plan(rows, cfg, start_ts)
    lock = threading.Lock()
    counts = {"ok": 0, "error": 0, "invalid": 0}
    latencies: list[float] = []
    correlation_id = cfg.correlation_id or f"load-{cfg.seed}-{uuid.uuid4().hex[:8]}"

    def one(p: Planned, seed: int) -> None:
        options = {k: p.row[k] for k in ("router", "mcts_iterations") if k in p.row}
        request = QueryRequest(
            query=p.row["query"],
            task=p.row.get("task", "auto"),
            **options,
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
    sent = sum(counts.values())
    recorded = 0
    if simulated and store is not None and sent:
        last_ts = start_ts + planned[sent - 1].offset_s
        rows_out = _incident_rows(cfg, start_ts, last_ts, correlation_id)
        if rows_out:
            store.submit("incidents", rows_out)
            recorded = len(rows_out)
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
        start_ts=start_ts,
        incidents_recorded=recorded,
    )


def _incident_rows(
    cfg: LoadConfig, start_ts: float, last_ts: float, correlation_id: str
) -> list[dict[str, Any]]:
    """The ``incidents`` rows of a simulated run whose requests reached ``last_ts``: each incident
    that began by then, its end clipped to ``last_ts`` when the run stopped inside it."""
    out = []
    for x, lo, hi in incident_windows(default_incidents(cfg.days), start_ts, cfg.days * DAY_S):
        if lo > last_ts:
            continue
        out.append(
            incident_row(
                kind=x.kind,
                title=x.name,
                start_ts=lo,
                end_ts=max(min(hi, last_ts), math.nextafter(lo, math.inf)),
                simulated=True,
                source=f"load:{correlation_id}",
                description=x.description,
            )
        )
    return out
