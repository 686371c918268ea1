"""Prometheus' query replies as pydantic models, their validation, and the errors and messages
made from what is wrong with them.

A reply must be JSON matching the API: ``status`` ``"success"`` with ``data.resultType``
``"vector"`` (items with a ``metric`` label dict and a ``value`` ``[timestamp, "number"]``) or
``"scalar"``, or ``status`` ``"error"`` with ``errorType`` and ``error``.  Sample values stay
strings as Prometheus writes them (``"NaN"``, ``"+Inf"``, ``"1.5e-3"``); what they may mean is
checked by :class:`observability.promql.source.PromSource`.  Server-provided text quoted in a
message goes through :func:`excerpt` (one line, shortened, no markup characters).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, TypeAdapter, ValidationError

__all__ = [
    "PromNumber",
    "PromSourceError",
    "Sample",
    "UnusableReply",
    "excerpt",
    "parse_samples",
]


class PromSourceError(RuntimeError):
    """Prometheus could not give a usable answer to a query.

    ``reachable`` is False when no connection could be made (the message then says
    "is unreachable"), True when it answered something unusable (malformed, too slow, too big,
    an HTTP or Prometheus error).
    """

    def __init__(self, message: str, *, reachable: bool = True) -> None:
        super().__init__(message)
        self.reachable = reachable


class UnusableReply(Exception):
    """The reply cannot be used, for the reason in the message (the source turns it into a
    :class:`PromSourceError` naming the server)."""


# A sample value as Prometheus writes it (Go's strconv.FormatFloat 'f', -1): decimal, exponent,
# NaN, +Inf, -Inf.  Python's float() alone would also take " 1 ", "1_000" or "infinity".
_PROM_NUMBER = re.compile(r"[+-]?(?:Inf|NaN|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def _prom_number(text: str) -> str:
    """``text`` unchanged if it is a number as Prometheus writes it (read it with ``float``)."""
    if len(text) > 64 or not _PROM_NUMBER.fullmatch(text):
        raise ValueError("not a number as Prometheus writes one")
    return text


#: A sample value: a string that ``float()`` reads, in Prometheus' own notation only.
PromNumber = Annotated[str, AfterValidator(_prom_number)]
_Label = Annotated[str, Field(max_length=1024)]


class Sample(BaseModel):
    """One series of an instant vector: its labels and ``(unix seconds, value text)``."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    metric: dict[_Label, _Label]
    value: tuple[StrictFloat, PromNumber]


class _VectorData(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    resultType: Literal["vector"]
    result: list[Sample]


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


_S = TypeVar("_S", bound=BaseModel)

_REPLY: TypeAdapter[_Success | _Failure] = TypeAdapter(
    Annotated[_Success | _Failure, Field(discriminator="status")]
)

_UNSAFE = re.compile(r"[^A-Za-z0-9 _.,:;'\"=(){}+\-/%@?&^]")


def excerpt(text: object, limit: int = 160) -> str:
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
    return excerpt(f"{where}: {what}" if where else what) + more


def _success_reply(
    adapter: TypeAdapter[_S | _Failure], what: str, code: int, content_type: str, body: bytes
) -> _S:
    """The success model of a Prometheus API reply, validated by ``adapter``.

    ``what`` names the expected reply in messages (``"query reply"``), ``code`` is the HTTP status,
    ``content_type`` the header as sent.  Raises :class:`UnusableReply` for anything but a success
    reply: not JSON, JSON that ``adapter`` rejects, a Prometheus error, or a success reply with a
    non-2xx status.
    """
    kind = excerpt(content_type.split(";")[0].strip() or "no content type", 60)
    try:
        reply = adapter.validate_json(body)
    except ValidationError as exc:
        problem = _first_problem(exc)
        if exc.errors()[0]["type"] == "json_invalid":
            raise UnusableReply(f"HTTP {code} with {kind}, not JSON ({problem})") from None
        raise UnusableReply(f"HTTP {code} JSON that is not a {what} ({problem})") from None
    if isinstance(reply, _Failure):
        raise UnusableReply(f"HTTP {code} error {excerpt(reply.errorType, 40)}: {excerpt(reply.error)}")
    if not 200 <= code < 300:
        raise UnusableReply(f"HTTP {code} with a success reply")
    return reply


def parse_samples(code: int, content_type: str, body: bytes) -> list[Sample]:
    """The samples of a reply (a scalar is one sample without labels).

    ``code`` is the HTTP status, ``content_type`` the header as sent.  Raises
    :class:`UnusableReply` for anything but a successful vector or scalar: not JSON, JSON that is
    not a query reply, a Prometheus error, or a success reply with a non-2xx status.
    """
    reply = _success_reply(_REPLY, "query reply", code, content_type, body)
    if isinstance(reply.data, _ScalarData):
        return [Sample(metric={}, value=reply.data.result)]
    return list(reply.data.result)
