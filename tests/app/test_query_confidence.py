"""AppTest: the Query console shows the confidence rule, and its final figure is that rule applied
to the steps it shows (recomputed here from the step table, not from the engine's code)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.components import CONFIDENCE_RULE, FREEFORM_CONFIDENCE
from tests.app.console import open_console, run_query
from tests.app.shown import shown


@pytest.fixture
def app() -> AppTest:
    return open_console()


def _run(at: AppTest, query: str, seed: int) -> AppTest:
    return run_query(at, query, seed=seed, iterations=1000)


def _timeline(at: AppTest) -> pd.DataFrame:
    """The step table as shown (a static table of text cells): numbers parsed back, "—" as blank.
    Shown confidences have 2 decimals, so figures recomputed from them agree to rounding."""
    shown_table = next(t.value for t in at.table if "counts as" in t.value.columns)
    table = shown_table.map(shown)
    for column in ("confidence", "agreement"):
        table[column] = pd.to_numeric(table[column].replace("—", None), errors="coerce")
    return table


ROUNDING = 0.015  # recomputing from 2-decimal step figures: at most this far from the exact one


def _by_hand(table: pd.DataFrame) -> float:
    """The README's rule on the shown rows: verified -> 1; else over the independent rows,
    (share of their summed confidence backing the leading answer) x (1 - prod(1 - c))."""
    if (table["counts as"] == "verified").any():
        return 1.0
    rows = table[table["counts as"] == "independent"]
    sums = rows.groupby("answer", sort=False)["confidence"].sum()
    lead = sums.idxmax()
    backers = rows[rows["answer"] == lead]["confidence"]
    total = rows["confidence"].sum()
    share = backers.sum() / total if total > 0 else len(backers) / len(rows)
    return share * (1 - math.prod(1 - c for c in backers))


def _metric(at: AppTest, label: str) -> str:
    return next(shown(m.value) for m in at.metric if m.label == label)


def test_connect4_figure_is_the_rule_on_the_shown_steps(app):
    # Seed 2, rules router: HRM plays 4, MCTS another column, TRM keeps MCTS's column unchanged.
    at = _run(app, "connect4: ", seed=2)
    table = _timeline(at)
    assert list(table["agent"]) == ["hrm", "mcts", "trm"]
    assert list(table["counts as"]) == ["independent", "independent", "repeat (not counted)"]
    # step 1 has nothing to agree with: blank, not 0 or 1
    assert pd.isna(table["agreement"].iloc[0])
    hrm, mcts = table["confidence"].iloc[0], table["confidence"].iloc[1]
    assert table["agreement"].iloc[1] == pytest.approx(mcts / (hrm + mcts), abs=ROUNDING)
    expected = _by_hand(table)
    assert expected == pytest.approx(mcts / (hrm + mcts) * mcts)
    figure = _metric(at, "Confidence")
    assert float(figure) == pytest.approx(expected, abs=ROUNDING)
    captions = [shown(c.value) for c in at.caption]
    assert any(f"How {figure} follows from the steps:" in c and "trm (step 3)" in c for c in captions)
    rule = next(e for e in at.expander if e.label == "The confidence rule")
    assert shown(rule.markdown[0].value) == CONFIDENCE_RULE


def test_freeform_figure_is_labelled_corpus_support_and_follows_the_rule(app):
    at = _run(app, "How does UCB1 balance exploration and exploitation?", seed=7)
    table = _timeline(at)
    labels = [m.label for m in at.metric]
    assert FREEFORM_CONFIDENCE in labels and "Support" not in labels
    assert pd.isna(table["agreement"].iloc[0])
    assert float(_metric(at, FREEFORM_CONFIDENCE)) == pytest.approx(_by_hand(table), abs=ROUNDING)
    assert any("(corpus support, not judged) follows from the steps:" in shown(c.value) for c in at.caption)
    assert at.session_state["query_result"].quality is None


def test_verified_answer_is_one_and_says_so(app):
    at = _run(app, "24: 4 7 8 8", seed=3)
    table = _timeline(at)
    assert "verified" in list(table["counts as"])
    assert _metric(at, "Confidence") == "1.00"
    assert any("verified by" in shown(c.value) for c in at.caption)
