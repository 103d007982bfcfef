"""E-mail providers' inbound webhooks (Mailgun, Postmark, SendGrid, Amazon SES, ...) through
django-anymail, which checks each provider's signature or the shared basic-auth secret and turns
its payload into one ``AnymailInboundMessage``. Our receiver (``on_inbound``, connected to
``anymail.signals.inbound`` in ``InboundConfig.ready``) hands that mail to the one ingestion
service, ``inbound.services.receive``.

The mailbox is the active provider-mode mailbox whose address is the envelope recipient, else one
in To, Cc or Bcc; sub-addresses count as their base address (``support+case-12-...@`` is
``support@``). A mail for no such mailbox is not dropped: it is kept on the fallback mailbox (the
oldest active provider-mode mailbox) as *refused*, with the addresses it was sent to as the
reason, and the provider is told 200 so it does not send it again. Only when there is no
provider-mode mailbox at all is the answer 503: the provider keeps the mail and retries.

Each endpoint (``provider_webhook``) is bounded before anymail reads anything: a request larger
than ``INBOUND_WEBHOOK_MAX_BYTES`` is refused with 413; the body is read once, up to that bound,
and form fields are parsed from it here, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB, right for
every other page) does not turn away a mail whose raw MIME arrives as one form field (Mailgun's
``inbound_mime``, SendGrid's raw mode). A mail above ``INBOUND_MAX_BYTES`` still reaches
``receive``, which keeps its headers and refuses it with the reason. An endpoint with neither the
shared secret (``ANYMAIL_WEBHOOK_SECRET``) nor a signature key of its own answers 503 instead of
accepting mail from anyone.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from collections.abc import Callable, Iterable
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses
from typing import TYPE_CHECKING, Any, cast

from anymail.exceptions import (
    AnymailConfigurationError,
    AnymailError,
    AnymailInsecureWebhookWarning,
    AnymailWebhookValidationFailure,
)
from anymail.signals import AnymailInboundEvent
from anymail.webhooks.amazon_ses import AmazonSESInboundWebhookView
from anymail.webhooks.brevo import BrevoInboundWebhookView
from anymail.webhooks.mailersend import MailerSendInboundWebhookView
from anymail.webhooks.mailgun import MailgunInboundWebhookView
from anymail.webhooks.mailjet import MailjetInboundWebhookView
from anymail.webhooks.mailtrap import MailtrapInboundWebhookView
from anymail.webhooks.postal import PostalInboundWebhookView
from anymail.webhooks.postmark import PostmarkInboundWebhookView
from anymail.webhooks.resend import ResendInboundWebhookView
from anymail.webhooks.sendgrid import SendGridInboundWebhookView
from anymail.webhooks.sparkpost import SparkPostInboundWebhookView
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils import timezone
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt

from .models import Mailbox, MailboxMode, max_bytes

if TYPE_CHECKING:
    from django.http.request import _ImmutableQueryDict
from .services import REASON_LIMIT, Received, receive, recorded

logger = logging.getLogger(__name__)

VIA = "provider"
# Marks the key of a mail kept for an address no mailbox has (see keep_refused).
UNROUTED_SUFFIX = "#unrouted"

# The endpoints, under inbound/provider/ (the same paths as anymail's own urls.py under anymail/).
# Mailgun sends the raw MIME to a URL that contains "mime", the parsed fields to any other.
PROVIDER_VIEWS: dict[str, type[Any]] = {  # anymail's view classes (anymail is untyped)
    "amazon_ses/inbound/": AmazonSESInboundWebhookView,
    "brevo/inbound/": BrevoInboundWebhookView,
    "mailersend/inbound/": MailerSendInboundWebhookView,
    "mailgun/inbound/": MailgunInboundWebhookView,
    "mailgun/inbound_mime/": MailgunInboundWebhookView,
    "mailjet/inbound/": MailjetInboundWebhookView,
    "mailtrap/inbound/": MailtrapInboundWebhookView,
    "postal/inbound/": PostalInboundWebhookView,
    "postmark/inbound/": PostmarkInboundWebhookView,
    "resend/inbound/": ResendInboundWebhookView,
    "sendgrid/inbound/": SendGridInboundWebhookView,
    "sparkpost/inbound/": SparkPostInboundWebhookView,
}


def route_name(route: str) -> str:
    """The URL name: ``postmark/inbound/`` -> ``provider-postmark``, ``.../inbound_mime/`` -> ``...-mime``."""
    provider, _, kind = route.strip("/").partition("/")
    return f"provider-{provider}" + ("-mime" if kind.endswith("_mime") else "")


# anymail warns on every request of an endpoint without basic auth; ours refuses such requests
# (``_secured``), so the warning would only repeat what the 503 says.
warnings.filterwarnings("ignore", category=AnymailInsecureWebhookWarning)


class NoProviderMailbox(Exception):
    """No mailbox receives provider mail: the mail cannot be recorded anywhere (yet)."""


class RecordingFailed(Exception):
    """The mail could not be recorded (the database or the storage failed): nothing was kept."""


def webhook_max_bytes() -> int:
    """The largest request an endpoint reads: a mail of INBOUND_MAX_BYTES, base64-encoded inside
    JSON (a third larger), plus room for the provider's own fields."""
    default = max_bytes() * 4 // 3 + 1024 * 1024
    return int(getattr(settings, "INBOUND_WEBHOOK_MAX_BYTES", 0) or default)


# --- Which mailbox a mail is for ---------------------------------------------------------------


def base_address(address: str) -> str:
    """``Support+anything@Example.com`` -> ``support@example.com`` (RFC 5233 sub-addressing)."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return ""
    return f"{local.partition('+')[0]}@{domain}"


def recipients(message) -> list[str]:
    """Where the mail was sent, most reliable first: the envelope recipient(s) the provider
    reports, then To, Cc and Bcc. Base addresses, without repeats."""
    values: list[str] = []
    envelope = getattr(message, "envelope_recipient", None)
    if envelope:
        values.append(str(envelope))
    for name in ("To", "Cc", "Bcc"):
        try:
            values.extend(str(value) for value in message.get_all(name, []))
        except (TypeError, ValueError, IndexError):  # an unparseable header: the others still count
            continue
    found: list[str] = []
    for _, address in getaddresses(values):
        base = base_address(address)
        if base and base not in found:
            found.append(base)
    return found


def provider_mailboxes():
    return Mailbox.objects.filter(mode=MailboxMode.PROVIDER).order_by("pk")


def mailbox_for(addresses: Iterable[str]) -> Mailbox | None:
    """The active provider-mode mailbox for the first of ``addresses`` that has one."""
    mailboxes = {m.address.lower(): m for m in provider_mailboxes().filter(is_active=True)}
    for address in addresses:
        if address in mailboxes:
            return mailboxes[address]
    return None


def fallback_mailbox() -> Mailbox | None:
    """Where a mail for no known mailbox is kept: the oldest active provider-mode mailbox, else the
    oldest provider-mode mailbox at all."""
    return provider_mailboxes().order_by("-is_active", "pk").first()


def _unknown_reason(addresses: list[str], fallback: Mailbox) -> str:
    sent_to = ", ".join(addresses) or "no recipient address"
    others = {
        m.address.lower(): m
        for m in Mailbox.objects.filter(address__in=addresses).exclude(
            mode=MailboxMode.PROVIDER, is_active=True
        )
    }
    notes = [
        f"{address} is mailbox {m.name}, "
        + ("which is not active" if not m.is_active else f"which receives by {m.get_mode_display()}")
        for address, m in others.items()
    ]
    reason = (
        f"Sent to {sent_to}: no active provider-webhook mailbox has that address, so it was kept "
        f"on mailbox {fallback.name} and not processed."
    )
    if notes:
        reason += " (" + "; ".join(notes) + ".)"
    return reason[:REASON_LIMIT]


# --- Recording ---------------------------------------------------------------------------------


def mail_bytes(message) -> bytes:
    """The mail as RFC 5322 bytes (what is stored as the .eml and parsed again by ``receive``)."""
    try:
        return message.as_bytes()
    except (UnicodeError, LookupError, TypeError, ValueError):
        # A header the generator cannot fold back; the text form keeps what was received.
        return message.as_string().encode("utf-8", "surrogateescape")


def keep_refused(mailbox: Mailbox, raw: bytes, *, now: dt.datetime, reason: str) -> Received:
    """Keep a mail for no known address on ``mailbox`` as refused, without processing it: once
    per Message-ID, with its bytes on the storage like every received mail (of a mail above
    INBOUND_MAX_BYTES only the headers).

    Its key is the mail's key with ``UNROUTED_SUFFIX``: the same mail delivered to a known address of
    this mailbox too (a Bcc, a second recipient the provider posts separately) must still be
    received and processed, not found "already recorded". When that delivery came first, the mail
    is on its case already and nothing more is kept."""
    received = recorded(mailbox, raw)
    if received is not None:
        return Received(received, created=False)
    return receive(mailbox, raw, now=now, via=VIA, refused=reason, key_suffix=UNROUTED_SUFFIX)


def ingest(message, *, now: dt.datetime) -> Received:
    """Record (and process) one mail a provider delivered."""
    raw = mail_bytes(message)
    addresses = recipients(message)
    mailbox = mailbox_for(addresses)
    if mailbox is not None:
        return receive(mailbox, raw, now=now, via=VIA)
    fallback = fallback_mailbox()
    if fallback is None:
        raise NoProviderMailbox(
            f"A provider delivered a mail for {', '.join(addresses) or 'no address'}, but no mailbox "
            "is in provider-webhook mode; create one (the provider retries meanwhile)."
        )
    return keep_refused(fallback, raw, now=now, reason=_unknown_reason(addresses, fallback))


def on_inbound(sender, event: AnymailInboundEvent, esp_name: str, **kwargs) -> None:
    """anymail's ``inbound`` signal: one mail from a provider, its signature already checked."""
    try:
        result = ingest(event.message, now=timezone.now())
    except NoProviderMailbox:
        raise
    except Exception as exc:
        raise RecordingFailed(f"{type(exc).__name__}: {exc}") from exc
    record = result.message
    logger.info(
        "%s delivered mail %s to mailbox %s: %s%s",
        esp_name,
        record.message_id,
        record.mailbox.name,
        record.status if result.created else "already recorded",
        f" ({record.reason})" if record.reason and result.created else "",
    )


# --- The endpoints -----------------------------------------------------------------------------


def _answer(status: int, text: str, **headers: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _read_body(request: HttpRequest, limit: int) -> HttpResponse | None:
    """Read the body once, at most ``limit`` bytes (else 413), and parse form data from it."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _answer(400, "Content-Length is not a number.")
    too_big = _answer(413, f"The request is larger than this endpoint accepts ({limit:,} bytes).")
    if length > limit:
        return too_big
    body = request.read(limit + 1)
    if len(body) > limit:
        return too_big
    # What Django's request.body would hold, read here under our own bound instead of
    # DATA_UPLOAD_MAX_MEMORY_SIZE; urlencoded forms and JSON are parsed from it by Django.
    request._body = body
    if request.content_type == "multipart/form-data":
        try:
            fields, files = _multipart(request.META.get("CONTENT_TYPE", ""), body)
        except ValueError as exc:
            return _answer(400, f"The form data cannot be read: {exc}")
        request.POST = fields
        request._files = files  # type: ignore[attr-defined]  # what request.FILES reads: private, not in the stubs
    return None


def _multipart(
    content_type: str, body: bytes
) -> tuple[_ImmutableQueryDict, MultiValueDict[str, UploadedFile]]:
    """multipart/form-data fields and files, parsed with the standard library's e-mail parser (the
    replacement for ``cgi`` that PEP 594 names), with no per-field limit below the request's."""
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise ValueError("it is not multipart/form-data with a boundary.")
    fields = QueryDict(mutable=True)
    files: MultiValueDict[str, UploadedFile] = MultiValueDict()
    for part in message.iter_parts():
        name = _text(part.get_param("name", header="content-disposition"))
        if not name:
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            content_type = part.get_content_type()
            files.appendlist(name, SimpleUploadedFile(_text(filename), data, content_type))
        else:
            fields.appendlist(name, data.decode(part.get_content_charset() or "utf-8", "replace"))
    fields._mutable = False
    return cast("_ImmutableQueryDict", fields), files


def _text(value) -> str:
    """A header parameter as text (RFC 2231 values decoded; raw UTF-8 bytes repaired)."""
    if value is None:
        return ""
    if isinstance(value, tuple):  # RFC 2231: (charset, language, value)
        from email.utils import collapse_rfc2231_value

        value = collapse_rfc2231_value(value)
    return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _secured(view) -> bool:
    """Requests are authenticated: by the shared basic-auth secret, or by the provider's own
    signature (anymail then clears ``warn_if_no_basic_auth``)."""
    return bool(view.basic_auth) or not view.warn_if_no_basic_auth


def provider_webhook(view_class: type) -> Callable[..., HttpResponse]:
    """An anymail inbound view, bounded in size, refused while unsecured, and with every failure
    answered in words: 400 for a request that is not a valid delivery (nothing is recorded), 503
    when the mail could not be recorded (the provider retries)."""

    @csrf_exempt
    def view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        esp = getattr(view_class, "esp_name", view_class.__name__)
        try:
            instance = view_class()
        except (AnymailConfigurationError, ImportError) as exc:  # a missing key, or svix for Resend
            logger.error("The %s inbound webhook is not configured: %s", esp, exc)
            return _answer(503, f"The {esp} inbound webhook is not configured on this server.")
        if not _secured(instance):
            logger.error("The %s inbound webhook was called, but ANYMAIL_WEBHOOK_SECRET is not set.", esp)
            return _answer(503, f"The {esp} inbound webhook is not configured on this server.")
        if request.method == "POST":
            refused = _read_body(request, webhook_max_bytes())
            if refused is not None:
                logger.warning("%s inbound webhook: refused a request (%s)", esp, refused.status_code)
                return refused
        instance.setup(request, *args, **kwargs)
        try:
            return instance.dispatch(request, *args, **kwargs)
        except AnymailWebhookValidationFailure as exc:
            logger.warning("%s inbound webhook: %s", esp, exc)
            return _answer(400, "The request's signature or credentials are not valid.")
        except RequestDataTooBig:
            return _answer(413, "The request is larger than this endpoint accepts.")
        except AnymailConfigurationError as exc:  # e.g. a tracking webhook pointed at this URL
            logger.error("%s inbound webhook: %s", esp, exc)
            return _answer(400, f"This is not an inbound delivery this endpoint understands: {exc}")
        except NoProviderMailbox as exc:
            logger.error("%s inbound webhook: %s", esp, exc)
            return _answer(503, str(exc), Retry_After="300")
        except RecordingFailed:  # the database or the storage is down: nothing was recorded
            logger.exception("%s inbound webhook: the mail could not be recorded", esp)
            return _answer(503, "The mail could not be recorded; please retry.", Retry_After="60")
        except AnymailError as exc:  # a payload anymail cannot read
            logger.warning("%s inbound webhook: %s", esp, exc)
            return _answer(400, "The payload cannot be read as an inbound mail.")
        except Exception:  # malformed JSON, a missing field: anymail's parsing gave up
            logger.warning("%s inbound webhook: unreadable payload", esp, exc_info=True)
            return _answer(400, "The payload cannot be read as an inbound mail.")

    view.__name__ = f"{view_class.__name__}_bounded"
    return view
