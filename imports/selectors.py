"""Reads of the imports app: the job list and a job's progress (with its summary of adjustments
and problems) for the page and its polling."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from . import summary
from .models import ImportJob, JobPhase, JobStatus


def recent_jobs(*, limit: int = 20) -> QuerySet[ImportJob]:
    return ImportJob.objects.select_related("created_by").order_by("-created_at", "-id")[:limit]


def job_progress(job: ImportJob, *, now: dt.datetime) -> dict[str, Any]:
    """What the progress bar shows: counters, share done, rate and the estimated time left."""
    done = job.rows_read
    total = job.total
    rate = eta = None
    if job.started_at and job.status == JobStatus.RUNNING and job.phase == JobPhase.IMPORTING:
        elapsed = ((job.heartbeat_at or now) - job.started_at).total_seconds()
        if elapsed > 0 and done:
            rate = done / elapsed
            if total:
                eta = max(total - done, 0) / rate
    percent = None
    if total:
        percent = 100.0 if job.status == JobStatus.SUCCEEDED else min(100.0, round(100.0 * done / total, 1))
    return {
        "id": job.pk,
        "status": job.status,
        "status_label": job.get_status_display(),
        "phase": job.phase,
        "phase_label": job.get_phase_display(),
        "finished": job.is_finished,
        "total": total,
        "rows_read": done,
        "percent": percent,
        "rate_per_second": round(rate, 1) if rate is not None else None,
        "eta_seconds": round(eta) if eta is not None else None,
        "cases_created": job.cases_created,
        "cases_updated": job.cases_updated,
        "cases_unchanged": job.cases_unchanged,
        "cases_rejected": job.cases_rejected,
        "rows_rejected": job.rows_rejected,
        "events_created": job.events_created,
        "error": job.error,
        "rejections": job.rejections[:50],
        # What the importer changed in the source's history, and the problems by kind (with the
        # label and rule of each; the job stores the codes).
        "adjustments": summary.describe_adjustments(job.adjustments),
        "problems": summary.describe_problems(job.problems),
    }
