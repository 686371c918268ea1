"""Deep-link warnings and cancelling a query, in a real browser against a live console.

- ``/?iterations=999999`` opens the Query console with the iterations clamped to 10,000 and a
  warning saying so (it used to become 1000 silently).
- A freeform question whose LLM provider (a local fake of LM Studio) takes 45 s an answer is stopped
  with the page's Stop button while its first question is in flight: the page says the query was
  stopped and shows no answer, the provider is asked nothing more (the run ended at the step
  boundary), and the store records the request as ``cancelled`` (read back with sqlite3) while
  the answered request before it stays ``ok``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect

from tests.e2e.conftest import running_console

pytestmark = pytest.mark.e2e


class _SlowLLM:
    """LM Studio's chat completions endpoint on a free loopback port, answering each question
    after ``delay_s`` (a slow provider: the case Stop is for); counts the questions it received."""

    def __init__(self, delay_s: float) -> None:
        self.asked = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.asked += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay_s)
                body = json.dumps(
                    {
                        "model": "local-model",
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "UCB1 adds a bonus [1]."},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 40, "completion_tokens": 8},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def slow_llm() -> Iterator[_SlowLLM]:
    server = _SlowLLM(delay_s=45.0)
    yield server
    server.close()


@pytest.fixture(scope="module")
def console(tmp_path_factory, slow_llm) -> Iterator[tuple[str, Path]]:
    runtime = tmp_path_factory.mktemp("links_runtime")
    env = {
        "ARBOR_AUTH": "none",
        "ARBOR_PROMETHEUS_URL": "",
        "ARBOR_LLM_PROVIDER": "lmstudio",
        "ARBOR_LMSTUDIO_BASE_URL": f"{slow_llm.url}/v1",
        "ARBOR_LLM_MAX_ATTEMPTS": "1",
    }
    with running_console(runtime, env) as url:
        yield url, runtime / "arbor.db"


def _statuses(db: Path, deadline_s: float = 60.0) -> list[tuple[str, str]]:
    """(query, status) of every recorded request, once the console's writer has stored two
    (polled: telemetry is written asynchronously; the deadline only bounds the wait)."""
    end = time.monotonic() + deadline_s
    rows: list[tuple[str, str]] = []
    while time.monotonic() < end:
        if db.exists():
            with sqlite3.connect(db) as con:
                rows = con.execute("select query, status from requests order by ts").fetchall()
            if len(rows) >= 2:
                return rows
        time.sleep(0.5)
    return rows


def test_an_out_of_range_link_value_is_clamped_with_a_warning(console, page):
    url, _ = console
    page.goto(url + "/?iterations=999999&router=bogus")
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    expect(
        page.get_by_text(
            "Link parameter iterations='999999' is above the largest value, 10,000: "
            "clamped, using 10,000 instead."
        )
    ).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Link parameter router='bogus' is not one of")).to_be_visible()
    expect(page.get_by_role("spinbutton", name="MCTS iterations")).to_have_value("10000", timeout=30_000)


def test_stop_cancels_a_running_query(console, page, slow_llm):
    url, db = console
    page.goto(url)
    page.get_by_role("heading", name="Query console").wait_for(timeout=60_000)
    # one answered query first (a game: no LLM): it must stay recorded as it was
    page.get_by_role("textbox", name="Query").fill("24: 3 3 8 8")
    page.get_by_role("button", name="Run query").click()
    page.get_by_role("heading", name="Answer").wait_for(timeout=60_000)

    # a freeform question: each agent step asks the slow provider (45 s an answer)
    question = "How does UCB1 balance exploration and exploitation?"
    page.get_by_role("textbox", name="Query").fill(question)
    page.get_by_role("button", name="Run query").click()
    # the live view redraws as events come (React may remount the button): click where it is, as
    # a reader's mouse does, as soon as it shows (the run takes at least two 45 s answers)
    stop = page.get_by_role("button", name="Stop")
    end = time.monotonic() + 120
    box = None
    while box is None and time.monotonic() < end:
        if stop.count():
            with contextlib.suppress(PlaywrightTimeoutError):
                box = stop.first.bounding_box(timeout=500)
        else:
            time.sleep(0.1)
    assert box is not None, f"no Stop button while the query ran (questions asked: {slow_llm.asked})"
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    asked = slow_llm.asked  # the question in flight (if any) is answered; no other is asked

    expect(page.get_by_text(f"Stopped: the query “{question}” was cancelled")).to_be_visible(timeout=60_000)
    expect(page.get_by_text("you pressed Stop")).to_be_visible()
    expect(page.get_by_role("heading", name="Answer")).to_have_count(0)  # the earlier answer is gone too
    expect(page.get_by_role("button", name="Stop")).to_have_count(0)
    assert _statuses(db) == [("24: 3 3 8 8", "ok"), (question, "cancelled")]
    # the run stopped at the step boundary after the question in flight: no further question asked
    assert slow_llm.asked == asked
