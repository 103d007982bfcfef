"""Test helper: do what the mail worker does after a commit (no eager Celery, no broker)."""

from __future__ import annotations

import datetime as dt

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
