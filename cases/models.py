"""Organisations, contacts, teams and cases, and the append-only case timeline.

The lifecycle rules live in ``cases/lifecycle.py`` and every write goes through
``cases/services.py``; this module holds only tables and one-row invariants.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q

from supportdesk.core.audit import AuditedHistory
from supportdesk.core.models import validate_time_zone

from . import tags as tags_rule
from .placeholders import check_placeholders


class Tier(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise"
    BUSINESS = "business", "Business"
    STANDARD = "standard", "Standard"


class Severity(models.TextChoices):
    P1 = "P1", "P1 – production down"
    P2 = "P2", "P2 – major function degraded"
    P3 = "P3", "P3 – minor, workaround exists"
    P4 = "P4", "P4 – question or request"


class Status(models.TextChoices):
    NEW = "new", "New"
    TRIAGED = "triaged", "Triaged"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING_ON_CUSTOMER = "waiting_on_customer", "Waiting on customer"
    WAITING_ON_ENGINEERING = "waiting_on_engineering", "Waiting on engineering"
    RESOLVED = "resolved", "Resolved"
    REOPENED = "reopened", "Reopened"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (
    Status.NEW,
    Status.TRIAGED,
    Status.IN_PROGRESS,
    Status.WAITING_ON_CUSTOMER,
    Status.WAITING_ON_ENGINEERING,
    Status.REOPENED,
)
OPEN_Q = Q(status__in=[s.value for s in OPEN_STATUSES])


class Organisation(models.Model):
    name = models.CharField(max_length=200, unique=True)
    tier = models.CharField(max_length=20, choices=Tier.choices, default=Tier.STANDARD)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    created_at = models.DateTimeField(auto_now_add=True)
    history = AuditedHistory(kind_label="Organisations")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class OrganisationDomain(models.Model):
    """An e-mail domain of an organisation: a mail from an unknown sender at this domain opens a case
    for this organisation (inbound mail), and its new contact is created here."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="email_domains")
    domain = models.CharField(max_length=253, unique=True, help_text="e.g. example.com (lower case).")
    history = AuditedHistory(
        kind_label="Organisation e-mail domains", describe=lambda row: f"{row.organisation} · {row}"
    )

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    def save(self, *args, **kwargs):
        self.domain = normalise_domain(self.domain)
        super().save(*args, **kwargs)


def normalise_domain(value: str) -> str:
    return (value or "").strip().lstrip("@").rstrip(".").lower()


class Contact(models.Model):
    """A person at a customer organisation: a requester or CC, not a login."""

    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="contacts")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    # Who renamed a contact or changed their address, and when (created by a person, by inbound
    # mail or by the importer's bulk write, which records no history rows).
    history = AuditedHistory(kind_label="Contacts", describe=lambda row: f"{row} · {row.organisation}")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organisation", "email"], name="contact_email_unique_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Team(models.Model):
    """A support team / queue that can own cases."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    email = models.EmailField(
        blank=True, help_text="Where team notifications go when a case has no assignee."
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="support_teams")
    history = AuditedHistory(kind_label="Support teams", m2m_fields=["members"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.SlugField(max_length=tags_rule.MAX_LENGTH, unique=True)  # the rule: cases.tags

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class DueState(models.TextChoices):
    """Where a case's next SLA deadline stands (kept by the SLA app beside ``Case.next_due_at``)."""

    BREACHED = "breached", "Breached"
    AT_RISK = "at_risk", "At risk"
    ON_TRACK = "on_track", "On track"
    PAUSED = "paused", "Paused"
    NONE = "none", "No SLA running"


#: What the metrics read from a case besides the instant they select it by: the severity and the
#: dashboard's filters (the tier is the organisation's), and for durations their start.
METRIC_DIMENSIONS = ("severity", "team", "organisation", "assignee")
METRIC_COLUMNS = ("created_at", *METRIC_DIMENSIONS)

KEY_PREFIX = "CASE-"
KEY_RE = re.compile(r"^CASE-(\d{1,18})$", re.IGNORECASE)


class Case(models.Model):
    """A customer's problem or request, from creation to closure.

    The human key (``CASE-1042``) is derived from the primary key, so it needs no extra
    sequence and lookups by key are primary-key lookups.
    """

    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="cases")
    requester = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="requested_cases")
    cc = models.ManyToManyField(Contact, blank=True, related_name="cc_cases")
    severity = models.CharField(max_length=2, choices=Severity.choices, default=Severity.P3)
    severity_confirmed = models.BooleanField(default=False)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.NEW)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_cases",
    )
    team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="cases")
    product_area = models.CharField(max_length=100, blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="cases")
    external_ref = models.CharField(
        max_length=100, null=True, blank=True, unique=True, help_text="Key in the system the case came from."
    )
    # A customer who writes again about a closed case gets a new case, linked to the old one.
    follow_up_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="follow_ups", db_index=False
    )

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    first_response_at = models.DateTimeField(null=True, blank=True)
    triaged_at = models.DateTimeField(null=True, blank=True)
    first_resolved_at = models.DateTimeField(null=True, blank=True)
    last_resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)
    # Optimistic concurrency: every field change bumps it; a writer holding an older value loses.
    version = models.PositiveIntegerField(default=1)
    # The queue's urgency order, kept by the SLA app in the transaction that moves the clocks: the
    # earliest due instant of the clocks still to be met (running, or breached and not met yet, at
    # their due instant, so the most overdue comes first). NULL when none is (paused or no SLA).
    next_due_at = models.DateTimeField(null=True, blank=True)
    next_due_target = models.CharField(max_length=20, blank=True, default="", db_default="")
    next_due_state = models.CharField(
        max_length=10, choices=DueState.choices, default=DueState.NONE, db_default=DueState.NONE
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The queue: open cases, filtered and sorted; partial indexes stay small as cases close.
            models.Index(fields=["severity", "created_at", "id"], name="case_open_sev_idx", condition=OPEN_Q),
            models.Index(fields=["created_at", "id"], name="case_open_created_idx", condition=OPEN_Q),
            models.Index(fields=["updated_at", "id"], name="case_open_updated_idx", condition=OPEN_Q),
            models.Index(
                fields=["assignee", "created_at", "id"], name="case_open_assignee_idx", condition=OPEN_Q
            ),
            models.Index(fields=["team", "created_at", "id"], name="case_open_team_idx", condition=OPEN_Q),
            models.Index(
                fields=["organisation", "created_at", "id"], name="case_open_org_idx", condition=OPEN_Q
            ),
            models.Index(fields=["next_due_at", "id"], name="case_open_due_idx", condition=OPEN_Q),
            # The API's urgency order over all cases: only open cases have a due instant, so the
            # valued part is as small as the open backlog (the NULL part is read by the pkey).
            models.Index(
                fields=["next_due_at", "id"], name="case_due_idx", condition=Q(next_due_at__isnull=False)
            ),
            models.Index(fields=["status", "created_at", "id"], name="case_status_created_idx"),
            # The API lists all cases (not only open ones) in the same orders.
            models.Index(fields=["severity", "created_at", "id"], name="case_sev_created_idx"),
            models.Index(fields=["team", "severity", "created_at", "id"], name="case_team_sev_idx"),
            models.Index(fields=["assignee", "severity", "created_at", "id"], name="case_assignee_sev_idx"),
            models.Index(fields=["created_at", "id"], name="case_created_idx"),
            # Auto-close sweep.
            models.Index(fields=["status", "last_resolved_at"], name="case_resolved_idx"),
            # Metrics: FRT, time to triage and MTTR select cases by the instant of the event and read
            # the duration's start and the dashboard filters from the index alone (index-only scans:
            # a period's cases are spread over the whole table, so heap visits would read all of it).
            models.Index(
                fields=["first_response_at"], name="case_first_response_idx", include=METRIC_COLUMNS
            ),
            models.Index(fields=["triaged_at"], name="case_triaged_idx", include=METRIC_COLUMNS),
            models.Index(
                fields=["first_resolved_at"], name="case_first_resolved_idx", include=METRIC_COLUMNS
            ),
            # Metrics that select clocks, events, surveys or escalations join them to their case for
            # its severity and the dashboard filters: index-only lookups and scans of this instead of
            # the table.
            models.Index(fields=["id"], name="case_metric_dims_idx", include=METRIC_DIMENSIONS),
            # Follow-ups of a case (few cases have any: a partial index).
            models.Index(
                fields=["follow_up_of"],
                name="case_follow_up_idx",
                condition=Q(follow_up_of__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.title}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("cases:detail", args=[self.key])

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.pk}"

    @staticmethod
    def pk_from_key(key: str) -> int | None:
        match = KEY_RE.match(key.strip())
        return int(match.group(1)) if match else None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class EventKind(models.TextChoices):
    CREATED = "created", "Created"
    PUBLIC_REPLY = "public_reply", "Public reply"
    INTERNAL_NOTE = "internal_note", "Internal note"
    STATUS_CHANGED = "status_changed", "Status changed"
    SEVERITY_CHANGED = "severity_changed", "Severity changed"
    ASSIGNEE_CHANGED = "assignee_changed", "Assignee changed"
    TEAM_CHANGED = "team_changed", "Team changed"
    TAGS_CHANGED = "tags_changed", "Tags changed"
    FIELD_CHANGED = "field_changed", "Field changed"
    REOPENED = "reopened", "Reopened"
    # The customer's own words, from an e-mail: public, from the customer, not from staff.
    CUSTOMER_MESSAGE = "customer_message", "Customer message"
    # A new case opened because the customer wrote about this closed one (and, on the new case,
    # its link back).
    FOLLOW_UP_OPENED = "follow_up_opened", "Follow-up case opened"


#: Kinds that are part of the conversation with the customer (shown and sent as such).
CONVERSATION_KINDS = (EventKind.PUBLIC_REPLY, EventKind.CUSTOMER_MESSAGE)


#: The timeline entries the metrics count: reopens and changes of the status to resolved.
REOPENED_Q = Q(kind=EventKind.REOPENED)
RESOLVED_Q = Q(kind=EventKind.STATUS_CHANGED, field="status", new_value=Status.RESOLVED.value)
METRIC_EVENTS_Q = REOPENED_Q | RESOLVED_Q


class AppendOnlyQuerySet(models.QuerySet):
    """The timeline is an audit trail: bulk updates and deletes are refused."""

    def update(self, **kwargs):
        raise TypeError("Case events are append-only and cannot be updated.")

    def delete(self):
        raise TypeError("Case events are append-only and cannot be deleted.")


class CaseEvent(models.Model):
    """One entry of a case's timeline: who did what, when, with old and new values.

    Other apps add their own kinds (``sla_breached``, ``escalation_submitted``, ...), so ``kind`` is
    a code without a database-level choice list. Audit data stores codes, never translated labels.
    """

    # No index of its own: event_case_time_idx starts with the case, and one index fewer on the
    # largest table is one write fewer per event (imports write millions).
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events", db_index=False)
    kind = models.CharField(max_length=64)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # The actor's name when the event was written (kept if the user is renamed or removed;
    # "system" for automatic changes, the source's own name for imported history).
    actor_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()
    field = models.CharField(max_length=64, blank=True)
    old_value = models.JSONField(null=True, blank=True)
    new_value = models.JSONField(null=True, blank=True)
    body = models.TextField(blank=True)
    is_public = models.BooleanField(default=False, help_text="Visible to / sent to the customer.")
    imported = models.BooleanField(default=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["case", "created_at", "id"], name="event_case_time_idx"),
            models.Index(fields=["kind", "created_at"], name="event_kind_time_idx"),
            # Metrics: reopens and resolutions by time (reopen rate, knowledge reuse), a small slice
            # of the timeline holding every column those queries read (index-only scans).
            models.Index(
                fields=["created_at"],
                name="event_reopen_resolve_idx",
                include=["case", "kind", "field", "new_value"],
                condition=METRIC_EVENTS_Q,
            ),
            # The same events per case, and the reopens alone by time: the metrics rollup finds the
            # few cases reopened in a period, then their reopens and resolutions (metrics.selectors).
            models.Index(
                fields=["case", "created_at"],
                name="event_metric_case_idx",
                include=["kind", "field", "new_value"],
                condition=METRIC_EVENTS_Q,
            ),
            models.Index(
                fields=["created_at"], name="event_reopen_idx", include=["case"], condition=REOPENED_Q
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id} at {self.created_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise TypeError("Case events are append-only and cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("Case events are append-only and cannot be deleted.")


def _attachment_path(instance: CaseAttachment, filename: str) -> str:
    # A random folder per file: two uploads of "log.txt" never overwrite each other, and the
    # stored path reveals nothing guessable.
    return f"cases/{instance.case_id}/{uuid.uuid4().hex}/{filename}"


class CaseAttachment(models.Model):
    """A file on a case's timeline: from a customer's mail, a public reply (sent with it) or an
    internal note (staff only, like the note)."""

    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="attachments")
    event = models.ForeignKey(CaseEvent, on_delete=models.PROTECT, related_name="attachments")
    file = models.FileField(upload_to=_attachment_path, max_length=300)
    name = models.CharField(max_length=200, help_text="The file name as received (sanitised).")
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

    @property
    def is_public(self) -> bool:
        return self.event.is_public


class CaseSearchDocument(models.Model):
    """What case search reads for one case, kept by ``cases.search.reindex`` in the transaction that
    changes the case's words (see cases/search.py).

    ``names_text`` (lower case: key, organisation, contacts, tags, product area) serves substring
    matches for partial words; ``public_text`` is what the customer may see (title, description,
    customer mails, public replies) and ``staff_text`` the internal notes, which only staff search.
    On PostgreSQL the two vectors are the weighted full-text documents; their GIN indexes and the
    trigram index on ``names_text`` are created by a PostgreSQL-only migration step (0009).
    """

    case = models.OneToOneField(
        Case, on_delete=models.CASCADE, primary_key=True, related_name="search_document"
    )
    names_text = models.TextField(blank=True)
    public_text = models.TextField(blank=True)
    staff_text = models.TextField(blank=True)
    public_vector = SearchVectorField(null=True, editable=False)
    staff_vector = SearchVectorField(null=True, editable=False)
    indexed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Search document of case {self.case_id}"


class SavedView(models.Model):
    """A queue a person keeps: its filters and sort order (a query string of the queue page) and the
    columns to show, personal or shared with a team (see ``cases.saved_views`` for who may do what)."""

    # SET_NULL: a view shared with a team stays with the team when its author's account is removed
    # (a personal view is then nobody's and no longer shown).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="saved_views"
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="saved_views",
        help_text="Shared with this team's members; empty for a personal view.",
    )
    name = models.CharField(max_length=80)
    query = models.CharField(
        max_length=2000,
        blank=True,
        help_text="The queue's filters and sort, e.g. status=new&severity=P1&sort=due.",
    )
    columns = models.JSONField(default=list, blank=True, help_text="The optional columns shown, in order.")
    position = models.PositiveIntegerField(
        default=0, help_text="Where the view comes in the queue's navigation."
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["position", "name", "id"]
        indexes = [
            models.Index(fields=["owner", "position"], name="savedview_owner_idx"),
            models.Index(
                fields=["team", "position"], name="savedview_team_idx", condition=Q(team__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return self.name


# --- Macros ---------------------------------------------------------------------------------------


def validate_macro_body(value: str) -> None:
    """Every ``{{placeholder}}`` of a macro's text is one ``cases.placeholders`` knows how to fill."""
    check_placeholders(value)


#: The statuses a macro may set: those a person moves a case to (never back to new, and closing
#: happens only automatically).
MACRO_STATUSES = [(s.value, s.label) for s in Status if s not in (Status.NEW, Status.CLOSED, Status.REOPENED)]


class Macro(models.Model):
    """A reusable reply (with placeholders such as ``{{requester_first_name}}``) and optional
    actions applied with it: set a status, add tags, set the team. Personal (``owner``) or shared
    (no owner, managed by managers). Applied through ``cases.macros.apply_macro``."""

    name = models.CharField(max_length=100)
    body = models.TextField(
        blank=True,
        max_length=50_000,
        validators=[validate_macro_body],
        help_text="The public reply; may use placeholders.",
    )
    set_status = models.CharField(max_length=32, choices=MACRO_STATUSES, blank=True, default="")
    add_tags = models.JSONField(default=list, blank=True, help_text="Tag names added to the case.")
    set_team = models.ForeignKey(Team, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # A personal macro goes with its owner; a shared one (no owner) stays when its author leaves.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="macros"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "name"], name="macro_name_unique_per_owner", condition=Q(owner__isnull=False)
            ),
            models.UniqueConstraint(
                fields=["name"], name="macro_shared_name_unique", condition=Q(owner__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_shared(self) -> bool:
        return self.owner_id is None

    @property
    def has_actions(self) -> bool:
        return bool(self.set_status or self.add_tags or self.set_team_id)
