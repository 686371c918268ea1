"""Shared HTTP plumbing for the network providers: retry policy, Retry-After, JSON POST, redaction.

:class:`JsonHttp` posts a JSON body with ``httpx`` and returns the decoded JSON object, retrying
(with ``tenacity``) on connect/read/write timeouts, other transport errors, HTTP 429 and HTTP 5xx
with exponential back-off and *full jitter* (:class:`RetryPolicy`), honouring the server's
``Retry-After`` header.  It does not
retry on other 4xx or on a malformed 2xx body.  Every failure becomes an
:class:`~engine.llm.types.LLMError` subclass whose message is free of secrets.

Everything time- or chance-dependent is injectable: the ``httpx.Client`` (tests pass one with a
``transport=``), ``sleep``, the monotonic ``clock``, the ``wall_clock`` used to read HTTP-date
Retry-After values, and the seeded ``random.Random`` for jitter (no global random state).
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import tenacity
from pydantic import SecretStr

from engine.llm.types import (
    AuthError,
    BadResponse,
    LLMError,
    ProviderUnavailable,
    RateLimited,
    RequestRejected,
)

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "HttpResult",
    "JsonHttp",
    "RetryPolicy",
    "parse_retry_after",
    "redact",
    "safe_url",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 30.0
REDACTED = "[REDACTED]"
# Things that look like API keys even when we were not told about them (defence in depth).
_KEYLIKE = re.compile(r"\b(sk-ant-|sk-|key-)[A-Za-z0-9_\-]{6,}")
_EXCERPT_CHARS = 200
#: Largest response body accepted (decoded bytes); a larger one is a BadResponse, not kept in memory.
MAX_BODY_BYTES = 8 * 1024 * 1024


class _DeadlineExceeded(Exception):
    """An attempt did not complete (connect, send, headers and whole body) within its time budget."""


class _BodyTooLarge(Exception):
    """The response body exceeded MAX_BODY_BYTES."""


class _Transient(Exception):
    """A failed attempt worth retrying: the LLMError it ends with if no attempt is left, and the
    server's Retry-After (seconds) if it sent one."""

    def __init__(self, error: LLMError, retry_after_s: float | None) -> None:
        super().__init__(type(error).__name__)
        self.error = error
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential back-off with full jitter (AWS architecture blog, "Exponential Backoff and Jitter").

    ``max_attempts``: total HTTP attempts, the first included (1 disables retries).
    ``base_delay_s``/``max_delay_s``: seconds.  After failed attempt ``k`` (1-based) the sleep is drawn
    uniformly from ``[0, min(max_delay_s, base_delay_s * 2 ** (k - 1))]``.  A server ``Retry-After``
    replaces the drawn delay, capped at ``max_delay_s``.

    Raises ValueError for max_attempts < 1 or negative/inconsistent delays.
    """

    max_attempts: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("delays must be >= 0")
        if self.base_delay_s > self.max_delay_s:
            raise ValueError("base_delay_s must not exceed max_delay_s")

    def cap_s(self, attempt: int) -> float:
        """Upper bound (seconds) of the back-off after failed attempt ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt is 1-based")
        # Avoid float overflow for absurd attempt numbers: the cap is reached long before 2**64.
        exponent = min(attempt - 1, 64)
        return min(self.max_delay_s, self.base_delay_s * 2.0**exponent)

    def worst_case_s(self, timeout_s: float) -> float:
        """Upper bound (seconds) of one provider call when each attempt is bounded by ``timeout_s``:
        ``max_attempts * timeout_s`` plus the sleeps between attempts, each at most ``max_delay_s``
        (a Retry-After is capped there too)."""
        return self.max_attempts * timeout_s + (self.max_attempts - 1) * self.max_delay_s

    def backoff_s(self, attempt: int, rng: random.Random) -> float:
        """A full-jitter delay (seconds) after failed attempt ``attempt``: uniform in ``[0, cap_s]``."""
        return rng.uniform(0.0, self.cap_s(attempt))

    def delay_s(self, attempt: int, rng: random.Random, retry_after_s: float | None = None) -> float:
        """The sleep before the next attempt: ``Retry-After`` (capped at ``max_delay_s``) when the
        server sent one, else :meth:`backoff_s`."""
        if retry_after_s is not None:
            return min(max(0.0, retry_after_s), self.max_delay_s)
        return self.backoff_s(attempt, rng)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds (``"1"``, ``"2.5"``) or an HTTP date.

    ``now``: the current wall-clock time in epoch seconds (to turn a date into a delay).  A date in the
    past gives 0.0.  Returns None when the header is absent or unreadable.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now)


def redact(text: str, secrets: Iterable[str | SecretStr | None] = ()) -> str:
    """``text`` with every given secret and anything that looks like an API key replaced by [REDACTED]."""
    for secret in secrets:
        raw = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        if raw and len(raw) >= 4:
            text = text.replace(raw, REDACTED)
    return _KEYLIKE.sub(REDACTED, text)


def safe_url(url: str) -> str:
    """``url`` without user info (``http://user:pw@host/x`` -> ``http://host/x``), for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


@dataclass(frozen=True)
class HttpResult:
    """A successful POST: the decoded JSON object, the attempts it took, and the elapsed seconds
    (monotonic clock, back-off sleeps included)."""

    data: dict[str, Any]
    attempts: int
    elapsed_s: float
    status_code: int


def _error_excerpt(response: httpx.Response) -> str:
    """A short excerpt of a provider's error body: its ``error.message`` if JSON, else the raw text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text
    else:
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            text = err["message"]
        elif isinstance(err, str):
            text = err
        else:
            text = json.dumps(body)[:_EXCERPT_CHARS]
    text = " ".join(text.split())
    return text[:_EXCERPT_CHARS] + ("…" if len(text) > _EXCERPT_CHARS else "")


class JsonHttp:
    """POST JSON with retries.  Safe to share between threads (httpx.Client is thread-safe).

    ``provider``: name used in messages.  ``client``: an ``httpx.Client`` to use (not closed by
    :meth:`close`); None creates one owned by this object.  ``timeout_s``: the *total* time budget of
    one attempt in seconds -- connect, send, the response headers and every read of the body together
    (httpx's own timeouts are per phase and per read, so a server dripping one byte at a time would
    never trip them).  An attempt that has not completed by then fails as a timeout, so one
    :meth:`post_json` lasts at most :meth:`RetryPolicy.worst_case_s` of ``timeout_s``.
    ``secrets``: values to scrub from any message (the provider's key).  ``rng``: jitter source;
    default ``random.Random(rng_seed)``.
    """

    def __init__(
        self,
        provider: str,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        rng_seed: int = 0,
        secrets: Iterable[SecretStr | str | None] = (),
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.provider = provider
        self.timeout = httpx.Timeout(timeout_s)
        self.timeout_s = float(timeout_s)
        self.retry = retry or RetryPolicy()
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=self.timeout)
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng if rng is not None else random.Random(rng_seed)
        self._rng_lock = threading.Lock()
        self._secrets = tuple(s if isinstance(s, SecretStr) else SecretStr(s) for s in secrets if s)

    def __repr__(self) -> str:
        return f"JsonHttp(provider={self.provider!r}, timeout_s={self.timeout_s}, retry={self.retry!r})"

    def close(self) -> None:
        """Close the httpx client if this object created it."""
        if self._owns_client:
            self._client.close()

    def redact(self, text: str) -> str:
        """``text`` with this provider's secrets (and key-like strings) removed."""
        return redact(text, self._secrets)

    def post_json(self, url: str, *, headers: Mapping[str, str], body: Mapping[str, Any]) -> HttpResult:
        """POST ``body`` as JSON to ``url`` and return the decoded JSON object.

        Attempts are driven by ``tenacity``: at most ``max_attempts``, a transient failure
        (transport error, timeout, 429, 5xx) followed by :meth:`RetryPolicy.delay_s` (full jitter
        from the seeded rng, or the server's Retry-After) slept with the injected ``sleep``.

        Raises ProviderUnavailable (transport error, timeout or 5xx after ``max_attempts``),
        RateLimited (429 after ``max_attempts``), AuthError (401/403, not retried), RequestRejected
        (other 4xx, not retried), BadResponse (2xx body not a JSON object, not retried).
        """
        started = self._clock()
        where = safe_url(url)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        last: LLMError
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(url, headers, body, where, attempt.retry_state.attempt_number, started)
        except _Transient as exc:
            last = exc.error
        raise last  # outside the handler: the error carries no __context__

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """tenacity's wait: the policy's delay after failed attempt ``state.attempt_number``.

        tenacity asks before it checks ``stop``; after the last attempt nothing is drawn, so the
        rng's stream is the same as one draw per sleep."""
        if state.attempt_number >= self.retry.max_attempts:
            return 0.0
        failure = state.outcome.exception() if state.outcome is not None else None
        retry_after = failure.retry_after_s if isinstance(failure, _Transient) else None
        with self._rng_lock:
            return self.retry.delay_s(state.attempt_number, self._rng, retry_after)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        """tenacity's before_sleep: one warning per retry, naming the failure and the delay."""
        failure = state.outcome.exception() if state.outcome is not None else None
        error = failure.error if isinstance(failure, _Transient) else failure
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s: attempt %d/%d failed (%s); retrying in %.3f s",
            self.provider,
            state.attempt_number,
            self.retry.max_attempts,
            type(error).__name__,
            delay,
        )

    def _once(
        self,
        url: str,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        where: str,
        attempt: int,
        started: float,
    ) -> HttpResult:
        """Attempt ``attempt`` (1-based): the decoded result, a fatal LLMError, or _Transient."""
        attempts = self.retry.max_attempts
        retry_after: float | None = None
        transient: LLMError | None = None
        fatal: LLMError | None = None  # raised after the try so it carries no __context__
        try:
            response = self._attempt(url, headers, body)
        except (httpx.TimeoutException, _DeadlineExceeded) as exc:
            kind = "total deadline" if isinstance(exc, _DeadlineExceeded) else type(exc).__name__
            transient = ProviderUnavailable(
                f"{self.provider}: timed out ({kind}): no complete response within "
                f"{self.timeout_s:g} s (attempt {attempt}/{attempts}) POST {where}",
                provider=self.provider,
                attempts=attempt,
            )
        except _BodyTooLarge:
            fatal = BadResponse(
                f"{self.provider}: response from POST {where} is larger than {MAX_BODY_BYTES:,} bytes",
                provider=self.provider,
                attempts=attempt,
            )
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.InvalidURL) as exc:
            # Our own request is unusable (bad URL or header): not transient, and the exception text
            # may quote a header value, so only its type is reported.
            fatal = ProviderUnavailable(
                f"{self.provider}: {type(exc).__name__} for POST {where}",
                provider=self.provider,
                attempts=attempt,
            )
        except httpx.TransportError as exc:
            # Socket-level errors carry an OS message ("Connection refused"); others only their type.
            reason = self.redact(str(exc))[:_EXCERPT_CHARS] if isinstance(exc, httpx.NetworkError) else ""
            transient = ProviderUnavailable(
                f"{self.provider}: {type(exc).__name__}{': ' + reason if reason else ''} "
                f"(attempt {attempt}/{attempts}) POST {where}",
                provider=self.provider,
                attempts=attempt,
            )
        except httpx.HTTPError as exc:  # decoding error, too many redirects...: not transient
            fatal = ProviderUnavailable(
                f"{self.provider}: {type(exc).__name__} for POST {where}",
                provider=self.provider,
                attempts=attempt,
            )
        else:
            status = response.status_code
            if 200 <= status < 300:
                return self._decode(response, where, attempt, started)
            excerpt = self.redact(_error_excerpt(response))
            detail = f"{self.provider}: HTTP {status} from POST {where}: {excerpt}"
            kwargs: dict[str, Any] = {
                "provider": self.provider,
                "status_code": status,
                "attempts": attempt,
            }
            if status in (401, 403):
                fatal = AuthError(detail, **kwargs)
            else:
                retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._wall_clock())
                if status == 429:
                    transient = RateLimited(detail, retry_after_s=retry_after, **kwargs)
                elif status >= 500:
                    transient = ProviderUnavailable(detail, **kwargs)
                else:
                    fatal = RequestRejected(detail, **kwargs)
        if fatal is not None:
            raise fatal
        if transient is None:  # pragma: no cover - every branch above sets one of the three
            raise AssertionError("an attempt ended without a result or an error")
        raise _Transient(transient, retry_after)

    def _attempt(self, url: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> httpx.Response:
        """One POST, completed (body read) within ``timeout_s`` seconds of real time, or an error.

        The exchange runs in a daemon worker thread while this thread waits at most ``timeout_s``:
        a blocking socket read cannot be interrupted from outside, so the wait, not the read, is
        what bounds the caller.  On expiry the worker is told to stop and abandons the response at
        its next chunk (or when an httpx per-phase timeout, also ``timeout_s``, fires), so it
        outlives the attempt by at most one read.

        Raises _DeadlineExceeded, _BodyTooLarge, or the httpx exception of the exchange.
        """
        deadline = time.monotonic() + self.timeout_s
        cancel = threading.Event()
        done = threading.Event()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["response"] = self._exchange(url, headers, body, deadline, cancel)
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name=f"arbor-llm-{self.provider}", daemon=True).start()
        if not done.wait(self.timeout_s):
            cancel.set()
            raise _DeadlineExceeded()
        if "error" in box:
            raise box.pop("error")
        response: httpx.Response = box["response"]
        return response

    def _exchange(
        self,
        url: str,
        headers: Mapping[str, str],
        body: Mapping[str, Any],
        deadline: float,
        cancel: threading.Event,
    ) -> httpx.Response:
        """Send the POST and stream the body, checking ``deadline`` (monotonic seconds) and
        ``cancel`` between chunks; return a response holding the whole decoded body."""
        request = self._client.build_request(
            "POST", url, json=dict(body), headers=dict(headers), timeout=self.timeout
        )
        streamed = self._client.send(request, stream=True)
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in streamed.iter_bytes():
                if cancel.is_set() or time.monotonic() > deadline:
                    raise _DeadlineExceeded()
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _BodyTooLarge()
                chunks.append(chunk)
        finally:
            streamed.close()
        # The body is already decoded: drop the headers that describe the wire encoding.
        kept = [
            (k, v)
            for k, v in streamed.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        return httpx.Response(streamed.status_code, headers=kept, content=b"".join(chunks), request=request)

    def _decode(self, response: httpx.Response, where: str, attempt: int, started: float) -> HttpResult:
        """The JSON object of a 2xx response, or BadResponse."""
        valid = True
        try:
            data = response.json()
        except ValueError:  # the decode error quotes the body: keep it out of the raised error's context
            valid = False
        if not valid:
            raise BadResponse(
                f"{self.provider}: HTTP {response.status_code} from POST {where} is not valid JSON",
                provider=self.provider,
                status_code=response.status_code,
                attempts=attempt,
            )
        if not isinstance(data, dict):
            raise BadResponse(
                f"{self.provider}: HTTP {response.status_code} from POST {where}: "
                f"expected a JSON object, got {type(data).__name__}",
                provider=self.provider,
                status_code=response.status_code,
                attempts=attempt,
            )
        return HttpResult(data, attempt, self._clock() - started, response.status_code)
