"""Checks on outbound webhook URLs (attachments are checked by supportdesk.core.files)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from supportdesk.core import netguard

WEBHOOK_SCHEMES = ("http", "https")


def validate_webhook_url(value: str) -> None:
    """A URL a webhook may be sent to: well-formed (below) and a host that is, or resolves to, a
    public address (supportdesk.core.netguard; checked again at send time)."""
    parts = validate_webhook_url_syntax(value)
    try:
        netguard.check_host_now(parts.hostname, webhook_port(parts))
    except netguard.Refused as exc:
        raise ValidationError(str(exc), code="address") from exc
    except UnicodeError as exc:
        raise ValidationError("The host name of a webhook URL is not valid.", code="host") from exc


def webhook_port(parts) -> int:
    """The port a checked webhook URL's parts connect to (the scheme's default when none is given)."""
    return parts.port or (443 if parts.scheme.lower() == "https" else 80)


def validate_webhook_url_syntax(value: str):
    """Only http(s) URLs with a host and a valid port: no file:, ftp:, data: or scheme-relative
    tricks, no credentials. Returns the parts."""
    parts = urlsplit(value or "")
    if parts.scheme.lower() not in WEBHOOK_SCHEMES:
        raise ValidationError("A webhook URL must start with http:// or https://.", code="scheme")
    if not parts.hostname:
        raise ValidationError("A webhook URL needs a host name.", code="host")
    if parts.username or parts.password:
        raise ValidationError("Put credentials in the shared secret, not in the URL.", code="credentials")
    try:
        parts.port  # noqa: B018 - raises for a port out of range
    except ValueError as exc:
        raise ValidationError("The port of a webhook URL must be between 1 and 65535.", code="port") from exc
    return parts


MAX_ATTACHMENTS_PER_ESCALATION = 20
