from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (e.g. Europe/Berlin).")


class StaffProfile(models.Model):
    """Per-user preferences. Times are shown in ``time_zone``."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])

    def __str__(self) -> str:
        return f"{self.user} ({self.time_zone})"


class Notification(models.Model):
    """An in-app notification for one staff user (SLA warnings, escalation news, ...).

    ``dedupe_key`` makes "notify once" a unique constraint, not a read-then-write check.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    kind = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["recipient", "read_at", "-created_at"], name="notif_inbox_idx")]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "dedupe_key"], name="notification_once_per_key")
        ]

    def __str__(self) -> str:
        return self.title


class WorkerPing(models.Model):
    """Proof that the web process can reach a worker through the broker (see /healthz/worker)."""

    nonce = models.CharField(max_length=64, unique=True)
    sent_at = models.DateTimeField()
    executed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return self.nonce


class Heartbeat(models.Model):
    """The last time each periodic process (beat -> worker) ran; shown on /healthz."""

    name = models.CharField(max_length=64, unique=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
