"""Hostile text in a real browser: URL parameters, a stored error message, a query and an LLM answer
that hold Markdown images (inline and reference) and raw ``<img>``/``<iframe>`` tags pointing at a
local beacon server.  Every page shows the text (literally, or as an answer without its images) and
the beacon receives nothing.  A final control inserts an image into the page by hand and sees the
beacon answer, so a silent beacon means "nothing was fetched", not "the browser cannot reach it".

The LLM answer comes from a real path: the console runs with ``ARBOR_LLM_PROVIDER=lmstudio`` pointed at
a local fake of LM Studio's OpenAI-compatible server whose every reply carries the hostile Markdown;
a freeform query's generated answer is those replies joined (engine/agents/freeform.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from observability.store import Store
from tests.e2e.conftest import running_console

pytestmark = pytest.mark.e2e

PNG = b"\x89PNG\r\n\x1a\n"  # a PNG signature: enough for the browser to ask for it


class _Server:
    """A ThreadingHTTPServer on a free loopback port that records every request line it receives."""

    def __init__(self, reply) -> None:
        hits: list[str] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                hits.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, ctype, payload = reply(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = do_OPTIONS = _answer

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def beacon() -> Iterator[_Server]:
    server = _Server(lambda path, body: (200, "image/png", PNG))
    yield server
    server.close()


def hostile(beacon: _Server, name: str) -> str:
    """Markdown that loads ``<beacon>/<name>-*.png`` wherever it is rendered as Markdown or HTML."""
    return (
        f'![b]({beacon.url}/{name}-inline.png) ![r][{name}] <img src="{beacon.url}/{name}-img.png"> '
        f'<iframe src="{beacon.url}/{name}-iframe.html"></iframe>\n\n[{name}]: {beacon.url}/{name}-ref.png'
    )


@pytest.fixture(scope="module")
def fake_llm(beacon) -> Iterator[_Server]:
    """LM Studio's chat completions endpoint, answering every question with hostile Markdown."""
    content = f"Restart the exporter first [1].\n\n{hostile(beacon, 'llm')}\n\nThen check the burn rate [2]."

    def reply(path: str, body: bytes) -> tuple[int, str, bytes]:
        if not path.endswith("/chat/completions"):
            return 404, "text/plain", b"not found"
        data = {
            "model": "local-model",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 40, "completion_tokens": 30},
        }
        return 200, "application/json", json.dumps(data).encode()

    server = _Server(reply)
    yield server
    server.close()


@pytest.fixture(scope="module")
def hostile_trace(tmp_path_factory, beacon) -> tuple[Path, str]:
    """A store holding one failed request whose error message, query and fields carry images."""
    db = tmp_path_factory.mktemp("hostile") / "arbor.db"
    store = Store(db, threaded=False)
    try:
        store.submit(
            "requests",
            [
                {
                    "request_id": "hostile-r1",
                    "trace_id": "hostiletrace1",
                    "ts": time.time() - 60,
                    "task": "freeform",
                    "query": hostile(beacon, "query"),
                    "status": "error",
                    "latency_ms": 12.0,
                    "seed": 5,
                    "router": "rules",
                    "provider": f"![p]({beacon.url}/provider.png)",
                    "stop_reason": f"![s]({beacon.url}/stop.png)",
                    "error": "The LLM provider failed: " + hostile(beacon, "error"),
                }
            ],
        )
    finally:
        store.close()
    return db, "hostiletrace1"


@pytest.fixture(scope="module")
def console(tmp_path_factory, hostile_trace, fake_llm) -> Iterator[str]:
    """The console on a free loopback port, on the hostile store, with the fake LLM as its provider."""
    db, _ = hostile_trace
    env = {
        "ARBOR_DB_PATH": str(db),
        "ARBOR_LLM_PROVIDER": "lmstudio",
        "ARBOR_LMSTUDIO_BASE_URL": f"{fake_llm.url}/v1",
        "ARBOR_LLM_MAX_ATTEMPTS": "1",
        "ARBOR_PROMETHEUS_URL": "",  # blank is unset: no Prometheus source
    }
    with running_console(tmp_path_factory.mktemp("console"), env) as url:
        yield url


@pytest.fixture
def watched(page, beacon):
    """The page, with every request the browser makes to the beacon's origin recorded."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if r.url.startswith(beacon.url) else None)
    page.beacon_requests = seen
    return page


def assert_nothing_fetched(page, beacon: _Server) -> None:
    """No element points at the beacon, the browser asked it for nothing and it received nothing."""
    page.wait_for_load_state("networkidle")
    sources = page.locator("img, iframe, source, video, audio, object, embed").evaluate_all(
        "els => els.map(e => e.src || e.data || '')"
    )
    assert not [s for s in sources if s.startswith(beacon.url)], sources
    assert page.beacon_requests == [] and beacon.hits == [], (page.beacon_requests, beacon.hits)


def open_url(page, url: str, heading: str) -> None:
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=60_000)


def test_query_console_link_parameters(console, watched, beacon):
    image = f"![b]({beacon.url}/seed.png)"
    open_url(watched, f"{console}/?seed={quote(image)}&iterations={quote(image)}", "Query console")
    # the warning shows the parameter literally (repr quotes it)
    expect(
        watched.get_by_text(f"Link parameter seed='{image}' is not a whole number: ignored")
    ).to_be_visible(timeout=30_000)
    expect(watched.get_by_text(f"Link parameter iterations='{image}'")).to_be_visible()
    assert_nothing_fetched(watched, beacon)


def test_query_text_from_the_link_is_shown_literally_after_a_run(console, watched, beacon):
    query = f"How does UCB1 work? {hostile(beacon, 'q')}"
    open_url(watched, f"{console}/?q={quote(query)}&task=freeform&seed=1", "Query console")
    expect(watched.get_by_role("textbox", name="Query")).to_have_value(query, timeout=30_000)
    watched.get_by_role("button", name="Run query").click()
    watched.get_by_role("heading", name="Answer").wait_for(timeout=120_000)
    # the caption quotes the query: its first line, literally
    expect(watched.get_by_text(f"![b]({beacon.url}/q-inline.png)").first).to_be_visible()
    assert_nothing_fetched(watched, beacon)


def test_llm_answer_keeps_its_citations_and_loses_its_images(console, watched, beacon, fake_llm):
    open_url(
        watched,
        f"{console}/?q={quote('How do I restart the exporter?')}&task=freeform&seed=2",
        "Query console",
    )
    expect(watched.get_by_role("textbox", name="Query")).to_have_value(
        "How do I restart the exporter?", timeout=30_000
    )
    watched.get_by_role("button", name="Run query").click()
    watched.get_by_role("heading", name="Answer").wait_for(timeout=120_000)
    assert any(h.startswith("POST /v1/chat/completions") for h in fake_llm.hits)  # the LLM answered
    expect(watched.get_by_text("Generated by the lmstudio LLM")).to_be_visible()
    answer = watched.get_by_test_id("stMarkdownContainer").filter(has_text="Then check the burn rate")
    text = answer.first.inner_text()
    assert "Restart the exporter first [1]." in text and "Then check the burn rate [2]." in text
    assert "[image removed: b]" in text and "[image removed: r]" in text
    assert "<img" not in text and "<iframe" not in text
    assert_nothing_fetched(watched, beacon)


def test_mcts_link_parameters_and_position(console, watched, beacon):
    image = f"![b]({beacon.url}/mcts-seed.png)"
    open_url(watched, f"{console}/mcts?task=game24&seed={quote(image)}", "MCTS explorer")
    expect(
        watched.get_by_text(f"Link parameter seed='{image}' is not a whole number: ignored")
    ).to_be_visible(timeout=30_000)
    assert_nothing_fetched(watched, beacon)

    position = f"![p]({beacon.url}/position.png)"
    open_url(watched, f"{console}/mcts?task=game24&position={quote(position)}&seed=1", "MCTS explorer")
    expect(watched.get_by_role("textbox", name="Position")).to_have_value(position, timeout=30_000)
    watched.get_by_role("button", name="Run search").click()
    expect(watched.get_by_text("Invalid game24 position")).to_be_visible(timeout=60_000)
    # the message quotes the position literally (cut to its first 40 characters)
    assert position[:40] in watched.get_by_text("Invalid game24 position").inner_text()
    assert_nothing_fetched(watched, beacon)


def test_trace_link_and_stored_error(console, watched, beacon, hostile_trace):
    missing = f"![t]({beacon.url}/trace-link.png)"
    open_url(watched, f"{console}/traces?trace={quote(missing)}", "Traces")
    expect(watched.get_by_text(f"No trace {missing} in the store")).to_be_visible(timeout=30_000)
    assert_nothing_fetched(watched, beacon)

    _, trace_id = hostile_trace
    open_url(watched, f"{console}/traces?trace={trace_id}", "Traces")
    watched.get_by_role("heading", name=f"Trace {trace_id}").wait_for(timeout=60_000)
    error = watched.get_by_test_id("stAlertContentError").filter(has_text="The LLM provider failed")
    expect(error).to_be_visible(timeout=30_000)
    shown = error.inner_text()
    assert (
        f"![b]({beacon.url}/error-inline.png)" in shown and f'<img src="{beacon.url}/error-img.png">' in shown
    )
    expect(watched.get_by_text(f"![p]({beacon.url}/provider.png)")).to_be_visible()
    expect(watched.get_by_text(f"![s]({beacon.url}/stop.png)")).to_be_visible()
    assert_nothing_fetched(watched, beacon)


def test_traces_filter_link_and_runbook_name(console, watched, beacon):
    image = f"![b]({beacon.url}/filter.png)"
    params = "&".join(f"{k}={quote(image)}" for k in ("status", "provider", "variant", "since"))
    open_url(watched, f"{console}/traces?{params}", "Traces")
    expect(watched.get_by_text(f"Link parameter provider='{image}'")).to_be_visible(timeout=30_000)
    expect(watched.get_by_text(f"Link parameter variant='{image}'")).to_be_visible()
    assert_nothing_fetched(watched, beacon)

    name = f"![r]({beacon.url}/runbook.png)"
    open_url(watched, f"{console}/runbooks?name={quote(name)}", "Runbooks")
    expect(watched.get_by_text(f"Link parameter name='{name}' is not one of runbook-")).to_be_visible(
        timeout=30_000
    )
    assert_nothing_fetched(watched, beacon)


def test_control_the_beacon_is_reachable_from_the_browser(console, watched, beacon):
    """Without this, a silent beacon could mean the browser never reaches it."""
    open_url(watched, f"{console}/overview", "Overview")
    watched.evaluate(
        f"() => {{ const i = new Image(); i.src = '{beacon.url}/control.png'; document.body.append(i); }}"
    )
    watched.wait_for_load_state("networkidle")
    deadline = time.monotonic() + 30
    while not beacon.hits and time.monotonic() < deadline:
        time.sleep(0.1)
    assert beacon.hits == ["GET /control.png"]
    beacon.hits.clear()
