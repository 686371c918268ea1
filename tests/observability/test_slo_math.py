"""SLO math against values worked out by hand (each test's comments show the arithmetic)."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from observability.slo.math import (
    NO_VALUE,
    BucketCount,
    alert_states,
    attribution_shares,
    budget_consumed,
    budget_over_time,
    budget_remaining,
    burn_rate,
    burn_rate_over_time,
    error_budget,
    error_ratio,
    ideal_budget_remaining,
    sli,
    time_to_exhaustion_s,
)

DAY = 86400.0


def test_ratios_budget_and_burn_by_hand() -> None:
    # 5 bad of 1000, objective 99 %: error ratio 5/1000 = 0.005, SLI 0.995,
    # budget 0.01, burn 0.005 / 0.01 = 0.5, consumed 0.5, remaining 1 - 0.5 = 0.5.
    assert error_ratio(5, 1000) == pytest.approx(0.005)
    assert sli(5, 1000) == pytest.approx(0.995)
    assert error_budget(0.99) == 0.01  # exact, no 0.010000000000000009
    assert burn_rate(5, 1000, 0.99) == pytest.approx(0.5)
    assert budget_consumed(5, 1000, 0.99) == pytest.approx(0.5)
    assert budget_remaining(5, 1000, 0.99) == pytest.approx(0.5)
    # 30 bad of 1000 at 95 %: ratio 0.03, budget 0.05, burn 0.6, remaining 0.4.
    assert burn_rate(30, 1000, 0.95) == pytest.approx(0.6)
    assert budget_remaining(30, 1000, 0.95) == pytest.approx(0.4)
    # Overspent: 20 bad of 1000 at 99 %: burn 0.02 / 0.01 = 2, remaining 1 - 2 = -1 (not clamped).
    assert budget_remaining(20, 1000, 0.99) == pytest.approx(-1.0)


def test_no_traffic_is_unknown_not_zero_or_one() -> None:
    assert error_ratio(0, 0) is None
    assert sli(0, 0) is None
    assert burn_rate(0, 0, 0.99) is None
    assert budget_consumed(0, 0, 0.99) is None
    assert budget_remaining(0, 0, 0.99) is None
    assert time_to_exhaustion_s(None, None, 28 * DAY) is None


def test_every_request_bad() -> None:
    # 10 of 10 bad at 99 %: ratio 1, SLI 0, burn 1 / 0.01 = 100, remaining 1 - 100 = -99.
    assert sli(10, 10) == 0.0
    assert burn_rate(10, 10, 0.99) == pytest.approx(100.0)
    assert budget_remaining(10, 10, 0.99) == pytest.approx(-99.0)
    # Spent budget: no time to exhaustion.
    assert time_to_exhaustion_s(-99.0, 100.0, 28 * DAY) is None


def test_objective_one_has_no_budget() -> None:
    assert error_budget(1.0) == 0.0
    # No bad event: nothing burnt, the (empty) budget is whole.
    assert burn_rate(0, 10, 1.0) == 0.0
    assert budget_remaining(0, 10, 1.0) == 1.0
    # One bad event exhausts it at once.
    assert burn_rate(1, 10, 1.0) == math.inf
    assert budget_remaining(1, 10, 1.0) == -math.inf
    assert time_to_exhaustion_s(-math.inf, math.inf, 28 * DAY) is None
    states = alert_states(timedelta(days=30), {w: math.inf for w in ("5m", "30m", "1h", "6h", "3d")})
    assert all(s.firing for s in states)
    # Still no traffic: unknown.
    assert budget_remaining(0, 0, 1.0) is None


@pytest.mark.parametrize(
    ("bad", "total", "objective"),
    [(2, 1, 0.99), (-1, 5, 0.99), (0, -1, 0.99), (1.5, 3, 0.99), (True, 3, 0.99), (0, 3, 0.0),
     (0, 3, 1.5), (0, 3, -0.1), (0, 3, "0.99")],
)  # fmt: skip
def test_bad_input_is_a_value_error(bad: object, total: object, objective: object) -> None:
    with pytest.raises(ValueError):
        burn_rate(bad, total, objective)  # type: ignore[arg-type]


def test_time_to_exhaustion_by_hand() -> None:
    # Burn 2 spends a whole 28-day budget in 14 days; half of it is left: 7 days = 604800 s.
    assert time_to_exhaustion_s(0.5, 2.0, 28 * DAY) == pytest.approx(7 * DAY)
    # Burn 14.4 with all the budget left over 30 days: 30 d / 14.4 = 50 h = 180000 s.
    assert time_to_exhaustion_s(1.0, 14.4, 30 * DAY) == pytest.approx(180000.0)
    assert time_to_exhaustion_s(0.5, 0.0, 28 * DAY) is None  # not burning
    assert time_to_exhaustion_s(0.5, None, 28 * DAY) is None  # unknown burn
    assert time_to_exhaustion_s(0.0, 3.0, 28 * DAY) is None  # already spent
    assert time_to_exhaustion_s(None, 3.0, 28 * DAY) is None
    with pytest.raises(ValueError):
        time_to_exhaustion_s(0.5, 1.0, 0.0)


def test_alert_factors_from_the_period() -> None:
    # factor = share x period / long: 30 d = 720 h: 0.02 x 720/1 = 14.4, 0.05 x 720/6 = 6,
    # 0.10 x 720/72 = 1. 28 d = 672 h: 13.44, 0.05 x 112 = 5.6, 0.1 x 672/72 = 0.9333333333.
    zero = dict.fromkeys(("5m", "30m", "1h", "6h", "3d"), 0.0)
    assert [s.factor for s in alert_states(timedelta(days=30), zero)] == [14.4, 6.0, 1.0]
    assert [s.factor for s in alert_states(timedelta(days=28), zero)] == [13.44, 5.6, 0.9333333333]
    states = alert_states(timedelta(days=28), zero)
    assert [(s.severity, s.long_window, s.short_window) for s in states] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "3d", "6h"),
    ]
    assert not any(s.firing for s in states)


def test_alert_states_need_both_windows_strictly_above() -> None:
    # 28 d factors 13.44 / 5.6 / 0.9333333333.
    burns: dict[str, float | None] = {"5m": 15.0, "1h": 14.0, "30m": 1.0, "6h": 6.0, "3d": 0.5}
    states = alert_states(timedelta(days=28), burns)
    # page 1h/5m: 14 > 13.44 and 15 > 13.44 -> firing; 6h/30m: 6 > 5.6 but 30m 1 < 5.6 -> no;
    # ticket: 3d 0.5 < 0.933 -> no.
    assert [s.firing for s in states] == [True, False, False]
    assert (states[0].long_burn, states[0].short_burn) == (14.0, 15.0)
    # Exactly at the factor does not fire (Prometheus' `>`): 30 d, 1h/5m burn 14.4.
    at = alert_states(timedelta(days=30), {"5m": 14.4, "1h": 14.4, "30m": 0.0, "6h": 0.0, "3d": 0.0})
    assert not at[0].firing
    # An unknown burn (no traffic in the short window) never fires.
    unknown = alert_states(timedelta(days=28), {**burns, "5m": None})
    assert not unknown[0].firing
    with pytest.raises(ValueError, match="3d"):
        alert_states(timedelta(days=28), {"5m": 1.0, "1h": 1.0, "30m": 1.0, "6h": 1.0})
    with pytest.raises(ValueError):
        alert_states(timedelta(0), burns)


def test_ideal_line() -> None:
    # 1 at the start, 0.75 a quarter in, 0 at the end; clamped outside.
    assert ideal_budget_remaining(100.0, 100.0, 4 * DAY) == 1.0
    assert ideal_budget_remaining(100.0 + DAY, 100.0, 4 * DAY) == pytest.approx(0.75)
    assert ideal_budget_remaining(100.0 + 4 * DAY, 100.0, 4 * DAY) == 0.0
    assert ideal_budget_remaining(100.0 + 5 * DAY, 100.0, 4 * DAY) == 0.0
    assert ideal_budget_remaining(0.0, 100.0, 4 * DAY) == 1.0


def test_budget_over_time_by_hand() -> None:
    # 1-day period from 0, four 6-hour buckets of 10 events each: 40 events, objective 90 %:
    # the budget is 0.1 x 40 = 4 bad events. Bad per bucket 1, 0, 2, 1 -> spent 1, 1, 3, 4 ->
    # remaining 1 - 1/4 = 0.75, 0.75, 1 - 3/4 = 0.25, 0. Ideal 0.75, 0.5, 0.25, 0.
    h6 = DAY / 4
    buckets = [
        BucketCount(h6, 10, 1),
        BucketCount(2 * h6, 10, 0),
        BucketCount(3 * h6, 10, 2),
        BucketCount(DAY, 10, 1),
    ]
    points = budget_over_time(buckets, 0.9, 0.0, DAY)
    assert [p.ts for p in points] == [h6, 2 * h6, 3 * h6, DAY]
    assert [p.remaining for p in points] == pytest.approx([0.75, 0.75, 0.25, 0.0])
    assert [p.ideal for p in points] == pytest.approx([0.75, 0.5, 0.25, 0.0])
    # The last point is the period's budget remaining.
    assert points[-1].remaining == pytest.approx(budget_remaining(4, 40, 0.9))


def test_budget_over_time_edges() -> None:
    empty = budget_over_time([BucketCount(1.0, 0, 0), BucketCount(2.0, 0, 0)], 0.99, 0.0, 2.0)
    assert [p.remaining for p in empty] == [None, None]
    assert [p.ideal for p in empty] == [0.5, 0.0]
    assert budget_over_time([], 0.99, 0.0, 2.0) == []
    # Objective 1.0: whole until the first bad event, then -inf.
    strict = budget_over_time([BucketCount(1.0, 5, 0), BucketCount(2.0, 5, 1)], 1.0, 0.0, 2.0)
    assert [p.remaining for p in strict] == [1.0, -math.inf]
    with pytest.raises(ValueError, match="order"):
        budget_over_time([BucketCount(2.0, 1, 0), BucketCount(1.0, 1, 0)], 0.99, 0.0, 2.0)
    with pytest.raises(ValueError):
        budget_over_time([BucketCount(1.0, 1, 2)], 0.99, 0.0, 2.0)


def test_attribution_shares() -> None:
    # 3 + 1 = 4 bad events: 3/4 and 1/4, largest first; a zero count is left out.
    assert attribution_shares({"b": 1, "a": 3, "c": 0}) == {"a": 0.75, "b": 0.25}
    assert list(attribution_shares({"b": 1, "a": 3})) == ["a", "b"]
    # None is keyed "(none)"; ties ordered by name.
    shares = attribution_shares({None: 1, "x": 1})
    assert shares == {NO_VALUE: 0.5, "x": 0.5}
    assert sum(attribution_shares({"a": 1, "b": 1, "c": 1}).values()) == pytest.approx(1.0)
    assert attribution_shares({}) == {}
    assert attribution_shares({"a": 0}) == {}
    with pytest.raises(ValueError):
        attribution_shares({"a": -1})


def test_burn_rate_over_time_by_hand() -> None:
    # 10-minute buckets ending at 10, 20, 30, 40 min with (total, bad) (10, 1), (10, 0), (5, 4),
    # (0, 0); a 20-minute window, objective 90 % (budget 0.1). Window ending at
    # 10: bucket 1 only (10, 1): 0.1 / 0.1 = 1 (less data than the window: what is there);
    # 20: buckets 1-2 (20, 1): 0.05 / 0.1 = 0.5;
    # 30: buckets 2-3 (bucket 1 ends at 10 = 30 - 20: out) (15, 4): 0.2667 / 0.1 = 2.667;
    # 40: buckets 3-4 (5, 4): 0.8 / 0.1 = 8.
    m = 60.0
    buckets = [BucketCount(10 * m, 10, 1), BucketCount(20 * m, 10, 0), BucketCount(30 * m, 5, 4),
               BucketCount(40 * m, 0, 0)]  # fmt: skip
    got = burn_rate_over_time(buckets, 0.9, 20 * m)
    assert [p.ts for p in got] == [10 * m, 20 * m, 30 * m, 40 * m]
    assert [p.burn for p in got] == pytest.approx([1.0, 0.5, 4 / 15 / 0.1, 8.0])
    # No traffic in a window: None.
    quiet = [BucketCount(1.0, 3, 0), BucketCount(2.0, 0, 0), BucketCount(3.0, 0, 0)]
    assert [p.burn for p in burn_rate_over_time(quiet, 0.9, 1.0)] == [0.0, None, None]
    with pytest.raises(ValueError):
        burn_rate_over_time(buckets, 0.9, 0.0)
    with pytest.raises(ValueError, match="order"):
        burn_rate_over_time(list(reversed(buckets)), 0.9, 20 * m)
