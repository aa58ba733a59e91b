"""A webhook receiver on loopback, for the alerts tests: a real HTTP server (a thread of
the test process) that verifies every signature the way docs/alerts.md tells receivers to,
de-duplicates by event id, and misbehaves on request (fails, answers slowly, says 429 with
Retry-After, redirects)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_SECONDS = 300


def verify(secret: str, header: str, body: bytes, now: float | None = None) -> bool:
    """docs/alerts.md's verification, as a receiver writes it."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > TOLERANCE_SECONDS:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    at: float
    body: bytes  # as it arrived


@dataclass
class Receiver:
    url: str
    secret: str = ""
    # Answers to give, in order, before answering 200: (status, headers, delay seconds).
    script: list[tuple[int, dict[str, str], float]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)  # verified requests, every one
    refused: int = 0  # requests whose signature did not verify
    requested: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def delivered_ids(self) -> Counter[str]:
        """Event ids answered 2xx, with how many times (a receiver's de-duplication)."""
        return Counter(
            item.event["id"] for item in self.received if item.headers.get("x-answered") == "2xx"
        )

    def times_of(self, event_id: str) -> list[float]:
        return [item.at for item in self.received if item.event["id"] == event_id]


@contextmanager
def receiving(secret: str = "") -> Iterator[Receiver]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requested.set()
            signature = self.headers.get("PokeWatch-Signature", "")
            if not verify(receiver.secret, signature, body):
                with receiver.lock:
                    receiver.refused += 1
                self._answer(401, {})
                return
            with receiver.lock:
                status, headers, delay = (
                    receiver.script.pop(0) if receiver.script else (200, {}, 0.0)
                )
                headers_seen = {name.lower(): value for name, value in self.headers.items()}
                headers_seen["x-answered"] = "2xx" if 200 <= status < 300 else str(status)
                receiver.received.append(
                    Received(json.loads(body), headers_seen, time.time(), body)
                )
            if delay:
                time.sleep(delay)
            self._answer(status, headers)

        def _answer(self, status: int, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
            except OSError:
                pass  # the sender gave up waiting (a timeout test)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/pokewatch"
    receiver.secret = secret
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
