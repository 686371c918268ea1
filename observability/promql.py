"""The console's Prometheus queries, over Prometheus' HTTP API, treating every reply as untrusted.

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

**Prometheus is an untrusted input.**

* *A total deadline per query.*  A query is one ``GET /api/v1/query`` through httpx's asyncio
  client inside ``asyncio.timeout(timeout_s)``: the deadline covers the whole exchange (connect,
  send, headers, every byte of the body), and when it passes the pending read is cancelled.  A
  server that drips its reply one byte at a time cannot stretch it.  (prometheus-api-client,
  used before, goes through requests, whose timeout bounds each socket read separately: a reply
  dripped one byte every 0.7 s kept a page waiting 99 s with a 2 s timeout.  A thread watchdog
  around it would return in time but leave the thread reading until the drip ends.)
* *A bounded body*: at most ``max_bytes`` (default 1 MiB) are read.
* *Validation*: the JSON must match pydantic models of the API's reply: ``status``
  ``"success"`` with ``data.resultType`` ``"vector"`` (items with a ``metric`` label dict and a
  ``value`` ``[timestamp, "number"]``) or ``"scalar"``, or ``status`` ``"error"`` with
  ``errorType`` and ``error``.  Sample values are strings as Prometheus writes them: ``"NaN"``
  means "no data" (a quantile of an empty histogram, 0/0) and becomes None; ``"+Inf"`` and
  ``"-Inf"`` are unusable for every figure the console shows, as are negative counts, rates,
  costs or latencies, an error ratio above 1, several series where a sum gives one, or a
  label value that comes twice.

Query methods raise :class:`PromSourceError`, whose message is one of
``"Prometheus at URL is unreachable: REASON"`` (no connection) or ``"Prometheus at URL answered
something unusable: REASON"`` (anything malformed, too slow, too big, an HTTP or Prometheus
error); they return None (or an empty dict) when Prometheus answers without data.
``PromSource.status()`` returns the same messages as a value and never raises: the pages show it
and fall back to SQLite.  URLs in messages are masked (:func:`observability.redaction.redact_url`:
a password in the URL, token-like query parameters); server-provided text is shortened and
stripped of markup characters.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import math
import os
import re
import socket
import ssl
from collections.abc import Coroutine
from dataclasses import dataclass
from string import Template
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import certifi
import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, TypeAdapter, ValidationError

from observability.durations import parse_duration
from observability.redaction import redact_text, redact_url, url_secrets

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


def render_query(query: str, window: str, q: float | None = None) -> str:
    """Fill a query constant's ``$window`` (a Prometheus duration such as ``5m`` or ``1h30m``) and ``$q``.

    Raises ValueError for a malformed window or a quantile outside (0, 1), so that user input
    never reaches PromQL unchecked.
    """
    try:
        parse_duration(window)
    except ValueError:
        raise ValueError(
            f"window must be a Prometheus duration such as 5m, 1h or 7d, got {window!r}"
        ) from None
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
    """Prometheus could not give a usable answer to a query.

    ``reachable`` is False when no connection could be made (the message then says
    "is unreachable"), True when it answered something unusable (malformed, too slow, too big,
    an HTTP or Prometheus error).
    """

    def __init__(self, message: str, *, reachable: bool = True) -> None:
        super().__init__(message)
        self.reachable = reachable


log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The most bytes of one reply that are read (the console's queries return a few series).
MAX_REPLY_BYTES = 1 << 20

# -- the API's reply, as pydantic models ---------------------------------------------------------

# A sample value as Prometheus writes it (Go's strconv.FormatFloat 'f', -1): decimal, exponent,
# NaN, +Inf, -Inf.  Python's float() alone would also take " 1 ", "1_000" or "infinity".
_PROM_NUMBER = re.compile(r"[+-]?(?:Inf|NaN|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def _prom_number(text: str) -> str:
    """``text`` unchanged if it is a number as Prometheus writes it (read it with ``float``)."""
    if len(text) > 64 or not _PROM_NUMBER.fullmatch(text):
        raise ValueError("not a number as Prometheus writes one")
    return text


PromNumber = Annotated[str, AfterValidator(_prom_number)]
_Label = Annotated[str, Field(max_length=1024)]


class _Sample(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    metric: dict[_Label, _Label]
    value: tuple[StrictFloat, PromNumber]


class _VectorData(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    resultType: Literal["vector"]
    result: list[_Sample]


class _ScalarData(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    resultType: Literal["scalar"]
    result: tuple[StrictFloat, PromNumber]


class _Success(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    status: Literal["success"]
    data: Annotated[_VectorData | _ScalarData, Field(discriminator="resultType")]


class _Failure(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    status: Literal["error"]
    errorType: str = ""
    error: str = ""


_REPLY: TypeAdapter[_Success | _Failure] = TypeAdapter(
    Annotated[_Success | _Failure, Field(discriminator="status")]
)

# -- messages ------------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:;'\"=(){}+\-/%@?&^]")


def _excerpt(text: object, limit: int = 160) -> str:
    """Server-provided text fit for a page: one line, at most ``limit`` characters, no markup."""
    flat = " ".join(str(text).split())
    flat = _UNSAFE.sub("?", flat)
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _first_problem(exc: ValidationError) -> str:
    """The first validation problem as ``where: what`` (``data.result.0.value.1: not a number...``)."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"])
    what = first["msg"].removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return _excerpt(f"{where}: {what}" if where else what) + more


def _connect_reason(exc: BaseException) -> str:
    """A short reason for a failed connection: the system's words for the innermost error
    number (``Connection refused``, ``Name or service not known``), else the error's text."""
    seen: BaseException | None = exc
    reason = ""
    for _ in range(10):  # bounded walk down the chain of wrappers
        if seen is None:
            break
        if isinstance(seen, OSError) and isinstance(seen.errno, int):
            reason = (seen.strerror or "") if isinstance(seen, socket.gaierror) else os.strerror(seen.errno)
        seen = seen.__cause__ or seen.__context__
    return reason or str(exc) or "connection failed"


class _Unusable(Exception):
    """Internal: the reply cannot be used, for the reason in the message."""


# -- the source ----------------------------------------------------------------------------------


def _secret(value: object) -> str | None:
    """The text of a str or SecretStr-like value (None when unset or blank)."""
    getter = getattr(value, "get_secret_value", None)
    text = getter() if callable(getter) else value
    return text if isinstance(text, str) and text else None


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from synchronous code (in a worker thread if this thread
    already runs an event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class PromSource:
    """The console's view of one Prometheus server (``ARBOR_PROMETHEUS_URL``).

    ``timeout_s`` is the total deadline of one query in seconds (connect, send, read the whole
    reply).  Credentials: ``username``/``password`` (basic auth; a ``user:password@`` in the URL
    is used when no username is given) or ``bearer_token`` (an ``Authorization: Bearer``
    header); passwords and tokens may be str or SecretStr.  Query parameters in the URL
    (``?token=...`` for a proxy in front of Prometheus) are sent with every query.  ``url`` is
    the URL with its credentials masked, safe to show.  Creating a source sends nothing.

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
        if not isinstance(url, str):
            raise ValueError("Prometheus URL must be a string such as http://host:9090")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
            hostname = parts.hostname
        except ValueError:
            raise ValueError(
                f"Prometheus URL must look like http://host:port, got {redact_url(url)!r}"
            ) from None
        if parts.scheme not in ("http", "https") or not hostname:
            raise ValueError(f"Prometheus URL must look like http://host:port, got {redact_url(url)!r}")
        if (
            isinstance(timeout_s, bool)
            or not isinstance(timeout_s, int | float)
            or not (math.isfinite(timeout_s) and timeout_s > 0)
        ):
            raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
        user = username if username else (unquote(parts.username) if parts.username else None)
        secret = _secret(password) if username else (unquote(parts.password) if parts.password else None)
        token = _secret(bearer_token)
        if token and user:
            raise ValueError(
                "Prometheus: give either basic auth (user, password) or a bearer token, not both"
            )
        host = f"[{hostname}]" if ":" in hostname else hostname
        netloc = host if port is None else f"{host}:{port}"
        self.url = redact_url(url.strip().rstrip("/"))
        self.timeout_s = float(timeout_s)
        self.max_bytes = max_bytes
        self._endpoint = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}/api/v1/query"
        self._params = parse_qsl(parts.query, keep_blank_values=True)
        self._auth = httpx.BasicAuth(user, secret or "") if user else None
        self._headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        # masked in any error text that might quote them (an HTTP library's message, say)
        self._secrets = tuple(s for s in (*url_secrets(url), secret, token) if s)
        # Built once (loading the CA bundle costs ~20 ms, and httpx builds one per client even for
        # plain http); each query's client uses it.
        self._tls = ssl.create_default_context(cafile=certifi.where())

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

    async def _exchange(self, query: str) -> tuple[int, str, bytes]:
        """Send the query; the status code, content type and body, all within the deadline."""
        connected = False

        async def trace(event: str, info: dict[str, Any]) -> None:
            nonlocal connected
            if event.endswith("connect_tcp.complete"):
                connected = True

        params: list[tuple[str, str | int | float | bool | None]] = [*self._params, ("query", query)]
        client = httpx.AsyncClient(
            auth=self._auth,
            headers=self._headers,
            timeout=self.timeout_s,
            follow_redirects=False,
            verify=self._tls,
        )
        try:
            async with (
                asyncio.timeout(self.timeout_s),
                client,
                client.stream("GET", self._endpoint, params=params, extensions={"trace": trace}) as response,
            ):
                size = response.headers.get("content-length", "")
                if size.isdigit() and int(size) > self.max_bytes:
                    raise _Unusable(f"a reply of {int(size):,} bytes (more than {self.max_bytes:,})")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise _Unusable(f"a reply of more than {self.max_bytes:,} bytes")
                return response.status_code, response.headers.get("content-type", ""), bytes(body)
        except (TimeoutError, httpx.TimeoutException):  # the deadline, or httpx's own (same length)
            if connected:
                raise _Unusable(f"no complete reply within the {self.timeout_s:g}s deadline") from None
            raise PromSourceError(
                f"Prometheus at {self.url} is unreachable: no connection within {self.timeout_s:g}s",
                reachable=False,
            ) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            reason = _excerpt(redact_text(_connect_reason(exc), self._secrets))
            raise PromSourceError(
                f"Prometheus at {self.url} is unreachable: {reason}", reachable=False
            ) from exc
        except httpx.HTTPError as exc:  # the connection broke, a malformed HTTP reply, bad encoding...
            raise _Unusable(f"{type(exc).__name__}: {self._quote(exc) or 'broken reply'}") from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise _Unusable(f"{type(exc).__name__}: {self._quote(exc)}") from exc

    def _quote(self, exc: BaseException) -> str:
        """An exception's text for a message: credentials masked, shortened, no markup."""
        return _excerpt(redact_text(str(exc), self._secrets))

    def _query(self, query: str) -> list[_Sample]:
        """Run an instant query; the validated samples (a scalar is one sample without labels).

        Raises PromSourceError when Prometheus cannot be reached or answers something unusable.
        """
        try:
            code, content_type, body = _run(self._exchange(query))
            return self._samples(code, content_type, body)
        except _Unusable as exc:
            raise self._unusable(str(exc)) from None

    @staticmethod
    def _samples(code: int, content_type: str, body: bytes) -> list[_Sample]:
        """The samples of a reply; _Unusable for anything but a successful vector or scalar."""
        kind = _excerpt(content_type.split(";")[0].strip() or "no content type", 60)
        try:
            reply = _REPLY.validate_json(body)
        except ValidationError as exc:
            problem = _first_problem(exc)
            if exc.errors()[0]["type"] == "json_invalid":
                raise _Unusable(f"HTTP {code} with {kind}, not JSON ({problem})") from None
            raise _Unusable(f"HTTP {code} JSON that is not a query reply ({problem})") from None
        if isinstance(reply, _Failure):
            raise _Unusable(f"HTTP {code} error {_excerpt(reply.errorType, 40)}: {_excerpt(reply.error)}")
        if not 200 <= code < 300:
            raise _Unusable(f"HTTP {code} with a success reply")
        if isinstance(reply.data, _ScalarData):
            return [_Sample(metric={}, value=reply.data.result)]
        return list(reply.data.result)

    def _value(self, sample: _Sample, what: str, upper: float | None) -> float | None:
        """A sample's value checked against what it means: None for NaN (no data)."""
        value = float(sample.value[1])
        if math.isnan(value):
            return None
        if math.isinf(value) or value < 0 or (upper is not None and value > upper):
            raise self._unusable(f"{what} of {sample.value[1]}")
        return value

    def _scalar(self, query: str, what: str, upper: float | None = None) -> float | None:
        """The value of a query returning at most one series; None without data."""
        result = self._query(query)
        if not result:
            return None
        if len(result) > 1:
            raise self._unusable(f"{len(result)} series for {what}, where the query gives at most one")
        return self._value(result[0], what, upper)

    def _by_label(self, query: str, label: str, what: str) -> dict[str, float]:
        """A query returning one series per value of ``label``, as a dict (NaN values dropped)."""
        out: dict[str, float] = {}
        for series in self._query(query):
            key = series.metric.get(label, "")
            if key in out:
                raise self._unusable(f"two series for {label}={_excerpt(key, 40)!r} in {what}")
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

    def request_rate(self, window: str) -> float | None:
        """Requests per second over ``window``; None when no request was ever counted."""
        return self._scalar(render_query(REQUEST_RATE_QUERY, window), "a request rate")

    def request_count(self, window: str) -> float | None:
        """Requests finished in ``window`` (exact, see the module docstring); None without data."""
        return self._scalar(render_query(REQUEST_COUNT_QUERY, window), "a request count")

    def error_ratio(self, window: str) -> float | None:
        """Share of ``window``'s requests that failed (0..1); None when there was no request."""
        return self._scalar(render_query(ERROR_RATIO_QUERY, window), "an error ratio", upper=1.0)

    def latency_quantile(self, q: float, window: str) -> float | None:
        """The ``q``-quantile of request latency over ``window``, in seconds; None without requests."""
        return self._scalar(render_query(LATENCY_QUANTILE_QUERY, window, q=q), "a latency quantile")

    def agent_mix(self, window: str) -> dict[str, float]:
        """Agent invocations in ``window`` by agent (empty without data)."""
        return self._by_label(render_query(AGENT_MIX_QUERY, window), "agent", "the agent mix")

    def tokens(self, window: str) -> dict[str, float]:
        """LLM tokens in ``window`` by direction (``input``, ``output``); empty without data."""
        return self._by_label(render_query(TOKENS_QUERY, window), "direction", "the token counts")

    def cost_usd(self, window: str) -> float | None:
        """Estimated LLM cost in ``window`` in US dollars; None without data."""
        return self._scalar(render_query(COST_QUERY, window), "a cost")

    def iterations(self, window: str) -> float | None:
        """MCTS iterations run in ``window``; None without data."""
        return self._scalar(render_query(ITERATIONS_QUERY, window), "an iteration count")
