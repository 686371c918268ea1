"""A tiny in-process HTTP server on 127.0.0.1 that answers like a broken (or hostile) Prometheus.

Every request gets the current :class:`Reply`; the server records what it was asked (path, query
parameters, headers) so tests can check what the client sent.  A dripped reply writes its raw
bytes (status line, headers and body) one at a time with a pause between them; it stops as soon
as the client hangs up or the server is closed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakePrometheus", "Reply", "fake_prometheus", "matrix_reply", "vector_reply"]


@dataclass(frozen=True)
class Reply:
    """What the fake answers: status code, content type, body; ``length`` False sends no
    Content-Length (the body ends when the connection closes); ``drip_s`` > 0 sends the whole
    response one byte every ``drip_s`` seconds; ``delay_s`` waits that long before answering."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"
    length: bool = True
    drip_s: float = 0.0
    delay_s: float = 0.0

    def raw(self) -> bytes:
        """The full HTTP/1.0 response as bytes."""
        head = [f"HTTP/1.0 {self.status} Fake", f"Content-Type: {self.content_type}"]
        if self.length:
            head.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("ascii") + self.body


def vector_reply(*samples: tuple[dict[str, str], Any], ts: float = 1_700_000_000.5) -> Reply:
    """A well-formed instant-vector reply with ``(labels, value)`` samples (value as sent)."""
    result = [{"metric": labels, "value": [ts, value]} for labels, value in samples]
    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
    return Reply(json.dumps(body).encode())


def matrix_reply(*series: tuple[dict[str, str], list[tuple[float, Any]]]) -> Reply:
    """A well-formed range-query (matrix) reply with ``(labels, [(ts, value), ...])`` series."""
    result = [
        {"metric": labels, "values": [[ts, value] for ts, value in values]} for labels, values in series
    ]
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return Reply(json.dumps(body).encode())


@dataclass
class FakePrometheus:
    """The running fake: its base URL, the reply it gives now (a Reply, or a function of the
    request's ``query`` parameter), the requests it saw, the most it served at once and how many
    replies it wrote out whole.  ``route``, when set, answers instead of ``reply``: a function of
    the request's path (``/api/v1/query``, ``/api/v1/query_range``) and its query parameters."""

    url: str
    reply: Reply | Callable[[str], Reply]
    route: Callable[[str, dict[str, list[str]]], Reply] | None = None
    seen: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    max_in_flight: int = 0
    finished: int = 0  # replies written out whole (a client that hangs up early leaves this alone)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(fake: FakePrometheus) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = parse_qs(parts.query)
            with fake.lock:
                fake.seen.append({"path": parts.path, "params": params, "headers": dict(self.headers)})
                fake.in_flight += 1
                fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
            try:
                self._answer(parts.path, params)
            finally:
                with fake.lock:
                    fake.in_flight -= 1

        def _answer(self, path: str, params: dict[str, list[str]]) -> None:
            if fake.route is not None:
                reply = fake.route(path, params)
            elif isinstance(fake.reply, Reply):
                reply = fake.reply
            else:
                reply = fake.reply(params.get("query", [""])[0])
            raw = reply.raw()
            if reply.delay_s > 0 and fake.stop.wait(reply.delay_s):
                return
            try:
                if reply.drip_s > 0:
                    for i in range(len(raw)):
                        self.wfile.write(raw[i : i + 1])
                        self.wfile.flush()
                        if fake.stop.wait(reply.drip_s):
                            return
                else:
                    for i in range(0, len(raw), 1 << 16):
                        self.wfile.write(raw[i : i + (1 << 16)])
            except OSError:  # the client hung up (it stopped reading): fine
                return
            with fake.lock:
                fake.finished += 1

        do_POST = do_GET

    return Handler


class _Server(ThreadingHTTPServer):
    # The Overview sends ~15 queries at once: a listen backlog of 5 (the default) would leave some
    # connections waiting for a SYN retry, a second later.
    request_queue_size = 64
    daemon_threads = True


@contextmanager
def fake_prometheus(reply: Reply | None = None) -> Iterator[FakePrometheus]:
    """Serve on a free loopback port until the block ends; then stop every handler thread."""
    server = _Server(("127.0.0.1", 0), BaseHTTPRequestHandler)
    fake = FakePrometheus(
        url=f"http://127.0.0.1:{server.server_port}", reply=reply or vector_reply(({}, "1"))
    )
    server.RequestHandlerClass = _handler(fake)
    thread = threading.Thread(target=server.serve_forever, name="fake-prometheus", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
