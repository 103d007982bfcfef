from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="cases.auto_close_resolved", acks_late=True, ignore_result=True, time_limit=600)
def auto_close_resolved() -> int:
    """Close cases resolved more than CASES_AUTO_CLOSE_DAYS ago (safe to run twice, or on two workers)."""
    total = 0
    while closed := services.auto_close_resolved(now=timezone.now()):
        total += closed
    return total
