"""Major incidents: one production fault that many customers write in about.

An incident gathers the customer cases it affects (``IncidentCase``) so support can talk to all
of them at once: a public update written once on the incident is posted to every linked case as
that case's own public reply (``IncidentUpdate``, one ``UpdateDelivery`` per case), and resolving
the incident can resolve every linked case with one closing message. The cases keep their own
lifecycle, SLA clocks and threads; the incident never changes a case except through
``cases.services``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cases.models import Case, Severity


class IncidentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RESOLVED = "resolved", "Resolved"


class MajorIncident(models.Model):
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=2, choices=Severity.choices, default=Severity.P1)
    product_area = models.CharField(max_length=100, blank=True)
    commander = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.ACTIVE)
    declared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    declared_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The case it was declared from, if any (it is linked too).
    origin_case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cases = models.ManyToManyField(Case, through="IncidentCase", related_name="major_incidents")

    class Meta:
        ordering = ["-declared_at", "-id"]
        indexes = [models.Index(fields=["status", "-declared_at"], name="incident_status_idx")]

    KEY_PREFIX = "INC-"

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    @property
    def key(self) -> str:
        return f"{self.KEY_PREFIX}{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status == IncidentStatus.ACTIVE


class IncidentCase(models.Model):
    incident = models.ForeignKey(MajorIncident, on_delete=models.CASCADE, related_name="links")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="incident_links")
    linked_at = models.DateTimeField()
    linked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["incident", "case"], name="incident_case_once")]

    def __str__(self) -> str:
        return f"{self.case.key} in {self.incident.key}"


class IncidentUpdate(models.Model):
    """What the incident's team wrote: public (posted to every linked case) or internal (kept on
    the incident only)."""

    incident = models.ForeignKey(MajorIncident, on_delete=models.CASCADE, related_name="updates")
    body = models.TextField()
    is_public = models.BooleanField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    # Set on the update that resolved the incident (its closing message).
    closing = models.BooleanField(default=False)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{'Public' if self.is_public else 'Internal'} update on {self.incident.key}"


class UpdateDelivery(models.Model):
    """One public update on one linked case: the reply it became, or why it could not be posted."""

    update = models.ForeignKey(IncidentUpdate, on_delete=models.CASCADE, related_name="deliveries")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    event_id = models.BigIntegerField(null=True, blank=True)  # the case's public-reply event
    refused = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["update", "case"], name="update_delivered_once")]

    def __str__(self) -> str:
        return f"update {self.update_id} on case {self.case_id}"
