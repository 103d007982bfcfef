from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="knowledge.flag_stale", acks_late=True, ignore_result=True, time_limit=600)
def flag_stale() -> int:
    """Flag published articles past their review date and tell their owners, once per review cycle.

    Safe to run twice or on two workers at once: each article is claimed with a conditional UPDATE.
    """
    now = timezone.now()
    total = 0
    while flagged := services.flag_stale(now=now):
        total += flagged
    return total
