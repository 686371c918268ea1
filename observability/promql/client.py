"""One Prometheus query endpoint over HTTP: the URL and credentials, and an exchange bounded by a
total deadline and a maximum reply size.

* *A total deadline per query.*  A query is one ``GET /api/v1/query`` (an instant query, at the
  server's now or at a given ``time``) or ``GET /api/v1/query_range`` (a range query, ``start``,
  ``end`` and ``step``) through httpx's asyncio
  client inside ``asyncio.timeout(timeout_s)``: the deadline covers the whole exchange (connect,
  send, headers, every byte of the body), and when it passes the pending read is cancelled.  A
  server that drips its reply one byte at a time cannot stretch it.  (prometheus-api-client,
  used before, goes through requests, whose timeout bounds each socket read separately: a reply
  dripped one byte every 0.7 s kept a page waiting 99 s with a 2 s timeout.  A thread watchdog
  around it would return in time but leave the thread reading until the drip ends.)
* *A bounded body*: at most ``max_bytes`` (default :data:`MAX_REPLY_BYTES`, 1 MiB) are read.

No connection raises :class:`~observability.promql.reply.PromSourceError` (``reachable`` False,
``"Prometheus at URL is unreachable: REASON"``); a connection that gives nothing usable in time
raises :class:`~observability.promql.reply.UnusableReply`.  Credentials are masked in every
message, and the URL shown is :func:`observability.redaction.redact_url`'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import socket
import ssl
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

import certifi
import httpx

from observability.promql.reply import PromSourceError, UnusableReply, excerpt
from observability.redaction import redact_text, redact_url, url_secrets

__all__ = ["MAX_REPLY_BYTES", "QueryClient"]

#: The most bytes of one reply that are read (the console's queries return a few series).
MAX_REPLY_BYTES = 1 << 20

_T = TypeVar("_T")


def _secret(value: object) -> str | None:
    """The text of a str or SecretStr-like value (None when unset or blank)."""
    getter = getattr(value, "get_secret_value", None)
    text = getter() if callable(getter) else value
    return text if isinstance(text, str) and text else None


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


def _run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion from synchronous code (in a worker thread if this thread
    already runs an event loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class QueryClient:
    """The query endpoints (instant and range) of one Prometheus server.

    ``timeout_s`` is the total deadline of one query in seconds (connect, send, read the whole
    reply).  Credentials: ``username``/``password`` (basic auth; a ``user:password@`` in the URL
    is used when no username is given) or ``bearer_token`` (an ``Authorization: Bearer``
    header); passwords and tokens may be str or SecretStr.  Query parameters in the URL
    (``?token=...`` for a proxy in front of Prometheus) are sent with every query.  ``url`` is
    the URL with its credentials masked, safe to show.  Creating a client sends nothing.

    Raises ValueError for a URL that is not ``http(s)://host[:port][/path]``, a timeout that is
    not a positive number, a ``max_bytes`` that is not a positive integer, or both basic auth
    and a bearer token.
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
        self._api = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}/api/v1"
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

    def _quote(self, exc: BaseException) -> str:
        """An exception's text for a message: credentials masked, shortened, no markup."""
        return excerpt(redact_text(str(exc), self._secrets))

    def fetch(self, query: str, *, at: float | None = None) -> tuple[int, str, bytes]:
        """Send the instant query ``query`` (PromQL), evaluated at ``at`` (unix s; None: the
        server's now); the HTTP status code, content type and body, all within the deadline.
        Callable from any thread, with or without a running event loop.

        Raises PromSourceError (``reachable`` False) when no connection could be made in time,
        and UnusableReply when the connection gave no complete reply of at most ``max_bytes``
        within the deadline, broke, or spoke malformed HTTP.
        """
        params = [("query", query)] if at is None else [("query", query), ("time", f"{at:.3f}")]
        return _run(self._exchange("query", params))

    def fetch_range(self, query: str, *, start: float, end: float, step_s: int) -> tuple[int, str, bytes]:
        """Send the range query ``query`` evaluated at ``start``, ``start + step_s``, ... up to
        ``end`` (unix s, sent to the millisecond; ``step_s`` whole seconds); as :meth:`fetch`.

        Raises ValueError for a step that is not a positive integer or an end before the start;
        otherwise as :meth:`fetch`.
        """
        if isinstance(step_s, bool) or not isinstance(step_s, int) or step_s < 1:
            raise ValueError(f"step_s must be a positive whole number of seconds, got {step_s!r}")
        if not (math.isfinite(start) and math.isfinite(end) and start <= end):
            raise ValueError(f"a range query needs finite start <= end, got {start!r}, {end!r}")
        params = [("query", query), ("start", f"{start:.3f}"), ("end", f"{end:.3f}"), ("step", str(step_s))]
        return _run(self._exchange("query_range", params))

    async def _exchange(self, path: str, query: list[tuple[str, str]]) -> tuple[int, str, bytes]:
        connected = False

        async def trace(event: str, info: dict[str, Any]) -> None:
            nonlocal connected
            if event.endswith("connect_tcp.complete"):
                connected = True

        params: list[tuple[str, str | int | float | bool | None]] = [*self._params, *query]
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
                client.stream(
                    "GET", f"{self._api}/{path}", params=params, extensions={"trace": trace}
                ) as response,
            ):
                size = response.headers.get("content-length", "")
                if size.isdigit() and int(size) > self.max_bytes:
                    raise UnusableReply(f"a reply of {int(size):,} bytes (more than {self.max_bytes:,})")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.max_bytes:
                        raise UnusableReply(f"a reply of more than {self.max_bytes:,} bytes")
                return response.status_code, response.headers.get("content-type", ""), bytes(body)
        except (TimeoutError, httpx.TimeoutException):  # the deadline, or httpx's own (same length)
            if connected:
                raise UnusableReply(f"no complete reply within the {self.timeout_s:g}s deadline") from None
            raise PromSourceError(
                f"Prometheus at {self.url} is unreachable: no connection within {self.timeout_s:g}s",
                reachable=False,
            ) from None
        except (httpx.ConnectError, httpx.UnsupportedProtocol) as exc:
            reason = excerpt(redact_text(_connect_reason(exc), self._secrets))
            raise PromSourceError(
                f"Prometheus at {self.url} is unreachable: {reason}", reachable=False
            ) from exc
        except httpx.HTTPError as exc:  # the connection broke, a malformed HTTP reply, bad encoding...
            raise UnusableReply(f"{type(exc).__name__}: {self._quote(exc) or 'broken reply'}") from exc
        except (OSError, UnicodeError, ValueError) as exc:
            raise UnusableReply(f"{type(exc).__name__}: {self._quote(exc)}") from exc
