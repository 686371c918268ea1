"""Links between the console's pages: the URLs that open a page on a request or a search, and the
parsing of the query parameters a page is opened with (deep links).

Pure (no streamlit import): pages hand in ``st.query_params`` (any mapping of str to str) and apply
the parsed values to their widgets; a value that cannot be used comes back as a problem line to
show, never as an exception.  URLs are relative and URL-encoded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

from app.names import AGENTS, CONSOLE_TASKS, EXPLORER_TASKS, PROVIDERS, ROUTERS, SELECTIONS, TASK_LABELS
from engine.models import QueryRequest, strip_task_prefix
from observability.trace_filter import NO_VALUE, STATUSES, VERDICTS
from observability.traces import MctsRunInfo, TraceDetail

__all__ = [
    "LINK_DIMENSIONS",
    "RUNBOOK_BY_ALERT",
    "RUNBOOK_BY_SEVERITY",
    "SLO_BURN_ALERT",
    "ExplorerLink",
    "QueryLink",
    "TraceLink",
    "TracesLink",
    "bad_events_url",
    "explorer_link_params",
    "explorer_url",
    "parse_explorer_link",
    "parse_query_link",
    "parse_trace_link",
    "parse_traces_link",
    "query_link_params",
    "replay_url",
    "runbook_link",
    "runbook_name",
    "runbook_url",
    "traces_url",
]

#: Which trace a Traces link names: ("trace", trace id) or ("request", request id).
TraceLink = tuple[Literal["trace", "request"], str]


def _url(path: str, params: dict[str, Any]) -> str:
    """``path?k=v&...`` over the parameters that are not None, percent-encoded (spaces as %20)."""
    return path + "?" + urlencode({k: str(v) for k, v in params.items() if v is not None}, quote_via=quote)


def explorer_url(run: MctsRunInfo) -> str | None:
    """A relative URL opening the MCTS explorer on ``run``'s search (task, position without its
    ``task:`` prefix, seed, the configured iterations, c, selection; URL-encoded), or None when
    the explorer cannot run it.  The explorer then repeats the search exactly."""
    if run.task not in EXPLORER_TASKS or run.position is None:
        return None
    position = strip_task_prefix(run.position)
    config = run.config
    selection = config.get("selection") if config.get("selection") in SELECTIONS else None
    iterations = config.get("iterations") if isinstance(config.get("iterations"), int) else run.iterations
    c = config.get("c") if isinstance(config.get("c"), int | float) else None
    params = {"task": run.task, "position": position, "seed": run.seed, "iterations": iterations}
    return _url("mcts", params | {"c": c, "selection": selection})


def replay_url(detail: TraceDetail) -> str | None:
    """A relative URL opening the Query console on the trace's request (query, task, seed,
    router, and the MCTS iterations when it ran a search; URL-encoded), or None without a query."""
    request = detail.request
    if request is None or request.query is None:
        return None
    iterations = next((r.config.get("iterations") for r in detail.mcts_runs), None)
    return _url(
        "./",
        {
            "q": request.query,
            "task": request.task if request.task in CONSOLE_TASKS else None,
            "seed": request.seed,
            "router": request.router if request.router in ROUTERS else None,
            "iterations": iterations if isinstance(iterations, int) else None,
        },
    )


def query_link_params(request: QueryRequest, seed: int) -> dict[str, str | int]:
    """The query parameters that reopen the Query console on ``request`` run with ``seed`` (what
    the console puts in its URL after a run; :func:`parse_query_link` reads them back)."""
    return {
        "q": request.query,
        "task": request.task,
        "seed": seed,
        "router": request.router,
        "iterations": request.mcts_iterations,
    }


def explorer_link_params(
    task: str, position: str, *, iterations: int, c: float, selection: str, seed: int
) -> dict[str, str | int | float]:
    """The query parameters that reopen the MCTS explorer on a search (what the explorer puts in
    its URL after a run; :func:`parse_explorer_link` reads them back)."""
    return {
        "task": task,
        "position": position,
        "iterations": iterations,
        "c": c,
        "selection": selection,
        "seed": seed,
    }


@dataclass(frozen=True, slots=True)
class QueryLink:
    """What a Query console link (``/?q=...&task=...&seed=...&router=...&iterations=...``) asks
    for; None where the link says nothing usable.  ``problems``: one line per value ignored."""

    query: str | None = None
    task: str | None = None
    router: str | None = None
    seed: int | None = None
    iterations: int | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExplorerLink:
    """What an MCTS explorer link (``/mcts?task=...&position=...&iterations=...&seed=...&c=...
    &selection=...``) asks for; None where the link says nothing usable.  ``position`` is set
    (possibly empty) only with a known task.  ``problems``: one line per value ignored."""

    task: str | None = None
    position: str | None = None
    iterations: int | None = None
    seed: int | None = None
    c: float | None = None
    selection: str | None = None
    problems: tuple[str, ...] = ()


def _whole(params: Mapping[str, str], key: str, problems: list[str], what: str) -> int | None:
    """``int(params[key])``, or None when absent or not a whole number (then a line in ``problems``)."""
    if key not in params:
        return None
    try:
        return int(params[key])
    except ValueError:
        problems.append(f"Ignored the link's {key}={params[key]!r}: {what}.")
        return None


def _real(params: Mapping[str, str], key: str, problems: list[str]) -> float | None:
    """``float(params[key])``, or None when absent or not a number (then a line in ``problems``)."""
    if key not in params:
        return None
    try:
        return float(params[key])
    except ValueError:
        problems.append(f"Ignored the link's {key}={params[key]!r}: not a number.")
        return None


def parse_query_link(params: Mapping[str, str]) -> QueryLink:
    """The Query console's deep link: ``q`` (non-empty), ``task`` (a console task), ``router``
    (a known router), ``seed`` and ``iterations`` (whole numbers).  Unknown task or router names
    are dropped silently; a seed or iteration count that is not a whole number is a problem."""
    problems: list[str] = []
    seed = _whole(params, "seed", problems, "not a whole number")
    iterations = _whole(params, "iterations", problems, "not a whole number")
    return QueryLink(
        query=params.get("q") or None,
        task=params.get("task") if params.get("task") in CONSOLE_TASKS else None,
        router=params.get("router") if params.get("router") in ROUTERS else None,
        seed=seed,
        iterations=iterations,
        problems=tuple(problems),
    )


def parse_explorer_link(params: Mapping[str, str]) -> ExplorerLink:
    """The MCTS explorer's deep link: ``task`` (an explorer task) with ``position``,
    ``iterations`` and ``seed`` (whole numbers), ``c`` (a number), ``selection`` (ucb1 or puct).
    Unknown task or selection names are dropped silently; a number that does not parse is a
    problem."""
    task = params.get("task") if params.get("task") in EXPLORER_TASKS else None
    problems: list[str] = []
    iterations = _whole(params, "iterations", problems, "not a number")
    seed = _whole(params, "seed", problems, "not a number")
    c = _real(params, "c", problems)
    return ExplorerLink(
        task=task,
        position=params.get("position", "") if task is not None else None,
        iterations=iterations,
        seed=seed,
        c=c,
        selection=params.get("selection") if params.get("selection") in SELECTIONS else None,
        problems=tuple(problems),
    )


def parse_trace_link(params: Mapping[str, str]) -> TraceLink | None:
    """The trace a Traces link names: ``?trace=<id>`` (preferred) or ``?request=<id>``; None
    when it names neither (empty values count as absent)."""
    if params.get("trace"):
        return ("trace", params["trace"])
    if params.get("request"):
        return ("request", params["request"])
    return None


# -- runbooks ---------------------------------------------------------------------------------------

#: The runbook (stem of a ``data/corpus/runbook-*.md`` file) of each burn-rate alert severity: the
#: SLOErrorBudgetBurn rules of observability/slo/rules.py page on a fast burn (1h/5m, 6h/30m) and
#: open a ticket on a slow one (3d/6h).
RUNBOOK_BY_SEVERITY: dict[str, str] = {
    "page": "runbook-error-budget-fast-burn",
    "ticket": "runbook-error-budget-slow-burn",
}
#: The runbook of each operational alert of observability/slo/rules.py that has one (by alert name).
RUNBOOK_BY_ALERT: dict[str, str] = {
    "ArborRequestLatencyP95High": "runbook-high-latency-p95",
    "ArborLLMErrorRatioHigh": "runbook-llm-provider-errors",
    "ArborLLMLatencyP95High": "runbook-llm-provider-errors",
}
#: The alert name of the SLO burn-rate alerts (as the rules and Prometheus' ALERTS series name them).
SLO_BURN_ALERT = "SLOErrorBudgetBurn"


def runbook_url(name: str) -> str:
    """A relative URL opening the Runbooks page on the runbook ``name`` (a file stem)."""
    return _url("runbooks", {"name": name})


def runbook_name(severity: str | None, alertname: str = SLO_BURN_ALERT) -> str | None:
    """The runbook stem of an alert: a burn-rate alert's by its severity (``page`` -> fast burn,
    ``ticket`` -> slow burn), an operational alert's by its name; None when it has none."""
    if alertname == SLO_BURN_ALERT:
        return RUNBOOK_BY_SEVERITY.get(severity or "")
    return RUNBOOK_BY_ALERT.get(alertname)


def runbook_link(severity: str | None, alertname: str = SLO_BURN_ALERT) -> str | None:
    """The Runbooks page URL of an alert (an SLO's burn-rate alert episode by its severity, or a
    Prometheus ``ALERTS`` series by its ``alertname`` and ``severity`` labels); None without one."""
    name = runbook_name(severity, alertname)
    return None if name is None else runbook_url(name)


# -- traces filtered by a link ----------------------------------------------------------------------

#: The request dimensions a Traces link can filter on (the SLO attribution's), besides status and task.
LINK_DIMENSIONS: tuple[str, ...] = ("agent", "provider", "router", "variant")
_KNOWN: dict[str, tuple[str, ...]] = {
    "task": tuple(TASK_LABELS),
    "agent": AGENTS,
    "provider": PROVIDERS,
    "router": ROUTERS,
    "verdict": VERDICTS,
}
_VARIANT = re.compile(r"^[A-Za-z0-9_.:@+-]{1,100}$")
_MAX_TS = 1e11  # unix seconds: year 5138


@dataclass(frozen=True, slots=True)
class TracesLink:
    """What a Traces filter link (``/traces?status=error&task=game24&agent=hrm&provider=...
    &router=...&variant=...&verdict=...&over_ms=...&since=...&until=...``) asks for; None where
    the link says nothing usable.  ``statuses`` empty: any.  ``agent`` .. ``variant`` may be
    :data:`~observability.traces.NO_VALUE` (requests without one, except for the task).
    ``over_ms``: latency strictly above it (ms).  ``since``/``until`` (unix s): ``since < ts <=
    until``, an SLO window.  ``problems``: one line per value ignored."""

    statuses: tuple[str, ...] = ()
    task: str | None = None
    verdict: str | None = None
    agent: str | None = None
    provider: str | None = None
    router: str | None = None
    variant: str | None = None
    over_ms: float | None = None
    since: float | None = None
    until: float | None = None
    problems: tuple[str, ...] = ()

    def filters(self) -> dict[str, Any]:
        """The link's filters as :class:`~observability.traces.TraceFilter` fields, besides the
        ones the page has widgets for (statuses, task): verdict, dimensions, latency, time range."""
        values = {
            "verdict": self.verdict, "agent": self.agent, "provider": self.provider, "router": self.router,
            "variant": self.variant, "over_latency_ms": self.over_ms, "after_ts": self.since,
            "until_ts": self.until,
        }  # fmt: skip
        return {k: v for k, v in values.items() if v is not None}


def _timestamp(params: Mapping[str, str], key: str, problems: list[str]) -> float | None:
    """A unix time (s) or an ISO 8601 date-time (UTC unless it names its zone), else a problem."""
    raw = params.get(key)
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            at = datetime.fromisoformat(raw.strip())
        except ValueError:
            problems.append(f"Ignored the link's {key}={raw!r}: not a unix time or an ISO 8601 date-time.")
            return None
        value = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    if not (math.isfinite(value) and 0 <= value <= _MAX_TS):
        problems.append(f"Ignored the link's {key}={raw!r}: not a time between 1970 and {_MAX_TS:.0f}.")
        return None
    return value


def _choice(params: Mapping[str, str], key: str, problems: list[str]) -> str | None:
    """A link value that must be one of the known names (agents, routers, ...), or the no-value
    marker for a dimension; else a problem naming the known ones."""
    raw = params.get(key)
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if key in LINK_DIMENSIONS and value == NO_VALUE:
        return value
    if key == "variant":
        if _VARIANT.match(value):
            return value
        problems.append(f"Ignored the link's variant={raw!r}: not a variant name.")
        return None
    if value in _KNOWN[key]:
        return value
    problems.append(f"Ignored the link's {key}={raw!r}: not one of {', '.join(_KNOWN[key])}.")
    return None


def parse_traces_link(params: Mapping[str, str]) -> TracesLink:
    """The Traces page's filter link (see :class:`TracesLink`).  ``status`` is a comma-separated
    list; unknown statuses, tasks, verdicts, agents, providers and routers, malformed variants,
    numbers and times, and an empty time range are ignored, each with a line in ``problems``."""
    problems: list[str] = []
    statuses: list[str] = []
    for part in (params.get("status") or "").split(","):
        if part.strip() in STATUSES:
            statuses.append(part.strip())
        elif part.strip():
            problems.append(f"Ignored the link's status {part.strip()!r}: not one of {', '.join(STATUSES)}.")
    over = _real(params, "over_ms", problems)
    if over is not None and not (math.isfinite(over) and over >= 0):
        problems.append(f"Ignored the link's over_ms={params['over_ms']!r}: not a latency in ms.")
        over = None
    since, until = _timestamp(params, "since", problems), _timestamp(params, "until", problems)
    if since is not None and until is not None and since >= until:
        problems.append("Ignored the link's since and until: the range is empty (since is not before until).")
        since = until = None
    return TracesLink(
        statuses=tuple(dict.fromkeys(statuses)),
        **{key: _choice(params, key, problems) for key in ("task", "verdict", *LINK_DIMENSIONS)},
        over_ms=over,
        since=since,
        until=until,
        problems=tuple(problems),
    )


def traces_url(
    *,
    statuses: tuple[str, ...] = (),
    since: float | None = None,
    until: float | None = None,
    over_ms: float | None = None,
    **values: str | None,
) -> str:
    """A relative URL opening the Traces page filtered by ``statuses``, a time range ``since < ts
    <= until`` (unix s), a latency above ``over_ms`` and ``values`` (task, verdict, agent,
    provider, router, variant); :func:`parse_traces_link` reads it back."""
    params: dict[str, Any] = {"status": ",".join(statuses) or None, **values}
    params |= {"over_ms": None if over_ms is None else f"{over_ms:g}"}
    params |= {"since": None if since is None else f"{since:.6f}".rstrip("0").rstrip(".")}
    params |= {"until": None if until is None else f"{until:.6f}".rstrip("0").rstrip(".")}
    return _url("traces", params)


def bad_events_url(
    kind: str, threshold_s: float | None, dimension: str, value: str, since: float, until: float
) -> str | None:
    """The Traces page listing an SLO's bad events in ``since < ts <= until`` whose attribution
    ``dimension`` (task, agent, provider, router, variant) is ``value``: availability, the
    errors; latency, the served requests slower than the threshold; quality, the served
    requests answered incorrectly.  None for a value a link cannot select (a task of none, or
    an unknown kind)."""
    if dimension == "task" and value == NO_VALUE:
        return None
    served = tuple(s for s in STATUSES if s in ("ok", "error"))
    if kind == "availability":
        bad: dict[str, Any] = {"statuses": ("error",)}
    elif kind == "latency" and threshold_s is not None:
        bad = {"statuses": served, "over_ms": threshold_s * 1000.0}
    elif kind == "quality":
        bad = {"statuses": served, "verdict": "incorrect"}
    else:
        return None
    return traces_url(since=since, until=until, **bad, **{dimension: value})
