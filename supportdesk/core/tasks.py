from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="core.ping", acks_late=True, ignore_result=True, time_limit=30)
def ping(nonce: str) -> None:
    """Record that a worker executed a task the web process sent."""
    services.record_ping(nonce=nonce, worker=ping.request.hostname or "", now=timezone.now())


@shared_task(name="core.heartbeat", acks_late=True, ignore_result=True, time_limit=30)
def heartbeat() -> None:
    services.record_heartbeat(name="beat", now=timezone.now())
