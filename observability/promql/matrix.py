"""Range queries: the grid of evaluation times, the ``matrix`` reply as pydantic models, and each
series' values placed on the grid.

A range query is evaluated at ``start``, ``start + step``, ... ``start + (points - 1) * step``
(:class:`RangeGrid`).  Its reply must be JSON with ``status`` ``"success"`` and
``data.resultType`` ``"matrix"`` (items with a ``metric`` label dict and ``values``, a list of
``[timestamp, "number"]``), or a Prometheus error.  Every timestamp must sit on the grid (to the
millisecond, Prometheus' resolution), strictly increasing, so a series has at most one value per
grid point; anything else is an :class:`~observability.promql.reply.UnusableReply`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, TypeAdapter

from observability.promql.reply import (
    PromNumber,
    UnusableReply,
    _Failure,
    _Label,
    _success_reply,
)

__all__ = ["MAX_POINTS", "RangeGrid", "RangeSeries", "parse_matrix"]

#: The most evaluation times a range query may ask for (the pages ask for at most about 300).
MAX_POINTS = 1000


@dataclass(frozen=True, slots=True)
class RangeGrid:
    """Evaluation times ``start + i * step_s`` for ``i`` in ``0 .. points - 1`` (unix s).

    Raises ValueError for a step that is not a positive whole number of seconds, fewer than one or
    more than :data:`MAX_POINTS` points, or a start that is not a finite number.
    """

    start: float
    step_s: int
    points: int

    def __post_init__(self) -> None:
        if isinstance(self.step_s, bool) or not isinstance(self.step_s, int) or self.step_s < 1:
            raise ValueError(f"step_s must be a positive whole number of seconds, got {self.step_s!r}")
        if (
            isinstance(self.points, bool)
            or not isinstance(self.points, int)
            or not 1 <= self.points <= MAX_POINTS
        ):
            raise ValueError(f"points must be a whole number in [1, {MAX_POINTS}], got {self.points!r}")
        if not math.isfinite(self.start):
            raise ValueError(f"start must be a finite unix time, got {self.start!r}")

    @property
    def end(self) -> float:
        """The last evaluation time (unix s)."""
        return self.start + (self.points - 1) * self.step_s

    @property
    def times(self) -> tuple[float, ...]:
        """Every evaluation time, in order (unix s)."""
        return tuple(self.start + i * self.step_s for i in range(self.points))

    def index(self, ts: float) -> int:
        """The grid point at ``ts`` (within a millisecond).  Raises UnusableReply when ``ts`` is
        not on the grid."""
        i = round((ts - self.start) / self.step_s)
        if not 0 <= i < self.points or abs(self.start + i * self.step_s - ts) > 1e-3 + 1e-12 * abs(ts):
            raise UnusableReply(f"a sample at {ts!r}, not one of the times asked for")
        return i


class RangeSeries(BaseModel):
    """One series of a range vector: its labels and ``(unix seconds, value text)`` pairs."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    metric: dict[_Label, _Label]
    values: Annotated[list[tuple[StrictFloat, PromNumber]], Field(max_length=MAX_POINTS)]

    def on_grid(self, grid: RangeGrid) -> tuple[str | None, ...]:
        """The value texts placed on ``grid`` (None where the series has no value).

        Raises UnusableReply for a timestamp off the grid or out of order (which also rules out two
        values for one time).
        """
        out: list[str | None] = [None] * grid.points
        last = -1
        for ts, value in self.values:
            i = grid.index(ts)
            if i <= last:
                raise UnusableReply(f"samples out of order or repeated at {ts!r}")
            out[i], last = value, i
        return tuple(out)


class _MatrixData(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    resultType: Literal["matrix"]
    result: list[RangeSeries]


class _MatrixSuccess(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    status: Literal["success"]
    data: _MatrixData


_REPLY: TypeAdapter[_MatrixSuccess | _Failure] = TypeAdapter(
    Annotated[_MatrixSuccess | _Failure, Field(discriminator="status")]
)


def parse_matrix(code: int, content_type: str, body: bytes) -> list[RangeSeries]:
    """The series of a range-query reply.

    ``code`` is the HTTP status, ``content_type`` the header as sent.  Raises
    :class:`~observability.promql.reply.UnusableReply` for anything but a successful matrix: not
    JSON, JSON that is not a range-query reply (an instant vector included), a Prometheus error, or
    a success reply with a non-2xx status.
    """
    reply = _success_reply(_REPLY, "range-query reply", code, content_type, body)
    return list(reply.data.result)
