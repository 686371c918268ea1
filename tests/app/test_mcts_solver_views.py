"""The MCTS explorer is solver-true: proven values, statuses and colours against minimax, the
scrubber drives every chart, connect-four labels, blank (never "None") table cells."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app import mcts_views
from engine.mcts import SearchConfig, search
from engine.tasks import load_task
from engine.tasks.tictactoe import minimax_value
from tests.app.shown import shown

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
PAGE = "../pages/mcts.py"
TTT = load_task("tictactoe")
GOOD_HALF = [mcts_views.status_colour("unproven", q / 10, (-1.0, 1.0)) for q in range(1, 11)]


def _rgb(colour: str) -> tuple[int, int, int]:
    if colour.startswith("#"):
        return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
    r, g, b = (int(float(x)) for x in re.findall(r"[\d.]+", colour)[:3])
    return r, g, b


def _looks_good(colour: str) -> bool:
    """Whether ``colour`` reads as "good" on the value scale: the blue half (blue above red)."""
    r, _, b = _rgb(colour)
    return b > r + 30


def test_the_good_half_of_the_scale_is_blue():  # the helper above is checked on the scale itself
    assert all(_looks_good(c) for c in GOOD_HALF[2:])
    assert not _looks_good(mcts_views.status_colour("unproven", -0.8, (-1.0, 1.0)))


def _draw_position_result():
    # X.O/.X./..O, seed 7: b3 has mean Q +0.6 but is a proven loss (O then wins with c2)
    state = TTT.parse("X.O/.X./..O")
    return state, search(
        TTT, state, SearchConfig(iterations=1000, seed=7, snapshot_every=10, snapshot_top_k=9)
    )


def test_a_proven_losing_move_is_never_coloured_as_good():
    state, result = _draw_position_result()
    losing = {a.label for a in result.stats.action_stats if minimax_value(TTT.apply(state, a.action)) == 1}
    assert "b3" in losing and next(a for a in result.stats.action_stats if a.label == "b3").value > 0.3
    for snap in result.snapshots:
        bars = mcts_views.action_visits_figure(snap.actions, TTT.reward_range)
        for trace in bars.data:
            for label, colour in zip(trace.x, trace.marker.color, strict=True):
                if trace.name == "proven loss":
                    assert label in losing
                if label in losing and trace.name != "unproven":
                    assert colour == mcts_views.STATUS_COLOURS["loss"] and not _looks_good(colour)
        tree = mcts_views.tree_figure(snap, TTT.reward_range)
        for trace in tree.data:
            if trace.name == "proven loss":
                assert trace.marker.color == mcts_views.STATUS_COLOURS["loss"]
                assert trace.marker.symbol == "x" and trace.showlegend
    final = mcts_views.action_visits_figure(result.stats.action_stats, TTT.reward_range)
    assert {x for t in final.data if t.name == "proven loss" for x in t.x} == losing
    assert {x for t in final.data if t.name == "proven draw" for x in t.x} == {"c2"}  # the block


def test_proven_statuses_have_distinct_legend_colours():
    colours = [mcts_views.STATUS_COLOURS[s] for s in ("win", "loss", "draw")]
    assert len(set(colours)) == 3
    assert not any(_looks_good(c) for c in colours[1:])  # loss and draw never read as "good"
    _, result = _draw_position_result()
    names = {
        t.name for t in mcts_views.tree_figure(result.snapshots[-1], TTT.reward_range).data if t.showlegend
    }
    assert {"proven draw", "proven loss"} <= names


def test_connect_four_nodes_are_labelled_by_column():
    c4 = load_task("connect4")
    result = search(
        c4, c4.parse("4453"), SearchConfig(iterations=300, seed=1, snapshot_every=300, snapshot_top_k=7)
    )
    snap = result.snapshots[-1]
    table = mcts_views.snapshot_table(snap, "connect4")
    root_kids = table.loc[table["depth"] == 1, "action"]
    assert set(root_kids) == {f"c{i}" for i in range(1, 8)}  # 4453 leaves every column open
    assert set(table["action"]) - {"root"} <= {f"c{i}" for i in range(1, 8)}
    figure = mcts_views.tree_figure(snap, task="connect4")
    assert len(snap.nodes) > mcts_views.LABEL_ALL_UP_TO  # a crowded tree: still labelled at the top
    written: dict[str, set[str]] = {}  # node label -> the text drawn next to its markers
    for trace in figure.data:
        if trace.customdata is not None:
            assert "text" in trace.mode
            for text, data in zip(trace.text, trace.customdata, strict=True):
                written.setdefault(data[8], set()).add(text)
    depth_one = {n.label for n in snap.nodes if n.depth == 1}
    assert depth_one == set("1234567")
    for label in depth_one:  # every column the root can play is written on the chart as c1..c7
        assert f"c{label}" in written[f"c{label}"]
    assert written["root"] == {"root"}
    bars = mcts_views.action_visits_figure(snap.actions, task="connect4")
    assert {x for t in bars.data for x in t.x} == {f"c{i}" for i in range(1, 8)}
    assert result.stats.best_action_label in "1234567"  # the answer format stays the bare column


def test_the_node_table_has_blanks_not_none():
    _, result = _draw_position_result()
    for snap in result.snapshots:
        table = mcts_views.snapshot_table(snap, "tictactoe")
        assert not table.isna().any().any()
        assert not table.astype(str).isin(["None", "nan", "NaN", "<NA>"]).any().any()
        root = table.iloc[0]
        assert (root["action"], root["parent"], root["prior"], root["exploit"]) == ("root", "", "", "")


# -- the page ------------------------------------------------------------------------------------------


@pytest.fixture
def app() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _run(at: AppTest, task: str, position: str, iterations: int, seed: int, every: int) -> AppTest:
    at.selectbox(key="mcts_task").set_value(task).run()
    at.text_input(key="mcts_position").set_value(position)
    at.number_input(key="mcts_iterations").set_value(iterations)
    at.number_input(key="mcts_seed").set_value(seed)
    at.number_input(key="mcts_every").set_value(every)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def _chart(at: AppTest, title_start: str) -> dict:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["layout"]["title"]["text"].startswith(title_start):
            return spec
    raise AssertionError(f"no chart titled {title_start!r}")


def _bar_visits(spec: dict) -> dict[str, int]:
    return {x: y for trace in spec["data"] for x, y in zip(trace["x"], trace["y"], strict=True)}


def test_moving_the_scrubber_moves_the_root_actions_chart(app):
    at = _run(app, "connect4", "4453", iterations=400, seed=7, every=100)
    assert _bar_visits(_chart(at, "root actions")) == {
        f"c{a.label}": a.visits for a in at.session_state["mcts_outcome"].result.stats.action_stats
    }
    at.select_slider(key="mcts_scrub").set_value(100).run()
    # the oracle: the same seeded search stopped after 100 iterations
    c4 = load_task("connect4")
    short = search(c4, c4.parse("4453"), SearchConfig(iterations=100, seed=7)).stats
    shown_bars = _bar_visits(_chart(at, "root actions"))
    assert shown_bars == {f"c{a.label}": a.visits for a in short.action_stats}
    assert sum(shown_bars.values()) == 100  # each iteration visits exactly one root child
    value = _chart(at, "root value")
    assert max(value["data"][0]["x"]) == 100  # the value line stops at the chosen snapshot
    assert value["data"][0]["y"][-1] == pytest.approx(short.root_value)


def test_a_solved_draw_reads_as_a_proven_draw_and_says_it_stopped_early(app):
    at = _run(app, "tictactoe", "X.O/.X./..O", iterations=1000, seed=7, every=10)
    root = next(m for m in at.metric if m.label == "Root value")
    assert minimax_value(TTT.parse("X.O/.X./..O")) == 0
    assert shown(root.value) == "+0.000" and root.delta == "proven draw"
    stats = at.session_state["mcts_outcome"].result.stats
    assert any(f"stopped early at iteration {stats.iterations}" in shown(i.value) for i in at.info)
    assert any("+1 is a win for that player" in c.value for c in at.caption)
    table = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert table.iloc[0]["status"] == "proven draw" and table.iloc[0]["value"] == 0.0
    assert not table.isna().any().any()
    assert "None" not in table.astype(str).to_numpy()
