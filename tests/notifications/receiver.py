"""A real webhook receiver for the tests: a threaded HTTP server on a loopback port, recording every POST.

``responses`` scripts the status codes of the next requests (then 200); ``delay`` holds every answer that
long (a hung receiver). The server can be started on a port fixed beforehand, so a test can first find
nothing listening there (connection refused) and then bring the receiver up.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    port: int
    responses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next_status(self) -> int:
        with self._lock:
            return self.responses.pop(0) if self.responses else 200

    def record(self, received: Received, status: int) -> None:
        with self._lock:
            self.received.append(received)
            self.answered.append(status)

    def bodies(self, path: str | None = None, *, delivered_only: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            pairs = list(zip(self.received, self.answered, strict=True))
        return [
            r.body
            for r, status in pairs
            if (path is None or r.path == path) and (not delivered_only or 200 <= status < 300)
        ]

    def wait_for(self, count: int, *, path: str | None = None, timeout: float = 15.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            bodies = self.bodies(path)
            if len(bodies) >= count:
                return bodies
            time.sleep(0.02)
        raise AssertionError(f"receiver got {len(self.bodies(path))} deliveries, expected {count}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running(receiver: Receiver) -> Iterator[Receiver]:
    """Serve ``receiver`` on its port until the block ends."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.next_status()
            receiver.record(Received(self.path, dict(self.headers.items()), json.loads(raw)), status)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", receiver.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def receiver_on_free_port(**options: Any) -> Iterator[Receiver]:
    with running(Receiver(free_port(), **options)) as receiver:
        yield receiver
