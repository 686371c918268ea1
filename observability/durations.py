"""Prometheus durations: the project's one parser and formatter.

The grammar is Prometheus' own (``model.ParseDuration``): one or more ``<integer><unit>`` parts,
units ``y`` (365 days), ``w``, ``d``, ``h``, ``m``, ``s``, ``ms``, each at most once and from the
largest to the smallest, no spaces, no sign, no fraction. Examples: ``5m``, ``28d``, ``1h30m``,
``1d12h``, ``500ms``.

Decisions (Prometheus accepts some of these; every caller here needs a positive window):

* ``""``, ``"5"`` (no unit), ``"-1m"`` (sign), ``"1.5h"`` (fraction), ``"5 m"`` (space) and
  ``"30m1h"`` (units out of order, which Prometheus rejects) are ValueError;
* ``"0"``, ``"0m"`` and ``"0h0m"`` are ValueError: a window of zero is never meant;
* a duration longer than :data:`MAX_DURATION` (what a ``timedelta`` holds, about 2.7 million
  years; Prometheus' own int64-millisecond limit is larger) is a ValueError, not an OverflowError.

Used by the SLO package (``observability.slo``), :mod:`observability.promql` (``$window``) and
:mod:`observability.overview` (time-range presets).
"""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["MAX_DURATION", "duration_seconds", "format_duration", "parse_duration"]

#: The longest duration accepted: the largest whole number of milliseconds a timedelta holds.
MAX_DURATION = timedelta.max - timedelta.max % timedelta(milliseconds=1)

_UNITS: dict[str, timedelta] = {
    "y": timedelta(days=365),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
}
# Prometheus' model.ParseDuration pattern: each unit optional, in this order, at most once.
_DURATION = re.compile(
    r"(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?"
)
# Inputs longer than this cannot be a representable duration anyway (hostile input stays cheap).
_MAX_TEXT = 64


def parse_duration(text: str) -> timedelta:
    """Parse a Prometheus duration (``5m``, ``28d``, ``1h30m``) into a positive timedelta.

    Raises:
        ValueError: not a string in the grammar above, zero, or longer than :data:`MAX_DURATION`;
            the message quotes the input.
    """
    match = _DURATION.fullmatch(text) if isinstance(text, str) and len(text) <= _MAX_TEXT else None
    if match is None or not text:
        raise ValueError(f"not a Prometheus duration (like 5m, 6h, 28d or 1h30m): {text!r}")
    millis = sum(
        int(count) * (_UNITS[unit] // _UNITS["ms"])
        for unit, count in match.groupdict().items()
        if count is not None
    )
    if millis <= 0:
        raise ValueError(f"duration must be positive: {text!r}")
    if millis > MAX_DURATION // _UNITS["ms"]:
        raise ValueError(f"duration is too long (at most {MAX_DURATION.days} days): {text!r}")
    return timedelta(milliseconds=millis)


def duration_seconds(text: str) -> float:
    """The duration ``text`` in seconds (``"1h30m"`` -> 5400.0); raises ValueError like
    :func:`parse_duration`."""
    return parse_duration(text).total_seconds()


def format_duration(value: timedelta) -> str:
    """The duration in its largest whole unit up to days (``28d``, ``90m``, ``36h``, ``500ms``).

    The inverse of :func:`parse_duration` for single-unit spellings; the SLO rules name their
    recorded series with it (``slo:sli_error:ratio_rate28d``). Raises ValueError for a duration
    that is not positive or not a whole number of milliseconds.
    """
    for unit in ("d", "h", "m", "s", "ms"):
        step = _UNITS[unit]
        if value >= step and value % step == timedelta():
            return f"{value // step}{unit}"
    raise ValueError(f"not a positive whole number of milliseconds: {value!r}")
