"""Major incidents: one production fault that many customers write in about.

An incident gathers the customer cases it affects (``IncidentCase``) so support can talk to all
of them at once: a public update written once on the incident is posted to every linked case as
that case's own public reply (``IncidentUpdate``, one ``UpdateDelivery`` per case), and resolving
the incident can resolve every linked case with one closing message. The cases keep their own
lifecycle, SLA clocks and threads; the incident never changes a case except through
``cases.services``.

The incident has its own update cadence: ``cadence_minutes`` is its target, ``next_update_due_at``
the instant the next public update is due (set by each public update, never computed on read),
and ``reminder_due_at`` the instant the commander is next reminded (the start of the next overdue
period), so finding what to remind is an indexed range query. ``IncidentReminder`` keeps each
reminder, once per incident and overdue period.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models

from cases.models import Case, Severity


class IncidentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    RESOLVED = "resolved", "Resolved"


#: The default update cadence per severity, in minutes (DOMAIN: P1 every 30-60 min, P2 a few hours).
DEFAULT_CADENCE_MINUTES = {"P1": 30, "P2": 120, "P3": 480, "P4": 1440}
#: The cadences a person may choose, in minutes.
CADENCE_CHOICES = (15, 30, 45, 60, 90, 120, 240, 480, 1440)


class MajorIncident(models.Model):
    title = models.CharField(max_length=200)
    severity = models.CharField(max_length=2, choices=Severity.choices, default=Severity.P1)
    product_area = models.CharField(max_length=100, blank=True)
    commander = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.ACTIVE)
    declared_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    declared_at = models.DateTimeField()
    # When the fault began as far as support knows: the earliest case it was declared with, or the
    # declaration. Suggested cases are those opened since.
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    cadence_minutes = models.PositiveIntegerField(default=30)
    # Set when the incident is declared and by each public update; NULL once resolved.
    next_update_due_at = models.DateTimeField(null=True, blank=True)
    # The next reminder to the commander: the next update's due instant, then one cadence later for
    # each overdue period that passes without an update. NULL once resolved.
    reminder_due_at = models.DateTimeField(null=True, blank=True)
    # The case it was declared from, if any (it is linked too).
    origin_case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cases = models.ManyToManyField(Case, through="IncidentCase", related_name="major_incidents")

    class Meta:
        ordering = ["-declared_at", "-id"]
        indexes = [
            models.Index(fields=["status", "-declared_at"], name="incident_status_idx"),
            models.Index(
                fields=["reminder_due_at"],
                name="incident_reminder_due_idx",
                condition=models.Q(status="active", reminder_due_at__isnull=False),
            ),
        ]

    KEY_PREFIX = "INC-"

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    @property
    def key(self) -> str:
        return f"{self.KEY_PREFIX}{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status == IncidentStatus.ACTIVE

    @property
    def cadence(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.cadence_minutes)


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
    # A public update: when it was due (the incident's next update instant as it was posted); it
    # kept the cadence when ``created_at <= due_at``.
    due_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{'Public' if self.is_public else 'Internal'} update on {self.incident.key}"

    @property
    def on_time(self) -> bool | None:
        if not self.is_public or self.due_at is None:
            return None
        return self.created_at <= self.due_at


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Posted"
    REFUSED = "refused", "Not posted"


class UpdateDelivery(models.Model):
    """One public update on one linked case: pending, the reply it became, or why it could not be
    posted. Written pending for every linked case when the update is written; each is then claimed
    and posted in its own transaction with the case's reply, so each case gets it exactly once."""

    update = models.ForeignKey(IncidentUpdate, on_delete=models.CASCADE, related_name="deliveries")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    delivered_at = models.DateTimeField(null=True, blank=True)
    event_id = models.BigIntegerField(null=True, blank=True)  # the case's public-reply event
    refused = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["update", "case"], name="update_delivered_once")]
        indexes = [
            models.Index(
                fields=["update", "case"], name="delivery_pending_idx", condition=models.Q(state="pending")
            )
        ]

    def __str__(self) -> str:
        return f"update {self.update_id} on case {self.case_id}"


class IncidentReminder(models.Model):
    """The commander was reminded that an update is overdue: once per incident and overdue period
    (``period_start``: the due instant, or one cadence after each earlier period)."""

    incident = models.ForeignKey(MajorIncident, on_delete=models.CASCADE, related_name="reminders")
    period_start = models.DateTimeField()
    # The update that was due (the incident's ``next_update_due_at`` when the reminder was sent).
    update_due_at = models.DateTimeField()
    sent_at = models.DateTimeField()
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["incident", "period_start"], name="incident_reminded_once")
        ]

    def __str__(self) -> str:
        return f"{self.incident.key} reminder for {self.period_start:%Y-%m-%d %H:%M}"
