"""The "Capture as golden" control, shown by the Golden traces page (any stored request, by id) and
by the Traces page (the request it shows): a name, a button, and the outcome as messages.

The capture itself is :func:`app.golden.capture_golden` (operators only, refused server-side too).
Every text shown here that came from the user, the store or the engine is plain text.
"""

from __future__ import annotations

import streamlit as st

from app import golden
from app.safe_text import plain

__all__ = ["capture_form"]


def _show(outcome: golden.CaptureOutcome) -> None:
    if not outcome.ok or outcome.golden is None or outcome.name is None:
        for problem in outcome.problems:
            st.error(plain(problem), icon=":material/error:")
        return
    g = outcome.golden
    st.success(
        plain(
            f"Captured {outcome.name} ({outcome.path}) from {outcome.replays} replays: "
            f"answer {g.answer[:80]!r}, verdict {g.verdict}, {len(g.routing)} routing step(s), "
            f"median latency {g.latency_ms.total:.1f} ms."
        ),
        icon=":material/check_circle:",
    )
    st.page_link(
        "../pages/golden.py",
        label=f"Open {plain(outcome.name)} in Golden traces",
        icon=":material/verified:",
        query_params={"trace": outcome.name},
    )
    st.caption("Review the file and commit it with the change it guards.")


def capture_form(
    key: str,
    *,
    request_id: str | None = None,
    default_name: str = "",
    status: str | None = None,
) -> golden.CaptureOutcome | None:
    """Draw the capture control under the widget-key prefix ``key``: a request id input (unless
    ``request_id`` is given: the Traces page's request, recorded with ``status``), a golden name
    (``default_name``) and the "Capture as golden" button, disabled with its reason for a viewer or
    a request that did not answer.  On a click, capture and show the outcome; return it (None when
    the button was not clicked)."""
    reason = golden.capture_disabled_reason(status)
    if request_id is None:
        left, mid, right = st.columns([3, 3, 2], vertical_alignment="bottom")
        rid = left.text_input(
            "Request id", key=f"{key}_request", placeholder="a request id from the Traces page"
        )
    else:
        mid, right = st.columns([3, 2], vertical_alignment="bottom")
        rid = request_id
    st.session_state.setdefault(f"{key}_name", default_name)
    name = mid.text_input(
        "Golden name",
        key=f"{key}_name",
        help="The golden's file is NAME.json in the suite directory (ARBOR_GOLDEN_DIR): letters, digits, "
        "'_', '.' or '-'.",
    )
    clicked = right.button(
        "Capture as golden",
        key=f"{key}_capture",
        disabled=reason is not None,
        icon=":material/verified:",
        help="Replays the request several times with its seed and settings; refused, with the reason, when "
        "it is not reproducible.",
    )
    if reason is not None:
        st.caption(f":material/lock: {plain(reason)}")
    if not clicked:
        return None
    with st.spinner("Replaying the request…"):
        outcome = golden.capture_golden(rid or "", name or "")
    _show(outcome)
    return outcome
