"""Customer satisfaction (CSAT): one post-resolution survey per case, answered at most once.

The survey is a link with an unguessable token e-mailed to the requester (see ``metrics/surveys.py``);
customers are not users, so the token is the only credential and is never shown to staff.
"""

from __future__ import annotations

import secrets

from django.db import models
from django.db.models import Q

from cases.models import Case

RATING_MIN = 1
RATING_MAX = 5
COMMENT_MAX_LENGTH = 2000


def new_token() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


class SurveyResponse(models.Model):
    """The satisfaction survey of one case: sent at resolution, answered (rating 1-5) at most once."""

    case = models.OneToOneField(Case, on_delete=models.PROTECT, related_name="survey")
    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    sent_to = models.EmailField(help_text="The requester the survey was e-mailed to.")
    # The last time the link was sent (a later resolution re-sends it while unanswered).
    sent_at = models.DateTimeField()
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sent_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=RATING_MIN, rating__lte=RATING_MAX),
                name="survey_rating_1_to_5",
            ),
            # An answer is a rating and its time together; a comment alone is not an answer.
            models.CheckConstraint(
                condition=Q(rating__isnull=True, answered_at__isnull=True)
                | Q(rating__isnull=False, answered_at__isnull=False),
                name="survey_rating_with_answered_at",
            ),
        ]
        indexes = [
            # The CSAT figure selects answers by time.
            models.Index(
                fields=["answered_at"], name="survey_answered_idx", condition=Q(answered_at__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        state = f"rated {self.rating}" if self.is_answered else "unanswered"
        return f"Survey for case {self.case_id} ({state})"

    @property
    def is_answered(self) -> bool:
        return self.answered_at is not None


class DailyRollup(models.Model):
    """The count metrics of one UTC day for one (severity, team, tier) of the cases: what the
    dashboard adds up instead of reading every clock, case, escalation and answer of a period.

    Rows are a pure function of the source rows, recomputed per day by ``metrics.rollup.refresh``;
    a day counts only once rolled up (before ``RollupState.through``) and not marked in
    ``RollupDirtyDay``. Any other day is read from the source. Severity, team and tier are the
    case's current ones, as in the direct queries.
    """

    day = models.DateField()
    severity = models.CharField(max_length=2)
    team_id = models.IntegerField(null=True)
    tier = models.CharField(max_length=20)
    # SLA clocks completed that day: met on time / all (met or breached), per target.
    first_response_met = models.PositiveIntegerField(default=0)
    first_response_total = models.PositiveIntegerField(default=0)
    triage_met = models.PositiveIntegerField(default=0)
    triage_total = models.PositiveIntegerField(default=0)
    update_cadence_met = models.PositiveIntegerField(default=0)
    update_cadence_total = models.PositiveIntegerField(default=0)
    resolution_met = models.PositiveIntegerField(default=0)
    resolution_total = models.PositiveIntegerField(default=0)
    # Cases created that day, and those of them ever escalated (the escalation rate's cohort).
    created = models.PositiveIntegerField(default=0)
    escalated = models.PositiveIntegerField(default=0)
    # Escalations submitted that day, and those of them that went to needs_info.
    submitted = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    # Reopen and resolution events that day (not distinct cases: see metrics.rollup), and the
    # resolutions of cases with a linked article.
    reopens = models.PositiveIntegerField(default=0)
    resolutions = models.PositiveIntegerField(default=0)
    linked_resolutions = models.PositiveIntegerField(default=0)
    # Survey answers received that day, per rating.
    csat_1 = models.PositiveIntegerField(default=0)
    csat_2 = models.PositiveIntegerField(default=0)
    csat_3 = models.PositiveIntegerField(default=0)
    csat_4 = models.PositiveIntegerField(default=0)
    csat_5 = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "severity"], name="metrics_rollup_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.severity} team {self.team_id} {self.tier}"


class RollupDirtyDay(models.Model):
    """A rolled-up day whose source rows changed after it was rolled up: read from the source until
    the next refresh recomputes it. Written in the transaction of the change."""

    day = models.DateField(db_index=True)

    def __str__(self) -> str:
        return str(self.day)


class RollupState(models.Model):
    """One row: days before ``through`` (UTC) are rolled up. None: nothing is yet."""

    through = models.DateField(null=True)

    def __str__(self) -> str:
        return f"rolled up through {self.through}"


class DurationBucket(models.Model):
    """How many durations of one figure ended on one UTC day for one severity, per bucket of
    ``metrics.histograms.BOUNDS``, and their sum: the coarse half of the exact duration histogram.

    ``figure`` is the duration's ``code`` in ``metrics.catalogue``. Like ``DailyRollup``
    a pure function of the source, recomputed per day; read only for clean rolled-up days.
    """

    day = models.DateField()
    figure = models.PositiveSmallIntegerField()
    severity = models.CharField(max_length=2)
    bucket = models.PositiveSmallIntegerField()
    count = models.PositiveIntegerField()
    total = models.BigIntegerField(help_text="Sum of the durations, in microseconds.")

    class Meta:
        indexes = [models.Index(fields=["figure", "day"], name="metrics_dbucket_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} figure {self.figure} {self.severity} bucket {self.bucket}: {self.count}"


class DurationValue(models.Model):
    """One duration (microseconds) of a rolled-up day: the exact half of the histogram. A
    percentile reads only the few values of the bucket that holds its rank, in value order. The
    case's team and tier are kept too: a team or tier filter counts its buckets from here."""

    day = models.DateField()
    figure = models.PositiveSmallIntegerField()
    severity = models.CharField(max_length=2)
    team_id = models.IntegerField(null=True)
    tier = models.CharField(max_length=20)
    bucket = models.PositiveSmallIntegerField()
    value = models.BigIntegerField()

    class Meta:
        indexes = [
            # A bucket's values in order, with the day, severity, team and tier to filter on in the
            # index (index-only scans).
            models.Index(
                fields=["figure", "bucket", "value", "day", "severity"],
                include=["team_id", "tier"],
                name="metrics_dvalue_rank_idx",
            ),
            # A team's or a tier's values of a period, for their bucket counts.
            models.Index(
                fields=["figure", "team_id", "day"],
                include=["severity", "bucket", "value"],
                name="metrics_dvalue_team_idx",
            ),
            models.Index(
                fields=["figure", "tier", "day"],
                include=["severity", "bucket", "value"],
                name="metrics_dvalue_tier_idx",
            ),
            models.Index(fields=["day"], name="metrics_dvalue_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.day} figure {self.figure} {self.severity}: {self.value} µs"


class RollupRepeat(models.Model):
    """Repeats of one UTC day: its reopen (or resolution) events whose case's previous reopen (or
    resolution) was on ``previous_day``, per (severity, team, tier) of the case.

    The reopen rate and knowledge reuse count distinct cases. Of a period's events of one kind,
    those whose previous event of the case is in the period too are repeats: the distinct cases
    are the events less the repeats. Summing the rows whose two days both lie in a period's
    rolled-up days gives the repeats of those days; ``metrics.figures.resolutions`` reads the
    pairs that touch the rest from the source. Like ``DailyRollup`` a pure function of the source,
    recomputed per day.
    """

    day = models.DateField()
    previous_day = models.DateField()
    severity = models.CharField(max_length=2)
    team_id = models.IntegerField(null=True)
    tier = models.CharField(max_length=20)
    reopens = models.PositiveIntegerField(default=0)
    resolutions = models.PositiveIntegerField(default=0)
    # Resolutions of cases with a linked article.
    linked_resolutions = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day"], name="metrics_repeat_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} after {self.previous_day} {self.severity} team {self.team_id} {self.tier}"
