"""Celery entry points of the SLA app: a few lines each, calling services."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from supportdesk.core.services import record_heartbeat

from . import services
from .health import SWEEP_HEARTBEAT


@shared_task(
    name="sla.sweep",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=540,
    time_limit=600,
)
def sweep() -> int:
    """Record every SLA warning and breach due now, once each (safe to run twice, or on two workers).

    A sweep that dies half-way loses nothing: each batch commits on its own and whatever was not
    committed is still due for the next sweep, which beat sends every SLA_SWEEP_SECONDS.
    Once complete it records the instant it swept up to, which /healthz/ready reads as the lag.
    """
    now = timezone.now()
    recorded = services.record_due_warnings_and_breaches(now=now)
    record_heartbeat(name=SWEEP_HEARTBEAT, now=now)
    return recorded
