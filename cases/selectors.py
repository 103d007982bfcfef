"""Reads of cases, with their joins decided here so no caller can cause an N+1."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet

from supportdesk.core.roles import Role

from .models import OPEN_Q, Case, CaseEvent, Tag

# The queue's sort orders: a name a person picks -> a keyset ordering ending in a unique field.
QUEUE_ORDERINGS: dict[str, tuple[str, list[str]]] = {
    "severity": ("Severity, then oldest", ["severity", "created_at", "id"]),
    "oldest": ("Oldest first", ["created_at", "id"]),
    "newest": ("Newest first", ["-created_at", "-id"]),
    "updated": ("Recently updated", ["-updated_at", "-id"]),
    "stale": ("Least recently updated", ["updated_at", "id"]),
}
DEFAULT_QUEUE_ORDERING = "severity"


def case_list(*, open_only: bool = False) -> QuerySet[Case]:
    """Cases with what a list row shows (organisation, requester, assignee, team, tags) joined."""
    qs = Case.objects.select_related("organisation", "requester", "assignee", "team").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.only("id", "name"))
    )
    if open_only:
        qs = qs.filter(OPEN_Q)
    return qs


def case_detail(*, pk: int) -> Case:
    return case_list().prefetch_related("cc").get(pk=pk)


def case_by_key(key: str) -> Case | None:
    pk = Case.pk_from_key(key)
    if pk is None:
        return None
    try:
        return case_detail(pk=pk)
    except Case.DoesNotExist:
        return None


def case_timeline(*, case: Case, include_internal: bool = True) -> QuerySet[CaseEvent]:
    """The case's events, oldest first. Without ``include_internal`` no internal note is returned."""
    qs = CaseEvent.objects.filter(case=case).select_related("actor")
    if not include_internal:
        qs = qs.filter(is_public=True)
    return qs.order_by("created_at", "id")


def assignable_users() -> QuerySet:
    """Staff who may own a case: agents, managers and admins."""
    user_model = get_user_model()
    return (
        user_model.objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.MANAGER, Role.ADMIN])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
