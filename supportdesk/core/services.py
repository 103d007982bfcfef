from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from django.db import IntegrityError, transaction

from .models import Heartbeat, Notification, StaffProfile, WorkerPing, validate_time_zone

if TYPE_CHECKING:
    from django.contrib.auth.models import User

logger = logging.getLogger(__name__)


def record_ping(*, nonce: str, worker: str, now: dt.datetime) -> None:
    WorkerPing.objects.filter(nonce=nonce, executed_at__isnull=True).update(executed_at=now, worker=worker)


def record_heartbeat(*, name: str, now: dt.datetime) -> None:
    """Record that ``name`` ran at ``now``; a run that finishes late never moves a newer time back."""
    if Heartbeat.objects.filter(name=name, seen_at__lt=now).update(seen_at=now):
        return
    # No row yet (or a newer one): get_or_create survives two processes creating it at once.
    Heartbeat.objects.get_or_create(name=name, defaults={"seen_at": now})


def notify(
    *,
    recipient: User,
    kind: str,
    title: str,
    now: dt.datetime,
    body: str = "",
    url: str = "",
    dedupe_key: str | None = None,
) -> Notification | None:
    """Add an in-app notification; with ``dedupe_key``, at most one per recipient and key."""
    try:
        with transaction.atomic():
            return Notification.objects.create(
                recipient=recipient,
                kind=kind,
                title=title[:300],
                body=body,
                url=url,
                created_at=now,
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        return None


def save_preferences(
    user: User, *, time_zone: str, email_notifications: bool, sla_warnings: bool
) -> StaffProfile:
    """Store ``user``'s preferences (their one row, created on first save); an unknown zone raises
    ValidationError."""
    if time_zone:
        validate_time_zone(time_zone)
    profile, _ = StaffProfile.objects.update_or_create(
        user=user,
        defaults={
            "time_zone": time_zone,
            "email_notifications": email_notifications,
            "sla_warnings": sla_warnings,
        },
    )
    return profile
