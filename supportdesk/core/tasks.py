from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import idempotency, outbox, services


@shared_task(name="core.ping", acks_late=True, ignore_result=True, time_limit=30)
def ping(nonce: str) -> None:
    """Record that a worker executed a task the web process sent."""
    services.record_ping(nonce=nonce, worker=ping.request.hostname or "", now=timezone.now())


@shared_task(name="core.heartbeat", acks_late=True, ignore_result=True, time_limit=30)
def heartbeat() -> None:
    services.record_heartbeat(name="beat", now=timezone.now())


# SMTP calls are bounded by EMAIL_TIMEOUT; the limits only stop a worker that is stuck regardless.
@shared_task(
    name="mail.send_outbound", acks_late=True, ignore_result=True, soft_time_limit=120, time_limit=150
)
def send_outbound(outbound_id: int) -> str:
    """Send one outbox mail (dispatched after the commit that wrote it). A failure is recorded on
    the row with its next attempt, which ``mail.send_due`` makes: no Celery-level retry needed."""
    return outbox.send_one(outbound_id=outbound_id, now=timezone.now())


@shared_task(name="mail.send_due", acks_late=True, ignore_result=True, soft_time_limit=240, time_limit=300)
def send_due() -> int:
    """Every minute: send what is due (retries, mails whose dispatch was lost, expired claims)."""
    return outbox.send_due(now=timezone.now())


@shared_task(
    name="core.purge_idempotency_records",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=240,
    time_limit=300,
)
def purge_idempotency_records() -> int:
    """Hourly: delete the Idempotency-Key records past their 24 h (a lookup ignores them anyway)."""
    return idempotency.purge_expired(now=timezone.now())
