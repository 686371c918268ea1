"""Console access control (``ARBOR_AUTH``): the sign-in gate, the sidebar's user box, and the
operator-only checks pages use.  The logic (hashes, lock-out, sessions, roles) is in
:mod:`engine.auth`; this module is its Streamlit face.

- ``none``: no sign-in; everyone is an operator (for loopback use).
- ``password``: a sign-in form against ``ARBOR_AUTH_USERS_FILE``.  The session lives in the
  Streamlit session, so a browser reload (a new Streamlit session) asks again.
- ``oidc``: ``st.login()`` with the provider in ``.streamlit/secrets.toml``; the role comes from
  the claim ``ARBOR_AUTH_ROLE_CLAIM``, else ``ARBOR_AUTH_DEFAULT_ROLE``.

Every sign-in lasts ``ARBOR_AUTH_SESSION_MINUTES``.  :func:`gate` runs before any page;
:func:`operator_disabled_reason` tells a page why a control is disabled, and
:func:`require_operator` refuses the action itself (``app/query.py``, ``app/routing.py`` and
``app/explorer.py`` call it before running anything), so a disabled button is not the only guard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from app import components
from engine.auth import (
    Authenticator,
    LockoutTracker,
    Session,
    UsersFileError,
    UsersStore,
    denial_reason,
    role_from_claims,
)
from engine.config import AuthRole, Settings

log = logging.getLogger("arbor.auth")

#: The wall clock sessions are dated by (seconds).  Tests replace it to drive session expiry.
SESSION_CLOCK: Callable[[], float] = time.time

ACCESS_KEY = "auth_access"
SESSION_KEY = "auth_session"
NOTICE_KEY = "auth_notice"


@dataclass(frozen=True)
class Access:
    """Who is at the console in this run: the mode, the user (None when anonymous) and the role
    (None when nobody is signed in)."""

    mode: str
    user: str | None
    role: AuthRole | None

    @property
    def signed_in(self) -> bool:
        """True when pages may be shown (always under ``ARBOR_AUTH=none``)."""
        return self.role is not None


@st.cache_resource
def get_authenticator(users_file: str, session_minutes: int) -> Authenticator:
    """One authenticator per process and users file: its lock-out tracker is shared by every
    session, so five wrong passwords lock a user name for everyone, whichever tab they came from.
    (The tracker is internally locked; nothing else mutates this object.)"""
    return Authenticator(
        UsersStore(Path(users_file)),
        session_minutes=session_minutes,
        lockout=LockoutTracker(),
        clock=SESSION_CLOCK,
    )


def _authenticator(settings: Settings) -> Authenticator:
    assert settings.auth_users_file is not None  # Settings refuses password mode without one
    return get_authenticator(str(settings.auth_users_file), settings.auth_session_minutes)


def current() -> Access:
    """The access :func:`gate` decided for this run (nobody signed in if it has not run)."""
    access = st.session_state.get(ACCESS_KEY)
    return access if isinstance(access, Access) else Access("unknown", None, None)


def operator_disabled_reason(action: str = "run_query") -> str | None:
    """None when the signed-in user may do ``action`` (see :data:`engine.auth.OPERATOR_ACTIONS`),
    else the sentence to show beside the disabled control."""
    access = current()
    return denial_reason(access.role, action)


def require_operator(action: str) -> None:
    """Stop the run with a message unless the signed-in user may do ``action``.

    The server-side guard behind a disabled button (a crafted client could still send a click).
    """
    reason = operator_disabled_reason(action)
    if reason is not None:
        access = current()
        log.warning("denied %s to %r (role %s)", action, access.user, access.role)
        st.error(reason, icon=":material/lock:")
        st.stop()


# -- the gate ------------------------------------------------------------------------------------------


def gate(settings: Settings) -> Access:
    """Run before any page.  Returns the :class:`Access` of this run: when someone is signed in,
    after showing who in the sidebar with a sign-out button; when nobody is, after showing the
    sign-in page — the caller must then stop the run (``app/main.py`` does, right after
    ``st.navigation``, so that no page code runs)."""
    if settings.auth == "password":
        access = _password_access(settings)
    elif settings.auth == "oidc":
        access = _oidc_access(settings)
    else:
        access = Access("none", None, "operator")
    st.session_state[ACCESS_KEY] = access
    if not access.signed_in:
        _sign_in_page(settings)
    else:
        _sidebar(access)
    return access


def _unavailable(exc: UsersFileError) -> None:
    log.error("sign-in unavailable: %s", exc)
    st.error(
        "Sign-in is unavailable: the users file (ARBOR_AUTH_USERS_FILE) cannot be used, so nobody is "
        f"let in.\n\n{components.md_escape(str(exc))}",
        icon=":material/lock:",
    )
    st.stop()


def _password_access(settings: Settings) -> Access:
    session = st.session_state.get(SESSION_KEY)
    if not isinstance(session, Session):
        return Access("password", None, None)
    try:
        refreshed, why = _authenticator(settings).refresh(session)
    except UsersFileError as exc:
        _unavailable(exc)
        raise  # not reached: st.stop() raises
    if refreshed is None:
        del st.session_state[SESSION_KEY]
        st.session_state[NOTICE_KEY] = why
        log.info("session of %r ended: %s", session.user, why)
        return Access("password", None, None)
    st.session_state[SESSION_KEY] = refreshed
    return Access("password", refreshed.user, refreshed.role)


def _oidc_configured() -> bool:
    try:
        return st.secrets.load_if_toml_exists() and "auth" in st.secrets
    except Exception:  # a secrets.toml that does not parse: Streamlit raises its own errors
        return False


def _oidc_access(settings: Settings) -> Access:
    user = st.user.to_dict()
    if not user.get("is_logged_in"):
        st.session_state.pop(SESSION_KEY, None)
        return Access("oidc", None, None)
    name = str(user.get("email") or user.get("name") or user.get("sub") or "unknown user")
    role = role_from_claims(user, settings.auth_role_claim, settings.auth_default_role)
    now = SESSION_CLOCK()
    session = st.session_state.get(SESSION_KEY)
    if not isinstance(session, Session) or session.user != name:
        # Dated from the ID token's issue time when it has one, so that a reload (a new Streamlit
        # session, same identity cookie) does not extend the sign-in.
        issued = user.get("iat")
        started = (
            float(issued)
            if isinstance(issued, int | float) and not isinstance(issued, bool) and issued <= now + 60
            else now
        )
        session = Session.start(name, role, "oidc", minutes=settings.auth_session_minutes, now=started)
        log.info("signed in %r with OIDC as %s", name, role)
    if session.expired(now):
        st.session_state.pop(SESSION_KEY, None)
        log.info("OIDC session of %r expired", name)
        st.logout()  # clears the identity cookie: the next visit signs in with the provider again
        st.session_state[NOTICE_KEY] = "Your session expired: sign in again."
        return Access("oidc", None, None)
    if session.role != role:
        session = Session(session.user, role, "oidc", session.started_at, session.expires_at)
    st.session_state[SESSION_KEY] = session
    return Access("oidc", name, role)


def _sign_in_page(settings: Settings) -> None:
    st.title("Sign in to Arbor")
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.info(notice, icon=":material/info:")
    if settings.auth == "oidc":
        if not _oidc_configured():
            st.error(
                "ARBOR_AUTH=oidc needs the identity provider in `.streamlit/secrets.toml` (an `[auth]` "
                "section with redirect_uri, cookie_secret, client_id, client_secret and "
                "server_metadata_url); see the README, Security.",
                icon=":material/lock:",
            )
            return
        st.button("Sign in with your identity provider", type="primary", key="auth_oidc", on_click=st.login)
        return
    with st.form("auth_sign_in", clear_on_submit=True):
        name = st.text_input("User name", key="auth_name", autocomplete="username", max_chars=64)
        password = st.text_input(
            "Password", type="password", key="auth_password", autocomplete="current-password", max_chars=1024
        )
        submitted = st.form_submit_button("Sign in", type="primary", icon=":material/login:")
    if not submitted:
        st.caption("Ask an administrator for an account (`python -m engine auth add-user`).")
        return
    try:
        result = _authenticator(settings).login(name, password)
    except UsersFileError as exc:
        _unavailable(exc)
        return
    if result.ok:
        assert result.session is not None
        st.session_state[SESSION_KEY] = result.session
        log.info("signed in %r as %s", result.session.user, result.session.role)
        st.rerun()
    log.warning("sign-in refused for %r: %s", name.strip()[:64], result.message)
    st.error(result.message or "Sign-in refused.", icon=":material/lock:")


def _sign_out() -> None:
    session = st.session_state.pop(SESSION_KEY, None)
    st.session_state.pop(ACCESS_KEY, None)
    if isinstance(session, Session):
        log.info("signed out %r", session.user)
        if session.method == "oidc":
            st.logout()
            return
    st.session_state[NOTICE_KEY] = "You are signed out."


def _sidebar(access: Access) -> None:
    if access.mode == "none":
        st.sidebar.caption(":material/lock_open: Access control is off (ARBOR_AUTH=none): everyone can run.")
        return
    st.sidebar.markdown(
        f":material/person: Signed in as **{components.md_escape(access.user or '')}** ({access.role})"
    )
    st.sidebar.button("Sign out", key="auth_sign_out", icon=":material/logout:", on_click=_sign_out)
