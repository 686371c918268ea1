"""MCTS explorer: search a position, watch the tree grow, then scrub through it."""

from __future__ import annotations

import streamlit as st

from app import auth, charts, components, explorer
from app.explorer import ExploreOutcome, ExploreRequest

#: The form's labels, for the request model's messages ("Iterations: ..." rather than "iterations: ...").
FORM_LABELS = {
    "task": "Task", "position": "Position", "iterations": "Iterations", "c": "Exploration c",
    "selection": "Selection", "seed": "Seed", "snapshot_every": "Snapshot every",
}  # fmt: skip

TASKS = explorer.TASKS
HINTS = {
    "tictactoe": "Rows top to bottom separated by /, cells X, O or . — e.g. X.O/.X./..O",
    "connect4": "The columns played so far, 1–7 — e.g. 4453 (empty: the opening position)",
    "game24": "Four numbers from 1 to 13 — e.g. 4 7 8 8",
}


def _init_from_link() -> None:
    """Seed the widgets once from a deep link (?task=...&position=...&seed=...)."""
    if st.session_state.get("mcts_linked"):
        return
    st.session_state.mcts_linked = True
    settings = explorer.get_settings()
    link = explorer.parse_explorer_link(
        st.query_params,
        default_iterations=settings.mcts_iterations,
        default_c=settings.mcts_c,
        default_seed=settings.mcts_seed,
    )
    linked = {
        "mcts_task": link.task,
        "mcts_position": link.position,
        "mcts_iterations": link.iterations,
        "mcts_seed": link.seed,
        "mcts_c": link.c,
        "mcts_selection": link.selection,
    }
    components.apply_link(linked, link.warnings)


def _use_example() -> None:
    task = explorer.task(st.session_state.mcts_task)
    chosen = st.session_state.mcts_example
    st.session_state.mcts_position = next(e.text for e in task.examples if e.label == chosen)


def _reset_position() -> None:
    task = explorer.task(st.session_state.mcts_task)
    st.session_state.mcts_position = task.examples[0].text if task.examples else ""
    st.session_state.pop("mcts_example", None)


def _results(outcome: ExploreOutcome) -> None:
    result = outcome.result
    assert result is not None
    st.subheader("Result")
    left, right = st.columns([1, 3])
    with left:
        st.code(outcome.board, language=None)
    with right:
        components.stats_panel(result.stats)
        if outcome.verdict is not None:
            verdict = outcome.verdict
            text = (
                f"**{components.plain(str(outcome.answer))}** is {components.plain(verdict.label)} by ground "
                f"truth — {components.plain(verdict.detail)}"
            )
            (st.success if verdict.correct else st.error)(text)
        elif outcome.answer is None:
            st.info("The search found no answer it can stand behind within this budget (unknown).")
        else:
            st.info(
                f"**{components.plain(outcome.answer)}** — no ground truth for this position within the "
                "solver's horizon "
                "(verdict unknown)."
            )
        st.caption("Principal variation: " + components.plain(" → ".join(result.pv) or "—"))

    snaps = result.snapshots
    task_name = outcome.request.task
    st.subheader("Tree")
    note = explorer.stop_note(result.stats, outcome.request.iterations)
    if note is not None:
        st.info(components.plain(note), icon=":material/flag:")
    if len(snaps) > 1:
        iteration = st.select_slider(
            "Snapshot (iteration)",
            options=[s.iteration for s in snaps],
            value=snaps[-1].iteration,
            key="mcts_scrub",
            help="Every chart below shows the search as it stood at this iteration",
        )
        snap = next(s for s in snaps if s.iteration == iteration)
    else:
        snap = snaps[-1]
        st.caption(f"One snapshot, at iteration {snap.iteration:,} (the search stopped before a second).")
    st.caption(explorer.SIGN_CONVENTION + " " + explorer.COLOUR_LEGEND)
    st.plotly_chart(
        charts.tree_figure(snap, outcome.reward_range, task=task_name), width="stretch", key="mcts_tree"
    )
    a, b = st.columns(2)
    a.plotly_chart(
        charts.action_visits_figure(
            snap.actions, outcome.reward_range, task=task_name, iteration=snap.iteration
        ),
        width="stretch",
        key="mcts_actions",
    )
    b.plotly_chart(
        charts.convergence_figure(snaps, upto=snap.iteration, budget=outcome.request.iterations),
        width="stretch",
        key="mcts_convergence",
    )
    st.subheader(f"Nodes at iteration {snap.iteration}")
    st.dataframe(components.snapshot_table(snap, task_name), hide_index=True, width="stretch")


st.title("MCTS explorer")
st.caption(
    "Search a position with Monte Carlo Tree Search and watch the tree grow. "
    "Node size is visits; proven nodes show the solver's exact result (win / loss / draw) in their own "
    "colour, unproven ones their mean value Q; the principal variation is outlined in teal."
)
_init_from_link()
settings = explorer.get_settings()

task_name = st.selectbox(
    "Task", list(TASKS), format_func=TASKS.get, key="mcts_task", on_change=_reset_position
)
task = explorer.task(task_name)
if "mcts_position" not in st.session_state:
    _reset_position()
st.selectbox(
    "Example",
    [e.label for e in task.examples],
    index=None,
    placeholder="Pick an example position…",
    key="mcts_example",
    on_change=_use_example,
)

with st.form("mcts_form"):
    position = st.text_input("Position", key="mcts_position", help=HINTS[task_name])
    a, b, c, d, e = st.columns(5)
    # No bounds on these inputs: ExploreRequest names a bad value (the browser would drop it
    # silently and the search would run with the previous one).
    iterations = a.number_input("Iterations", value=settings.mcts_iterations, step=100, key="mcts_iterations")
    c_value = b.number_input("Exploration c", value=settings.mcts_c, step=0.1, key="mcts_c")
    selection = c.radio("Selection", list(explorer.SELECTIONS), horizontal=True, key="mcts_selection")
    seed = d.number_input(
        "Seed",
        value=settings.mcts_seed,
        step=1,
        placeholder="random",
        key="mcts_seed",
        help="Empty: a fresh seed is drawn and shown with the result",
    )
    every = e.number_input(
        "Snapshot every",
        value=settings.snapshot_every,
        step=1,
        key="mcts_every",
        help="Iterations between tree snapshots (live view and scrubber)",
    )
    denied = auth.operator_disabled_reason("run_search")
    submitted = st.form_submit_button("Run search", type="primary", disabled=denied is not None, help=denied)
if denied:
    st.caption(f":material/lock: {denied}")

if submitted:
    try:
        request = ExploreRequest(
            task=task_name,
            position=position,
            iterations=iterations,
            c=c_value,
            selection=selection,
            seed=seed,
            snapshot_every=every,
        )
    except explorer.ValidationError as exc:
        for problem in explorer.validation_problems(exc, FORM_LABELS):
            st.error(components.plain(problem))
        st.stop()
    live = components.LiveTree(request.iterations, task.reward_range, task=task_name)
    outcome = explorer.run_exploration(request, live)
    live.clear()
    st.session_state.mcts_outcome = outcome
    st.session_state.pop("mcts_scrub", None)
    if outcome.result is not None:
        st.query_params.from_dict(
            explorer.explorer_link_params(
                task_name,
                position,
                iterations=iterations,
                c=c_value,
                selection=selection,
                seed=outcome.result.stats.seed,
            )
        )

outcome = st.session_state.get("mcts_outcome")
if outcome is None:
    st.info("Choose a position and press **Run search**.")
elif outcome.error is not None:
    st.error(components.plain(outcome.error))
else:
    _results(outcome)
