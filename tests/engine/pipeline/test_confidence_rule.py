"""The final-confidence rule (engine.loop.confidence) against values worked out by hand, for each
task shape, and the loop's agreement and stop rule counting only independent answers."""

from __future__ import annotations

import pytest

from engine import Engine, QueryRequest
from engine.agents import AgentOutput
from engine.config import load_settings
from engine.events import Consensus, Final
from engine.loop import agreement, final_confidence, is_independent, stop_decision
from engine.models import StepRecord


def step(
    index: int,
    agent: str,
    answer: str | None,
    confidence: float,
    *,
    exact: bool = False,
    refined_from: str | None = None,
) -> StepRecord:
    return StepRecord(
        index, agent, "rules", {}, (), "test", answer, confidence, "test", 1.0, exact, refined_from
    )  # type: ignore[arg-type]  # agent names are literals


def test_verified_exact_answer_is_one_whatever_came_before():
    # HRM guessed 4 at 1/7, MCTS proved 3: the proven answer wins at 1.0.
    ex = final_confidence([step(0, "hrm", "4", 1 / 7), step(1, "mcts", "3", 1.0, exact=True)])
    assert (ex.value, ex.answer, ex.basis, ex.agreement) == (1.0, "3", "verified", None)
    assert "verified by mcts (step 2)" in ex.text


def test_mcts_only_is_its_own_confidence_with_no_agreement():
    ex = final_confidence([step(0, "mcts", "4", 0.458)])
    assert ex.value == pytest.approx(0.458)
    assert ex.agreement is None and ex.combined == pytest.approx(0.458)
    assert "no agreement to weigh" in ex.text


def test_independent_agents_that_agree_combine_by_noisy_or():
    # HRM 1/7 and MCTS 1/2 on the same move: A = 1, S = 1 - (6/7)(1/2) = 4/7.
    ex = final_confidence([step(0, "hrm", "4", 1 / 7), step(1, "mcts", "4", 0.5)])
    assert ex.value == pytest.approx(4 / 7)
    assert ex.agreement == pytest.approx(1.0)
    assert ex.supporter_agents == ("hrm", "mcts")


def test_disagreement_scales_by_the_answer_share():
    # HRM 0.25 on "4", MCTS 0.5 on "3": "3" leads with A = 0.5 / 0.75 = 2/3, S = 0.5 -> 1/3.
    ex = final_confidence([step(0, "hrm", "4", 0.25), step(1, "mcts", "3", 0.5)])
    assert ex.answer == "3"
    assert ex.agreement == pytest.approx(2 / 3)
    assert ex.value == pytest.approx(1 / 3)
    assert ex.dissent == ((1, "hrm", 0.25),)
    assert "0.33 = agreement 0.67 × combined 0.50" in ex.text


def test_a_repeated_candidate_is_not_counted():
    # Same as above, then TRM is handed "3" and returns it unchanged at 0.5: not independent,
    # so the figure stays 1/3 (counting it would give A = 1/1.25 = 0.8, S = 0.75 -> 0.6).
    steps = [
        step(0, "hrm", "4", 0.25),
        step(1, "mcts", "3", 0.5),
        step(2, "trm", "3", 0.5, refined_from="3"),
    ]
    ex = final_confidence(steps)
    assert ex.value == pytest.approx(1 / 3)
    assert ex.supporter_agents == ("mcts",)
    assert ex.repeats == ((3, "trm"),)
    assert "not counted" in ex.text and "trm (step 3)" in ex.text
    assert [is_independent(s) for s in steps] == [True, True, False]


def test_a_refinement_that_changed_the_answer_is_independent():
    # TRM was handed "4" and moved to "3": it is its own answer, A = 1 / 1.25 = 0.8,
    # S = 1 - 0.5 * 0.5 = 0.75 -> 0.6.
    ex = final_confidence(
        [step(0, "hrm", "4", 0.25), step(1, "mcts", "3", 0.5), step(2, "trm", "3", 0.5, refined_from="4")]
    )
    assert ex.value == pytest.approx(0.6)
    assert ex.agreement == pytest.approx(0.8)


def test_a_repeat_that_verified_the_candidate_is_verified():
    ex = final_confidence(
        [step(0, "hrm", "c2", 0.5), step(1, "trm", "c2", 1.0, exact=True, refined_from="c2")]
    )
    assert (ex.value, ex.basis) == (1.0, "verified")


def test_freeform_two_steps_at_080_with_a_repeat_is_080_not_096():
    # The case: HRM 0.80, TRM handed HRM's text and returning it unchanged at 0.80.
    text = "Page the on-call [1]."
    ex = final_confidence([step(0, "hrm", text, 0.8), step(1, "trm", text, 0.8, refined_from=text)])
    assert ex.value == pytest.approx(0.8)
    assert ex.agreement is None


def test_all_zero_confidences_share_by_count_and_ties_go_to_the_earlier_step():
    ex = final_confidence([step(0, "hrm", "a", 0.0), step(1, "mcts", "b", 0.0)])
    assert (ex.answer, ex.agreement, ex.value) == ("a", 0.5, 0.0)


def test_no_answer_is_zero_and_a_bad_confidence_is_refused():
    ex = final_confidence([step(0, "hrm", None, 0.0)])
    assert (ex.value, ex.answer, ex.basis) == (0.0, None, "none")
    assert final_confidence([]).basis == "none"
    with pytest.raises(ValueError, match=r"step 1 \(hrm\): confidence 1\.5"):
        final_confidence([step(0, "hrm", "a", 1.5)])


def _out(answer: str, confidence: float, refined_from: str | None = None) -> AgentOutput:
    return AgentOutput(answer, confidence, "test", "move", refined_from=refined_from)


def test_stop_rule_needs_two_independent_supporters():
    usable = ("hrm", "trm", "mcts")
    # HRM then TRM repeating HRM's move: one independent supporter, so the loop goes on to MCTS.
    outputs = {"hrm": _out("4", 0.5), "trm": _out("4", 0.5, refined_from="4")}
    agreed = agreement(outputs)
    assert agreed.supporters == ("hrm",) and agreed.shown is None
    assert agreed.confidence == pytest.approx(0.5)
    stop, why = stop_decision(outputs["trm"], agreed, 0.6, 1, 5, usable, outputs)
    assert (stop, why) == (False, "continue: no second agent backs the leading answer yet")
    # MCTS independently finds the same move: A = 1 >= 0.6 with two supporters -> stop.
    outputs["mcts"] = _out("4", 0.5)
    agreed = agreement(outputs)
    assert agreed.supporters == ("hrm", "mcts") and agreed.shown == pytest.approx(1.0)
    assert agreed.confidence == pytest.approx(0.75)  # 1 - 0.5 * 0.5
    stop, why = stop_decision(outputs["mcts"], agreed, 0.6, 2, 5, ("hrm", "trm", "mcts", "x"), outputs)
    assert stop and why == "agreement: hrm, mcts agree (1.00 >= 0.6)"
    # A changed refinement is independent: HRM 0.5 on "4", TRM moved it to "3" at 0.9.
    moved = {"hrm": _out("4", 0.5), "trm": _out("3", 0.9, refined_from="4")}
    agreed = agreement(moved)
    assert agreed.answer == "3" and agreed.shown == pytest.approx(0.9 / 1.4)
    stop, _ = stop_decision(moved["trm"], agreed, 0.6, 1, 5, usable, moved)
    assert not stop  # one supporter of "3": not agreement, however high its share


@pytest.fixture(scope="module")
def engine():
    e = Engine(load_settings(telemetry="off", metrics_port=0))
    yield e
    e.close()


@pytest.mark.parametrize(
    "query",
    [
        "connect4: ",
        "connect4: 44",
        "tictactoe: X../.../...",
        "24: 4 7 8 8",
        "How does UCB1 balance exploration?",
    ],
)
def test_the_result_is_the_rule_applied_to_its_steps(engine, query):
    events = list(engine.stream(QueryRequest(query=query, seed=2, router="rules")))
    result = next(e for e in events if isinstance(e, Final)).result
    ex = final_confidence(result.steps)
    assert (result.confidence, result.answer or None) == (ex.value, ex.answer)
    consensus = [e for e in events if isinstance(e, Consensus)]
    assert consensus[0].score is None  # step 1: nothing to agree with yet


def test_connect4_trm_repeat_is_not_agreement(engine):
    # Seed 2 on the empty board: HRM plays 4 (1 of 7 survivors), MCTS prefers another column,
    # TRM is handed MCTS's move and keeps it ("beats 0 of 6 alternatives").
    result = engine.run(QueryRequest(query="connect4: ", seed=2, router="rules"))
    hrm, mcts, trm = result.steps
    assert (hrm.agent, mcts.agent, trm.agent) == ("hrm", "mcts", "trm")
    assert trm.refined_from == mcts.answer == trm.answer != hrm.answer
    assert not result.stop_reason.startswith("agreement")
    # By hand: only HRM and MCTS count; A = c_mcts / (c_mcts + c_hrm), S = c_mcts.
    expected = mcts.confidence / (mcts.confidence + hrm.confidence) * mcts.confidence
    assert result.confidence == pytest.approx(expected)
    assert result.answer == mcts.answer
