"""Flag evaluation: rollout shares over 10,000 units within the binomial tolerance, the bucket of
every unit against SHA-256 worked out here, targeting rules, kill/enable, precedence and pinned
keys.  Oracles: ``hashlib`` by hand and ``scipy.stats.binom``."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError
from scipy import stats

from engine.flags import FlagSpec, Targeting, apply_flags, evaluate, parse_override
from engine.models import QueryRequest

N_UNITS = 10_000
UNITS = [f"user-{i}" for i in range(N_UNITS)]
REQ = QueryRequest(query="24: 4 7 8 8")


def _bucket_by_hand(name: str, unit: str, salt: str | None = None) -> int:
    text = f"{salt or 'flag:' + name}:{name}:{unit}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") % 10_000


def _flag(name: str = "f", **kw: object) -> FlagSpec:
    data: dict[str, object] = {"key": "use_mcts", "value": False, "rollout_pct": 100.0}
    data.update(kw)
    return FlagSpec(name=name, **data)  # type: ignore[arg-type]


@pytest.mark.parametrize("pct", [1.0, 12.5, 25.0, 50.0, 90.0])
def test_rollout_share_within_binomial_tolerance(pct: float) -> None:
    flag = _flag("rollout-test", rollout_pct=pct)
    hits = sum(1 for u in UNITS if evaluate([flag], REQ, u))
    # 4 sigma two-sided: P(outside) ~ 6.3e-5 under the binomial(10000, pct/100) a fair hash gives
    low, high = stats.binom.interval(1 - 2 * stats.norm.sf(4), N_UNITS, pct / 100)
    assert low <= hits <= high, (pct, hits, low, high)


def test_every_unit_gets_the_bucket_worked_out_by_hand() -> None:
    flag = _flag("by-hand", rollout_pct=33.33)
    for unit in UNITS[:2000]:
        b = _bucket_by_hand("by-hand", unit)
        applied = evaluate([flag], REQ, unit)
        assert bool(applied) == (b < 3333)
        if applied:
            assert applied[0].bucket == b and applied[0].unit == unit
    salted = _flag("by-hand", rollout_pct=33.33, salt="s2")
    for unit in UNITS[:500]:
        assert bool(evaluate([salted], REQ, unit)) == (_bucket_by_hand("by-hand", unit, "s2") < 3333)


def test_two_flags_bucket_independently() -> None:
    a, b = _flag("a-flag", rollout_pct=50.0), _flag("b-flag", key="use_rag", value=False, rollout_pct=50.0)
    both = sum(1 for u in UNITS if len(evaluate([a, b], REQ, u)) == 2)
    low, high = stats.binom.interval(1 - 2 * stats.norm.sf(4), N_UNITS, 0.25)
    assert low <= both <= high


def test_rollout_edges_and_switches() -> None:
    assert all(evaluate([_flag(rollout_pct=100)], REQ, u) for u in UNITS[:300])
    assert not any(evaluate([_flag(rollout_pct=0)], REQ, u) for u in UNITS[:300])
    assert not any(evaluate([_flag(killed=True)], REQ, u) for u in UNITS[:300])
    assert not any(evaluate([_flag(enabled=False)], REQ, u) for u in UNITS[:300])


def test_targeting_units_tasks_prefixes() -> None:
    by_unit = _flag(targeting=Targeting(units=("alice", "bob")))
    assert evaluate([by_unit], REQ, "alice") and evaluate([by_unit], REQ, "bob")
    assert not evaluate([by_unit], REQ, "carol")

    by_task = _flag(targeting=Targeting(tasks=("connect4", "tictactoe")))
    assert evaluate([by_task], QueryRequest(query="connect4: 4453"), "u")
    assert evaluate([by_task], QueryRequest(query="X.O/.X./..O", task="tictactoe"), "u")
    assert not evaluate([by_task], REQ, "u")  # game24, detected from the prefix
    assert not evaluate([by_task], QueryRequest(query="what is MCTS?"), "u")  # freeform

    by_prefix = _flag(targeting=Targeting(prefixes=("24:", "game24:")))
    assert evaluate([by_prefix], REQ, "u")
    assert not evaluate([by_prefix], QueryRequest(query=" 24: 4 7 8 8"), "u")  # starts with a space
    assert not evaluate([by_prefix], QueryRequest(query="connect4: 4453"), "u")

    every_rule = _flag(targeting=Targeting(units=("alice",), tasks=("game24",), prefixes=("24:",)))
    assert evaluate([every_rule], REQ, "alice")
    assert not evaluate([every_rule], REQ, "bob")  # all rules must match
    assert not evaluate([every_rule], QueryRequest(query="game24: 4 7 8 8"), "alice")


def test_targeting_then_rollout() -> None:
    flag = _flag("half-of-c4", rollout_pct=50, targeting=Targeting(tasks=("connect4",)))
    c4 = QueryRequest(query="connect4: 4453")
    for unit in UNITS[:1000]:
        assert bool(evaluate([flag], c4, unit)) == (_bucket_by_hand("half-of-c4", unit) < 5000)
        assert not evaluate([flag], REQ, unit)


def test_precedence_name_order_and_pinned_keys() -> None:
    b = _flag("b-iter", key="mcts_iterations", value=200)
    a = _flag("a-iter", key="mcts_iterations", value=50)
    c = _flag("c-steps", key="max_steps", value=1)
    applied = evaluate([c, b, a], REQ, "u")
    assert [x.name for x in applied] == ["a-iter", "c-steps"]  # b-iter loses to a-iter (name order)
    out = apply_flags(REQ, applied)
    assert out.mcts_iterations == 50 and out.max_steps == 1 and out.query == REQ.query
    pinned = evaluate([c, b, a], REQ, "u", pinned=("mcts_iterations",))
    assert [x.name for x in pinned] == ["c-steps"]  # the experiment variant's key is left alone
    assert apply_flags(REQ, ()) is REQ


def test_overrides_land_where_the_engine_reads_them() -> None:
    flags = [_flag("sel", key="mcts_selection", value="puct"), _flag("rt", key="router", value="hybrid")]
    applied = evaluate(flags, REQ, "u")
    out = apply_flags(REQ, applied)
    assert out.overrides.mcts_selection == "puct" and out.router == "hybrid"


def test_spec_validation() -> None:
    f = FlagSpec(name="x.y-z_1", key="use_mcts", value="false", rollout_pct=12.34)
    assert (
        f.value is False and f.rollout_pct == 12.34 and f.threshold == 1234 and f.salt_value == "flag:x.y-z_1"
    )
    assert FlagSpec(name="n", key="mcts_iterations", value="200").value == 200
    for bad in (
        {"name": "Upper", "key": "use_mcts", "value": False},
        {"name": "-x", "key": "use_mcts", "value": False},
        {"name": "x", "key": "seed", "value": 1},
        {"name": "x", "key": "mcts_iterations", "value": 0},
        {"name": "x", "key": "router", "value": "magic"},
        {"name": "x", "key": "use_mcts", "value": None},
        {"name": "x", "key": "use_mcts", "value": False, "rollout_pct": 100.5},
        {"name": "x", "key": "use_mcts", "value": False, "rollout_pct": 1.005},
        {"name": "x", "key": "use_mcts", "value": False, "targeting": {"tasks": ["auto"]}},
        {"name": "x", "key": "use_mcts", "value": False, "targeting": {"units": [""]}},
    ):
        with pytest.raises(ValidationError):
            FlagSpec.model_validate(bad)
    assert parse_override("use_mcts=false") == ("use_mcts", False)
    assert parse_override(" mcts_iterations = 200 ") == ("mcts_iterations", 200)
    for bad_text in ("use_mcts", "=1", "nope=1", "mcts_iterations=abc", "use_mcts="):
        with pytest.raises(ValueError):
            parse_override(bad_text)
    with pytest.raises(ValueError, match="unit"):
        evaluate([f], REQ, "")
