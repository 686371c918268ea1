"""Links between the console's pages: the URLs that open a page on a request or a search, and the
parsing of the query parameters a page is opened with (deep links).

Pure (no streamlit import): pages hand in ``st.query_params`` (any mapping of str to str) and apply
the parsed values to their widgets; a value that cannot be used comes back as a problem line to
show, never as an exception.  URLs are relative and URL-encoded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from app.names import AGENTS, CONSOLE_TASKS, EXPLORER_TASKS, PROVIDERS, ROUTERS, SELECTIONS, TASK_LABELS
from engine.explorer import ExploreRequest
from engine.models import QueryRequest, strip_task_prefix
from observability.trace_filter import NO_VALUE, STATUSES, VERDICTS
from observability.traces import MctsRunInfo, TraceDetail

__all__ = [
    "LINK_DIMENSIONS",
    "PAGE_PARAMS",
    "RUNBOOK_BY_ALERT",
    "RUNBOOK_BY_SEVERITY",
    "SLO_BURN_ALERT",
    "ExplorerLink",
    "LinkWarning",
    "QueryLink",
    "TraceLink",
    "TracesLink",
    "bad_events_url",
    "explorer_link_params",
    "explorer_url",
    "link_choice",
    "link_number",
    "parse_experiment_link",
    "parse_explorer_link",
    "parse_query_link",
    "parse_runbook_link",
    "parse_trace_link",
    "parse_traces_link",
    "query_link_params",
    "replay_url",
    "runbook_link",
    "runbook_name",
    "runbook_url",
    "traces_url",
    "unknown_params",
    "url_params",
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


# -- deep-link values: every value not used as given comes back as a warning ------------------------
#
# One rule for every page: a number outside its range is CLAMPED to the nearest bound when it is an
# amount (iterations, the exploration constant c, a latency threshold); anything else that cannot be
# used -- not a number, an unknown name, a seed or a time out of range, text too long -- is IGNORED
# and the page's default used.  Each case is a :class:`LinkWarning` naming the parameter, the value
# given and the value used instead; nothing is changed silently.

#: The largest seed a page's number input holds (JavaScript's largest exact integer).
MAX_SEED = 2**53 - 1
_SHOWN_CHARS = 80  # how much of a rejected value a warning quotes


@dataclass(frozen=True, slots=True)
class LinkWarning:
    """A deep-link (or form) value the page did not use as given: ``param`` and its ``value`` (as
    given), the value ``used`` instead (as shown to the reader; empty: nothing is used in its place,
    e.g. a parameter the page does not read), whether it was ``clamped`` to a
    bound or ``ignored``, and ``reason``, why."""

    param: str
    value: str
    used: str
    action: Literal["clamped", "ignored"]
    reason: str

    @property
    def text(self) -> str:
        """One line for the reader (shown as plain text; the value quoted, cut at 80 chars)."""
        value = self.value if len(self.value) <= _SHOWN_CHARS else self.value[: _SHOWN_CHARS - 1] + "…"
        head = f"Link parameter {self.param}={value!r} {self.reason}: {self.action}"
        return f"{head}, using {self.used} instead." if self.used else f"{head}."


def link_number(
    params: Mapping[str, str],
    key: str,
    warnings: list[LinkWarning],
    *,
    whole: bool,
    low: float,
    high: float,
    default: str,
    clamp: bool,
) -> Any:
    """``params[key]`` as a whole number (``whole``) or a finite real number in ``low..high``;
    None when absent or empty.  A value that does not parse is ignored (``default``, how the
    page's default reads, is used); one out of range is clamped to the nearest bound with
    ``clamp`` (amounts), else ignored (seeds, times).  Each adds a warning to ``warnings``."""
    raw = params.get(key)
    if raw is None or not raw.strip():
        return None
    kind = "a whole number" if whole else "a number"
    try:
        value: float = int(raw) if whole else float(raw)
    except ValueError:
        warnings.append(LinkWarning(key, raw, default, "ignored", f"is not {kind}"))
        return None
    if not math.isfinite(value):
        warnings.append(LinkWarning(key, raw, default, "ignored", f"is not {kind}"))
        return None
    shown = (lambda x: f"{x:,}") if whole else (lambda x: f"{x:g}")
    if low <= value <= high:
        return value
    bound = low if value < low else high
    reason = f"is {'below the smallest' if value < low else 'above the largest'} value, {shown(bound)}"
    if not clamp:
        warnings.append(LinkWarning(key, raw, default, "ignored", reason))
        return None
    bound = int(bound) if whole else float(bound)
    warnings.append(LinkWarning(key, raw, shown(bound), "clamped", reason))
    return bound


def link_choice(
    params: Mapping[str, str],
    key: str,
    choices: Sequence[str],
    warnings: list[LinkWarning],
    *,
    default: str,
) -> str | None:
    """``params[key]`` when it is one of ``choices`` (after trimming spaces); None when absent or
    empty; otherwise ignored with a warning naming the choices (``default``: how the page's
    default reads)."""
    raw = params.get(key)
    if raw is None or not raw.strip():
        return None
    if raw.strip() in choices:
        return raw.strip()
    listed = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", …"
    warnings.append(LinkWarning(key, raw, default, "ignored", f"is not one of {listed}"))
    return None


def _text(
    params: Mapping[str, str], key: str, warnings: list[LinkWarning], *, limit: int, default: str
) -> str | None:
    """``params[key]`` when non-empty and at most ``limit`` characters, else None (a longer one is
    ignored with a warning)."""
    raw = params.get(key)
    if not raw:
        return None
    if len(raw) > limit:
        warnings.append(LinkWarning(key, raw, default, "ignored", f"is longer than {limit:,} characters"))
        return None
    return raw


def _range_of(model: Any, field: str) -> tuple[float, float]:
    """The inclusive (low, high) bounds of a pydantic model's numeric field (its ge/gt/le/lt)."""
    low, high = -math.inf, math.inf
    for rule in model.model_fields[field].metadata:
        low = getattr(rule, "ge", None) if getattr(rule, "ge", None) is not None else low
        low = rule.gt + 1 if getattr(rule, "gt", None) is not None else low
        high = getattr(rule, "le", None) if getattr(rule, "le", None) is not None else high
        high = rule.lt - 1 if getattr(rule, "lt", None) is not None else high
    return low, high


def _model_number(
    params: Mapping[str, str],
    key: str,
    warnings: list[LinkWarning],
    model: Any,
    field: str,
    *,
    whole: bool,
    default: str,
    clamp: bool,
    cap: float = math.inf,
) -> Any:
    """:func:`link_number` within the bounds of ``model.field`` (at most ``cap``)."""
    low, high = _range_of(model, field)
    return link_number(
        params, key, warnings, whole=whole, low=low, high=min(high, cap), default=default, clamp=clamp
    )


def _max_length(model: Any, field: str) -> int:
    """The max_length of a pydantic model's string field."""
    return next(rule.max_length for rule in model.model_fields[field].metadata if hasattr(rule, "max_length"))


@dataclass(frozen=True, slots=True)
class QueryLink:
    """What a Query console link (``/?q=...&task=...&seed=...&router=...&iterations=...``) asks
    for; None where the link says nothing usable.  ``warnings``: one per value not used as given."""

    query: str | None = None
    task: str | None = None
    router: str | None = None
    seed: int | None = None
    iterations: int | None = None
    warnings: tuple[LinkWarning, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """The warnings as lines of text."""
        return tuple(w.text for w in self.warnings)


@dataclass(frozen=True, slots=True)
class ExplorerLink:
    """What an MCTS explorer link (``/mcts?task=...&position=...&iterations=...&seed=...&c=...
    &selection=...``) asks for; None where the link says nothing usable.  ``position`` is set
    (possibly empty) only with a known task.  ``warnings``: one per value not used as given."""

    task: str | None = None
    position: str | None = None
    iterations: int | None = None
    seed: int | None = None
    c: float | None = None
    selection: str | None = None
    warnings: tuple[LinkWarning, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """The warnings as lines of text."""
        return tuple(w.text for w in self.warnings)


def _seed_default(seed: int | None) -> str:
    return "a random seed" if seed is None else f"seed {seed}"


def parse_query_link(params: Mapping[str, str], *, default_iterations: int = 1000) -> QueryLink:
    """The Query console's deep link: ``q`` (1..10,000 characters), ``task`` (a console task),
    ``router`` (a known router), ``seed`` (0..2^53-1) and ``iterations`` (the request's range,
    1..10,000).  Iterations out of range are clamped; anything else unusable is ignored (the
    form's default kept: Auto-detect, the first router, a random seed, ``default_iterations``);
    each with a warning."""
    warnings: list[LinkWarning] = []
    query = _text(
        params, "q", warnings, limit=_max_length(QueryRequest, "query"), default="the example query"
    )
    task = link_choice(params, "task", tuple(CONSOLE_TASKS), warnings, default=CONSOLE_TASKS["auto"])
    router = link_choice(params, "router", ROUTERS, warnings, default=ROUTERS[0])
    seed = _model_number(
        params, "seed", warnings, QueryRequest, "seed", whole=True, default=_seed_default(None),
        clamp=False, cap=MAX_SEED,
    )  # fmt: skip
    iterations = _model_number(
        params, "iterations", warnings, QueryRequest, "mcts_iterations", whole=True,
        default=f"{default_iterations:,}", clamp=True,
    )  # fmt: skip
    return QueryLink(query, task, router, seed, iterations, tuple(warnings))


def parse_explorer_link(
    params: Mapping[str, str],
    *,
    default_iterations: int = 1000,
    default_c: float = 1.414,
    default_seed: int | None = None,
) -> ExplorerLink:
    """The MCTS explorer's deep link: ``task`` (an explorer task) with ``position`` (at most
    10,000 characters), ``iterations`` (1..100,000) and ``c`` (0..100) clamped into range,
    ``seed`` (0..2^53-1) and ``selection`` (ucb1 or puct) ignored when unusable (the form's
    defaults kept: ``default_*``, ucb1, the first task); each with a warning."""
    warnings: list[LinkWarning] = []
    task = link_choice(params, "task", EXPLORER_TASKS, warnings, default=EXPLORER_TASKS[0])
    position = None
    if task is not None:
        limit = _max_length(ExploreRequest, "position")
        position = _text(params, "position", warnings, limit=limit, default="the task's first example")
        position = "" if position is None and not params.get("position") else position
    elif params.get("position"):
        warnings.append(
            LinkWarning(
                "position", params["position"], "the task's first example", "ignored", "comes without a task"
            )
        )
    iterations = _model_number(
        params, "iterations", warnings, ExploreRequest, "iterations", whole=True,
        default=f"{default_iterations:,}", clamp=True,
    )  # fmt: skip
    seed = _model_number(
        params, "seed", warnings, ExploreRequest, "seed", whole=True, default=_seed_default(default_seed),
        clamp=False, cap=MAX_SEED,
    )  # fmt: skip
    c = _model_number(
        params, "c", warnings, ExploreRequest, "c", whole=False, default=f"{default_c:g}", clamp=True
    )
    selection = link_choice(params, "selection", SELECTIONS, warnings, default=SELECTIONS[0])
    return ExplorerLink(task, position, iterations, seed, c, selection, tuple(warnings))


def parse_experiment_link(
    params: Mapping[str, str], ids: Sequence[str]
) -> tuple[str | None, tuple[LinkWarning, ...]]:
    """The Experiments page's ``?experiment=<id>``: one of ``ids`` (None when absent or unknown:
    the first is shown, with a warning)."""
    warnings: list[LinkWarning] = []
    chosen = link_choice(params, "experiment", ids, warnings, default=f"{ids[0]!r}" if ids else "none")
    return chosen, tuple(warnings)


def parse_runbook_link(
    params: Mapping[str, str], names: Sequence[str]
) -> tuple[str | None, tuple[LinkWarning, ...]]:
    """The Runbooks page's ``?name=<runbook>``: one of ``names`` (None when absent or unknown:
    the list is shown, with a warning)."""
    warnings: list[LinkWarning] = []
    name = link_choice(params, "name", names, warnings, default="none (the list of runbooks)")
    return name, tuple(warnings)


#: The query parameters each page reads, by its URL path ("" is the Query console); any other
#: parameter in a link is ignored with a warning (:func:`unknown_params`).
PAGE_PARAMS: dict[str, tuple[str, ...]] = {
    "": ("q", "task", "router", "seed", "iterations"),
    "mcts": ("task", "position", "iterations", "seed", "c", "selection"),
    "traces": (
        "trace", "request", "status", "task", "verdict", "agent", "provider", "router", "variant",
        "experiment", "correlation", "over_ms", "since", "until",
    ),
    "slos": ("slo", "range", "as_of"),
    "golden": ("trace",),
    "experiments": ("experiment",),
    "runbooks": ("name",),
    "routing": (),
    "overview": (),
}  # fmt: skip


def unknown_params(page: str, params: Mapping[str, str]) -> tuple[LinkWarning, ...]:
    """A warning for each parameter of ``params`` that the page at URL path ``page`` does not read
    (a page not in :data:`PAGE_PARAMS` is not checked)."""
    known = PAGE_PARAMS.get(page)
    if known is None:
        return ()
    reads = ", ".join(known) if known else "no parameters"
    return tuple(
        LinkWarning(key, params[key], "", "ignored", f"is not read by this page (it reads {reads})")
        for key in params
        if key not in known
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
_ID = re.compile(r"^[A-Za-z0-9_.:@+-]{1,128}$")  # an experiment's or canary's id, a correlation id
_MAX_TS = 1e11  # unix seconds: year 5138


@dataclass(frozen=True, slots=True)
class TracesLink:
    """What a Traces filter link (``/traces?status=error&task=game24&agent=hrm&provider=...
    &router=...&variant=...&experiment=...&correlation=...&verdict=...&over_ms=...&since=...
    &until=...``) asks for; None where the link says nothing usable.  ``experiment`` (an
    experiment's or canary's id) and ``correlation`` (a correlation id) match exactly.
    ``statuses`` empty: any.  ``agent`` .. ``variant`` may be
    :data:`~observability.traces.NO_VALUE` (requests without one, except for the task).
    ``over_ms``: latency strictly above it (ms).  ``since``/``until`` (unix s): ``since < ts <=
    until``, an SLO window.  ``warnings``: one per value not used as given."""

    statuses: tuple[str, ...] = ()
    task: str | None = None
    verdict: str | None = None
    agent: str | None = None
    provider: str | None = None
    router: str | None = None
    variant: str | None = None
    experiment: str | None = None
    correlation: str | None = None
    over_ms: float | None = None
    since: float | None = None
    until: float | None = None
    warnings: tuple[LinkWarning, ...] = ()

    @property
    def problems(self) -> tuple[str, ...]:
        """The warnings as lines of text."""
        return tuple(w.text for w in self.warnings)

    def filters(self) -> dict[str, Any]:
        """The link's filters as :class:`~observability.traces.TraceFilter` fields, besides the
        ones the page has widgets for (statuses, task): verdict, dimensions, latency, time range."""
        values = {
            "verdict": self.verdict, "agent": self.agent, "provider": self.provider, "router": self.router,
            "variant": self.variant, "over_latency_ms": self.over_ms, "after_ts": self.since,
            "until_ts": self.until, "experiment": self.experiment, "correlation_id": self.correlation,
        }  # fmt: skip
        return {k: v for k, v in values.items() if v is not None}


def _timestamp(params: Mapping[str, str], key: str, warnings: list[LinkWarning]) -> float | None:
    """A unix time (s) or an ISO 8601 date-time (UTC unless it names its zone), else ignored with
    a warning (no bound on that side of the time range)."""
    raw = params.get(key)
    if raw is None or not raw.strip():
        return None
    unbounded = "no " + ("start" if key == "since" else "end") + " to the time range"
    try:
        value = float(raw)
    except ValueError:
        try:
            at = datetime.fromisoformat(raw.strip())
        except ValueError:
            warnings.append(
                LinkWarning(key, raw, unbounded, "ignored", "is not a unix time or an ISO 8601 date-time")
            )
            return None
        value = (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
    if not (math.isfinite(value) and 0 <= value <= _MAX_TS):
        warnings.append(
            LinkWarning(key, raw, unbounded, "ignored", f"is not a time between 1970 and {_MAX_TS:.0f}")
        )
        return None
    return value


def _choice(params: Mapping[str, str], key: str, warnings: list[LinkWarning]) -> str | None:
    """A link value that must be one of the known names (agents, routers, ...), or the no-value
    marker for a dimension; else ignored (no filter on it) with a warning naming the known ones."""
    raw = params.get(key)
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if key in LINK_DIMENSIONS and value == NO_VALUE:
        return value
    if key == "variant":
        if _VARIANT.match(value):
            return value
        warnings.append(LinkWarning(key, raw, "any variant", "ignored", "is not a variant name"))
        return None
    return link_choice(params, key, _KNOWN[key], warnings, default=f"any {key}")


def _id(params: Mapping[str, str], key: str, warnings: list[LinkWarning]) -> str | None:
    """An experiment, canary or correlation id from a link, else ignored (no filter) with a warning."""
    raw = params.get(key)
    if raw is None or not raw.strip():
        return None
    if _ID.match(raw.strip()):
        return raw.strip()
    reason = "is not an id (1-128 of A-Z a-z 0-9 _ . : @ + -)"
    warnings.append(LinkWarning(key, raw, f"any {key}", "ignored", reason))
    return None


def parse_traces_link(params: Mapping[str, str]) -> TracesLink:
    """The Traces page's filter link (see :class:`TracesLink`).  ``status`` is a comma-separated
    list; unknown statuses, tasks, verdicts, agents, providers and routers, malformed variants,
    numbers and times, and an empty time range are ignored (no filter on them), a negative
    latency is clamped to 0; each with a warning."""
    warnings: list[LinkWarning] = []
    statuses: list[str] = []
    for part in (params.get("status") or "").split(","):
        if part.strip() in STATUSES:
            statuses.append(part.strip())
        elif part.strip():
            reason = f"is not one of {', '.join(STATUSES)}"
            warnings.append(LinkWarning("status", part.strip(), "the other statuses", "ignored", reason))
    over = link_number(
        params,
        "over_ms",
        warnings,
        whole=False,
        low=0.0,
        high=math.inf,
        default="no latency filter",
        clamp=True,
    )
    since, until = _timestamp(params, "since", warnings), _timestamp(params, "until", warnings)
    if since is not None and until is not None and since >= until:
        warnings.append(
            LinkWarning(
                "since", params["since"], "no time range", "ignored",
                f"is not before until={params['until']!r} (the range is empty)",
            )
        )  # fmt: skip
        since = until = None
    return TracesLink(
        statuses=tuple(dict.fromkeys(statuses)),
        **{key: _choice(params, key, warnings) for key in ("task", "verdict", *LINK_DIMENSIONS)},
        experiment=_id(params, "experiment", warnings),
        correlation=_id(params, "correlation", warnings),
        over_ms=over,
        since=since,
        until=until,
        warnings=tuple(warnings),
    )


def url_params(url: str) -> dict[str, str]:
    """The query parameters of a relative URL made here (for ``st.page_link(query_params=...)``)."""
    return dict(parse_qsl(urlsplit(url).query))


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
    provider, router, variant, experiment, correlation); :func:`parse_traces_link` reads it back."""
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
