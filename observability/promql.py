"""The console's Prometheus queries, through prometheus-api-client.

Every query is a named constant (a :class:`string.Template` text with ``$window`` and, for the
quantile, ``$q``), so tests can check that each metric it reads is declared in
:data:`observability.metrics.METRIC_NAMES`.

Counts over a window ("how many requests in the last hour") use an exact form instead of
``increase()``: per series, the value now minus the value one window ago (0 when the series did
not exist yet), falling back to ``increase()`` for series whose counter reset inside the window
(a restarted process). ``increase()`` extrapolates to the window's edges and misses the first
value of a series born inside the window, so it never equals the store's exact count; the
exact form does, as long as Prometheus scraped the series from its start. Rates and quantiles
are Prometheus' usual ``rate()`` and ``histogram_quantile()`` (interpolated within buckets).

``PromSource.status()`` returns a value, never raises: the Overview page shows it and falls back
to SQLite. The query methods raise :class:`PromSourceError` when Prometheus cannot answer, and
return None (or an empty dict) when it answers without data.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from string import Template
from typing import Any

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

__all__ = [
    "AGENT_MIX_QUERY",
    "ALL_QUERIES",
    "COST_QUERY",
    "ERROR_RATIO_QUERY",
    "ITERATIONS_QUERY",
    "LATENCY_QUANTILE_QUERY",
    "REQUEST_COUNT_QUERY",
    "REQUEST_RATE_QUERY",
    "TOKENS_QUERY",
    "PromSource",
    "PromSourceError",
    "SourceStatus",
    "render_query",
    "window_count",
]


def window_count(selector: str) -> str:
    """PromQL for how much each counter series of ``selector`` grew over ``$window``, exactly.

    ``(now - (a window ago, or 0 for series born since)) unless the series reset``, plus
    ``increase()`` for the series left out (reset in the window, or gone by now).
    """
    return (
        f"(\n    ({selector} - ({selector} offset $window or {selector} * 0))\n"
        f"    unless (resets({selector}[$window]) > 0)\n  )\n"
        f"  or increase({selector}[$window])"
    )


#: Requests per second, averaged over the window.
REQUEST_RATE_QUERY = "sum(rate(mcts_requests_total[$window]))"
#: Requests finished in the window (exact count, see the module docstring).
REQUEST_COUNT_QUERY = f"sum(\n  {window_count('mcts_requests_total')}\n)"
#: Share of the window's requests with status="error" (0 when none failed; no data without requests).
_ERRORS = window_count('mcts_requests_total{status="error"}')
ERROR_RATIO_QUERY = f"(\n  sum(\n  {_ERRORS}\n  )\n  or vector(0)\n)\n/\n{REQUEST_COUNT_QUERY}"
#: The q-quantile of request latency in seconds over the window.
LATENCY_QUANTILE_QUERY = (
    "histogram_quantile($q, sum by (le) (rate(mcts_request_duration_seconds_bucket[$window])))"
)
#: Agent invocations in the window, by agent.
AGENT_MIX_QUERY = f"sum by (agent) (\n  {window_count('mcts_agent_requests_total')}\n)"
#: LLM tokens in the window, by direction (input, output).
TOKENS_QUERY = f"sum by (direction) (\n  {window_count('mcts_llm_tokens_total')}\n)"
#: Estimated LLM cost in US dollars over the window.
COST_QUERY = f"sum(\n  {window_count('mcts_llm_cost_usd_total')}\n)"
#: MCTS iterations run in the window.
ITERATIONS_QUERY = f"sum(\n  {window_count('mcts_iterations_total')}\n)"

#: Every query the console runs, by name.
ALL_QUERIES: dict[str, str] = {
    "REQUEST_RATE_QUERY": REQUEST_RATE_QUERY,
    "REQUEST_COUNT_QUERY": REQUEST_COUNT_QUERY,
    "ERROR_RATIO_QUERY": ERROR_RATIO_QUERY,
    "LATENCY_QUANTILE_QUERY": LATENCY_QUANTILE_QUERY,
    "AGENT_MIX_QUERY": AGENT_MIX_QUERY,
    "TOKENS_QUERY": TOKENS_QUERY,
    "COST_QUERY": COST_QUERY,
    "ITERATIONS_QUERY": ITERATIONS_QUERY,
}

_WINDOW = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")


def render_query(query: str, window: str, q: float | None = None) -> str:
    """Fill a query constant's ``$window`` (a Prometheus duration such as ``5m`` or ``1h30m``) and ``$q``.

    Raises ValueError for a malformed window or a quantile outside (0, 1), so that user input
    never reaches PromQL unchecked.
    """
    if not isinstance(window, str) or not _WINDOW.match(window) or not re.search(r"[1-9]", window):
        raise ValueError(f"window must be a Prometheus duration such as 5m, 1h or 7d, got {window!r}")
    params = {"window": window}
    if "$q" in query:
        if q is None or isinstance(q, bool) or not 0.0 < float(q) < 1.0:
            raise ValueError(f"quantile must be strictly between 0 and 1, got {q!r}")
        params["q"] = repr(float(q))
    return Template(query).substitute(params)


@dataclass(frozen=True)
class SourceStatus:
    """Whether the Prometheus source can be used, and a message for the page."""

    ok: bool
    message: str


class PromSourceError(RuntimeError):
    """Prometheus could not answer a query (unreachable, timed out, or an error response)."""


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def _reason(exc: BaseException, timeout_s: float) -> str:
    """A short human reason for a failed request (no stack of urllib3 wrappers)."""
    if isinstance(exc, requests.exceptions.Timeout):
        return f"no answer within {timeout_s:g}s"
    if isinstance(exc, requests.exceptions.ConnectionError):
        found = _ERRNO.findall(str(exc))
        return found[-1].strip() if found else "connection failed"
    if isinstance(exc, PrometheusApiClientException):
        return f"error response: {str(exc)[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _number(text: Any) -> float | None:
    """A sample value as a float, None when it is NaN or infinite (no meaningful data)."""
    value = float(text)
    return value if math.isfinite(value) else None


class PromSource:
    """The console's view of one Prometheus server (``ARBOR_PROMETHEUS_URL``)."""

    def __init__(self, url: str, timeout_s: float = 2) -> None:
        if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
            raise ValueError(f"Prometheus URL must look like http://host:port, got {url!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        # No retries: a page must learn quickly that Prometheus is down and fall back to SQLite.
        self._client = PrometheusConnect(
            url=self.url, timeout=self.timeout_s, retry=Retry(total=0, connect=0, read=0, redirect=0)
        )

    def close(self) -> None:
        """Release the HTTP session."""
        self._client.close()

    def __enter__(self) -> PromSource:
        """Use as a context manager that closes the session."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the session."""
        self.close()

    # -- plumbing --------------------------------------------------------------------------

    def _query(self, query: str) -> list[dict[str, Any]]:
        """Run an instant query; PromSourceError when Prometheus cannot answer."""
        try:
            result = self._client.custom_query(query)
        except (requests.exceptions.RequestException, PrometheusApiClientException, ValueError) as exc:
            raise PromSourceError(f"Prometheus at {self.url}: {_reason(exc, self.timeout_s)}") from exc
        if not isinstance(result, list):
            raise PromSourceError(f"Prometheus at {self.url}: unexpected answer to an instant query")
        return result

    def _scalar(self, query: str) -> float | None:
        """The value of a query returning at most one series; None without data."""
        result = self._query(query)
        if not result:
            return None
        return _number(result[0]["value"][1])

    def _by_label(self, query: str, label: str) -> dict[str, float]:
        """A query returning one series per value of ``label``, as a dict (NaN values dropped)."""
        out: dict[str, float] = {}
        for series in self._query(query):
            value = _number(series["value"][1])
            if value is not None:
                out[series["metric"].get(label, "")] = value
        return dict(sorted(out.items()))

    # -- public ----------------------------------------------------------------------------

    def status(self) -> SourceStatus:
        """Whether Prometheus answers queries; an unreachable server is a value, not an exception."""
        try:
            result = self._client.custom_query("vector(1)")
        except (requests.exceptions.RequestException, PrometheusApiClientException, ValueError) as exc:
            return SourceStatus(
                False, f"Prometheus at {self.url} is unreachable: {_reason(exc, self.timeout_s)}"
            )
        if not (isinstance(result, list) and result and float(result[0]["value"][1]) == 1.0):
            return SourceStatus(False, f"{self.url} answered, but not like a Prometheus query API")
        return SourceStatus(True, f"connected to Prometheus at {self.url}")

    def request_rate(self, window: str) -> float | None:
        """Requests per second over ``window``; None when no request was ever counted."""
        return self._scalar(render_query(REQUEST_RATE_QUERY, window))

    def request_count(self, window: str) -> float | None:
        """Requests finished in ``window`` (exact, see the module docstring); None without data."""
        return self._scalar(render_query(REQUEST_COUNT_QUERY, window))

    def error_ratio(self, window: str) -> float | None:
        """Share of ``window``'s requests that failed; None when there was no request."""
        return self._scalar(render_query(ERROR_RATIO_QUERY, window))

    def latency_quantile(self, q: float, window: str) -> float | None:
        """The ``q``-quantile of request latency over ``window``, in seconds; None without requests."""
        return self._scalar(render_query(LATENCY_QUANTILE_QUERY, window, q=q))

    def agent_mix(self, window: str) -> dict[str, float]:
        """Agent invocations in ``window`` by agent (empty without data)."""
        return self._by_label(render_query(AGENT_MIX_QUERY, window), "agent")

    def tokens(self, window: str) -> dict[str, float]:
        """LLM tokens in ``window`` by direction (``input``, ``output``); empty without data."""
        return self._by_label(render_query(TOKENS_QUERY, window), "direction")

    def cost_usd(self, window: str) -> float | None:
        """Estimated LLM cost in ``window`` in US dollars; None without data."""
        return self._scalar(render_query(COST_QUERY, window))

    def iterations(self, window: str) -> float | None:
        """MCTS iterations run in ``window``; None without data."""
        return self._scalar(render_query(ITERATIONS_QUERY, window))
