"""Celery entry points for major incidents: a few lines each, calling services."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="incidents.remind_overdue", acks_late=True, ignore_result=True, time_limit=300)
def remind_overdue() -> int:
    """Remind commanders of overdue incident updates (once per overdue period; safe on two workers)."""
    return services.remind_overdue(now=timezone.now())


@shared_task(name="incidents.resume_deliveries", acks_late=True, ignore_result=True, time_limit=600)
def resume_deliveries() -> int:
    """Post the updates a stopped process left pending (each case once; safe on two workers)."""
    return services.resume_deliveries(now=timezone.now())


@shared_task(name="incidents.deliver_update", acks_late=True, ignore_result=True, time_limit=900)
def deliver_update(update_id: int) -> int:
    """Help post one update to its cases (the chunks no other process holds; safe beside them)."""
    return services.deliver_pending(update_id, now=timezone.now())
