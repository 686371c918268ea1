"""Steps browser tests share: run a query on the Query console as a user would."""

from __future__ import annotations

from typing import Any


def run_query(page: Any, console_url: str, query: str, seed: int) -> None:
    """Open the Query console, type ``query`` and ``seed``, run it and wait for the answer."""
    page.goto(console_url)
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    page.get_by_role("textbox", name="Query").fill(query)
    page.get_by_role("spinbutton", name="Seed").fill(str(seed))
    page.get_by_role("button", name="Run query").click()
    page.get_by_role("heading", name="Answer").wait_for(timeout=60_000)
