"""Signing and sending one webhook request. No ORM here: services.py decides what and when.

Deliveries follow the Standard Webhooks scheme (https://www.standardwebhooks.com/), signed with
its reference library: ``webhook-id`` (the delivery id, the same on every retry, so a receiver
that sees an id twice knows it is a retry), ``webhook-timestamp`` (Unix seconds of this attempt)
and ``webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>``. The timestamp is
signed, so a receiver that refuses timestamps outside a tolerance window (the library's is five
minutes) cannot be fed a replayed request. The key is the base64 part of a ``whsec_`` secret;
a subscription created before the scheme has a plain secret whose UTF-8 bytes are the key.
``X-SupportDesk-Event`` names the event. See docs/webhooks.md for the receiver's side.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from supportdesk.core import netguard

from .validators import validate_webhook_url_syntax, webhook_port

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
EVENT_HEADER = "X-SupportDesk-Event"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's marker, not a secret
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_ERROR_LENGTH = 1000


def timeout_seconds() -> float:
    return float(getattr(settings, "ESCALATION_WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are sent and signed."""
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True).encode()


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signing_key(secret: str) -> bytes:
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :] + "==")
    return secret.encode()


def sign(*, delivery_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The ``webhook-signature`` value of one attempt."""
    when = dt.datetime.fromtimestamp(timestamp, tz=dt.UTC)
    return Webhook(signing_key(secret)).sign(delivery_id, when, body.decode())


def verify(body: bytes, secret: str, headers: dict[str, str]) -> bool:
    """What a receiver does (and what our tests do): the signature over id, timestamp and body,
    and the timestamp within the library's tolerance of now."""
    try:
        Webhook(signing_key(secret)).verify(body, headers, json_parse=False)
    except (WebhookVerificationError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Result:
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post(*, url: str, body: bytes, secret: str, delivery_id: str, event: str, timestamp: int) -> Result:
    """POST ``body`` once to the checked address of the URL's host; never raises for network
    trouble, which is reported in the result. A redirect is not followed (it could lead to an
    internal host): it counts as a failed attempt, like a 500."""
    try:
        parts = validate_webhook_url_syntax(url)
    except ValidationError as exc:
        return Result(None, "; ".join(exc.messages))
    port = webhook_port(parts)
    host = parts.hostname or ""
    try:
        address = netguard.checked_address(host, port)
    except netguard.Refused as exc:
        return Result(None, str(exc)[:MAX_ERROR_LENGTH])
    except (socket.gaierror, UnicodeError) as exc:
        return Result(None, f"{host} cannot be resolved: {exc}"[:MAX_ERROR_LENGTH])
    connection_class = (
        netguard.GuardedHTTPSConnection if parts.scheme.lower() == "https" else netguard.GuardedHTTPConnection
    )
    connection = connection_class(host, port, address=address, timeout=timeout_seconds())
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "SupportDesk-Webhooks/2",
        ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(delivery_id=delivery_id, timestamp=timestamp, body=body, secret=secret),
        EVENT_HEADER: event,
    }
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        status = response.status
        response.read(4096)
    except TimeoutError:
        return Result(None, f"Timed out after {timeout_seconds():g} s")
    except OSError as exc:  # connection refused, TLS errors, resets
        return Result(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
    except (http.client.HTTPException, ValueError) as exc:  # a malformed answer or request
        return Result(None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
    finally:
        connection.close()
    if 200 <= status < 300:
        return Result(status, "")
    return Result(status, f"HTTP {status}")
