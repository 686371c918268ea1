"""The console's sign-in gate (AppTest, through app/main.py): ARBOR_AUTH=password and oidc.

Session expiry uses an injected clock (``app.auth.SESSION_CLOCK``), not a short session length."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from streamlit.testing.v1 import AppTest

from app import auth as app_auth
from engine import auth

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
VIEWER_REASON = "Only an operator may run queries: you are signed in as a viewer (read-only)."


class FakeClock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(app_auth, "SESSION_CLOCK", fake)
    return fake


@pytest.fixture
def users_file(monkeypatch, tmp_path, clock) -> Path:
    path = tmp_path / "users.yaml"
    users = auth.UsersFile(
        users=(
            auth.User(name="olga", password_hash=FAST.hash("op-pass"), role="operator"),
            auth.User(name="vic", password_hash=FAST.hash("view-pass"), role="viewer"),
        )
    )
    auth.save_users(path, users)
    monkeypatch.setenv("ARBOR_AUTH", "password")
    monkeypatch.setenv("ARBOR_AUTH_USERS_FILE", str(path))
    return path


def _start() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _sign_in(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="auth_name").set_value(name)
    at.text_input(key="auth_password").set_value(password)
    next(b for b in at.button if b.label == "Sign in").click().run()
    assert not at.exception, at.exception
    return at


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def _on_sign_in_page(at: AppTest) -> bool:
    return [t.value for t in at.title] == ["Sign in to Arbor"]


def test_no_session_shows_only_the_sign_in_form(users_file):
    at = _start()
    assert _on_sign_in_page(at)
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    assert at.text_input(key="auth_password").proto.type == at.text_input(key="auth_password").proto.PASSWORD
    assert not any(b.label == "Run query" for b in at.button)  # no page code ran


def test_wrong_password_is_refused_with_a_message(users_file):
    at = _sign_in(_start(), "olga", "op-pas")
    assert _on_sign_in_page(at)
    assert [e.value for e in at.error] == ["Wrong user name or password."]
    at = _sign_in(at, "nobody", "op-pass")
    assert [e.value for e in at.error] == ["Wrong user name or password."]


def test_viewer_sees_run_query_disabled_with_the_reason(users_file):
    at = _sign_in(_start(), "vic", "view-pass")
    assert [t.value for t in at.title] == ["Query console"]
    run = _button(at, "Run query")
    assert run.disabled and run.help == VIEWER_REASON
    assert any(VIEWER_REASON in c.value for c in at.caption)
    assert [m.value for m in at.sidebar.markdown if "Signed in" in m.value] == [
        ":material/person: Signed in as **vic** (viewer)"
    ]


def test_a_viewers_forged_click_runs_nothing(users_file):
    # a crafted client can send a click for a disabled button (a browser would not): Streamlit
    # discards it server-side.  AppTest refuses to click disabled widgets, so the test clears the
    # flag on its copy of the element to send one.
    at = _sign_in(_start(), "vic", "view-pass")
    run = _button(at, "Run query")
    run.proto.disabled = False
    run.click().run()
    assert not at.exception
    assert "query_result" not in at.session_state


def _guarded_script() -> None:
    import streamlit as st

    from app import auth, query
    from engine import QueryRequest

    st.session_state[auth.ACCESS_KEY] = auth.Access("password", "someone", st.session_state.role)
    result = query.run_query(QueryRequest(query="24: 3 3 8 8", seed=1))
    st.write(f"ran: {result.answer}")


@pytest.mark.parametrize("role", ["viewer", None])
def test_services_refuse_operator_actions_to_others(role):
    # the second guard, behind the disabled controls: the service itself refuses
    at = AppTest.from_function(_guarded_script, default_timeout=120)
    at.session_state.role = role
    at.run()
    assert not at.exception
    expected = VIEWER_REASON if role else "Sign in to run queries."
    assert [e.value for e in at.error] == [expected]
    assert not any(m.value.startswith("ran") for m in at.markdown)


def test_services_run_operator_actions_for_operators():
    at = AppTest.from_function(_guarded_script, default_timeout=120)
    at.session_state.role = "operator"
    at.run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown] == ["ran: 8/(3-8/3)"]


def test_operator_can_run_a_query_and_sign_out(users_file):
    at = _sign_in(_start(), "olga", "op-pass")
    run = _button(at, "Run query")
    assert not run.disabled
    at.text_area(key="query_text").set_value("24: 3 3 8 8")
    at.number_input(key="query_seed").set_value(1)
    _button(at, "Run query").click().run()
    assert not at.exception
    assert at.session_state["query_result"].answer == "8/(3-8/3)"  # by hand: 8 / (3 - 8/3) = 24
    _button(at, "Sign out").click().run()
    assert _on_sign_in_page(at)
    assert [i.value for i in at.info] == ["You are signed out."]


def test_session_expires_after_480_minutes_on_the_injected_clock(users_file, clock):
    at = _sign_in(_start(), "olga", "op-pass")
    clock.t += 480 * 60 - 1
    at.run()
    assert [t.value for t in at.title] == ["Query console"]
    clock.t += 1
    at.run()
    assert _on_sign_in_page(at)
    assert [i.value for i in at.info] == ["Your session expired: sign in again."]
    assert _sign_in(at, "olga", "op-pass").title[0].value == "Query console"


def test_five_wrong_passwords_lock_the_name_across_sessions(users_file):
    # the tracker is process-wide: three failures in one browser session and two in another lock it
    first, second = _start(), _start()
    for _ in range(3):
        _sign_in(first, "olga", "nope")
    _sign_in(second, "olga", "nope")
    assert [e.value for e in second.error] == ["Wrong user name or password."]
    _sign_in(second, "olga", "nope")
    assert "locked for 60 more seconds" in second.error[0].value
    _sign_in(first, "olga", "op-pass")  # the right password, during the lock
    assert _on_sign_in_page(first) and "locked" in first.error[0].value
    assert _sign_in(_start(), "vic", "view-pass").title[0].value == "Query console"  # others unaffected


def test_a_removed_user_is_signed_out_at_the_next_interaction(users_file):
    at = _sign_in(_start(), "vic", "view-pass")
    users = auth.load_users(users_file)
    auth.save_users(users_file, auth.UsersFile(users=tuple(u for u in users.users if u.name != "vic")))
    at.run()
    assert _on_sign_in_page(at)
    assert "removed" in at.info[0].value


def test_an_unreadable_users_file_lets_nobody_in(users_file):
    at = _start()
    users_file.write_text("users: [")
    _sign_in(at, "olga", "op-pass")
    assert _on_sign_in_page(at)
    assert "Sign-in is unavailable" in at.error[0].value and "not valid YAML" in at.error[0].value


def test_password_mode_without_a_users_file_does_not_start(monkeypatch):
    monkeypatch.setenv("ARBOR_AUTH", "password")
    monkeypatch.delenv("ARBOR_AUTH_USERS_FILE", raising=False)
    at = _start()
    assert "ARBOR_AUTH_USERS_FILE" in at.error[0].value.replace("\\", "")  # markdown-escaped or not
    assert not at.text_input


# -- OIDC (st.user seeded through AppTest.user; the provider round trip needs a real IdP) ----------


@pytest.fixture
def oidc(monkeypatch, clock) -> None:
    monkeypatch.setenv("ARBOR_AUTH", "oidc")
    monkeypatch.setenv("ARBOR_AUTH_ROLE_CLAIM", "roles")


def _oidc_start(user: dict) -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=120)
    at.user = user
    at.run()
    assert not at.exception, at.exception
    return at


def test_oidc_role_comes_from_the_claim(oidc):
    at = _oidc_start({"is_logged_in": True, "email": "ops@example.com", "roles": ["operator"]})
    assert not _button(at, "Run query").disabled
    shown = [m.value.replace("\\", "") for m in at.sidebar.markdown]  # markdown-escaped name
    assert any("Signed in as **ops@example.com** (operator)" in m for m in shown)


def test_oidc_without_the_claim_gets_the_default_role(oidc):
    at = _oidc_start({"is_logged_in": True, "email": "someone@example.com"})
    assert _button(at, "Run query").disabled
    assert _button(at, "Run query").help == VIEWER_REASON


def test_oidc_signed_out_user_sees_the_sign_in_page(oidc):
    at = _oidc_start({"is_logged_in": False})
    assert _on_sign_in_page(at)
    # no [auth] section in .streamlit/secrets.toml here: the page says what to configure
    assert "secrets.toml" in at.error[0].value


def test_oidc_session_expires_on_the_injected_clock(oidc, clock):
    at = _oidc_start({"is_logged_in": True, "email": "ops@example.com", "roles": "operator"})
    clock.t += 480 * 60
    at.run()
    assert not at.exception
    assert _on_sign_in_page(at)  # st.logout() cleared st.user


def test_oidc_sign_out_clears_the_user(oidc):
    at = _oidc_start({"is_logged_in": True, "email": "ops@example.com", "roles": "operator"})
    _button(at, "Sign out").click().run()
    assert not at.exception
    assert _on_sign_in_page(at)


def test_oidc_sign_in_is_dated_from_the_id_tokens_issue_time(oidc, clock):
    # a reload starts a new Streamlit session with the same identity cookie: it must not extend
    # the sign-in, so the session counts from the token's iat
    user = {"is_logged_in": True, "email": "ops@example.com", "roles": "operator"}
    at = _oidc_start({**user, "iat": int(clock.t) - 480 * 60 + 10})
    assert not _button(at, "Run query").disabled
    clock.t += 10
    at.run()
    assert _on_sign_in_page(at)
    assert _on_sign_in_page(_oidc_start({**user, "iat": int(clock.t) - 480 * 60}))
