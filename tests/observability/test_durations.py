"""The project's one Prometheus duration parser, against values worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from observability.durations import MAX_DURATION, duration_seconds, format_duration, parse_duration
from observability.overview import PRESETS
from observability.promql import REQUEST_RATE_QUERY, render_query


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300),
        ("1h", 3600),
        ("28d", 28 * 24 * 3600),
        ("2w", 14 * 24 * 3600),
        ("1y", 365 * 24 * 3600),
        ("500ms", 0.5),
        ("1h30m", 5400),  # compound, as Prometheus accepts
        ("1d12h", 36 * 3600),
        ("1y2w3d4h5m6s7ms", 365 * 86400 + 14 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6 + 0.007),
        ("90m", 5400),  # no carrying needed
        ("0h5m", 300),  # a zero part is fine when the whole is positive
        ("007s", 7),  # leading zeros, as in Prometheus
    ],
)
def test_valid_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds, abs=1e-9)
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a Prometheus duration"),
        ("5", "not a Prometheus duration"),  # no unit
        ("-1m", "not a Prometheus duration"),  # no sign
        ("+1m", "not a Prometheus duration"),
        ("1.5h", "not a Prometheus duration"),  # no fraction (Prometheus rejects it too)
        ("5 m", "not a Prometheus duration"),
        (" 5m", "not a Prometheus duration"),
        ("5M", "not a Prometheus duration"),  # units are lower case
        ("30m1h", "not a Prometheus duration"),  # units from largest to smallest
        ("5m5m", "not a Prometheus duration"),  # each unit once
        ("1h 30m", "not a Prometheus duration"),
        ("h", "not a Prometheus duration"),
        ("5m\n", "not a Prometheus duration"),  # a trailing newline is not ignored
        ("\u0665m", "not a Prometheus duration"),  # ASCII digits only (U+0665 is Arabic-Indic 5)
        ("0", "not a Prometheus duration"),
        ("0m", "positive"),
        ("0h0m0s", "positive"),
        ("1000000000d", "too long"),
        ("9" * 60 + "y", "too long"),
        ("9" * 100 + "y", "not a Prometheus duration"),  # absurdly long input is refused unparsed
    ],
)
def test_invalid_durations_are_value_errors_quoting_the_input(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        parse_duration(text)
    assert repr(text)[:20] in str(info.value)


@pytest.mark.parametrize("value", [None, 5, 5.0, b"5m", ["5m"]])
def test_non_strings_are_value_errors(value: object) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        parse_duration(value)  # type: ignore[arg-type]  # hostile input on purpose


def test_the_largest_accepted_duration_is_max_duration() -> None:
    assert parse_duration(f"{MAX_DURATION.days}d") == timedelta(days=MAX_DURATION.days)
    with pytest.raises(ValueError, match="too long"):
        parse_duration(f"{MAX_DURATION.days + 1}d")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=28), "28d"),
        (timedelta(days=7), "7d"),  # days, not weeks: rule names say ratio_rate7d
        (timedelta(minutes=90), "90m"),
        (timedelta(hours=36), "36h"),
        (timedelta(hours=1), "1h"),
        (timedelta(seconds=61), "61s"),
        (timedelta(milliseconds=1500), "1500ms"),
    ],
)
def test_format_duration_uses_the_largest_whole_unit(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
    assert parse_duration(text) == value


@pytest.mark.parametrize("value", [timedelta(), timedelta(seconds=-60), timedelta(microseconds=1500)])
def test_format_duration_rejects_what_has_no_spelling(value: timedelta) -> None:
    with pytest.raises(ValueError):
        format_duration(value)


def test_promql_windows_and_overview_presets_use_the_same_grammar() -> None:
    assert render_query(REQUEST_RATE_QUERY, "1h30m") == "sum(rate(mcts_requests_total[1h30m]))"
    for bad in ("30m1h", "1.5h", "0m", ""):
        with pytest.raises(ValueError, match="window must be a Prometheus duration"):
            render_query(REQUEST_RATE_QUERY, bad)
    assert [(p.label, p.seconds, p.bucket_s) for p in PRESETS] == [  # buckets: chart_step, <= 300 points
        ("15m", 900, 30),
        ("1h", 3600, 30),
        ("6h", 21600, 120),
        ("24h", 86400, 300),
        ("7d", 604800, 3600),
        ("28d", 2419200, 10800),
    ]
    assert all(p.prom_window == p.label for p in PRESETS)
