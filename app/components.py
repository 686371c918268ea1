"""Reusable console widgets."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from app import charts, mcts_views
from app.confidence import trace_confidence
from app.links import LinkWarning
from app.safe_text import inert_markdown as _inert_markdown
from app.safe_text import plain, sanitize_markdown
from engine import QueryResult, StepRecord
from engine.config import Settings
from engine.events import (
    AgentFinished,
    AgentStarted,
    Consensus,
    Event,
    Final,
    MctsSnapshot,
    Retrieved,
    RouteDecision,
)
from engine.loop.confidence import RULE as CONFIDENCE_RULE
from engine.loop.confidence import final_confidence, step_role
from engine.mcts import STATUS_LABELS, SearchStats, TreeSnapshot
from engine.models import AGENTS, PassageRef
from engine.routing import FEATURE_NAMES
from observability.promql import SourceStatus

FREEFORM_CONFIDENCE = "Confidence (corpus support)"
"""The freeform confidence figure's label: term coverage of the cited text, not a judged quality
(short enough for a metric column; the caption below it says "not judged")."""
COUNTS_AS = {"repeat": "repeat (not counted)", "no answer": "no answer"}
"""The timeline's ``counts as`` text of a step role other than verified / independent."""

_SIDEBAR_KEYS = (
    ("llm_provider", "LLM provider"),
    ("telemetry", "Telemetry"),
    ("db_path", "Store"),
    ("metrics_port", "Metrics port"),
    ("prometheus_url", "Prometheus"),
    ("mcts_iterations", "MCTS iterations"),
    ("mcts_c", "MCTS c"),
    ("mcts_seed", "MCTS seed"),
)


def settings_sidebar(settings: Settings) -> None:
    """The engine settings at a glance, secrets masked."""
    safe = settings.safe_dict()
    with st.sidebar.expander("Engine settings", expanded=False):
        rows = [(label, "—" if safe.get(key) is None else str(safe.get(key))) for key, label in _SIDEBAR_KEYS]
        st.dataframe(pd.DataFrame(rows, columns=["setting", "value"]), hide_index=True, width="stretch")
        st.caption("Set with ARBOR_* environment variables or .env; see the README.")


_MD_URL = re.compile(r"https?://\S+")


def _md_plain(text: str) -> str:
    """``text`` shown literally by a markdown widget: URLs as code spans (a masked URL's
    ``**********`` stays stars; escapes do not work inside an autolinked URL), the rest through
    :func:`md_escape`."""
    out, pos = [], 0
    for match in _MD_URL.finditer(text):
        out += [md_escape(text[pos : match.start()]), "`" + match.group(0).replace("`", "%60") + "`"]
        pos = match.end()
    out.append(md_escape(text[pos:]))
    return "".join(out)


def prometheus_sidebar(status: SourceStatus | None) -> None:
    """Every page's Prometheus line: connected, unreachable or unusable (pages fall back to
    SQLite), or unset.  The message names the server by its masked URL (no credentials)."""
    if status is None:
        st.sidebar.caption("Prometheus: not configured (ARBOR_PROMETHEUS_URL); figures come from SQLite.")
    elif status.ok:
        st.sidebar.caption(f":material/check_circle: Prometheus: {_md_plain(status.message)}.")
    else:
        st.sidebar.warning(
            f"{_md_plain(status.message)}. Pages show SQLite figures.", icon=":material/cloud_off:"
        )


# -- exposure banner --------------------------------------------------------------------------------


def is_loopback(address: str | None) -> bool:
    """Whether a server bound to ``address`` is reachable from this machine only: ``localhost`` or a
    loopback IP (127.0.0.0/8, ::1).  Unset or empty means Streamlit's default, every interface, so
    False; so is any other host name (not resolved: a name may point anywhere)."""
    if not address:
        return False
    host = address.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(address: str | None, auth: str) -> str | None:
    """The banner text when the console listens beyond loopback without authentication, else None."""
    if auth != "none" or is_loopback(address):
        return None
    where = f"address {address}" if address else "every network interface (server.address is unset)"
    return (
        f"This console listens on {where} and authentication is off (ARBOR_AUTH=none): anyone who "
        "can reach this port can run queries and read every trace. Bind it to 127.0.0.1 "
        "(.streamlit/config.toml, --server.address) or turn authentication on."
    )


def exposure_banner(settings: Settings) -> None:
    """A red banner on every page while the server is bound beyond loopback with auth off."""
    text = exposure_warning(st.get_option("server.address"), settings.auth)
    if text is not None:
        st.error(plain(text), icon=":material/public:")


class LiveTree:
    """Draws snapshots as they arrive: a progress bar and the tree chart,
    redrawn at most every ``min_interval_s`` so drawing never dominates search."""

    def __init__(
        self,
        total_iterations: int,
        reward_range: tuple[float, float],
        *,
        min_interval_s: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        task: str | None = None,
    ) -> None:
        self._task = task
        self._total = total_iterations
        self._range = reward_range
        self._min = min_interval_s
        self._clock = clock
        self._last = -1e9
        self._progress = st.progress(0.0, text="Starting search…")
        self._chart = st.empty()

    def __call__(self, snapshot: TreeSnapshot) -> None:
        now = self._clock()
        final = snapshot.iteration >= self._total
        if not final and now - self._last < self._min:
            return
        self._last = now
        self._progress.progress(
            min(snapshot.iteration / self._total, 1.0),
            text=f"Iteration {snapshot.iteration:,} of {self._total:,} · "
            f"{snapshot.tree_size:,} nodes · best {plain(snapshot.best_action_label)}",
        )
        self._chart.plotly_chart(charts.tree_figure(snapshot, self._range, task=self._task), width="stretch")

    def clear(self) -> None:
        """Remove the live view (the results take its place)."""
        self._progress.empty()
        self._chart.empty()


def stats_panel(stats: SearchStats) -> None:
    """The search's headline figures."""
    a, b, c, d = st.columns(4)
    a.metric(
        "Best action", plain(stats.best_action_label), help="Most visited root action (proven results first)"
    )
    b.metric(
        "Root value",
        f"{stats.shown_root_value:+.3f}",
        delta=STATUS_LABELS[stats.root_status],
        delta_color="off",
        delta_arrow="off",
        help="For the player to move at the root: the solver's exact value once the root is proven, "
        f"else the mean return of the rollouts (mean Q {stats.root_value:+.3f})",
    )
    c.metric("Iterations", f"{stats.iterations:,}", help=f"Stopped: {plain(stats.termination_reason)}")
    d.metric(
        "Time", f"{stats.elapsed_s * 1000:,.1f} ms", help=f"{stats.sims_per_sec:,.0f} simulations per second"
    )
    e, f, g, h = st.columns(4)
    e.metric(
        "Cache hit rate",
        f"{stats.cache_hit_rate:.1%}",
        help=f"{stats.cache_hits:,} hits, {stats.cache_misses:,} misses",
    )
    f.metric("Termination", plain(stats.termination_reason))
    g.metric("Tree nodes", f"{stats.tree_size:,}", help=f"max depth {stats.max_depth}")
    h.metric("Sims / s", f"{stats.sims_per_sec:,.0f}")
    st.caption(
        f"Seed **{stats.seed}** — the same seed and settings reproduce this run exactly. "
        f"Tree depth {stats.max_depth}; {stats.total_simulations:,} rollouts."
    )


def snapshot_table(snapshot: TreeSnapshot, task: str | None = None) -> pd.DataFrame:
    """The snapshot's nodes as a table: proof status, solver-true value, mean Q, prior, the two
    selection terms; blank cells where a field does not apply (``app.mcts_views.snapshot_table``)."""
    return mcts_views.snapshot_table(snapshot, task)


# -- query results ------------------------------------------------------------------------------------

ANSWER_KINDS = {
    "move": "move",
    "expression": "arithmetic expression",
    "no_solution": "no solution (the solver's claim)",
    "extractive": "extractive answer quoted from the corpus",
    "none": "no answer",
}
VERDICT_BADGES = {
    "correct": ("green", ":material/check_circle:"),
    "incorrect": ("red", ":material/cancel:"),
    "unknown": ("gray", ":material/help:"),
}
_ANSWER_CHARS = 140


def answer_kind_label(result: QueryResult) -> str:
    """What the answer is, said honestly (an extractive answer is a quotation, not a judgement)."""
    if result.answer_kind == "generated":
        return f"generated by the {result.provider} LLM"
    return ANSWER_KINDS.get(result.answer_kind, result.answer_kind)


def quality_text(result: QueryResult) -> str:
    """The ground truth's score, or "unknown" when there is none (never invented)."""
    return "unknown" if result.quality is None else f"{result.quality:.2f}"


def confidence_label(result: QueryResult) -> str:
    """The confidence figure's label: for freeform text it is corpus support, not a judged score."""
    return FREEFORM_CONFIDENCE if result.task == "freeform" else "Confidence"


def confidence_note(result: QueryResult) -> None:
    """How the result's confidence follows from its steps, by the one rule
    (:func:`engine.loop.confidence.final_confidence`): the arithmetic as a caption and the rule
    itself in an expander."""
    explained = final_confidence(result.steps)
    what = " (corpus support, not judged)" if result.task == "freeform" else ""
    st.caption(f"**How {result.confidence:.2f}{what} follows from the steps:** {plain(explained.text)}")
    with st.expander("The confidence rule"):
        st.markdown(plain(CONFIDENCE_RULE))
        if result.task == "freeform":
            st.caption(
                "Freeform: each step's confidence is corpus support (the share of the question's terms "
                "the cited text covers), not a judged quality — the quality stays unknown."
            )


def confidence_span_note(spans: Sequence[Any], recorded: float | None) -> None:
    """On a trace: how the request's ``recorded`` confidence follows from its steps by the rule,
    recomputed from the trace's agent spans (:func:`app.confidence.trace_confidence`), or why it
    cannot be; nothing when the request recorded no confidence (it failed)."""
    if recorded is None:
        return
    explained, note = trace_confidence(spans, recorded)
    if explained is not None and note == explained.text:
        st.caption(f"**How the confidence follows from the steps:** {plain(note)}")
        st.caption(plain(f"The rule: {CONFIDENCE_RULE}"))
    else:
        st.caption(f":material/info: {plain(note)}")


def verdict_badge(result: QueryResult) -> None:
    """The verdict as a coloured badge followed by its detail."""
    colour, icon = VERDICT_BADGES.get(result.verdict, VERDICT_BADGES["unknown"])
    st.badge(result.verdict, color=colour, icon=icon)  # type: ignore[arg-type]
    st.caption(plain(result.verdict_detail))


def guarded_button(container: DeltaGenerator, label: str, *, key: str, denied: str | None) -> bool:
    """A primary "play" button that is disabled, with the reason ``denied`` as a locked caption
    below it, when the user may not do what it does; True when it was clicked."""
    clicked = container.button(
        label, key=key, type="primary", icon=":material/play_arrow:", disabled=denied is not None
    )
    if denied is not None:
        st.caption(f":material/lock: {plain(denied)}")
    return clicked


def safe_markdown(text: str, container: DeltaGenerator | None = None) -> None:
    """Render Markdown that came from an LLM, the corpus or a stored file: formatting, links and
    ``[n]`` citations kept, images and raw HTML dropped (:func:`app.safe_text.sanitize_markdown`),
    so showing it makes the browser fetch nothing.  Text that should read literally goes through
    :func:`plain` instead (every ``st.*`` text call renders Markdown, labels and errors included)."""
    (container or st).markdown(sanitize_markdown(text))


def inert_markdown(text: str, container: DeltaGenerator | None = None) -> None:
    """Render an answer from an LLM or the corpus with its formatting but nothing that can load
    or open anything: no images, raw HTML or links (:func:`app.safe_text.inert_markdown`)."""
    (container or st).markdown(_inert_markdown(text))


def apply_link(values: Mapping[str, object], warnings: Sequence[LinkWarning]) -> None:
    """Put a deep link's values into session state (``None``: the widget keeps its own) and
    show the link's warnings (:func:`link_warnings`)."""
    for state_key, value in values.items():
        if value is not None:
            st.session_state[state_key] = value
    link_warnings(warnings)


def link_warnings(warnings: Sequence[LinkWarning]) -> None:
    """Each deep-link (or form) value the page did not use as given, as a warning in plain text
    naming the parameter, the value given and the value used instead (``app.links.LinkWarning``)."""
    for warning in warnings:
        st.warning(plain(warning.text), icon=":material/link_off:")


def md_escape(text: str) -> str:
    """``text`` shown literally inside Streamlit markdown (no emphasis, links, images or directives):
    :func:`app.safe_text.plain`."""
    return plain(text)


def _short(text: str | None, limit: int = _ANSWER_CHARS) -> str:
    if text is None:
        return "—"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def timeline_table(
    steps: Sequence[StepRecord | RouteDecision],
    finished: Mapping[int, AgentFinished] | None = None,
    consensus: Sequence[Consensus] = (),
) -> pd.DataFrame:
    """One row per step: agent, routing reason, answer, confidence, how the confidence rule counts
    the step (``counts as``: verified, independent, repeat, no answer), latency, the agreement
    among independent answers so far (blank before there are two) and what the loop decided.
    Live decisions take their outcome from ``finished`` (a step still running shows
    "running…")."""
    after = {c.step: c for c in consensus}
    rows = []
    for s in steps:
        if isinstance(s, RouteDecision):
            index, agent, reason = s.step, s.chosen, s.reason
            done = (finished or {}).get(index)
            answer = _short(done.answer) if done else "running…"
            conf, latency = (done.confidence, done.latency_ms) if done else (None, None)
            role = step_role(done.answer, done.exact, done.refined_from) if done else ""
        else:
            index, agent, reason = s.index, s.agent, s.reason
            answer, conf, latency = _short(s.answer), s.confidence, s.latency_ms
            role = step_role(s.answer, s.exact, s.refined_from)
        c = after.get(index)
        rows.append(
            {
                "step": charts.step_number(index),
                "agent": agent,
                "routing": reason,
                "answer": answer,
                "confidence": conf,
                "counts as": COUNTS_AS.get(role, role),
                "latency ms": latency,
                "agreement": None if c is None else c.score,
                "then": "" if c is None else c.reason,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "step",
            "agent",
            "routing",
            "answer",
            "confidence",
            "counts as",
            "latency ms",
            "agreement",
            "then",
        ],
    )


def timeline_cells(table: pd.DataFrame) -> pd.DataFrame:
    """The timeline's cells as text for a static table: every value shown literally (Markdown
    escaped, whitespace collapsed), numbers formatted (confidence and agreement to 2 places,
    latency in ms to 1), missing values as "—"."""
    formats = {"confidence": "{:.2f}", "agreement": "{:.2f}", "latency ms": "{:,.1f}", "step": "{:d}"}

    def cell(column: str, value: object) -> str:
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return "—"
        text = formats[column].format(value) if column in formats else str(value)
        return plain(" ".join(text.split())) or "—"

    return pd.DataFrame(
        {column: [cell(column, v) for v in table[column].tolist()] for column in table.columns},
        columns=table.columns,
    )


def show_timeline(table: pd.DataFrame, container: DeltaGenerator | None = None) -> None:
    """The step timeline as a static table whose cells wrap (nothing cut short: long routing
    reasons and answers are shown whole), every value as plain text (:func:`timeline_cells`)."""
    (container or st).table(timeline_cells(table), hide_index=True)


def agent_outputs(outputs: Sequence[StepRecord | AgentFinished], confidence_name: str = "confidence") -> None:
    """What each agent answered, how sure it was (``confidence_name``, e.g. "confidence (corpus
    support, not judged)" for freeform), whether the confidence rule counts it, and its
    evidence: one short block per step."""
    for o in outputs:
        index = o.step if isinstance(o, AgentFinished) else o.index
        answer = _short(o.answer, 60).replace("`", "'")
        role = step_role(o.answer, o.exact, o.refined_from)
        note = " · repeat of the candidate it was given: not counted" if role == "repeat" else ""
        st.markdown(
            f"**{charts.step_label(index).capitalize()} · {plain(o.agent)}** — `{answer}` · "
            f"{confidence_name} {o.confidence:.2f}{note} · {o.latency_ms:,.1f} ms"
        )
        st.caption(md_escape(o.evidence) if o.evidence else "no evidence recorded")


def passages_expander(passages: Sequence[PassageRef], *, expanded: bool = False) -> None:
    """The retrieved passages: doc § section, title, bm25 score and the text."""
    if not passages:
        return
    with st.expander(f"Retrieved passages ({len(passages)})", expanded=expanded):
        for p in passages:
            with st.container(border=True):
                st.markdown(
                    f"**{plain(p.doc)} § {plain(p.section)}** · {plain(p.title)} · score {p.score:.2f}"
                )
                safe_markdown(p.text)


def features_table(steps: Sequence[StepRecord]) -> pd.DataFrame:
    """The routing features as a table: one row per feature (FEATURE_NAMES), one column per step."""
    data = {charts.step_label(s.index): list(s.features) for s in steps}
    return pd.DataFrame(data, index=pd.Index(FEATURE_NAMES, name="feature")).reset_index()


def decisions_table(steps: Sequence[StepRecord]) -> pd.DataFrame:
    """Per step: the router, each agent's probability, the agent chosen and why."""
    return pd.DataFrame(
        [
            {
                "step": charts.step_number(s.index),
                "router": s.router,
                **{f"p({a})": round(s.probabilities.get(a, 0.0), 4) for a in AGENTS},
                "chosen": s.agent,
                "reason": s.reason,
            }
            for s in steps
        ]
    )


class LiveRun:
    """Draws a query's events as they arrive: a status line, the router's probabilities,
    the agents' outputs, the step timeline, the MCTS tree (throttled by LiveTree) and the
    retrieved passages.

    Call it with each event; it keeps what it saw (``decisions``, ``finished``,
    ``consensus``, the last MCTS ``snapshots`` per step, the ``result``) and
    ``clear()`` removes the live view when the run is over.
    """

    def __init__(
        self,
        total_iterations: int,
        reward_range: tuple[float, float] | None,
        *,
        threshold: float | None = None,
        min_interval_s: float = 0.2,
        task: str | None = None,
    ) -> None:
        self._task = task  # names the tree's moves in the task's terms (e.g. connect four's columns)
        self._total = total_iterations
        self._range = reward_range or (0.0, 1.0)
        self._threshold = threshold
        self._min = min_interval_s
        self._root = st.empty()
        box = self._root.container()
        self._status = box.empty()
        left, right = box.columns([2, 3])
        self._chart = left.empty()
        self._outputs = right.empty()
        self._table = box.empty()
        self._trees_box = box.container()
        self._passages = box.empty()
        self._trees: dict[int, LiveTree] = {}
        self.decisions: list[RouteDecision] = []
        self.finished: dict[int, AgentFinished] = {}
        self.consensus: list[Consensus] = []
        self.snapshots: dict[int, TreeSnapshot] = {}
        self.passages: tuple[PassageRef, ...] = ()
        self.result: QueryResult | None = None
        self._status.info("Starting…", icon=":material/hourglass_top:")

    def __call__(self, event: Event) -> None:
        if isinstance(event, Retrieved):
            self.passages = event.passages
            if event.passages:
                with self._passages.container():
                    passages_expander(event.passages)
        elif isinstance(event, RouteDecision):
            self.decisions.append(event)
            self._status.info(
                f"{charts.step_label(event.step).capitalize()}: the {event.router} router chose "
                f"**{plain(event.chosen)}** — {plain(event.reason)}",
                icon=":material/alt_route:",
            )
            self._chart.plotly_chart(
                charts.routing_probabilities_figure(self.decisions, threshold=self._threshold),
                width="stretch",
            )
            self._draw_table()
        elif isinstance(event, AgentStarted):
            self._status.info(
                f"{charts.step_label(event.step).capitalize()}: **{plain(event.agent)}** is working…",
                icon=":material/hourglass_top:",
            )
        elif isinstance(event, MctsSnapshot):
            self.snapshots[event.step] = event.snapshot
            if event.step not in self._trees:
                with self._trees_box:
                    st.caption(f"MCTS tree — {charts.step_label(event.step)}")
                    self._trees[event.step] = LiveTree(
                        self._total, self._range, min_interval_s=self._min, task=self._task
                    )
            self._trees[event.step](event.snapshot)
        elif isinstance(event, AgentFinished):
            self.finished[event.step] = event
            with self._outputs.container():
                agent_outputs(list(self.finished.values()))
            self._draw_table()
        elif isinstance(event, Consensus):
            self.consensus.append(event)
            self._draw_table()
        elif isinstance(event, Final):
            self.result = event.result
            self._status.success("Done.", icon=":material/check:")

    def _draw_table(self) -> None:
        show_timeline(timeline_table(self.decisions, self.finished, self.consensus), self._table)

    def clear(self) -> None:
        """Remove the live view (the final result takes its place)."""
        self._root.empty()
