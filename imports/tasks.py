"""Celery entry point for imports started from the manager page: a few lines, calling services."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(
    name="imports.run_import",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=6 * 3600,
    time_limit=6 * 3600 + 300,
)
def run_import(job_id: int) -> str:
    """Run one import job; the job row records the outcome (status, counters, rejections).

    Safe to run twice: the job is claimed first (a second delivery finds it taken), and a job whose
    worker died is taken over after a quiet period; the import itself is idempotent, so starting
    again after a crash imports only what the first run did not commit.
    """
    from .models import ImportJob

    if not services.claim_job(job_id, now=timezone.now()):
        return "skipped"
    job = ImportJob.objects.get(pk=job_id)
    job = services.run_import(job, now=timezone.now())
    return job.status
