"""A real HTTP receiver on 127.0.0.1 for webhook tests: it checks Standard Webhooks signatures with
its own HMAC code (not the sender's library), answers with scripted status codes, and can hold a
request until the test releases it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    headers: dict[str, str]  # lower-cased names: HTTP header names are case-insensitive
    body: bytes
    signature_valid: bool

    def header(self, name: str) -> str:
        return self.headers[name.lower()]

    @property
    def delivery_id(self) -> str:
        return self.header("webhook-id")

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    secret: str
    statuses: list[int] = field(default_factory=list)  # answered in order; then 200
    hold: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    seen_ids: set[str] = field(default_factory=set)
    duplicates: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                delivery_id = self.headers.get("webhook-id", "")
                signed = f"{delivery_id}.{self.headers.get('webhook-timestamp', '')}.".encode() + body
                digest = hmac.new(receiver.key, signed, hashlib.sha256).digest()
                expected = "v1," + base64.b64encode(digest).decode()
                given = self.headers.get("webhook-signature", "").split(" ")
                item = Received(
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    any(hmac.compare_digest(expected, one) for one in given),
                )
                receiver.received.append(item)
                # What a real receiver does to be idempotent: remember the ids it has processed.
                if delivery_id in receiver.seen_ids:
                    receiver.duplicates.append(delivery_id)
                if receiver.hold is not None:
                    receiver.hold.wait(5)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status == 200 and item.signature_valid:
                    receiver.seen_ids.add(delivery_id)
                elif status == 200:
                    status = 401
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(b"ok")  # the client may have given up (a timeout test)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def key(self) -> bytes:
        """The HMAC key: the base64 part of a ``whsec_`` secret, else the secret's bytes."""
        if self.secret.startswith("whsec_"):
            return base64.b64decode(self.secret[len("whsec_") :])
        return self.secret.encode()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/supportdesk"

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()
