"""The "Feature flags" section of the Experiments page: the flags table (override, rollout,
targeting, kill switch, last change), an editor, the kill switch and the change history.

Changes are for operators only (``change_flags``): the controls are disabled with the reason
for others, and :func:`app.auth.require_operator` guards the change itself.  Every change goes
through :class:`engine.flags.FlagStore` on the console's store file and is recorded with the
signed-in user (``console`` when access control is off).  Text from the store is shown as plain
text (dataframes, :func:`app.safe_text.plain`), never as Markdown.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from app import auth, runtime
from app.safe_text import plain
from engine.flags import OVERRIDE_KEYS, FlagNotFound, FlagSpec, FlagStore, Targeting, parse_override
from engine.flags.store import spec_from_row
from engine.names import GAME_TASKS

__all__ = ["ACTION", "actor", "flag_rows", "history_rows", "parse_list", "render", "spec_from_form"]

#: The access-control action that changing flags needs.
ACTION = "change_flags"
_NEW = "(new flag)"
_NOTICE = "flags_notice"
_TASKS = (*GAME_TASKS, "freeform")


@st.cache_resource
def _flag_store(path: str) -> FlagStore:
    """One FlagStore per store file (it holds only the path; each call opens its own connection)."""
    return FlagStore(path)


def _store() -> FlagStore | None:
    store = runtime.get_store()
    return None if store is None else _flag_store(str(store.path))


def actor() -> str:
    """Who the change is recorded as: the signed-in user, else ``console``."""
    return auth.current().user or "console"


def _when(ts: Any) -> str:
    return "" if ts is None else datetime.fromtimestamp(float(ts), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def flag_rows(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, list[str]]:
    """The flags table (one row per valid flag) and a problem line per invalid row."""
    table, problems = [], []
    for row in rows:
        try:
            spec = spec_from_row(row)
        except ValueError as exc:
            problems.append(f"{exc}: it never applies; set it again or delete it with the CLI.")
            continue
        table.append(
            {
                "flag": spec.name,
                "override": spec.override_text,
                "rollout %": spec.rollout_pct,
                "targeting": spec.targeting.describe(),
                "kill switch": "KILLED" if spec.killed else "off",
                "enabled": "yes" if spec.enabled else "no",
                "updated by": row.get("updated_by") or "",
                "updated at": _when(row.get("updated_ts")),
                "description": spec.description,
            }
        )
    return pd.DataFrame(table), problems


def history_rows(changes: Any) -> pd.DataFrame:
    """The change history as a table, newest first."""
    out = []
    for c in changes:
        out.append(
            {"time": _when(c.ts), "flag": c.flag, "actor": c.actor, "action": c.action, "change": c.setting}
        )
    return pd.DataFrame(out)


def parse_list(text: str) -> tuple[str, ...]:
    """Entries of a text box: one per line or comma-separated, stripped, empty ones dropped."""
    return tuple(p.strip() for line in text.splitlines() for p in line.split(",") if p.strip())


def spec_from_form(
    *,
    name: str,
    key: str,
    value: str,
    rollout: float,
    tasks: list[str],
    units: str,
    prefixes: str,
    description: str,
    enabled: bool,
) -> tuple[FlagSpec | None, list[str]]:
    """The flag the editor describes, or None with one line per problem."""
    try:
        targeting = Targeting(units=parse_list(units), tasks=tuple(tasks), prefixes=parse_list(prefixes))  # type: ignore[arg-type]
        spec = FlagSpec(
            name=name.strip(),
            key=key,
            value=value.strip() or None,
            rollout_pct=rollout,
            targeting=targeting,
            description=description,
            enabled=enabled,
        )
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            where = ".".join(str(p) for p in e["loc"])
            problems.append(f"{where + ': ' if where else ''}{e['msg'].removeprefix('Value error, ')}")
        try:  # the override is checked after the fields, so check it here too: every problem at once
            parse_override(f"{key}={value.strip()}")
        except ValueError as bad:
            if not any(str(bad) in p for p in problems):
                problems.append(f"value: {bad}")
        return None, problems
    return spec, []


def render() -> None:
    """The whole section (call from the Experiments page)."""
    st.header("Feature flags")
    st.caption(
        "A flag sets one engine setting for a share of units (hash buckets of the user id, else the "
        "request id), optionally only for some units, tasks or query prefixes. The engine reads the "
        "flags on every request; a kill turns a flag off at the next request of every process."
    )
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.success(plain(notice))
    store = _store()
    if store is None:
        st.info("Telemetry is off (ARBOR_TELEMETRY=off): flags live in the store, so there are none.")
        return
    denied = auth.operator_disabled_reason(ACTION)
    try:
        rows = store.rows()
        changes = store.history(limit=200)
    except Exception as exc:  # sqlite3.Error, a store that cannot be read
        st.error(plain(f"The flags cannot be read from the store: {exc}"), icon=":material/error:")
        return
    table, problems = flag_rows(rows)
    for problem in problems:
        st.warning(plain(problem), icon=":material/warning:")
    if table.empty:
        st.info("No feature flags yet. Define one in the editor below.")
    else:
        st.dataframe(
            table,
            hide_index=True,
            width="stretch",
            key="flags_table",
            column_config={"rollout %": st.column_config.NumberColumn(format="%.2f")},
        )
    names = [str(n) for n in table["flag"]] if not table.empty else []
    if names:
        _kill_switch(store, names, denied)
    _editor(store, names, denied)
    st.subheader("Change history")
    history = history_rows(changes)
    if history.empty:
        st.caption("No changes recorded yet.")
    else:
        st.caption(f"The newest {len(history)} changes, newest first.")
        st.dataframe(history, hide_index=True, width="stretch", height=min(38 + 35 * len(history), 320),
                     key="flags_history")  # fmt: skip


def _kill_switch(store: FlagStore, names: list[str], denied: str | None) -> None:
    st.subheader("Kill switch")
    a, b = st.columns([2, 1], vertical_alignment="bottom")
    chosen = a.selectbox("Flag", names, key="flags_kill_choice")
    try:
        killed = store.get(chosen).killed if chosen else False
    except (FlagNotFound, ValueError):
        killed = False
    label = "Release the kill switch" if killed else "Kill the flag"
    icon = ":material/restart_alt:" if killed else ":material/power_settings_new:"
    clicked = b.button(label, key="flags_kill", type="primary", icon=icon, disabled=denied is not None)
    if denied is not None:
        st.caption(f":material/lock: {plain(denied)}")
    if not clicked or not chosen:
        return
    auth.require_operator(ACTION)
    try:
        change = store.unkill(chosen, actor()) if killed else store.kill(chosen, actor())
    except FlagNotFound as exc:
        st.error(plain(str(exc)))
        return
    verb = "released the kill switch of" if killed else "killed"
    st.session_state[_NOTICE] = f"{change.actor} {verb} {change.flag} at {_when(change.ts)}."
    st.rerun()


def _editor(store: FlagStore, names: list[str], denied: str | None) -> None:
    st.subheader("Define or change a flag")
    chosen = st.selectbox("Flag to edit", [_NEW, *names], key="flags_edit_choice")
    current: FlagSpec | None = None
    if chosen != _NEW:
        try:
            current = store.get(chosen)
        except (FlagNotFound, ValueError):
            current = None
    k = "new" if chosen == _NEW else chosen  # the widgets start from the chosen flag's values
    with st.form(f"flags_form_{k}"):
        a, b, c = st.columns(3)
        name = a.text_input(
            "Name", value=current.name if current else "", key=f"flags_f_name_{k}",
            help="Lower-case letters, digits, _ . - (starting with a letter or digit).",
        )  # fmt: skip
        key = b.selectbox(
            "Setting", OVERRIDE_KEYS, index=OVERRIDE_KEYS.index(current.key) if current else 0,
            key=f"flags_f_key_{k}",
        )  # fmt: skip
        value = c.text_input(
            "Value", value=current.override_text.partition("=")[2] if current else "",
            key=f"flags_f_value_{k}", help="e.g. false, gru, 200",
        )  # fmt: skip
        d, e = st.columns([1, 2])
        rollout = d.number_input(
            "Rollout %", 0.0, 100.0, value=current.rollout_pct if current else 0.0, step=1.0, format="%.2f",
            key=f"flags_f_rollout_{k}",
        )  # fmt: skip
        tasks = e.multiselect(
            "Only tasks",
            _TASKS,
            default=list(current.targeting.tasks) if current else [],
            key=f"flags_f_tasks_{k}",
        )
        f, g = st.columns(2)
        units = f.text_area(
            "Only units (one per line)", value="\n".join(current.targeting.units) if current else "",
            height=80, key=f"flags_f_units_{k}",
        )  # fmt: skip
        prefixes = g.text_area(
            "Only queries starting with (one per line)",
            value="\n".join(current.targeting.prefixes) if current else "", height=80,
            key=f"flags_f_prefixes_{k}",
        )  # fmt: skip
        description = st.text_input(
            "Description", value=current.description if current else "", key=f"flags_f_description_{k}"
        )
        enabled = st.checkbox(
            "Enabled", value=current.enabled if current else True, key=f"flags_f_enabled_{k}"
        )
        submitted = st.form_submit_button(
            "Save the flag", key=f"flags_f_save_{k}", disabled=denied is not None
        )
    if denied is not None:
        st.caption(f":material/lock: {plain(denied)}")
    if current is not None and current.killed:
        st.caption("This flag is killed: saving keeps it killed until the kill switch is released.")
    if not submitted:
        return
    auth.require_operator(ACTION)
    spec, problems = spec_from_form(
        name=name, key=str(key), value=value, rollout=float(rollout), tasks=list(tasks), units=units,
        prefixes=prefixes, description=description, enabled=bool(enabled),
    )  # fmt: skip
    if spec is None:
        st.error(plain("The flag is invalid; nothing was written:\n" + "\n".join(problems)))
        return
    change = store.set(spec, actor())
    st.session_state[_NOTICE] = (
        f"{change.actor} saved {spec.name}: {spec.override_text} to {spec.rollout_pct:g}% of units "
        f"({spec.targeting.describe()})."
    )
    st.rerun()
