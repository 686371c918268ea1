"""Alert replay: episodes from per-minute counts (numpy) against hand-worked episodes and a
brute-force evaluation (one windowed SQL count + alert_states per evaluation).

The store holds one request a minute, at ``AS_OF - 60 j - 30`` for two days; the requests in
``(AS_OF - 10h, AS_OF - 9h]`` (j = 540..599) fail: 60 errors, the first at ``E0 = AS_OF - 35970``,
the last at ``EL = AS_OF - 32430``. Availability: 99 % over 28d, so page 1h/5m fires above a
13.44 % error ratio and page 6h/30m above 5.6 %.

Hand-worked (evaluations at AS_OF - 300 k):
* page 1h/5m: the 1h window needs >= 9 of its 60 requests failed (9/60 = 15 %): t - E0 >= 480,
  first evaluation AS_OF - 35400; the 5m window (5 requests) keeps an error while t - 300 < EL,
  so the first evaluation without one is AS_OF - 32100. Peak: all 60 of the 1h window failed at
  AS_OF - 32400 -> burn 1 / 0.01 = 100.
* page 6h/30m: the 6h window needs >= 21 errors of 360 (5.83 %): t - E0 >= 1200, first
  evaluation AS_OF - 34500; the 30m window needs >= 2 errors of 30: t - 1800 < EL - 60, so it
  ends at AS_OF - 30600. Peak: 60 / 360 of the 6h window -> burn 16.67.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from observability.durations import parse_duration
from observability.slo.alert_store import episode_rows, replay_store, save_episodes
from observability.slo.burn import ERROR_RATIO_WINDOWS
from observability.slo.math import alert_states, burn_rate
from observability.slo.models import SLO, load_slos
from observability.slo.replay import AlertEpisode, replay_episodes
from observability.slo.sqlite_source import SqliteSLOSource
from observability.store import RequestRow, Store

AS_OF = 1_800_000_000.0


def _build(path: Path) -> Store:
    s = Store(path, threaded=False)
    rows = []
    for j in range(2 * 1440):
        ts = AS_OF - 60 * j - 30
        failed = 540 <= j <= 599
        rows.append(
            RequestRow(
                request_id=f"r{j}", ts=ts, status="error" if failed else "ok", latency_ms=100.0,
                verdict="correct", task="game24",
            )._asdict()
        )  # fmt: skip
    s.submit("requests", rows)
    s.flush()
    return s


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    s = _build(tmp_path_factory.mktemp("replay") / "arbor.db")
    yield s
    s.close()


@pytest.fixture(scope="module")
def availability() -> SLO:
    return next(slo for slo in load_slos() if slo.name == "availability")


def _brute(slo: SLO, source: SqliteSLOSource, as_of: float, span_s: float) -> list[AlertEpisode]:
    """Evaluate alert_states over SQL window counts at every 5-minute step; collect episodes."""
    windows = {w: parse_duration(w).total_seconds() for w in ERROR_RATIO_WINDOWS}
    times = [as_of - 300 * k for k in range(int(span_s // 300), -1, -1)]
    open_: dict[tuple[str, str, str], tuple[float, float, float]] = {}
    out: list[AlertEpisode] = []
    for t in times:
        counts = source.counts(slo, t, list(windows.values()))
        burns = {w: burn_rate(c.bad, c.total, slo.objective) for w, c in zip(windows, counts, strict=True)}
        for st in alert_states(slo.period, burns):
            key = (st.severity, st.long_window, st.short_window)
            if st.firing:
                assert st.long_burn is not None
                start, peak, factor = open_.get(key, (t, -math.inf, st.factor))
                open_[key] = (start, max(peak, st.long_burn), factor)
            elif key in open_:
                start, peak, factor = open_.pop(key)
                out.append(AlertEpisode(slo.name, *key, factor, start, t, peak))
    for key, (start, peak, factor) in open_.items():
        out.append(AlertEpisode(slo.name, *key, factor, start, None, peak))
    return sorted(out, key=lambda ep: (ep.start_ts, ep.severity, ep.long_window))


def _page(episodes: list[AlertEpisode], long: str) -> list[AlertEpisode]:
    return [ep for ep in episodes if ep.severity == "page" and ep.long_window == long]


def test_hand_worked_episodes(store: Store, availability: SLO) -> None:
    got = replay_store([availability], SqliteSLOSource(store.reads), AS_OF, timedelta(days=1))
    (fast,) = _page(got, "1h")
    assert (fast.start_ts, fast.end_ts) == (AS_OF - 35400, AS_OF - 32100)
    assert fast.peak_burn == pytest.approx(100.0)
    assert fast.factor == 13.44
    (slow,) = _page(got, "6h")
    assert (slow.start_ts, slow.end_ts) == (AS_OF - 34500, AS_OF - 30600)
    assert slow.peak_burn == pytest.approx((60 / 360) / 0.01)


def test_still_firing_at_as_of_has_no_end(store: Store, availability: SLO) -> None:
    as_of = AS_OF - 33000  # mid-incident
    got = replay_store([availability], SqliteSLOSource(store.reads), as_of, timedelta(hours=6))
    (fast,) = _page(got, "1h")
    assert fast.start_ts == AS_OF - 35400 and fast.end_ts is None and fast.firing


@pytest.mark.parametrize("as_of", [AS_OF, AS_OF - 33000, AS_OF - 7 * 60 - 13])
def test_matches_brute_force(store: Store, availability: SLO, as_of: float) -> None:
    source = SqliteSLOSource(store.reads)
    span = 86400.0
    got = replay_store([availability], source, as_of, timedelta(seconds=span))
    want = _brute(availability, source, as_of, span)
    assert [(e.severity, e.long_window, e.start_ts, e.end_ts) for e in got] == [
        (e.severity, e.long_window, e.start_ts, e.end_ts) for e in want
    ]
    assert [e.peak_burn for e in got] == pytest.approx([e.peak_burn for e in want])
    assert any(e.severity == "ticket" for e in got)  # the 3d/6h condition is exercised too


def test_pure_replay_random_against_loop() -> None:
    """Random per-minute counts: the numpy replay equals a plain loop over alert_states."""
    rng = np.random.default_rng(7)
    n = 3 * 1440 + 1440
    total = rng.integers(0, 4, n)
    bad = np.minimum(total, (rng.random(n) < 0.05).astype(int) * total)
    period = timedelta(days=28)
    windows = {w: int(parse_duration(w).total_seconds() // 60) for w in ERROR_RATIO_WINDOWS}
    got = replay_episodes("x", 0.99, period, 0.0, total, bad, eval_period_s=86400)
    firing_loop: dict[tuple[str, str], list[bool]] = {}
    for k in range(288, -1, -1):
        i = n - 1 - 5 * k
        sl = {w: slice(max(0, i + 1 - m), i + 1) for w, m in windows.items()}
        burns = {w: burn_rate(int(bad[sl[w]].sum()), int(total[sl[w]].sum()), 0.99) for w in windows}
        for st in alert_states(period, burns):
            firing_loop.setdefault((st.severity, st.long_window), []).append(st.firing)
    for (sev, long), flags in firing_loop.items():
        starts = [k for k in range(len(flags)) if flags[k] and (k == 0 or not flags[k - 1])]
        mine = [e for e in got if (e.severity, e.long_window) == (sev, long)]
        assert [e.start_ts for e in mine] == [-300.0 * (288 - k) for k in starts]
    assert got, "the random counts should fire something"


def test_bad_input_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="equal length"):
        replay_episodes("x", 0.99, timedelta(days=28), 0.0, [1, 2], [0])
    with pytest.raises(ValueError, match="bad <= total"):
        replay_episodes("x", 0.99, timedelta(days=28), 0.0, [1], [2])
    with pytest.raises(ValueError, match="step_s"):
        replay_episodes("x", 0.99, timedelta(days=28), 0.0, [1], [0], step_s=90)


def test_upsert_is_idempotent(tmp_path: Path, availability: SLO) -> None:
    s = _build(tmp_path / "a.db")
    try:
        source = SqliteSLOSource(s.reads)
        mid = replay_store([availability], source, AS_OF - 33000, timedelta(hours=6))
        s.submit("alerts", episode_rows(mid))
        s.flush()
        firing_before = s.query("SELECT COUNT(*) AS n FROM alerts WHERE state = 'firing'")[0]["n"]
        assert firing_before >= 1
        later = replay_store([availability], source, AS_OF, timedelta(days=1))
        for _ in range(2):
            s.submit("alerts", episode_rows(later))
            s.flush()
        rows = s.query("SELECT alert_id, state, resolved_ts FROM alerts WHERE long_window = '1h'")
        assert len(rows) == 1  # the mid-incident row was updated, not duplicated
        assert rows[0]["state"] == "resolved" and rows[0]["resolved_ts"] == AS_OF - 32100
        assert s.count("alerts") == len(later)
    finally:
        s.close()


def test_save_never_reopens_a_resolved_episode(tmp_path: Path, availability: SLO) -> None:
    s = _build(tmp_path / "b.db")
    try:
        source = SqliteSLOSource(s.reads)
        save_episodes(s, replay_store([availability], source, AS_OF, timedelta(days=1)))
        past = replay_store([availability], source, AS_OF - 33000, timedelta(hours=6))
        assert any(ep.firing and ep.long_window == "1h" for ep in past)
        save_episodes(s, past)  # a look at an earlier as_of: the 1h/5m episode was firing then
        (row,) = s.query("SELECT state, resolved_ts FROM alerts WHERE long_window = '1h'")
        assert (row["state"], row["resolved_ts"]) == ("resolved", AS_OF - 32100)
    finally:
        s.close()


def test_five_minute_buckets_replay_the_same_episodes_as_minutes() -> None:
    """bucket_width_s: 5m, 30m, 1h, 6h and 3d windows evaluated every 300 s are all whole 300 s
    buckets, so the replay of the per-minute counts summed by 5 equals the per-minute replay."""
    from observability.slo.replay import bucket_width_s

    assert bucket_width_s() == 300
    assert bucket_width_s(step_s=120) == 60  # gcd(120, 300, ...) = 60
    rng = np.random.default_rng(11)
    n = 5 * (4 * 1440 // 5)
    total = rng.integers(0, 6, n)
    bad = np.minimum(total, (rng.random(n) < 0.06).astype(int) * total)
    for as_of in (0.0, 1_800_000_017.25):
        minutes = replay_episodes("x", 0.99, timedelta(days=28), as_of, total, bad, eval_period_s=86400)
        fives = replay_episodes(
            "x", 0.99, timedelta(days=28), as_of, total.reshape(-1, 5).sum(axis=1),
            bad.reshape(-1, 5).sum(axis=1), eval_period_s=86400, bucket_s=300,
        )  # fmt: skip
        assert fives == minutes
        assert len(minutes) > 2
    with pytest.raises(ValueError, match="bucket_s"):
        replay_episodes("x", 0.99, timedelta(days=28), 0.0, [1], [0], bucket_s=200)
    with pytest.raises(ValueError, match="step_s"):
        bucket_width_s(step_s=90)
