"""Managers' import page: upload an export, run it as a Celery task, watch its progress.

Agents and engineers get 403 (checked on every view, the JSON endpoint included).
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from supportdesk.core.decorators import role_required
from supportdesk.core.roles import is_manager

from . import selectors, services
from .forms import ImportForm
from .models import ImportJob, JobStatus

logger = logging.getLogger(__name__)

manager_required = role_required(is_manager, "Importing history is for managers.")


@manager_required
@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    status = 200
    if request.method == "POST":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            data = form.cleaned_data
            upload = data["file"]
            with transaction.atomic():
                job = services.create_job(
                    format=data["format"],
                    mapping_text=data["mapping_text"],
                    mapping_name=data["mapping_name"],
                    now=timezone.now(),
                    created_by=request.user,
                    upload=upload,
                    upload_name=upload.name,
                    strict=data["strict"],
                    time_zone=data["time_zone"],
                    date_format=data["date_format"],
                )
                transaction.on_commit(lambda: _enqueue(job.pk))
            messages.success(request, f"Import #{job.pk} of {job.source_name} is queued.")
            return redirect("imports:detail", pk=job.pk)
        status = 400
    else:
        form = ImportForm()
    return render(
        request, "imports/index.html", {"form": form, "jobs": selectors.recent_jobs()}, status=status
    )


def _enqueue(job_id: int) -> None:
    from .tasks import run_import

    try:
        run_import.delay(job_id)
    except Exception as exc:  # the broker is down: say so on the job rather than leave it queued
        logger.exception("Could not queue import %s", job_id)
        ImportJob.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
            status=JobStatus.FAILED,
            finished_at=timezone.now(),
            error=f"The import could not be handed to a worker ({exc.__class__.__name__}); start it again.",
        )


@manager_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob.objects.select_related("created_by"), pk=pk)
    return render(
        request,
        "imports/detail.html",
        {"job": job, "progress": selectors.job_progress(job, now=timezone.now())},
    )


@manager_required
@require_GET
def progress(request: HttpRequest, pk: int) -> JsonResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    return JsonResponse(selectors.job_progress(job, now=timezone.now()))
