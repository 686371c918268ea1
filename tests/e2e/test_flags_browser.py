"""The Feature flags section of the Experiments page in a real browser: define a flag with the
editor (``router=hybrid`` for everyone), see it in the table, kill it with the kill switch; the
store (read with plain sqlite3) holds the flag killed and both changes audited, and the engine's
requests (another process on the same store) get the flag before the kill and not after it."""

from __future__ import annotations

import sqlite3

import pytest
from playwright.sync_api import expect

from engine import Engine, QueryRequest
from engine.config import load_settings
from tests.e2e.conftest import running_console

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def flags_console(tmp_path_factory):
    runtime = tmp_path_factory.mktemp("flags_runtime")
    with running_console(runtime, {"ARBOR_AUTH": "none", "ARBOR_PROMETHEUS_URL": ""}) as url:
        yield url, runtime / "arbor.db"


def _run(db):
    with Engine(load_settings(db_path=db, metrics_port=0, durability="commit")) as engine:
        return engine.run(QueryRequest(query="connect4: 4453", seed=1, user_id="u1"))


def test_set_a_flag_and_kill_it(flags_console, page):
    url, db = flags_console
    page.set_default_timeout(120_000)  # a shared, busy machine: the script may render slowly
    page.goto(f"{url}/experiments")
    page.get_by_role("tab", name="Feature flags").click(timeout=120_000)
    page.get_by_role("heading", name="Feature flags").wait_for(timeout=120_000)
    form = page.locator('[data-testid="stForm"]').filter(has_text="Save the flag")
    form.get_by_role("textbox", name="Name").fill("browser-hybrid")
    # "Setting" keeps its first choice: router
    form.get_by_role("textbox", name="Value").fill("hybrid")
    rollout = form.get_by_role("spinbutton", name="Rollout %")
    rollout.fill("100")
    rollout.press("Tab")
    form.get_by_role("button", name="Save the flag").click()
    saved = page.get_by_text("console saved browser-hybrid: router=hybrid to 100% of units")
    expect(saved).to_be_visible(timeout=120_000)
    expect(page.locator('[data-testid="stDataFrame"]').filter(has_text="kill switch")).to_be_visible()

    flagged = _run(db)
    assert flagged.flags == ("browser-hybrid",) and flagged.router == "hybrid"

    page.get_by_role("button", name="Kill the flag").click()
    expect(page.get_by_text("console killed browser-hybrid")).to_be_visible(timeout=120_000)
    expect(page.get_by_role("button", name="Release the kill switch")).to_be_visible()

    conn = sqlite3.connect(db)
    try:
        killed = conn.execute("SELECT kill_switch FROM flags WHERE flag = 'browser-hybrid'").fetchall()
        audit = conn.execute("SELECT actor, action FROM flag_changes ORDER BY id").fetchall()
    finally:
        conn.close()
    assert killed == [(1,)]
    assert audit == [("console", "set"), ("console", "kill")]
    after = _run(db)
    assert after.flags == () and after.router == "rules"
