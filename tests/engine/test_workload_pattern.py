"""The simulated timeline's traffic pattern, incidents and weighted task mix (plans only: no engine).

Oracles: the intensity formula written out here and integrated numerically with scipy (not the
generator's closed form), calendar arithmetic on UTC dates, and binomial bounds on shares.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate

from engine.workload import DAY_S, LoadConfig, TrafficPattern, default_incidents, plan, read_workload

ROWS = [{"query": "24: 4 7 8 8"}, {"query": "tictactoe: X.O/.X./..O"}]
# Monday 2 March 2026, 00:30 UTC: the timeline starts half-way into an hour, on a weekday.
START = datetime(2026, 3, 2, 0, 30, tzinfo=UTC).timestamp()


def _rate(ts: float, amplitude: float = 0.6, peak: float = 15.0, weekend: float = 0.4) -> float:
    day = datetime.fromtimestamp(ts, UTC)
    hour = day.hour + day.minute / 60 + (day.second + day.microsecond / 1e6) / 3600
    factor = weekend if day.weekday() >= 5 else 1.0
    return (1 + amplitude * math.cos(2 * math.pi * (hour - peak) / 24)) * factor


def _hour_bins(start: float, end: float) -> list[tuple[float, float]]:
    edges = [start, *range(int(start // 3600 + 1) * 3600, int(end), 3600), end]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def test_counts_per_hour_follow_the_daily_and_weekly_formula() -> None:
    days, n = 14, 20_000
    cfg = LoadConfig(clock="simulated", days=days, requests=n, seed=4)
    planned = plan(ROWS, cfg, START)
    ts = np.array([START + p.offset_s for p in planned])
    assert np.all(np.diff(ts) >= 0) and ts[0] >= START and ts[-1] < START + days * DAY_S
    bins = _hour_bins(START, START + days * DAY_S)
    weights = np.array([integrate.quad(_rate, a, b)[0] for a, b in bins])
    expected = n * weights / weights.sum()
    counts = np.array([np.count_nonzero((ts >= a) & (ts < b)) for a, b in bins])
    assert counts.sum() == n
    assert np.max(np.abs(counts - expected)) < 1.0  # largest-remainder rounding of the formula
    # the busiest weekday hour (15:00 UTC) against the quietest weekend hour (03:00 UTC):
    # (1 + 0.6) / ((1 - 0.6) * 0.4) = 10 times the traffic
    by_slot: dict[tuple[bool, int], list[int]] = {}
    for (a, _), c in zip(bins, counts, strict=True):
        d = datetime.fromtimestamp(a, UTC)
        if a % 3600 == 0:
            by_slot.setdefault((d.weekday() >= 5, d.hour), []).append(int(c))
    peak, trough = np.mean(by_slot[(False, 15)]), np.mean(by_slot[(True, 3)])
    assert peak / trough == pytest.approx(10.0, rel=0.1)


def test_weekend_days_get_their_share_by_the_formula() -> None:
    days, n = 14, 20_000
    planned = plan(ROWS, LoadConfig(clock="simulated", days=days, requests=n, seed=9), START)
    per_day = Counter(datetime.fromtimestamp(START + p.offset_s, UTC).date() for p in planned)
    # whole days only (the first and last are cut at 00:30): the daily cosine integrates to 1 a day,
    # so a weekday gets 24 h x 1 and a weekend day 24 h x 0.4 of the total weight
    total_weight = integrate.quad(_rate, START, START + days * DAY_S, limit=2000)[0]
    for day, count in per_day.items():
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        if midnight < START or midnight + DAY_S > START + days * DAY_S:
            continue
        share = DAY_S * (0.4 if day.weekday() >= 5 else 1.0) / total_weight
        assert abs(count - n * share) < 24, day  # at most one request off per hour


def test_a_flat_pattern_and_bad_pattern_values() -> None:
    flat = plan(ROWS, LoadConfig(clock="simulated", days=2, requests=480, seed=1, pattern=None), START)
    hours = Counter(int((p.offset_s) // 3600) for p in flat)
    assert max(hours.values()) - min(hours.values()) < 20  # uniform: ~10 an hour
    with pytest.raises(ValueError, match="daily amplitude 1 must be in"):
        TrafficPattern(daily_amplitude=1.0)
    with pytest.raises(ValueError, match="weekend factor 0 must be in"):
        TrafficPattern(weekend_factor=0.0)


def test_incidents_are_placed_by_day_and_hour_and_carry_their_faults() -> None:
    days = 28
    cfg = LoadConfig(clock="simulated", days=days, requests=30_000, seed=12)
    planned = plan(ROWS, cfg, START)
    incidents = default_incidents(days)
    spike, outage, slow, latency = incidents
    # the spike: the UTC day a quarter in (2 March 00:30 + 7 days = 9 March), 14:00-16:00
    assert spike.window(START, days * DAY_S) == (
        datetime(2026, 3, 9, 14, tzinfo=UTC).timestamp(),
        datetime(2026, 3, 9, 16, tzinfo=UTC).timestamp(),
    )
    assert slow.window(START, days * DAY_S)[1] - slow.window(START, days * DAY_S)[0] == 60 * 3600
    by_name = {x.name: x.window(START, days * DAY_S) for x in incidents}
    inside: Counter[str | None] = Counter()
    for p in planned:
        t = START + p.offset_s
        names = [name for name, (lo, hi) in by_name.items() if lo <= t < hi]
        assert [p.incident] == (names or [None])
        inside[p.incident] += 1
        if p.incident is None:
            assert not p.faults.any  # the base plan injects nothing
    spike_faults = [p.faults for p in planned if p.incident == spike.name]
    errors = sum(f.error for f in spike_faults)
    n = len(spike_faults)
    assert n > 50 and abs(errors - n / 2) < 4 * math.sqrt(n / 4)  # half of them fail (binomial)
    assert all(not f.error and f.provider_error in (True, False) for f in (p.faults for p in planned
               if p.incident == outage.name))  # fmt: skip
    lat = [p.faults.extra_latency_s for p in planned if p.incident == latency.name]
    assert set(lat) <= {0.0, 0.9} and abs(sum(x > 0 for x in lat) - 0.15 * len(lat)) < 4 * math.sqrt(
        0.15 * 0.85 * len(lat)
    )


def test_row_weights_set_the_mix(tmp_path: Path) -> None:
    rows = [{"query": "24: 4 7 8 8", "weight": 3}, {"query": "tictactoe: X.O/.X./..O", "weight": 1}]
    n = 8000
    planned = plan(rows, LoadConfig(clock="simulated", days=7, requests=n, seed=3), START)
    games = sum(p.row is rows[0] for p in planned)
    assert abs(games - 0.75 * n) < 5 * math.sqrt(n * 0.75 * 0.25)


def test_the_demo_workload_has_a_real_task_mix_and_valid_rows() -> None:
    rows = read_workload(Path("data/workloads/demo.jsonl"))
    share: Counter[str] = Counter()
    for r in rows:
        share[r["task"]] += r["weight"]
    total = sum(share.values())
    assert set(share) == {"game24", "tictactoe", "connect4", "freeform"}
    assert all(0.1 <= v / total <= 0.5 for v in share.values())
    assert {r.get("router", "rules") for r in rows} == {"rules", "gru", "hybrid"}


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"query": "q", "router": "fixed:llm"}, "router 'fixed:llm' is not one of rules, gru, hybrid, fixed"),
        ({"query": "q", "mcts_iterations": 0}, "mcts_iterations 0 must be an integer in 1..10000"),
        ({"query": "q", "weight": -1}, "weight -1 must be a positive number"),
        ({"query": "q", "weight": "a lot"}, "weight 'a lot' must be a positive number"),
    ],
)
def test_bad_row_fields_are_named_with_their_line(tmp_path: Path, row: dict[str, object], match: str) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(json.dumps({"query": "24: 1 2 3 4"}) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=f"w.jsonl:2: {match}"):
        read_workload(path)
