from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS

from .audit import AuditedHistory, track


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (e.g. Europe/Berlin).")


class StaffProfile(models.Model):
    """A person's preferences (the preferences page): the time zone every page, notification and
    e-mail shows them times in, and which notifications they get.

    ``time_zone`` empty means "not chosen": pages then follow the browser's zone and text built
    without a request (a worker's notification) uses settings.TIME_ZONE.
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    time_zone = models.CharField(max_length=64, blank=True, default="", validators=[validate_time_zone])
    email_notifications = models.BooleanField(
        default=True,
        help_text="E-mail me the notifications addressed to me (a team's mailbox still gets its own).",
    )
    sla_warnings = models.BooleanField(
        default=True,
        help_text="Tell me when an SLA target is at risk; breaches are always notified.",
    )

    def __str__(self) -> str:
        return f"{self.user} ({self.time_zone or 'zone not chosen'})"


#: The preferences by their everyday name (one row per person, ``user.profile``).
UserPreference = StaffProfile


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


class MailKind(models.TextChoices):
    REPLY = "reply", "Public reply"
    NOTIFICATION = "notification", "Notification"
    CADENCE_REMINDER = "cadence_reminder", "Update cadence reminder"
    SURVEY = "survey", "Satisfaction survey"
    ESCALATION_NOTICE = "escalation_notice", "Escalation notice"


class MailStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    RETRYING = "retrying", "Retrying"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


# Rows the sender may still have to send; a ``sending`` row is due again once its lease has run out.
UNSENT_STATUSES = (MailStatus.QUEUED, MailStatus.SENDING, MailStatus.RETRYING)


class OutboundMessage(models.Model):
    """One e-mail SupportDesk sends: written in the transaction that decided to send it, then delivered.

    ``next_attempt_at`` is when the sender may (next) try it; while a worker holds it (``sending``) it is
    the end of that worker's lease, so a killed worker's message becomes due again by itself.
    ``case_id``/``event_id`` are plain integers, not foreign keys: the platform does not depend on cases.
    """

    kind = models.CharField(max_length=32, choices=MailKind.choices)
    to = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    from_email = models.CharField(max_length=320)
    subject = models.CharField(max_length=500)
    body = models.TextField()
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=255, unique=True)
    in_reply_to = models.CharField(max_length=255, blank=True)
    references = models.TextField(blank=True, help_text="Message-IDs, oldest first, separated by spaces.")
    status = models.CharField(max_length=16, choices=MailStatus.choices, default=MailStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    case_id = models.BigIntegerField(null=True, blank=True)
    event_id = models.BigIntegerField(null=True, blank=True)
    dedupe_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    # Files sent with the mail, read from the default storage at send time:
    # [{"path": ..., "name": ..., "content_type": ...}, ...].
    attachments = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sender's claim query: a range scan over what is still to send.
            models.Index(
                fields=["status", "next_attempt_at"],
                condition=models.Q(status__in=UNSENT_STATUSES),
                name="outbound_due_idx",
            ),
            models.Index(
                fields=["case_id", "kind", "-created_at"],
                condition=models.Q(case_id__isnull=False),
                name="outbound_case_idx",
            ),
            models.Index(
                fields=["event_id"], condition=models.Q(event_id__isnull=False), name="outbound_event_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {', '.join(self.to)}: {self.subject}"


class ApiToken(AbstractAuthToken):
    """A REST API token (knox): only a hash of the key is stored, so a key is shown once, when
    it is made. Several per person, each named, each expiring; ``last_used_at`` is refreshed at
    most once a minute by ``supportdesk.core.tokens.TokenAuthentication``."""

    # A number for pages, URLs and the admin: the digest (knox's primary key) is never shown.
    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=100)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Made and revoked (deleted), with name, owner and expiry: never the digest; the time of use
    # is not a change.
    history = AuditedHistory(kind_label="API tokens", excluded_fields=["digest", "last_used_at"])

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…) of {self.user}"


class IdempotencyRecord(models.Model):
    """The first successful answer to a creating API request sent with an ``Idempotency-Key``
    (see ``supportdesk.core.idempotency``), replayed to the same person's retries until ``expires_at``.

    A row is written in the transaction that did the work, so it is never seen half done; the
    unique constraint is what lets only one of two simultaneous requests with the same key run.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=1000, help_text="The request path, percent-encoded.")
    request_fingerprint = models.CharField(
        max_length=64, help_text="SHA-256 of the request body in a canonical form."
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "idempotency record"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "key", "method", "path"], name="idempotency_once_per_user_key_endpoint"
            )
        ]
        indexes = [models.Index(fields=["expires_at"], name="idempotency_expiry_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} [{self.key}] by {self.user_id}"


# Roles are group memberships (supportdesk.core.roles), and a superuser is an admin: the users'
# history keeps both (and activation), never the password hash or the time of the last login.
track(
    get_user_model(),
    app_label="core",
    module=__name__,
    kind_label="Users and roles",
    excluded_fields=["password", "last_login"],
    m2m_fields=["groups"],
)
