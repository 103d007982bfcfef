"""Celery entry points for webhooks and the engineering clocks: a few lines each, calling services."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(
    name="escalations.deliver_webhook",
    bind=True,
    acks_late=True,
    ignore_result=True,
    max_retries=services.MAX_ATTEMPTS - 1,
    soft_time_limit=60,
    time_limit=90,
)
def deliver_webhook(self, delivery_id: str) -> str:
    """Send one delivery; on failure retry with exponential backoff (the row says when and why).

    The delivery row counts the attempts and gives up after ``MAX_ATTEMPTS``; the task's own retry
    budget matches it. Safe to run twice: a delivery already sent (or held by another worker) is skipped.
    """
    now = timezone.now()
    outcome = services.attempt_delivery(delivery_id=delivery_id, now=now)
    if outcome.retry_at is not None:
        raise self.retry(countdown=max((outcome.retry_at - now).total_seconds(), 0))
    return outcome.status


@shared_task(name="escalations.redeliver_due", acks_late=True, ignore_result=True, time_limit=300)
def redeliver_due() -> int:
    """Re-enqueue pending deliveries whose task was lost (e.g. the broker was down at commit)."""
    return services.redeliver_due(now=timezone.now())


@shared_task(name="escalations.notify_ack_overdue", acks_late=True, ignore_result=True, time_limit=300)
def notify_ack_overdue() -> int:
    """Tell teams about submitted escalations not acknowledged in time (each once; safe on two workers)."""
    return services.notify_overdue_acknowledgements(now=timezone.now())


@shared_task(name="escalations.sweep_clocks", acks_late=True, ignore_result=True, time_limit=300)
def sweep_clocks() -> int:
    """Record the engineering clocks' due warnings and breaches (each once; safe on two workers)."""
    return services.record_clock_alerts(now=timezone.now())
