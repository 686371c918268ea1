"""The ordered comparison: hand-built goldens and observations, messages worked out by hand."""

from __future__ import annotations

import dataclasses

from engine.golden import GoldenFile, GoldenSpan, GoldenStep, Observation, compare
from engine.golden.format import GoldenLatency, GoldenRequest

STEPS = [
    GoldenStep(
        step=0,
        agent="hrm",
        probabilities={"hrm": 0.74, "trm": 0.10, "mcts": 0.16},
        reason="argmax: hrm at 0.74",
    ),
    GoldenStep(
        step=1,
        agent="mcts",
        probabilities={"hrm": 0.01, "trm": 0.04, "mcts": 0.95},
        reason="argmax: mcts at 0.95",
    ),
    GoldenStep(
        step=2,
        agent="trm",
        probabilities={"hrm": 0.01, "trm": 0.61, "mcts": 0.38},
        reason="argmax: trm at 0.61",
    ),
]
SPANS = [
    GoldenSpan(
        name="query",
        attributes={"task": "game24", "seed": 1},
        children=[
            GoldenSpan(name="agent.hrm", attributes={"step": 0, "answer": "8*(7+4-8)", "confidence": 1.0}),
            GoldenSpan(name="synthesise"),
        ],
    )
]
GOLDEN = GoldenFile(
    request=GoldenRequest(query="24: 4 7 8 8", seed=1),
    answer="8*(7+4-8)",
    verdict="correct",
    quality=1.0,
    routing=STEPS,
    spans=SPANS,
    latency_ms=GoldenLatency(total=2.0),
    engine_version="arbor test",
    captured_at="2026-01-01T00:00:00+00:00",
)
SAME = Observation(
    answer="8*(7+4-8)",
    verdict="correct",
    quality=1.0,
    routing=tuple(STEPS),
    spans=tuple(SPANS),
    latency_ms=900.0,  # far slower: latency never fails a trace
    span_latency_ms={},
    request_id="r",
    trace_id="t",
)


def _cmp(obs: Observation, **tol: float):
    return compare(GOLDEN, obs, prob_tolerance=tol.get("p", 1e-6), quality_tolerance=tol.get("q", 0.0))


def _step(i: int, **changes) -> tuple[GoldenStep, ...]:
    steps = list(STEPS)
    steps[i] = steps[i].model_copy(update=changes)
    return tuple(steps)


def test_identical_behaviour_passes_whatever_the_latency() -> None:
    assert _cmp(SAME) == ()


def test_a_different_agent_is_named_with_its_probabilities() -> None:
    obs = dataclasses.replace(
        SAME, routing=_step(2, agent="mcts", probabilities={"hrm": 0.01, "trm": 0.38, "mcts": 0.61})
    )
    diffs = _cmp(obs)
    # the step stored as index 2 is the third: messages number steps from 1
    assert diffs[0].message == "routing step 3: expected trm, got mcts (p_trm 0.61 -> 0.38)"
    assert (diffs[0].section, diffs[0].where, diffs[0].expected, diffs[0].got) == (
        "routing",
        "routing step 3",
        "trm",
        "mcts",
    )


def test_probabilities_are_compared_within_the_tolerance() -> None:
    shifted = _step(0, probabilities={"hrm": 0.7400004, "trm": 0.0999996, "mcts": 0.16})
    assert _cmp(dataclasses.replace(SAME, routing=shifted), p=1e-6) == ()
    diffs = _cmp(dataclasses.replace(SAME, routing=shifted), p=1e-7)
    assert diffs[0].message == "routing step 1: p_hrm 0.740000 -> 0.740000 (tolerance 1e-07)"


def test_a_missing_step_and_a_changed_reason() -> None:
    diffs = _cmp(dataclasses.replace(SAME, routing=tuple(STEPS[:2])))
    assert diffs[0].message == "routing: expected 3 steps, got 2: step 3 (trm) missing"
    diffs = _cmp(dataclasses.replace(SAME, routing=_step(1, reason="override: hrm already ran")))
    assert (
        diffs[0].message
        == "routing step 2: reason expected 'argmax: mcts at 0.95', got 'override: hrm already ran'"
    )


def test_the_answer_message_and_the_order_routing_before_answer() -> None:
    obs = dataclasses.replace(SAME, answer="no solution", verdict="incorrect", quality=0.0)
    diffs = _cmp(obs)
    assert [d.message for d in diffs] == [
        "answer: expected 8*(7+4-8), got no solution",
        "verdict: expected correct, got incorrect",
        "quality: expected at least 1 (golden 1), got 0",
    ]
    both = dataclasses.replace(obs, routing=_step(0, agent="mcts"))
    assert [d.section for d in _cmp(both)] == ["routing", "answer", "verdict", "quality"]


def test_span_structure_then_attributes() -> None:
    extra = GoldenSpan(
        name="query",
        attributes=SPANS[0].attributes,
        children=[*SPANS[0].children, GoldenSpan(name="agent.trm")],
    )
    assert (
        _cmp(dataclasses.replace(SAME, spans=(extra,)))[0].message
        == "span tree: unexpected span query/agent.trm"
    )
    renamed = GoldenSpan(
        name="query",
        attributes=SPANS[0].attributes,
        children=[GoldenSpan(name="agent.mcts"), SPANS[0].children[1]],
    )
    msg = _cmp(dataclasses.replace(SAME, spans=(renamed,)))[0].message
    assert msg == "span tree at span #1: expected query/agent.hrm, got query/agent.mcts"
    assert _cmp(dataclasses.replace(SAME, spans=(renamed,)))[0].where == "span query/agent.hrm"
    changed = GoldenSpan(
        name="query",
        attributes=SPANS[0].attributes,
        children=[
            SPANS[0]
            .children[0]
            .model_copy(update={"attributes": {"step": 0, "answer": "4", "confidence": 1.0}}),
            SPANS[0].children[1],
        ],
    )
    msg = _cmp(dataclasses.replace(SAME, spans=(changed,)))[0].message
    assert msg == "span query/agent.hrm: answer expected '8*(7+4-8)', got '4'"


def test_quality_tolerance_and_improvements() -> None:
    assert _cmp(dataclasses.replace(SAME, quality=0.95), q=0.1) == ()
    assert _cmp(dataclasses.replace(SAME, quality=0.85), q=0.1)[0].section == "quality"
    assert (
        _cmp(dataclasses.replace(SAME, quality=None))[0].message
        == "quality: expected at least 1 (golden 1), got none"
    )
    unknown = GOLDEN.model_copy(update={"quality": None})
    assert (
        compare(unknown, dataclasses.replace(SAME, quality=0.0), prob_tolerance=0, quality_tolerance=0) == ()
    )
