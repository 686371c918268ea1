"""Access control in a real browser.  ARBOR_AUTH=password: sign in, sign out, a viewer denied the
operator's controls, and the lock after five wrong passwords.  ARBOR_AUTH=oidc: st.login's
round trip against a fake OpenID Connect provider, the role from its claim.  (Session expiry needs
an injected clock: tests/app/test_auth_gate.py.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AUTH_USERS

pytestmark = pytest.mark.e2e

VIEWER_REASON = "Only an operator may run queries: you are signed in as a viewer (read-only)."


def _sign_in(page, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Sign in to Arbor").wait_for(timeout=60_000)
    page.get_by_role("textbox", name="User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _error_text(page) -> str:
    alert = page.get_by_test_id("stAlertContentError").first
    alert.wait_for(timeout=30_000)
    return alert.inner_text()


def test_sign_in_page_comes_first_and_a_wrong_password_is_refused(auth_console_url, page):
    page.goto(auth_console_url)
    page.get_by_role("heading", name="Sign in to Arbor").wait_for(timeout=60_000)
    assert page.get_by_role("heading", name="Query console").count() == 0
    assert page.get_by_role("textbox", name="Password").get_attribute("type") == "password"
    _sign_in(page, auth_console_url, "olga", "not-her-password")
    assert "Wrong user name or password." in _error_text(page)
    assert page.get_by_role("heading", name="Query console").count() == 0


def test_operator_signs_in_runs_and_signs_out(auth_console_url, page):
    _sign_in(page, auth_console_url, "olga", AUTH_USERS["olga"][0])
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("Signed in as olga (operator)")
    run = page.get_by_role("button", name="Run query")
    expect(run).to_be_enabled()
    page.get_by_role("textbox", name="Query").fill("24: 3 3 8 8")
    page.get_by_role("spinbutton", name="Seed").fill("1")
    run.click()
    page.get_by_role("heading", name="Answer").wait_for(timeout=60_000)
    # by hand: 3 - 8/3 = 1/3 and 8 / (1/3) = 24, the only way to make 24 from 3 3 8 8
    assert page.get_by_test_id("stCode").first.inner_text().strip() == "8/(3-8/3)"

    sidebar.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to Arbor").wait_for(timeout=30_000)
    expect(page.get_by_test_id("stAlertContentInfo").first).to_contain_text("You are signed out.")
    assert page.get_by_role("heading", name="Query console").count() == 0


def test_viewer_sees_the_operator_controls_disabled_with_the_reason(auth_console_url, page):
    _sign_in(page, auth_console_url, "vic", AUTH_USERS["vic"][0])
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as vic (viewer)")
    expect(page.get_by_role("button", name="Run query")).to_be_disabled()
    expect(page.get_by_text(VIEWER_REASON).first).to_be_visible()
    # the viewer can still read every page: the MCTS explorer's search is disabled the same way
    page.get_by_test_id("stSidebar").get_by_role("link", name="MCTS explorer").click()
    page.get_by_role("heading", name="MCTS explorer").wait_for(timeout=60_000)
    expect(page.get_by_role("button", name="Run search")).to_be_disabled()
    expect(page.get_by_text("Only an operator may run searches").first).to_be_visible()


def test_five_wrong_passwords_lock_the_user_name(auth_console_url, page):
    name, right = "locked-out", AUTH_USERS["locked-out"][0]
    for attempt in range(1, 5):
        _sign_in(page, auth_console_url, name, f"wrong-{attempt}")
        assert "Wrong user name or password." in _error_text(page), attempt
    _sign_in(page, auth_console_url, name, "wrong-5")
    assert "locked for 60 more seconds" in _error_text(page)
    # locked: the right password is refused too, and the console stays closed
    _sign_in(page, auth_console_url, name, right)
    assert "Too many wrong passwords for this user name" in _error_text(page)
    assert page.get_by_role("heading", name="Query console").count() == 0


# -- OIDC: a real authorization-code round trip through st.login against a fake provider ----------


def _oidc_sign_in(page, url: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name="Sign in to Arbor").wait_for(timeout=60_000)
    page.get_by_role("button", name="Sign in with your identity provider").click()
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)


def test_oidc_operator_from_the_role_claim_signs_in_and_out(oidc_console, page):
    url, idp = oidc_console
    idp.user = {"sub": "u-1", "email": "ops@example.com", "name": "Ops", "roles": ["dev", "operator"]}
    _oidc_sign_in(page, url)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar).to_contain_text("Signed in as ops@example.com (operator)")
    expect(page.get_by_role("button", name="Run query")).to_be_enabled()
    sidebar.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to Arbor").wait_for(timeout=60_000)
    assert page.get_by_role("heading", name="Query console").count() == 0


def test_oidc_user_without_the_claim_is_a_viewer(oidc_console, page):
    url, idp = oidc_console
    idp.user = {"sub": "u-2", "email": "reader@example.com", "name": "Reader"}
    _oidc_sign_in(page, url)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Signed in as reader@example.com (viewer)")
    expect(page.get_by_role("button", name="Run query")).to_be_disabled()
    expect(page.get_by_text(VIEWER_REASON).first).to_be_visible()
