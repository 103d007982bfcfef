"""Reads of major incidents, with their joins decided here (no query per linked case)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from cases.models import Case

from .models import IncidentStatus, IncidentUpdate, MajorIncident


def incident_list() -> QuerySet[MajorIncident]:
    """Active incidents first (newest first), then resolved ones, each with its case count."""
    return (
        MajorIncident.objects.select_related("commander")
        .annotate(case_count=Count("links"))
        .order_by("status", "-declared_at", "-id")
    )


def active_incidents() -> QuerySet[MajorIncident]:
    return incident_list().filter(status=IncidentStatus.ACTIVE)


def incident_by_key(key: str) -> MajorIncident | None:
    prefix = MajorIncident.KEY_PREFIX
    raw = key[len(prefix) :] if key.upper().startswith(prefix) else ""
    if not raw.isdigit():
        return None
    return (
        MajorIncident.objects.select_related("commander", "declared_by", "origin_case")
        .filter(pk=int(raw))
        .first()
    )


def linked_cases(incident: MajorIncident) -> QuerySet[Case]:
    """The incident's cases with what its page shows: organisation and tier, status, SLA state."""
    return (
        Case.objects.filter(incident_links__incident=incident)
        .select_related("organisation", "assignee")
        .order_by("next_due_at", "id")
    )


def updates(incident: MajorIncident) -> QuerySet[IncidentUpdate]:
    """The incident's updates, newest first, with how many cases each reached and how many refused."""
    return (
        incident.updates.select_related("author")
        .annotate(
            reached=Count("deliveries", filter=Q(deliveries__event_id__isnull=False)),
            missed=Count("deliveries", filter=Q(deliveries__event_id__isnull=True)),
        )
        .order_by("-created_at", "-id")
    )
