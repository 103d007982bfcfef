"""Test helper: do what the mail worker does after a commit (no eager Celery, no broker)."""

from __future__ import annotations

import datetime as dt

from django.core.mail.backends import locmem
from django.db.models import Max
from django.utils import timezone

from supportdesk.core import outbox
from supportdesk.core.models import MailStatus, OutboundMessage


def deliver_mail(*, now: dt.datetime | None = None) -> int:
    """Send every queued mail, as ``mail.send_outbound`` would once the broker hands it a worker;
    returns how many were attempted. Without ``now``: as soon as the last one was queued (tests
    often write rows at a chosen instant in the future)."""
    if now is None:
        latest = OutboundMessage.objects.filter(status=MailStatus.QUEUED).aggregate(at=Max("next_attempt_at"))
        now = max(filter(None, [latest["at"], timezone.now()]))
    return outbox.send_due(now=now)


class SwitchableBackend(locmem.EmailBackend):
    """Django's locmem backend (mail lands in ``django.core.mail.outbox``) that fails while
    ``failure`` is set: how the unit tests take the mail server away and bring it back."""

    failure: Exception | None = None

    def open(self):
        if SwitchableBackend.failure is not None:
            raise SwitchableBackend.failure
        return super().open()

    def send_messages(self, messages):
        if SwitchableBackend.failure is not None:
            raise SwitchableBackend.failure
        return super().send_messages(messages)
