"""Escalation packages handed from support to engineering teams, and the webhooks that announce them.

The state machine lives in ``escalations/states.py``, the quality rubric in ``escalations/quality.py``
and every write in ``escalations/services.py``; this module holds tables and one-row invariants.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse

from cases.models import Case, CaseEvent, Severity, Tier
from supportdesk.core.audit import AuditedHistory

from .quality import MAX_SCORE
from .states import OPEN_STATES, EscalationState
from .validators import validate_webhook_url

KEY_PREFIX = "ESC-"


class EngineeringTeam(models.Model):
    """An engineering team that receives escalations (not a support team: see cases.Team)."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    components = models.TextField(
        blank=True, help_text="The components this team owns, one per line (e.g. checkout-api)."
    )
    min_quality_score = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(0), MaxValueValidator(MAX_SCORE)],
        help_text=f"Packages scoring below this (0–{MAX_SCORE}) need a manager's override to be submitted.",
    )
    # The business hours the team's engineering clocks count in (escalations/clocks.py).
    calendar = models.ForeignKey(
        "sla.BusinessCalendar",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The hours the team's engineering targets count in; the default calendar when empty.",
    )
    history = AuditedHistory(kind_label="Engineering teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def component_list(self) -> list[str]:
        return [line.strip() for line in self.components.splitlines() if line.strip()]


class EngineerScope(models.Model):
    """Which teams' escalations an engineer may see; an engineer without a scope sees every team's."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="engineer_scope"
    )
    teams = models.ManyToManyField(EngineeringTeam, blank=True, related_name="engineer_scopes")
    history = AuditedHistory(kind_label="Engineer scopes", m2m_fields=["teams"])

    def __str__(self) -> str:
        return f"Scope of {self.user}"


def _attachment_path(instance: EscalationAttachment, filename: str) -> str:
    # A random folder per file: two uploads of "log.txt" never overwrite each other, and the
    # stored path reveals nothing guessable.
    return f"escalations/{instance.escalation_id}/{uuid.uuid4().hex}/{filename}"


class Escalation(models.Model):
    """A case handed to an engineering team with what engineering needs to act without asking back."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="escalations")
    team = models.ForeignKey(EngineeringTeam, on_delete=models.PROTECT, related_name="escalations")
    component = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=20, choices=EscalationState.choices, default=EscalationState.DRAFT)

    summary = models.CharField(max_length=300)
    steps_to_reproduce = models.TextField(blank=True)
    expected_behaviour = models.TextField(blank=True)
    actual_behaviour = models.TextField(blank=True)
    product_version = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=100, blank=True)
    tenant = models.CharField(max_length=200, blank=True)
    environment = models.TextField(
        blank=True, help_text="Other environment facts (deployment, OS, browser, ...), one per line."
    )
    request_ids = models.TextField(blank=True, help_text="Request or correlation IDs, one per line.")
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    log_excerpts = models.TextField(blank=True)
    users_affected = models.PositiveIntegerField(null=True, blank=True)
    tier = models.CharField(
        max_length=20, choices=Tier.choices, help_text="The customer's tier when escalated."
    )
    revenue_at_risk = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    workaround_available = models.BooleanField(null=True, blank=True)
    workaround = models.TextField(blank=True)
    hypotheses = models.TextField(blank=True, help_text="Hypotheses tested and what each showed.")
    severity = models.CharField(max_length=2, choices=Severity.choices)
    severity_rationale = models.TextField(blank=True)
    # Timeline entries the agent chose to show engineering (internal notes only if picked here).
    attached_events = models.ManyToManyField(CaseEvent, blank=True, related_name="+")

    quality_score = models.PositiveSmallIntegerField(default=0)
    quality_missing = models.JSONField(default=list, blank=True)
    override_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    override_reason = models.TextField(blank=True)
    override_at = models.DateTimeField(null=True, blank=True)

    external_key = models.CharField(max_length=100, blank=True)
    external_url = models.URLField(max_length=500, blank=True)
    fix_version = models.CharField(max_length=100, blank=True)
    resolution = models.TextField(blank=True)
    decline_reason = models.TextField(blank=True)
    withdraw_reason = models.TextField(blank=True)
    bounce_count = models.PositiveIntegerField(default=0, help_text="How often engineering asked for more.")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="First submission.")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True, help_text="Resolved, declined or withdrawn.")
    # Claimed (conditional UPDATE) by the sweep that told the team it is not acknowledged in time.
    ack_overdue_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["case", "team"],
                condition=Q(state__in=[s.value for s in OPEN_STATES]),
                name="escalation_one_open_per_case_and_team",
            )
        ]
        indexes = [
            models.Index(fields=["state", "created_at", "id"], name="escalation_state_idx"),
            models.Index(fields=["team", "state", "created_at"], name="escalation_team_idx"),
            models.Index(fields=["submitted_at", "id"], name="escalation_submitted_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.summary}"

    def get_absolute_url(self) -> str:
        return reverse("escalations:detail", args=[self.pk])

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES


class InfoRequest(models.Model):
    """Engineering's questions (a "bounce") and support's answer."""

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="info_requests")
    questions = models.TextField()
    asked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    asked_at = models.DateTimeField()
    answer = models.TextField(blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["asked_at", "id"]
        constraints = [
            # At most one unanswered request per escalation: a bounce is answered before the next.
            models.UniqueConstraint(
                fields=["escalation"], condition=Q(answered_at__isnull=True), name="one_open_info_request"
            )
        ]

    def __str__(self) -> str:
        return f"Questions on {self.escalation_id} at {self.asked_at:%Y-%m-%d %H:%M}"


class EscalationAttachment(models.Model):
    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=300)
    name = models.CharField(max_length=200, help_text="The file name as uploaded (sanitised).")
    content_type = models.CharField(max_length=100, help_text="Checked against the file's content.")
    size = models.PositiveBigIntegerField()
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    uploaded_at = models.DateTimeField()

    class Meta:
        ordering = ["uploaded_at", "id"]

    def __str__(self) -> str:
        return self.name


class ClockKind(models.TextChoices):
    """The engineering clocks of an escalation (an operational-level agreement's three targets)."""

    ACKNOWLEDGE = "acknowledge", "Time to acknowledge"
    FIRST_RESPONSE = "first_response", "Time to first engineering response"
    RESOLVE = "resolve", "Time to resolve"


class EngineeringTarget(models.Model):
    """A team's internal targets for escalations of one severity, in minutes of the team's calendar."""

    team = models.ForeignKey(EngineeringTeam, on_delete=models.CASCADE, related_name="targets")
    severity = models.CharField(max_length=2, choices=Severity.choices)
    acknowledge_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Submitted to acknowledged; empty: no target."
    )
    first_response_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Submitted to engineering's first answer (questions, work started, resolved or declined).",
    )
    resolve_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Submitted to resolved or declined; empty: no target."
    )
    warning_ratio = models.FloatField(
        default=0.75,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Warn the team when this share of a target is used (0.75: at 75 %).",
    )
    history = AuditedHistory(kind_label="Engineering targets")

    class Meta:
        ordering = ["team__name", "severity"]
        constraints = [
            models.UniqueConstraint(fields=["team", "severity"], name="engineering_target_one_per_severity")
        ]

    def __str__(self) -> str:
        return f"{self.team} {self.severity}"

    def minutes(self, kind: str) -> int | None:
        return getattr(self, f"{kind}_minutes")


class ClockState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused (needs info)"
    MET = "met", "Met"
    BREACHED = "breached", "Met late"
    CANCELLED = "cancelled", "Cancelled"


LIVE_CLOCK_STATES = (ClockState.RUNNING, ClockState.PAUSED)


class EngineeringClock(models.Model):
    """One engineering target of one escalation: one run, from the first submission to its stop.

    ``used`` is the business time counted before ``running_since`` (earlier stretches, before a
    pause); ``warn_at`` and ``due_at`` are computed when an action changes the clock, never on read,
    so the sweep's "what is due" is a range scan of the partial indexes below.
    """

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="clocks")
    kind = models.CharField(max_length=20, choices=ClockKind.choices)
    state = models.CharField(max_length=20, choices=ClockState.choices, default=ClockState.RUNNING)
    target_minutes = models.PositiveIntegerField()
    warning_ratio = models.FloatField(default=0.75)
    started_at = models.DateTimeField()
    running_since = models.DateTimeField(null=True, blank=True)
    used = models.DurationField(
        default=dt.timedelta(0), help_text="Business time counted before running_since."
    )
    paused_since = models.DateTimeField(null=True, blank=True)
    paused_total = models.DurationField(default=dt.timedelta(0), help_text="Business time spent paused.")
    warn_at = models.DateTimeField(null=True, blank=True)
    due_at = models.DateTimeField(null=True, blank=True)
    met_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["escalation_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["escalation", "kind"], name="engineering_clock_one_per_kind")
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="eng_clock_due_idx",
                condition=Q(state=ClockState.RUNNING, breached_at__isnull=True),
            ),
            models.Index(
                fields=["warn_at"],
                name="eng_clock_warn_idx",
                condition=Q(state=ClockState.RUNNING, warned_at__isnull=True, breached_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.escalation_id} {self.kind} ({self.state})"

    @property
    def target(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.target_minutes)

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_CLOCK_STATES


class WebhookEvent(models.TextChoices):
    SUBMITTED = "escalation.submitted", "Submitted"
    ACKNOWLEDGED = "escalation.acknowledged", "Acknowledged"
    INFO_REQUESTED = "escalation.info_requested", "Info requested"
    INFO_PROVIDED = "escalation.info_provided", "Info provided"
    STARTED = "escalation.started", "Work started"
    RESOLVED = "escalation.resolved", "Resolved"
    DECLINED = "escalation.declined", "Declined"
    LINKED = "escalation.linked", "External ticket linked"
    WITHDRAWN = "escalation.withdrawn", "Withdrawn"
    UPDATED = "escalation.updated", "Package updated"
    # The SLA sweep's (sla.events.SlaWebhookEvent), for every case, sent only to subscriptions
    # that name them.
    SLA_WARNING = "sla.warning", "SLA warning (a rung of the warning ladder)"
    SLA_BREACHED = "sla.breached", "SLA breached"


#: Events a subscription receives only when it names them: an empty list means every
#: escalation event of its team, as it always has.
OPT_IN_EVENTS = frozenset({WebhookEvent.SLA_WARNING, WebhookEvent.SLA_BREACHED})


def _new_secret() -> str:
    # A Standard Webhooks secret ("whsec_" + base64 of 32 random bytes), see escalations.webhooks.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class WebhookSubscription(models.Model):
    """Where a team's escalation events, and the SLA events it names, are POSTed, signed with
    ``secret``. Without a team it receives only the SLA events it names."""

    team = models.ForeignKey(
        EngineeringTeam,
        on_delete=models.CASCADE,
        related_name="webhooks",
        null=True,
        blank=True,
        help_text="Whose escalation events it receives; empty for a subscription to SLA events only.",
    )
    url = models.URLField(
        max_length=500, validators=[validate_webhook_url], help_text="http:// or https:// only."
    )
    secret = models.CharField(
        max_length=200,
        default=_new_secret,
        help_text="Signing secret (Standard Webhooks: whsec_ and base64), see docs/security.md.",
    )
    events = models.JSONField(
        default=list,
        blank=True,
        help_text="Event names to send; empty sends every escalation event. SLA events only when named.",
    )
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The signing secret never reaches the history: only that a save changed it.
    history = AuditedHistory(kind_label="Webhook subscriptions", confidential_field="secret")

    class Meta:
        ordering = ["team__name", "id"]

    def __str__(self) -> str:
        return f"{self.team or 'SLA events'} → {self.url}"

    def clean(self) -> None:
        super().clean()
        events = self.events if isinstance(self.events, list) else None
        if events is None or not all(isinstance(e, str) for e in events):
            raise ValidationError({"events": "Give a list of event names."})
        unknown = sorted(set(events) - set(WebhookEvent.values))
        if unknown:
            raise ValidationError({"events": f"Unknown events: {', '.join(unknown)}."})
        if self.team_id is None and not set(events) & OPT_IN_EVENTS:
            raise ValidationError(
                {"events": "A subscription without a team receives only SLA events: name at least one."}
            )

    def wants(self, event: str) -> bool:
        """Whether ``event`` goes to this subscription: SLA events only when named; escalation
        events when named, or all of them when none are (they come from its team only)."""
        if not self.active:
            return False
        if event in OPT_IN_EVENTS:
            return event in self.events
        return not self.events or event in self.events


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """One event for one subscription: sent at least once, under the same ``delivery_id`` every time."""

    delivery_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    escalation = models.ForeignKey(
        Escalation, on_delete=models.SET_NULL, null=True, blank=True, related_name="deliveries"
    )
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set by the worker that claimed the delivery; another worker leaves it alone until it passes.
    locked_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_pending_idx",
                condition=Q(status=DeliveryStatus.PENDING),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription.url} ({self.status})"
