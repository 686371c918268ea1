"""Test helpers for the LLM tests: a scripted local HTTP server, a fake sleep and a fake clock.

The server is a real ``http.server.ThreadingHTTPServer`` on 127.0.0.1 with a free port, so the
providers go through httpx, sockets and timeouts for real; no test touches the internet.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "sk-test-9c1f2e3d4b5a6978-SECRET"
ANTHROPIC_SECRET = "sk-ant-test-0f1e2d3c4b5a-SECRET"


@dataclass
class Reply:
    """What the server answers to one request.  ``body``: dict/list -> JSON, str/bytes -> raw."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass(frozen=True)
class Received:
    """One request the server saw."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """The client gave up (timeout tests): a broken pipe here is expected, not a failure."""


class ScriptedServer:
    """Answers POSTs from a script of :class:`Reply` (first in, first out), then with ``default``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.default = Reply(500, {"error": {"message": "no reply scripted"}})
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else ~40 ms per response (Nagle + delayed ACK)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                reply = owner._record(
                    Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                )
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                if isinstance(reply.body, (dict, list)):
                    payload = json.dumps(reply.body).encode()
                    ctype = "application/json"
                elif isinstance(reply.body, str):
                    payload, ctype = reply.body.encode(), "text/plain"
                else:
                    payload, ctype = (reply.body or b""), "application/json"
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(payload)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def _record(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            return self._script.popleft() if self._script else self.default

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def push(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class FakeSleep:
    """Records requested sleeps (seconds) instead of sleeping."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- provider wire formats -----------------------------------------------------------------------


def openai_ok(text: str = "Hello there.", model: str = "gpt-4o-mini-2024-07-18", usage: bool = True) -> dict:
    """A Chat Completions success body (shape from the OpenAI API reference)."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    return body


def anthropic_ok(text: str = "Hello there.", model: str = "claude-3-5-haiku-20241022") -> dict:
    """A Messages API success body (shape from the Anthropic API reference)."""
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 3},
    }


@dataclass(frozen=True)
class ProviderCase:
    """How to build one provider against the local server and what a success looks like."""

    name: str
    path: str  # the endpoint path the server must see
    secret: str | None

    def ok(self) -> dict:
        return anthropic_ok() if self.name == "anthropic" else openai_ok()

    def make(self, base: str, **kwargs: Any) -> Any:
        from engine.llm import AnthropicProvider, LMStudioProvider, OpenAIProvider

        if self.name == "openai":
            return OpenAIProvider(self.secret, base_url=base + "/v1", **kwargs)
        if self.name == "lmstudio":
            return LMStudioProvider(base_url=base + "/v1", **kwargs)
        return AnthropicProvider(self.secret, base_url=base, **kwargs)


CASES = (
    ProviderCase("openai", "/v1/chat/completions", SECRET),
    ProviderCase("anthropic", "/v1/messages", ANTHROPIC_SECRET),
    ProviderCase("lmstudio", "/v1/chat/completions", None),
)


class DripServer:
    """A local HTTP server that answers every POST one byte every ``interval_s`` seconds.

    The whole response (status line, headers, a valid Chat Completions body) is dripped, so each
    socket read gets a byte long before any per-read timeout: only a total deadline cuts it.
    ``connections`` counts the requests accepted, ``finished`` the responses dripped out whole.
    Stop it with :meth:`stop`.
    """

    def __init__(self, interval_s: float = 0.7) -> None:
        import socketserver

        self.interval_s = interval_s
        self.connections = 0
        self.finished = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        owner = self
        payload = json.dumps(openai_ok("dripped")).encode()
        self.response = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                sock = self.request
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                with owner._lock:
                    owner.connections += 1
                for i in range(len(owner.response)):
                    if owner._stop.wait(owner.interval_s):
                        return
                    try:
                        sock.sendall(owner.response[i : i + 1])
                    except OSError:
                        return  # the client gave up: expected
                with owner._lock:
                    owner.finished += 1

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._srv = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._srv.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._srv.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> DripServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._srv.shutdown()
        self._srv.server_close()
        self._thread.join(timeout=5)
