"""Fixtures shared by the mailbox-administration tests (API, pages, admin, provider webhooks).

Imported by name into test_api.py, test_views.py, test_admin.py and test_webhooks.py (not a
conftest.py, which the ingestion tests of this folder own).
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest

from cases.models import OrganisationDomain
from inbound.models import InboundMessage, InboundStatus, Mailbox, MailboxMode


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    """Received mails are stored on the default storage: a fresh folder per test."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return settings.MEDIA_ROOT


@pytest.fixture
def acme_domain(organisation):
    return OrganisationDomain.objects.create(organisation=organisation, domain="acme.example")


@pytest.fixture
def provider_mailbox(team, acme_domain):
    return Mailbox.objects.create(
        name="support",
        address="support@help.example",
        display_name="Example Support",
        team=team,
        mode=MailboxMode.PROVIDER,
    )


@pytest.fixture
def imap_mailbox(team):
    return Mailbox.objects.create(
        name="imap-support",
        address="imap@help.example",
        mode=MailboxMode.IMAP,
        imap_host="imap.help.example",
        imap_username="imap@help.example",
        imap_password="s3cret-imap-password",
        team=team,
    )


def customer_mail(
    *,
    to: str = "support@help.example",
    sender: str = "Carla Customer <carla@acme.example>",
    subject: str = "Checkout is down",
    body: str = "Hello,\n\nevery checkout fails with a 502 since 09:00.\n\nCarla\n",
    message_id: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(dt.datetime(2026, 3, 2, 9, 30, tzinfo=dt.UTC))
    message["Message-ID"] = message_id or make_msgid(domain="acme.example")
    message.set_content(body)
    return message.as_bytes()


def stored_message(mailbox: Mailbox, *, status: str, reason: str = "", raw: bytes | None = None, **fields):
    """A received-mail record with its .eml on the storage, in the given state."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils import timezone

    raw = raw or customer_mail()
    count = InboundMessage.objects.count()
    name = default_storage.save(f"inbound/{mailbox.pk}/test-{count}.eml", ContentFile(raw))
    defaults = {
        "message_id": f"<test-{count}@acme.example>",
        "via": "maildir",
        "raw": name,
        "size": len(raw),
        "from_address": "carla@acme.example",
        "subject": "Checkout is down",
        "received_at": timezone.now(),
    }
    defaults.update(fields)
    return InboundMessage.objects.create(mailbox=mailbox, status=status, reason=reason, **defaults)


__all__ = [
    "InboundStatus",
    "acme_domain",
    "customer_mail",
    "imap_mailbox",
    "media",
    "provider_mailbox",
    "stored_message",
]
