from __future__ import annotations

import datetime as dt
import logging

from django.db import IntegrityError, transaction

from .models import Heartbeat, Notification, WorkerPing

logger = logging.getLogger(__name__)


def record_ping(*, nonce: str, worker: str, now: dt.datetime) -> None:
    WorkerPing.objects.filter(nonce=nonce, executed_at__isnull=True).update(executed_at=now, worker=worker)


def record_heartbeat(*, name: str, now: dt.datetime) -> None:
    Heartbeat.objects.update_or_create(name=name, defaults={"seen_at": now})


def notify(
    *,
    recipient,
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
