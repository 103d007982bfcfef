"""Signing and sending one webhook request. No ORM here: services.py decides what and when.

A receiver verifies a delivery by computing ``HMAC-SHA256(secret, raw body)`` and comparing it,
in constant time, with the hex digest in ``X-SupportDesk-Signature: sha256=<hex>``. The same
delivery is always sent with the same ``X-SupportDesk-Delivery`` id and body, so a receiver that
sees an id twice knows it is a retry of something it may already have processed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder

from .validators import validate_webhook_url

SIGNATURE_HEADER = "X-SupportDesk-Signature"
DELIVERY_HEADER = "X-SupportDesk-Delivery"
EVENT_HEADER = "X-SupportDesk-Event"
TIMESTAMP_HEADER = "X-SupportDesk-Timestamp"
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_ERROR_LENGTH = 1000


def timeout_seconds() -> float:
    return float(getattr(settings, "ESCALATION_WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT_SECONDS))


def encode(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are sent and signed."""
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True).encode()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, signature: str | None) -> bool:
    """What a receiver does (and what our tests do): constant-time comparison of the signature."""
    return bool(signature) and hmac.compare_digest(sign(body, secret), signature)


@dataclass(frozen=True)
class Result:
    status_code: int | None
    error: str

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _opener() -> urllib.request.OpenerDirector:
    # Only HTTP(S) handlers: no file:, ftp: or data:, no proxies from the environment. Without an
    # error processor every response comes back as it is: a redirect (which could lead to another
    # scheme or an internal host) is not followed but counted as a failed attempt, like a 500.
    opener = urllib.request.OpenerDirector()
    opener.add_handler(urllib.request.HTTPHandler())
    opener.add_handler(urllib.request.HTTPSHandler())
    return opener


def post(*, url: str, body: bytes, secret: str, delivery_id: str, event: str, timestamp: int) -> Result:
    """POST ``body`` once; never raises for network trouble, which is reported in the result."""
    try:
        validate_webhook_url(url)
    except ValidationError as exc:
        return Result(None, "; ".join(exc.messages))
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above: http(s) only
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "SupportDesk-Webhooks/1",
            DELIVERY_HEADER: delivery_id,
            EVENT_HEADER: event,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(body, secret),
        },
    )
    try:
        with _opener().open(request, timeout=timeout_seconds()) as response:
            status = response.status
            response.read(4096)
    except TimeoutError:
        return Result(None, f"Timed out after {timeout_seconds():g} s")
    except OSError as exc:  # URLError, connection refused, TLS errors, resets
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, TimeoutError):
            return Result(None, f"Timed out after {timeout_seconds():g} s")
        return Result(None, f"{type(exc).__name__}: {reason}"[:MAX_ERROR_LENGTH])
    except ValueError as exc:  # a malformed URL that slipped through (e.g. a bad port)
        return Result(None, f"Invalid URL: {exc}"[:MAX_ERROR_LENGTH])
    if 200 <= status < 300:
        return Result(status, "")
    return Result(status, f"HTTP {status}")
