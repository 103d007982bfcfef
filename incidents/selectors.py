"""Reads of major incidents, with their joins decided here (no query per linked case): the lists,
the incident's page, its suggested cases, its cadence and its figures, and the incidents of a
period for the metrics dashboard (``incidents_in_period``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector, TrigramSimilarity
from django.db import connection, models
from django.db.models import Count, Exists, F, FloatField, Min, OuterRef, Q, QuerySet, Value, When
from django.urls import reverse

from cases.models import OPEN_Q, Case
from cases.queue_views import compact_duration
from sla.models import ClockState, SlaClock, Target, completed_at

from .models import (
    DeliveryState,
    IncidentCase,
    IncidentReminder,
    IncidentStatus,
    IncidentUpdate,
    MajorIncident,
)


def incident_list() -> QuerySet[MajorIncident]:
    """Active incidents first (newest first), then resolved ones, each with its case count."""
    return (
        MajorIncident.objects.select_related("commander")
        .annotate(case_count=Count("links"))
        .order_by("status", "-declared_at", "-id")
    )


def active_incidents() -> QuerySet[MajorIncident]:
    return incident_list().filter(status=IncidentStatus.ACTIVE)


def pk_from_key(key: str) -> int | None:
    prefix = MajorIncident.KEY_PREFIX
    raw = key[len(prefix) :] if isinstance(key, str) and key.upper().startswith(prefix) else ""
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        return None
    return int(raw)


def incident_by_key(key: str) -> MajorIncident | None:
    pk = pk_from_key(key)
    if pk is None:
        return None
    return (
        MajorIncident.objects.select_related("commander", "declared_by", "origin_case").filter(pk=pk).first()
    )


def linked_cases(incident: MajorIncident) -> QuerySet[Case]:
    """The incident's cases with what its page shows: organisation and tier, status, SLA state."""
    return (
        Case.objects.filter(incident_links__incident=incident)
        .select_related("organisation", "assignee")
        .order_by("next_due_at", "id")
    )


def updates(incident: MajorIncident) -> QuerySet[IncidentUpdate]:
    """The incident's updates, newest first, with how many cases each reached, how many refused it
    and how many are still being posted."""
    return (
        incident.updates.select_related("author")
        .annotate(
            reached=Count("deliveries", filter=Q(deliveries__state=DeliveryState.DELIVERED)),
            missed=Count("deliveries", filter=Q(deliveries__state=DeliveryState.REFUSED)),
            pending=Count("deliveries", filter=Q(deliveries__state=DeliveryState.PENDING)),
        )
        .order_by("-created_at", "-id")
    )


# --- The incident's own cadence ------------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    """Where the incident stands against its own update cadence at ``now``."""

    minutes: int
    due_at: dt.datetime | None  # None once resolved
    overdue: bool
    countdown: str  # "in 12m", "overdue 5m", "" once resolved
    last_reminder: IncidentReminder | None


def cadence(incident: MajorIncident, *, now: dt.datetime) -> Cadence:
    due = incident.next_update_due_at if incident.is_active else None
    countdown = ""
    if due is not None:
        late = due <= now
        countdown = f"overdue {compact_duration(now - due)}" if late else f"in {compact_duration(due - now)}"
    last = incident.reminders.select_related("recipient").first() if due is not None else None
    return Cadence(
        minutes=incident.cadence_minutes,
        due_at=due,
        overdue=due is not None and due <= now,
        countdown=countdown,
        last_reminder=last,
    )


# --- Suggested cases -----------------------------------------------------------------------------

#: Words that say nothing about a fault (the SQLite rule; PostgreSQL's text search has its own list).
_STOP = """a an and are at be but by can cannot could for from has have in is it its no not of on or
our since so that the their this to was we when with you your"""
STOP_WORDS = frozenset(_STOP.split())
MIN_WORD = 3
MAX_WORDS = 12
SUGGESTION_LIMIT = 20
#: Trigram similarity of the titles above which a case counts as similar even without a shared word.
TITLE_SIMILARITY = 0.3


def _words(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for chunk in text.lower().split():
        word = "".join(ch for ch in chunk if ch.isalnum())
        if len(word) >= MIN_WORD and word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)[:MAX_WORDS]


def _candidates(incident: MajorIncident) -> QuerySet[Case]:
    """Open cases of the incident's severity (and product area, when it has one) opened since it
    began, in no incident now: not linked to this one, nor to another active one."""
    linked = IncidentCase.objects.filter(case=OuterRef("pk")).filter(
        Q(incident=incident) | Q(incident__status=IncidentStatus.ACTIVE)
    )
    qs = Case.objects.filter(OPEN_Q, severity=incident.severity, created_at__gte=incident.started_at).exclude(
        Exists(linked)
    )
    if incident.product_area:
        qs = qs.filter(product_area__iexact=incident.product_area)
    return qs


def suggested_cases(incident: MajorIncident, *, limit: int = SUGGESTION_LIMIT) -> list[Case]:
    """Cases that look hit by the same fault, most similar first: the candidates (``_candidates``)
    whose text is similar to the incident's title (and the title of the case it was declared from).

    PostgreSQL: any of the words in the case's title or description (full text, stemmed), or a
    title similar by trigrams; ranked by both. SQLite: any of the words in the title or the
    description; ranked by the words in the title."""
    if not incident.is_active:
        return []
    text = incident.title
    if incident.origin_case_id and incident.origin_case is not None:
        text += " " + incident.origin_case.title
    words = _words(text)
    if not words:
        return []
    qs = _candidates(incident).select_related("organisation", "assignee")
    if connection.vendor == "postgresql":
        query = SearchQuery(" or ".join(words), search_type="websearch", config="english")
        similarity = TrigramSimilarity("title", incident.title)
        # The case's own words, computed for the few candidates (the search document would match
        # every one of them on its product area and organisation).
        document = SearchVector("title", weight="A", config="english") + SearchVector(
            "description", weight="C", config="english"
        )
        qs = (
            qs.annotate(document=document, similarity=similarity)
            .filter(Q(document=query) | Q(similarity__gte=TITLE_SIMILARITY))
            .annotate(score=SearchRank(F("document"), query) + F("similarity"))
        )
    else:
        match = Q()
        score = Value(0.0, output_field=FloatField())
        for word in words:
            match |= Q(title__icontains=word) | Q(description__icontains=word)
            score = score + models.Case(
                When(title__icontains=word, then=Value(1.0)), default=Value(0.0), output_field=FloatField()
            )
        qs = qs.filter(match).annotate(score=score)
    return list(qs.order_by("-score", "created_at", "id")[:limit])


# --- Figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFigures:
    """One incident's figures: whom it hit and how support kept them informed.

    ``time_to_first_update``: from the declaration to the first public update. ``cadence_*``: the
    update-cadence clocks of its cases completed while they were linked (from the link to the
    incident's resolution): met on time over completed, as the metrics count adherence.
    ``updates_on_time``: its own public updates posted by their due instant."""

    key: str
    title: str
    severity: str
    status: str
    declared_at: dt.datetime
    resolved_at: dt.datetime | None
    cases: int
    organisations: int
    first_update_at: dt.datetime | None
    public_updates: int
    updates_on_time: int
    reminders: int
    cadence_met: int
    cadence_completed: int
    url: str

    @property
    def time_to_first_update(self) -> dt.timedelta | None:
        return None if self.first_update_at is None else self.first_update_at - self.declared_at

    @property
    def duration(self) -> dt.timedelta | None:
        return None if self.resolved_at is None else self.resolved_at - self.declared_at

    @property
    def cadence_adherence(self) -> float | None:
        return self.cadence_met / self.cadence_completed if self.cadence_completed else None

    @property
    def own_cadence_adherence(self) -> float | None:
        return self.updates_on_time / self.public_updates if self.public_updates else None

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(
            time_to_first_update=self.time_to_first_update,
            duration=self.duration,
            cadence_adherence=self.cadence_adherence,
            own_cadence_adherence=self.own_cadence_adherence,
        )
        return data


def figures(incidents: Sequence[MajorIncident]) -> list[IncidentFigures]:
    """The figures of ``incidents``, in their order: three grouped queries whatever their number."""
    ids = [i.pk for i in incidents]
    if not ids:
        return []
    reach = {
        row["incident_id"]: row
        for row in IncidentCase.objects.filter(incident_id__in=ids)
        .values("incident_id")
        .annotate(
            cases=Count("case_id", distinct=True),
            organisations=Count("case__organisation_id", distinct=True),
        )
    }
    public = Q(is_public=True)
    told = {
        row["incident_id"]: row
        for row in IncidentUpdate.objects.filter(incident_id__in=ids)
        .values("incident_id")
        .annotate(
            first=Min("created_at", filter=public),
            public=Count("id", filter=public),
            on_time=Count("id", filter=public & Q(due_at__isnull=False, created_at__lte=F("due_at"))),
        )
    }
    reminded = dict(
        IncidentReminder.objects.filter(incident_id__in=ids)
        .values("incident_id")
        .annotate(n=Count("id"))
        .values_list("incident_id", "n")
    )
    cadence_rows = {row["incident"]: row for row in _cadence_clocks(ids)}
    out = []
    for incident in incidents:
        r, t, c = reach.get(incident.pk, {}), told.get(incident.pk, {}), cadence_rows.get(incident.pk, {})
        out.append(
            IncidentFigures(
                key=incident.key,
                title=incident.title,
                severity=incident.severity,
                status=incident.status,
                declared_at=incident.declared_at,
                resolved_at=incident.resolved_at,
                cases=r.get("cases", 0),
                organisations=r.get("organisations", 0),
                first_update_at=t.get("first"),
                public_updates=t.get("public", 0),
                updates_on_time=t.get("on_time", 0),
                reminders=reminded.get(incident.pk, 0),
                cadence_met=c.get("met", 0),
                cadence_completed=c.get("completed", 0),
                url=reverse("incidents:detail", args=[incident.key]),
            )
        )
    return out


def _cadence_clocks(ids: Iterable[int]):
    """Per incident: its cases' update-cadence clocks completed while linked, and those met on
    time. One query; the link's own row bounds each case's window (a join in one ``filter``)."""
    link = "case__incident_links__"
    return (
        SlaClock.objects.filter(target=Target.UPDATE_CADENCE, state__in=[ClockState.MET, ClockState.BREACHED])
        .alias(completed=completed_at())
        .filter(
            Q(**{f"{link}incident_id__in": list(ids)}),
            Q(completed__gte=F(f"{link}linked_at")),
            Q(**{f"{link}incident__resolved_at__isnull": True})
            | Q(completed__lte=F(f"{link}incident__resolved_at")),
        )
        .values(incident=F(f"{link}incident_id"))
        .annotate(completed=Count("id"), met=Count("id", filter=Q(state=ClockState.MET)))
        .order_by()
    )


def incident_figures(incident: MajorIncident) -> IncidentFigures:
    return figures([incident])[0]


def incidents_in_period(start: dt.datetime, end: dt.datetime) -> list[IncidentFigures]:
    """The major incidents active at any instant of ``[start, end)`` (declared before ``end`` and not
    resolved before ``start``), oldest first, with their figures (``IncidentFigures``: cases and
    organisations hit, time to the first customer update, cadence adherence across their cases,
    the incident page's ``url``, whose case list is the drill-down). Five queries in all."""
    incidents = list(
        MajorIncident.objects.filter(declared_at__lt=end)
        .filter(Q(resolved_at__isnull=True) | Q(resolved_at__gte=start))
        .order_by("declared_at", "id")
    )
    return figures(incidents)
