"""Redaction: secrets are masked before anything records them, in spans and in log records.

Values of attributes/fields whose key names a credential (``api_key``, ``secret``, ``token`` – but
not token *counts* such as ``tokens_in`` or ``token_count`` –, ``password``, ``authorization``, ...)
become :data:`MASK`; any string containing one of the secrets given to the redacting party
(``Tracer(secrets=...)``, ``RedactingFilter(secrets=...)``, ``Telemetry(secrets=...)``, the
``secrets`` argument of the functions here), or something shaped like an ``sk-...`` API key, has it
replaced by :data:`MASK`.  There is no process-wide registry: whoever builds the tracer, telemetry
and log filters (the composition root, ``engine.wiring``) hands each of them the secrets.

:class:`observability.tracing.Tracer` redacts attributes and error messages when they are recorded,
so no exporter ever sees a secret; :class:`observability.logs.RedactingFilter` rewrites log records
with the same rules (through :func:`normalise_secrets`, :func:`redact_str` and :func:`redact_value`).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

__all__ = [
    "MASK",
    "clean_attributes",
    "is_sensitive_key",
    "normalise_secrets",
    "redact_attributes",
    "redact_str",
    "redact_text",
    "redact_url",
    "redact_value",
    "url_secrets",
]

MASK = "**********"
"""What a redacted value (or the redacted part of a string) is replaced with."""

_MAX_DEPTH = 4  # nesting depth kept for list/dict attribute values

# Keys that name a credential.  "token" alone is sensitive, token *counts* are not.
_SENSITIVE_KEY = re.compile(
    r"api[_\-.]?key|secret|password|passwd|authorization|credential|private[_\-.]?key"
    r"|token(?!s|[_\-.]?(?:count|usage|limit|budget|cost|rate))",
    re.IGNORECASE,
)
# Strings shaped like an API key (OpenAI/Anthropic style) even when nobody registered them.
_KEYLIKE = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")
_MIN_SECRET_CHARS = 4  # shorter "secrets" would mask ordinary text everywhere


def _secret_text(secret: object) -> str | None:
    """The raw text of ``secret`` (a str or anything with ``get_secret_value()``, e.g. SecretStr)."""
    if secret is None:
        return None
    getter = getattr(secret, "get_secret_value", None)
    raw = getter() if callable(getter) else secret
    if not isinstance(raw, str):
        return None
    raw = raw.strip()
    return raw if len(raw) >= _MIN_SECRET_CHARS else None


def normalise_secrets(secrets: Iterable[object]) -> tuple[str, ...]:
    """Distinct usable secret strings, longest first (so overlapping secrets are fully masked).

    ``secrets`` are str or anything with ``get_secret_value()`` (e.g. ``SecretStr``); ``None`` and
    values shorter than 4 characters after stripping are dropped.  The result is what
    :func:`redact_str` and :func:`redact_value` take."""
    found = {s for s in (_secret_text(x) for x in secrets) if s}
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


@functools.lru_cache(maxsize=4096)
def is_sensitive_key(key: str) -> bool:
    """True when an attribute/field named ``key`` holds a credential (its value is always masked)."""
    return bool(_SENSITIVE_KEY.search(key))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every given secret, and every ``sk-...`` key, replaced by MASK."""
    return redact_str(text, normalise_secrets(secrets))


def redact_value(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    """``value`` as a JSON-safe attribute value, redacted.

    Kept: None, bool, int, finite float, str; lists/tuples/sets become lists and mappings become
    dicts (to a depth of 4).  NumPy scalars become Python scalars, non-finite floats become the
    strings ``"nan"``/``"inf"``/``"-inf"`` and anything else its ``str()``.
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return redact_str(value, secrets)
    if getattr(value, "shape", None) == () and callable(getattr(value, "item", None)):
        return redact_value(value.item(), secrets, depth)  # numpy scalar / 0-d array
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {
                str(k): MASK if is_sensitive_key(str(k)) else redact_value(v, secrets, depth + 1)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [redact_value(v, secrets, depth + 1) for v in value]
    return redact_str(str(value), secrets)


def redact_str(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with ``secrets`` (already :func:`normalise_secrets`-ed) and ``sk-...`` keys masked."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    if "sk-" in text:
        text = _KEYLIKE.sub(MASK, text)
    return text


def redact_attributes(attributes: Mapping[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A redacted, JSON-safe copy of ``attributes`` (the same rules a span applies)."""
    return clean_attributes(attributes, normalise_secrets(secrets))


def clean_attributes(attributes: Mapping[str, Any], secrets: tuple[str, ...]) -> dict[str, Any]:
    """:func:`redact_attributes` with the secrets already :func:`normalise_secrets`-ed (what a span's
    record uses)."""
    return {
        str(k): MASK if is_sensitive_key(str(k)) else redact_value(v, secrets) for k, v in attributes.items()
    }


# Query parameters that carry a credential in a URL, beyond the keys :func:`is_sensitive_key` names.
_SENSITIVE_URL_PARAM = re.compile(
    r"^(?:auth|key|sig|signature|pass|pwd|jwt|session|sid|code)$", re.IGNORECASE
)


def _secret_param(name: str) -> bool:
    return is_sensitive_key(name) or bool(_SENSITIVE_URL_PARAM.match(name))


def redact_url(url: str) -> str:
    """``url`` with its credentials masked, safe to show or log.

    * userinfo: ``http://user:pw@host`` -> ``http://user:**********@host``; a user name without
      a password (often a token, ``http://TOKEN@host``) becomes ``http://**********@host``;
    * query parameters whose name names a credential (``token``, ``access_token``, ``api_key``,
      ``password``, ``auth``, ``key``, ``sig``, ...) keep their name, their value becomes the mask;
    * a fragment (``#access_token=...``) is masked whole.

    Anything that does not parse as a URL is masked entirely (it might be one with a secret in it).
    """
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:
        return MASK
    netloc = parts.netloc
    if username is not None or password is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{username}:{MASK}@{host}" if password is not None else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_param(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _secret_param(k) else v) for k, v in pairs], safe="*")
    fragment = MASK if parts.fragment else ""
    return parts._replace(netloc=netloc, query=query, fragment=fragment).geturl()


def url_secrets(url: str) -> tuple[str, ...]:
    """The credentials :func:`redact_url` masks in ``url``, as written and percent-decoded (to pass
    as secrets to a tracer or log filter, so that a line quoting the URL or a decoded part masks
    them too)."""
    try:
        parts = urlsplit(url)
        user = parts.password if parts.password is not None else parts.username
    except ValueError:
        return (url,)
    found = [user] if user else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _secret_param(k) and v]
    raw_query = [p.partition("=") for p in parts.query.split("&")]
    found += [v for k, _, v in raw_query if v and _secret_param(unquote(k))]
    if parts.fragment:
        found.append(parts.fragment)
    return tuple(dict.fromkeys([*found, *(unquote(s) for s in found)]))
