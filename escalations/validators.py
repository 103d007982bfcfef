"""Checks on outbound webhook URLs (attachments are checked by supportdesk.core.files)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

WEBHOOK_SCHEMES = ("http", "https")


def validate_webhook_url(value: str) -> None:
    """Only http(s) URLs with a host: no file:, ftp:, data: or scheme-relative tricks."""
    parts = urlsplit(value or "")
    if parts.scheme.lower() not in WEBHOOK_SCHEMES:
        raise ValidationError("A webhook URL must start with http:// or https://.", code="scheme")
    if not parts.hostname:
        raise ValidationError("A webhook URL needs a host name.", code="host")
    if parts.username or parts.password:
        raise ValidationError("Put credentials in the shared secret, not in the URL.", code="credentials")


MAX_ATTACHMENTS_PER_ESCALATION = 20
