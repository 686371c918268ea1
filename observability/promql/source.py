"""The console's view of one Prometheus server: its status and the figures the pages show,
each checked against what it means.

Query methods raise :class:`~observability.promql.reply.PromSourceError`, whose message is one of
``"Prometheus at URL is unreachable: REASON"`` (no connection) or ``"Prometheus at URL answered
something unusable: REASON"`` (anything malformed, too slow, too big, an HTTP or Prometheus
error); they return None (or an empty dict) when Prometheus answers without data.
Every instant figure takes ``at`` (unix s; None: Prometheus' now), the end of its window;
:meth:`PromSource.range_values` evaluates a query on a grid of times (a range query).
``PromSource.status()`` returns the same messages as a value and never raises: the pages show it
and fall back to SQLite.  URLs in messages are masked (:func:`observability.redaction.redact_url`:
a password in the URL, token-like query parameters); server-provided text is shortened and
stripped of markup characters.

Sample values are strings as Prometheus writes them: ``"NaN"`` means "no data" (a quantile of an
empty histogram, 0/0) and becomes None; ``"+Inf"`` and ``"-Inf"`` are unusable for every figure
the console shows, as are negative counts, rates, costs or latencies, an error ratio above 1,
several series where a sum gives one, or a label value that comes twice.  The transport (deadline,
size bound) is :mod:`observability.promql.client`'s, the reply's shape
:mod:`observability.promql.reply`'s.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from observability.promql.client import MAX_REPLY_BYTES, QueryClient
from observability.promql.matrix import RangeGrid, parse_matrix
from observability.promql.queries import (
    AGENT_MIX_QUERY,
    COST_QUERY,
    ERROR_RATIO_QUERY,
    FIRST_SAMPLE_QUERY,
    ITERATIONS_QUERY,
    LATENCY_QUANTILE_QUERY,
    REQUEST_COUNT_QUERY,
    REQUEST_RATE_QUERY,
    TOKENS_QUERY,
    render_query,
)
from observability.promql.reply import PromSourceError, Sample, UnusableReply, excerpt, parse_samples

__all__ = ["PromSource", "SourceStatus"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceStatus:
    """Whether the Prometheus source can be used, and a message for the page."""

    ok: bool
    message: str


class PromSource:
    """The console's view of one Prometheus server (``ARBOR_PROMETHEUS_URL``).

    The arguments are :class:`~observability.promql.client.QueryClient`'s: ``timeout_s`` is the
    total deadline of one query in seconds, credentials are basic auth (``username``/``password``
    or ``user:password@`` in the URL) or a ``bearer_token`` (str or SecretStr), and ``max_bytes``
    bounds a reply.  ``url`` is the URL with its credentials masked, safe to show.  Creating a
    source sends nothing.

    Raises ValueError for a URL that is not ``http(s)://host[:port][/path]``, a timeout that is
    not a positive number, or both basic auth and a bearer token.
    """

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        *,
        username: str | None = None,
        password: object = None,
        bearer_token: object = None,
        max_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        self._client = QueryClient(
            url,
            timeout_s,
            username=username,
            password=password,
            bearer_token=bearer_token,
            max_bytes=max_bytes,
        )
        self.url = self._client.url
        self.timeout_s = self._client.timeout_s
        self.max_bytes = self._client.max_bytes

    def close(self) -> None:
        """Nothing to release (each query opens and closes its own connection); kept for callers
        that use a source as a context manager."""

    def __enter__(self) -> PromSource:
        """Use as a context manager."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the source."""
        self.close()

    def __repr__(self) -> str:
        return f"PromSource({self.url!r}, timeout_s={self.timeout_s:g})"

    # -- plumbing --------------------------------------------------------------------------

    def _unusable(self, reason: str) -> PromSourceError:
        message = f"Prometheus at {self.url} answered something unusable: {reason}"
        log.warning("%s", message)
        return PromSourceError(message, reachable=True)

    def _query(self, query: str, at: float | None = None) -> list[Sample]:
        """Run an instant query at ``at`` (None: the server's now); the validated samples (a
        scalar is one sample without labels).

        Raises PromSourceError when Prometheus cannot be reached or answers something unusable.
        """
        try:
            return parse_samples(*self._client.fetch(query, at=at))
        except UnusableReply as exc:
            raise self._unusable(str(exc)) from None

    def _number(self, text: str, what: str, upper: float | None) -> float | None:
        """A value text checked against what it means: None for NaN (no data)."""
        value = float(text)
        if math.isnan(value):
            return None
        if math.isinf(value) or value < 0 or (upper is not None and value > upper):
            raise self._unusable(f"{what} of {text}")
        return value

    def _value(self, sample: Sample, what: str, upper: float | None) -> float | None:
        """A sample's value checked against what it means: None for NaN (no data)."""
        return self._number(sample.value[1], what, upper)

    def _scalar(
        self, query: str, what: str, upper: float | None = None, at: float | None = None
    ) -> float | None:
        """The value of a query returning at most one series; None without data."""
        result = self._query(query, at)
        if not result:
            return None
        if len(result) > 1:
            raise self._unusable(f"{len(result)} series for {what}, where the query gives at most one")
        return self._value(result[0], what, upper)

    def _by_label(self, query: str, label: str, what: str, at: float | None = None) -> dict[str, float]:
        """A query returning one series per value of ``label``, as a dict (NaN values dropped)."""
        out: dict[str, float] = {}
        for series in self._query(query, at):
            key = series.metric.get(label, "")
            if key in out:
                raise self._unusable(f"two series for {label}={excerpt(key, 40)!r} in {what}")
            value = self._value(series, what, None)
            if value is not None:
                out[key] = value
        return dict(sorted(out.items()))

    # -- public ----------------------------------------------------------------------------

    def status(self) -> SourceStatus:
        """Whether Prometheus answers queries (``vector(1)`` must come back as 1); unreachable or
        unusable is a value with the reason, never an exception."""
        try:
            value = self._scalar("vector(1)", "vector(1)")
        except PromSourceError as exc:
            return SourceStatus(False, str(exc))
        except Exception as exc:  # every page shows this status: it must never raise; logged for a fix
            log.exception("Prometheus status check failed unexpectedly")
            return SourceStatus(False, str(self._unusable(type(exc).__name__)))
        if value != 1.0:
            return SourceStatus(False, str(self._unusable(f"vector(1) came back as {value!r}")))
        return SourceStatus(True, f"connected to Prometheus at {self.url}")

    def request_rate(self, window: str, *, at: float | None = None) -> float | None:
        """Requests per second over ``window``; None when no request was ever counted."""
        return self._scalar(render_query(REQUEST_RATE_QUERY, window), "a request rate", at=at)

    def request_count(self, window: str, *, at: float | None = None) -> float | None:
        """Requests finished in ``window`` (exact, see the module docstring); None without data."""
        return self._scalar(render_query(REQUEST_COUNT_QUERY, window), "a request count", at=at)

    def error_ratio(self, window: str, *, at: float | None = None) -> float | None:
        """Share of ``window``'s requests that failed (0..1); None when there was no request."""
        return self._scalar(render_query(ERROR_RATIO_QUERY, window), "an error ratio", upper=1.0, at=at)

    def latency_quantile(self, q: float, window: str, *, at: float | None = None) -> float | None:
        """The ``q``-quantile of request latency over ``window``, in seconds; None without requests."""
        return self._scalar(render_query(LATENCY_QUANTILE_QUERY, window, q=q), "a latency quantile", at=at)

    def agent_mix(self, window: str, *, at: float | None = None) -> dict[str, float]:
        """Agent invocations in ``window`` by agent (empty without data)."""
        return self._by_label(render_query(AGENT_MIX_QUERY, window), "agent", "the agent mix", at)

    def tokens(self, window: str, *, at: float | None = None) -> dict[str, float]:
        """LLM tokens in ``window`` by direction (``input``, ``output``); empty without data."""
        return self._by_label(render_query(TOKENS_QUERY, window), "direction", "the token counts", at)

    def cost_usd(self, window: str, *, at: float | None = None) -> float | None:
        """Estimated LLM cost in ``window`` in US dollars; None without data."""
        return self._scalar(render_query(COST_QUERY, window), "a cost", at=at)

    def iterations(self, window: str, *, at: float | None = None) -> float | None:
        """MCTS iterations run in ``window``; None without data."""
        return self._scalar(render_query(ITERATIONS_QUERY, window), "an iteration count", at=at)

    def first_sample(self, window: str, res: str, *, at: float | None = None) -> float | None:
        """When (unix s) ``mcts_requests_total`` has its first sample in ``window`` ending at
        ``at``, to within ``res`` (a duration: the subquery's step); None when it has none.  A time
        after ``at`` is unusable."""
        value = self._scalar(render_query(FIRST_SAMPLE_QUERY, window, res=res), "a first-sample time", at=at)
        if value is not None and at is not None and value > at + 1e-3:
            raise self._unusable(f"a first-sample time of {value!r}, after the window's end {at!r}")
        return value

    def range_values(
        self, query: str, grid: RangeGrid, what: str, upper: float | None = None
    ) -> tuple[float | None, ...]:
        """The range query ``query`` (PromQL giving at most one series) evaluated on ``grid``: one
        value per grid time, None where Prometheus has no data (no series yet, NaN).  ``what``
        names the figure in messages; a value above ``upper`` is unusable.

        Raises PromSourceError when Prometheus cannot be reached or answers something unusable:
        not a matrix, several series, a time off the grid, a negative or infinite value.
        """
        try:
            series = parse_matrix(
                *self._client.fetch_range(query, start=grid.start, end=grid.end, step_s=grid.step_s)
            )
            if len(series) > 1:
                raise UnusableReply(f"{len(series)} series for {what}, where the query gives at most one")
            texts = series[0].on_grid(grid) if series else (None,) * grid.points
        except UnusableReply as exc:
            raise self._unusable(str(exc)) from None
        return tuple(None if t is None else self._number(t, what, upper) for t in texts)
