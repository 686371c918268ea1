"""Links between the console's pages: the URLs that open a page on a request or a search, and the
parsing of the query parameters a page is opened with (deep links).

Pure (no streamlit import): pages hand in ``st.query_params`` (any mapping of str to str) and apply
the parsed values to their widgets; a value that cannot be used comes back as a problem line to
show, never as an exception.  URLs are relative and URL-encoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

from app.names import CONSOLE_TASKS, EXPLORER_TASKS, ROUTERS, SELECTIONS
from engine.models import QueryRequest, strip_task_prefix
from observability.traces import MctsRunInfo, TraceDetail

__all__ = [
    "ExplorerLink",
    "QueryLink",
    "TraceLink",
    "explorer_link_params",
    "explorer_url",
    "parse_explorer_link",
    "parse_query_link",
    "parse_trace_link",
    "query_link_params",
    "replay_url",
    "runbook_link",
    "runbook_name",
    "runbook_url",
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
