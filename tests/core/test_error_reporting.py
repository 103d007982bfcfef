"""Error reporting: off without SENTRY_DSN; with it, a server error reaches the DSN's server."""

from __future__ import annotations

import gzip
import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sentry_sdk
from django.core.exceptions import ImproperlyConfigured

from supportdesk.core.errorreporting import init_sentry, sample_rate

ROOT = Path(__file__).resolve().parents[2]

# Run in a child process: the SDK patches Django for the whole process once initialised.
CHILD = """
import json, django
django.setup()
import sentry_sdk
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
from django.urls import path

def boom(request):
    raise RuntimeError("the payment widget exploded")

urlpatterns = [path("boom/", boom)]

with override_settings(ROOT_URLCONF="__main__"):
    response = Client(raise_request_exception=False).get(
        "/boom/", headers={"X-Request-ID": "req-sentry-1", "Cookie": "theme=very-secret-cookie"}
    )
client = sentry_sdk.get_client()
print(json.dumps({
    "status": response.status_code,
    "enabled": settings.SENTRY_ENABLED,
    "environment": client.options["environment"],
    "send_default_pii": client.options["send_default_pii"],
    "traces_sample_rate": client.options["traces_sample_rate"],
    "integrations": sorted(client.integrations),
}))
sentry_sdk.flush(timeout=10)
"""


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[bytes]

    def do_POST(self):  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.server.received.append((self.path, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def sentry_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _events(received: list[tuple[str, bytes]]) -> list[dict]:
    """The "event" items of the envelopes (header line, then item header and payload lines)."""
    events = []
    for _, body in received:
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_without_a_dsn_nothing_is_initialised(settings):
    assert settings.SENTRY_DSN == ""
    assert settings.SENTRY_ENABLED is False
    assert not sentry_sdk.get_client().is_active()
    assert init_sentry(dsn="  ", environment="production", traces_sample_rate=0.0) is False
    assert not sentry_sdk.get_client().is_active()


def test_a_server_error_is_reported_to_the_dsn_without_personal_data(sentry_server, tmp_path):
    port = sentry_server.server_address[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "DEBUG"))}
    env.update(
        DJANGO_SETTINGS_MODULE="supportdesk.settings",
        SECRET_KEY="k" * 50,
        DEBUG="false",
        ALLOWED_HOSTS="testserver",
        CELERY_BROKER_URL="filesystem://",
        SUPPORTDESK_ALLOW_SQLITE="true",
        SUPPORTDESK_ALLOW_FILESYSTEM_BROKER="true",
        SUPPORTDESK_VAR_DIR=str(tmp_path),
        SENTRY_DSN=f"http://publickey@127.0.0.1:{port}/42",
        SENTRY_ENVIRONMENT="staging",
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    child = json.loads(done.stdout.strip().splitlines()[-1])
    assert child == {
        "status": 500,
        "enabled": True,
        "environment": "staging",
        "send_default_pii": False,
        "traces_sample_rate": 0.0,
        "integrations": child["integrations"],
    }
    assert {"django", "celery"} <= set(child["integrations"])

    assert {path for path, _ in sentry_server.received} == {"/api/42/envelope/"}
    (event,) = [e for e in _events(sentry_server.received) if e.get("exception")]
    exception = event["exception"]["values"][-1]  # the one raised (its causes come first)
    assert (exception["type"], exception["value"]) == ("RuntimeError", "the payment widget exploded")
    assert event["environment"] == "staging"
    assert event["tags"]["request_id"] == "req-sentry-1"
    assert "very-secret-cookie" not in json.dumps(event)


@pytest.mark.parametrize("bad", ["abc", "1.5", "-0.1"])
def test_a_bad_traces_sample_rate_is_a_clear_error(bad):
    with pytest.raises(ImproperlyConfigured, match="SENTRY_TRACES_SAMPLE_RATE must be a number from 0 to 1"):
        sample_rate(bad, name="SENTRY_TRACES_SAMPLE_RATE")


def test_an_unset_traces_sample_rate_means_no_tracing():
    assert sample_rate(None, name="X") == sample_rate("", name="X") == 0.0
    assert sample_rate("0.25", name="X") == 0.25


def test_a_malformed_dsn_is_a_clear_error():
    with pytest.raises(ImproperlyConfigured, match="SENTRY_DSN is not a valid DSN"):
        init_sentry(dsn="not-a-dsn", environment="production", traces_sample_rate=0.0)
    assert not sentry_sdk.get_client().is_active()
