"""SLA calendars, policies and the stored clock of each (case, target, run).

The arithmetic lives in ``sla/clock.py`` (pure) and every write in ``sla/services.py``; this module
holds tables and the invariants of one row. ``cases`` never imports ``sla``: the link from an
organisation to its calendar lives here (``OrganisationCalendar``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from cases.models import Case, Organisation, Severity, Team, Tier
from supportdesk.core.audit import AuditedHistory
from supportdesk.core.models import validate_time_zone

#: A target longer than a year is a typo, not a service level.
MAX_TARGET_MINUTES = 366 * 24 * 60


class Target(models.TextChoices):
    FIRST_RESPONSE = "first_response", "First response"
    TRIAGE = "triage", "Triage"
    UPDATE_CADENCE = "update_cadence", "Update cadence"
    RESOLUTION = "resolution", "Resolution"


class ClockState(models.TextChoices):
    RUNNING = "running", "Running"
    PAUSED = "paused", "Paused"
    MET = "met", "Met"
    BREACHED = "breached", "Breached"
    # The obligation ended without being met or missed (e.g. the update cadence of a case that was
    # resolved, or a first response for a case resolved without one). Not counted for compliance.
    CANCELLED = "cancelled", "Cancelled"


class Weekday(models.IntegerChoices):
    MONDAY = 0, "Monday"
    TUESDAY = 1, "Tuesday"
    WEDNESDAY = 2, "Wednesday"
    THURSDAY = 3, "Thursday"
    FRIDAY = 4, "Friday"
    SATURDAY = 5, "Saturday"
    SUNDAY = 6, "Sunday"


class BusinessCalendar(models.Model):
    """Opening hours in a time zone plus holidays (a country's public ones and custom dates), or 24x7.

    ``version`` grows with every change (hours and holidays included, see ``services.save_calendar``),
    so per-process caches keyed by ``(id, version, updated_at)`` never serve an edited calendar.
    """

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    always_open = models.BooleanField(default=False, help_text="24x7: every hour of every day counts.")
    holiday_country = models.CharField(
        max_length=2,
        blank=True,
        help_text="ISO 3166 country code whose public holidays are closed (e.g. DE).",
    )
    holiday_subdivision = models.CharField(
        max_length=10, blank=True, help_text="Optional region of that country (e.g. BY for Bavaria)."
    )
    is_default = models.BooleanField(default=False, help_text="Used by organisations without a calendar.")
    version = models.PositiveIntegerField(default=1, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # ``version`` is bumped with an F() expression and ``updated_at`` is the history's own instant.
    history = AuditedHistory(kind_label="Calendars", excluded_fields=["version", "updated_at"])

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="sla_one_default_calendar"
            )
        ]

    def __str__(self) -> str:
        return self.name


class OpeningHours(models.Model):
    """One opening range on a weekday, in the calendar's local time; ``end`` 00:00 means 24:00."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    start = models.TimeField()
    end = models.TimeField(help_text="00:00 means midnight at the end of the day (24:00).")
    history = AuditedHistory(kind_label="Opening hours", describe=lambda row: f"{row.calendar} · {row}")

    class Meta:
        ordering = ["weekday", "start"]
        verbose_name_plural = "opening hours"

    def __str__(self) -> str:
        end = "24:00" if self.end.hour == self.end.minute == 0 else f"{self.end:%H:%M}"
        return f"{self.get_weekday_display()} {self.start:%H:%M}-{end}"


class CustomHoliday(models.Model):
    """A local date on which the calendar is closed all day, on top of the country's holidays."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="custom_holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)
    history = AuditedHistory(kind_label="Holidays", describe=lambda row: f"{row.calendar} · {row}")

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="sla_custom_holiday_once")]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


class OrganisationCalendar(models.Model):
    """Which calendar an organisation's business-time targets count in (else the default)."""

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="sla_calendar")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="organisations")
    history = AuditedHistory(
        kind_label="Organisation calendars", describe=lambda row: f"{row.organisation} → {row.calendar}"
    )

    def __str__(self) -> str:
        return f"{self.organisation_id} -> {self.calendar_id}"


class SlaPolicy(models.Model):
    """The targets for one (tier, severity); a target left empty is not measured."""

    tier = models.CharField(max_length=20, choices=Tier.choices)
    severity = models.CharField(max_length=2, choices=Severity.choices)
    business_time = models.BooleanField(
        default=True, help_text="Count business hours of the organisation's calendar (else 24x7)."
    )
    warning_ratio = models.FloatField(
        default=0.75,
        validators=[MinValueValidator(0.01), MaxValueValidator(0.99)],
        help_text="Warn when this share of a target has elapsed.",
    )
    first_response_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_TARGET_MINUTES)]
    )
    triage_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_TARGET_MINUTES)]
    )
    update_cadence_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_TARGET_MINUTES)]
    )
    resolution_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(MAX_TARGET_MINUTES)]
    )
    updated_at = models.DateTimeField(auto_now=True)
    history = AuditedHistory(kind_label="SLA policies", excluded_fields=["updated_at"])

    class Meta:
        ordering = ["tier", "severity"]
        verbose_name_plural = "SLA policies"
        constraints = [
            models.UniqueConstraint(fields=["tier", "severity"], name="sla_policy_once_per_tier_severity"),
            models.CheckConstraint(
                condition=Q(warning_ratio__gt=0) & Q(warning_ratio__lt=1),
                name="sla_policy_warning_ratio_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_tier_display()} {self.severity}"

    def minutes_for(self, target: str) -> int | None:
        return getattr(self, f"{target}_minutes")


class Recipient(models.TextChoices):
    """Whom a rung of a warning ladder tells; each is resolved when the rung fires, not before."""

    ASSIGNEE = "assignee", "Assignee (else the team)"
    TEAM_LEAD = "team_lead", "Team lead"
    MANAGERS = "managers", "Managers"
    DUTY_MANAGER = "duty_manager", "Duty manager"


#: The rung of a ladder that stands for the breach itself (all of the target used).
BREACH_PERCENT = 100


class WarningThreshold(models.Model):
    """One rung of a policy's warning ladder for one target: when ``percent`` of the target is used
    (100: the breach), tell ``notify`` and, with ``webhook``, the webhook subscribers of SLA events.

    A target whose policy has no rung below 100 warns once, at the policy's ``warning_ratio``; a
    percentage without a rung (that default warning, or the breach) tells the default people
    (``sla.services``). Clocks take the shares when they start or are re-targeted; the people and
    channels are read when a rung fires.
    """

    policy = models.ForeignKey(SlaPolicy, on_delete=models.CASCADE, related_name="thresholds")
    target = models.CharField(max_length=20, choices=Target.choices)
    percent = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(BREACH_PERCENT)],
        help_text="Share of the target used, in %; 100 is the breach.",
    )
    notify = models.JSONField(
        default=list,
        blank=True,
        help_text="Whom to tell: assignee, team_lead, managers, duty_manager (resolved when it fires).",
    )
    webhook = models.BooleanField(
        default=True, help_text="Also send it to the webhook subscribers of SLA events."
    )
    history = AuditedHistory(
        kind_label="SLA warning ladders", describe=lambda row: f"{row.policy} · {row.target} {row.percent} %"
    )

    class Meta:
        ordering = ["policy_id", "target", "percent"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "target", "percent"], name="sla_threshold_once_per_percent"
            ),
            models.CheckConstraint(
                condition=Q(percent__gte=1) & Q(percent__lte=BREACH_PERCENT),
                name="sla_threshold_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target} {self.percent} %"


class TeamLead(models.Model):
    """Who leads a support team, for the ladder's ``team_lead`` rung (kept here because ``cases``
    imports no other app, as ``OrganisationCalendar`` is)."""

    team = models.OneToOneField(Team, on_delete=models.CASCADE, related_name="sla_lead")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    history = AuditedHistory(kind_label="Team leads", describe=lambda row: f"{row.team} · {row.user}")

    class Meta:
        ordering = ["team__name"]

    def __str__(self) -> str:
        return f"{self.user} leads {self.team}"


class DutyShift(models.Model):
    """A manager on duty from ``starts_at`` until ``ends_at``: the ladder's ``duty_manager`` rung
    tells whoever's shift covers the instant it fires (the latest-starting, if shifts overlap)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    history = AuditedHistory(kind_label="Duty shifts", describe=lambda row: str(row))

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=models.F("starts_at")), name="sla_shift_ends_after_start"
            )
        ]
        indexes = [models.Index(fields=["starts_at", "ends_at"], name="sla_shift_span_idx")]

    def __str__(self) -> str:
        return f"{self.user} on duty {self.starts_at:%Y-%m-%d %H:%M}–{self.ends_at:%Y-%m-%d %H:%M} UTC"


def completed_at() -> models.Case:
    """When a clock's outcome was decided: ``met_at`` if met on time, ``breached_at`` if breached
    (also when met late afterwards); NULL while live or when cancelled.

    The metrics filter on this exact expression, so PostgreSQL matches it to the index below.
    """
    return models.Case(
        models.When(state=ClockState.MET, then=models.F("met_at")),
        models.When(state=ClockState.BREACHED, then=models.F("breached_at")),
        output_field=models.DateTimeField(),
    )


class SlaClock(models.Model):
    """One run of one target of one case: started, due, paused, warned, met or breached.

    ``due_at`` and ``warn_at`` are computed when an event changes them (start, pause/resume,
    re-target), never on read, so the sweep finds what is due with an indexed range query. While
    paused they are stale and the sweep ignores the row. The update cadence has one row per run
    (each public staff reply starts the next), and a reopened case's resolution starts a new run
    carrying the business time already used in ``consumed``.

    Compliance: a completed clock (met or breached) is on time iff ``met_at <= due_at``; a clock met
    late keeps state ``breached`` with ``met_at`` set.
    """

    # No index of its own: the unique (case, target, run) constraint's index starts with the case.
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="sla_clocks", db_index=False)
    target = models.CharField(max_length=20, choices=Target.choices)
    run = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=10, choices=ClockState.choices, default=ClockState.RUNNING)
    policy = models.ForeignKey(SlaPolicy, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The policy's terms when the clock was (re)targeted: later edits of the policy do not move it.
    target_minutes = models.PositiveIntegerField()
    business_time = models.BooleanField()
    warning_ratio = models.FloatField()
    started_at = models.DateTimeField()
    due_at = models.DateTimeField()
    warn_at = models.DateTimeField()
    paused_at = models.DateTimeField(null=True, blank=True)
    # Finished pauses as [[start, end], ...] (ISO instants); re-targeting recounts them in a new calendar.
    pauses = models.JSONField(default=list, blank=True)
    paused_total = models.DurationField(
        default=dt.timedelta(0), help_text="Business time spent paused (finished pauses)."
    )
    consumed = models.DurationField(
        default=dt.timedelta(0), help_text="Business time used by earlier runs (reopen)."
    )
    remaining_at_pause = models.DurationField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)
    met_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["case_id", "target", "run"]
        constraints = [
            models.UniqueConstraint(fields=["case", "target", "run"], name="sla_clock_once_per_run"),
            # At most one live (running or paused) run per case and target.
            models.UniqueConstraint(
                fields=["case", "target"],
                condition=Q(state__in=["running", "paused"]),
                name="sla_clock_one_live_run",
            ),
        ]
        indexes = [
            # The sweep: "running and due" / "running, not warned, past the warning point" are range
            # scans of small partial indexes, whatever the size of the open backlog.
            models.Index(fields=["due_at"], name="sla_clock_due_idx", condition=Q(state="running")),
            models.Index(
                fields=["warn_at"],
                name="sla_clock_warn_idx",
                condition=Q(state="running", warned_at__isnull=True),
            ),
            # The queue's "next due" per case.
            models.Index(
                fields=["case", "due_at"], name="sla_clock_case_due_idx", condition=Q(state="running")
            ),
            # Metrics: clocks completed in a period (by ``completed_at()``), with what compliance
            # counts read from the index alone (index-only scans need the expression's columns too).
            models.Index(
                completed_at(),
                "target",
                name="sla_clock_completed_idx",
                include=["case", "state", "met_at", "breached_at"],
            ),
            # The update-cadence adherence: a tenth of the clocks, without reading the others.
            models.Index(
                completed_at(),
                name="sla_clock_cadence_done_idx",
                include=["case", "state", "met_at", "breached_at"],
                condition=Q(target=Target.UPDATE_CADENCE),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.target} #{self.run} of case {self.case_id} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in (ClockState.RUNNING, ClockState.PAUSED)

    @property
    def met_on_time(self) -> bool | None:
        """True/False once the clock is met; None while it has not been met."""
        if self.met_at is None:
            return None
        return self.met_at <= self.due_at


class ClockRung(models.Model):
    """A further warning point of one clock run, after the clock's own warning (``SlaClock.warn_at``
    / ``warned_at``, the ladder's first rung): a clock whose policy has a ladder for its target has
    one row per further rung.

    ``warn_at`` is empty while the clock does not run (paused, met, cancelled) and the rung has not
    fired, so the sweep's partial index holds only rungs that can come due. ``warned_at`` is
    claimed by a conditional UPDATE: each rung fires once per clock run.
    """

    clock = models.ForeignKey(SlaClock, on_delete=models.CASCADE, related_name="rungs", db_index=False)
    ratio = models.FloatField(help_text="Share of the target.")
    warn_at = models.DateTimeField(null=True, blank=True)
    warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["clock_id", "ratio"]
        constraints = [models.UniqueConstraint(fields=["clock", "ratio"], name="sla_rung_once_per_clock")]
        indexes = [
            models.Index(
                fields=["warn_at"],
                name="sla_rung_warn_idx",
                condition=Q(warned_at__isnull=True, warn_at__isnull=False),
            )
        ]

    def __str__(self) -> str:
        return f"{round(self.ratio * 100)} % of clock {self.clock_id}"
