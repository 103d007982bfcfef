"""Import jobs and the record of which source case became which SupportDesk case.

The import itself lives in ``imports/services.py``; this module holds tables only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cases.models import Case


class ImportFormat(models.TextChoices):
    SERVICENOW_CSV = "servicenow-csv", "ServiceNow incident export (CSV)"
    XES = "xes", "XES event log (.xes or .xes.gz)"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Finished"
    FAILED = "failed", "Failed"


class JobPhase(models.TextChoices):
    WAITING = "waiting", "Waiting for a worker"
    SCANNING = "scanning", "Reading the file"
    SORTING = "sorting", "Sorting the rows by case"
    CHECKING = "checking", "Checking every row (strict)"
    IMPORTING = "importing", "Importing"
    REFRESHING = "refreshing", "Updating the dashboard figures"
    DONE = "done", "Done"


class ImportJob(models.Model):
    """One run of the importer, from the manager page (a Celery task) or ``manage.py import_history``.

    Counters are updated after each committed batch, so the page can show progress; ``rejections``
    keeps the first ``services.MAX_REPORTED`` problems (the counters count them all, and
    ``problems`` sums them up by kind); ``adjustments`` counts what the importer changed in the
    source's history to import it (``imports.summary``).
    """

    format = models.CharField(max_length=20, choices=ImportFormat.choices)
    source_file = models.FileField(upload_to="imports/%Y/%m/", blank=True)
    # The command imports a local file without copying it to the media folder.
    source_path = models.CharField(max_length=1000, blank=True)
    source_name = models.CharField(max_length=255)
    mapping_name = models.CharField(max_length=255)
    mapping_text = models.TextField(help_text="The TOML mapping used, as it was at the time.")
    strict = models.BooleanField(default=False)
    time_zone = models.CharField(max_length=64, blank=True, help_text="Overrides the mapping's time zone.")
    date_format = models.CharField(max_length=64, blank=True, help_text="Overrides the mapping's format.")

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    phase = models.CharField(max_length=10, choices=JobPhase.choices, default=JobPhase.WAITING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    total = models.PositiveBigIntegerField(null=True, blank=True, help_text="Rows or events in the file.")
    rows_read = models.PositiveBigIntegerField(default=0)
    cases_created = models.PositiveIntegerField(default=0)
    cases_updated = models.PositiveIntegerField(default=0)
    cases_unchanged = models.PositiveIntegerField(default=0)
    cases_rejected = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveBigIntegerField(default=0)
    events_created = models.PositiveBigIntegerField(default=0)
    rejections = models.JSONField(default=list, blank=True)
    # Codes and counts (imports.summary explains them): every adjustment made to the source's
    # history of the cases written, by kind with example source keys, and every problem found.
    adjustments = models.JSONField(default=list, blank=True)
    problems = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Import #{self.pk} {self.source_name} ({self.status})"

    @property
    def adjustment_count(self) -> int:
        """How many adjustments the importer made to the source's history (all kinds)."""
        return sum(entry.get("count", 0) for entry in self.adjustments)

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)


class ImportedCase(models.Model):
    """Which source case a case came from and how much of its history was imported.

    ``updates`` and ``digest`` (SHA-256 over the first ``updates`` source updates, in order) let a
    later import of the same source skip an unchanged case and append only the new updates of a
    known one. ``case_version`` is the case's version after the import: a case changed in
    SupportDesk since then no longer takes updates from the old system.
    """

    case = models.OneToOneField(
        Case, on_delete=models.PROTECT, primary_key=True, related_name="import_record"
    )
    source_format = models.CharField(max_length=20, choices=ImportFormat.choices)
    source_key = models.CharField(max_length=100)
    updates = models.PositiveIntegerField()
    digest = models.CharField(max_length=64)
    case_version = models.PositiveIntegerField()
    # No index: nothing looks cases up by job, and every imported case would pay for one.
    job = models.ForeignKey(
        ImportJob, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", db_index=False
    )
    imported_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.source_key} -> case {self.case_id}"
