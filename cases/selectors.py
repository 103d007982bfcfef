"""Reads of cases, with their joins decided here so no caller can cause an N+1."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet

from supportdesk.core.roles import Role

from .models import OPEN_Q, Case, CaseAttachment, CaseEvent, Tag

# The queue's sort orders: a name a person picks -> a keyset ordering ending in a unique field.
# "due" is the urgency order: the earliest due instant of the SLA clocks still to be met (breached
# ones at their due instant, so the most overdue is first), cases with nothing due after them.
QUEUE_ORDERINGS: dict[str, tuple[str, list[str]]] = {
    "due": ("Most urgent first", ["next_due_at", "id"]),
    "severity": ("Severity, then oldest", ["severity", "created_at", "id"]),
    "oldest": ("Oldest first", ["created_at", "id"]),
    "newest": ("Newest first", ["-created_at", "-id"]),
    "updated": ("Recently updated", ["-updated_at", "-id"]),
    "stale": ("Least recently updated", ["updated_at", "id"]),
}
DEFAULT_QUEUE_ORDERING = "due"


def case_list(*, open_only: bool = False) -> QuerySet[Case]:
    """Cases with what a list row shows (organisation, requester, assignee, team, tags) joined."""
    qs = Case.objects.select_related("organisation", "requester", "assignee", "team").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.only("id", "name"))
    )
    if open_only:
        qs = qs.filter(OPEN_Q)
    return qs


# What a queue line shows (cases.queue_render): the case's own columns and the names of its
# organisation, assignee and team. No description, requester or password hash is read for a page.
QUEUE_ROW_FIELDS = (
    "title",
    "severity",
    "severity_confirmed",
    "status",
    "version",
    "created_at",
    "updated_at",
    "next_due_at",
    "next_due_target",
    "next_due_state",
    "organisation__name",
    "organisation__tier",
    "assignee__username",
    "assignee__first_name",
    "assignee__last_name",
    "team__name",
)


def queue_cases() -> QuerySet[Case]:
    """Cases with the columns of a queue line only (their tags come from ``tag_names``)."""
    return Case.objects.select_related("organisation", "assignee", "team").only(*QUEUE_ROW_FIELDS)


def tag_names(case_ids: Iterable[int]) -> dict[int, list[str]]:
    """The tag names of each case, by case id, in one query (no manager per case)."""
    names: dict[int, list[str]] = {}
    rows = Case.tags.through.objects.filter(case_id__in=list(case_ids)).values_list("case_id", "tag__name")
    for case_id, name in rows.order_by("case_id", "tag__name"):
        names.setdefault(case_id, []).append(name)
    return names


def case_detail(*, pk: int) -> Case:
    return case_list().select_related("follow_up_of").prefetch_related("cc").get(pk=pk)


def case_by_key(key: str) -> Case | None:
    pk = Case.pk_from_key(key)
    if pk is None:
        return None
    try:
        return case_detail(pk=pk)
    except Case.DoesNotExist:
        return None


ATTACHMENT_LIST_FIELDS = ("id", "case", "event", "name", "content_type", "size", "uploaded_at")


def case_timeline(*, case: Case, include_internal: bool = True) -> QuerySet[CaseEvent]:
    """The case's events, oldest first, each with its files (one query for all). Without
    ``include_internal`` no internal note is returned."""
    files = CaseAttachment.objects.only(*ATTACHMENT_LIST_FIELDS).order_by("uploaded_at", "id")
    qs = (
        CaseEvent.objects.filter(case=case)
        .select_related("actor")
        .prefetch_related(Prefetch("attachments", queryset=files))
    )
    if not include_internal:
        qs = qs.filter(is_public=True)
    return qs.order_by("created_at", "id")


def case_attachment(*, case: Case, attachment_id: int, include_internal: bool) -> CaseAttachment | None:
    """A file on this case's timeline (None for another case's); without ``include_internal``, none
    of an internal note."""
    qs = CaseAttachment.objects.filter(case=case, pk=attachment_id)
    if not include_internal:
        qs = qs.filter(event__is_public=True)
    return qs.first()


def follow_ups(*, case: Case) -> list[Case]:
    """The cases opened because the customer wrote about this one after it closed, oldest first."""
    return list(case.follow_ups.only("id", "title", "status", "created_at").order_by("created_at", "id"))


def assignable_users() -> QuerySet:
    """Staff who may own a case: agents, managers and admins."""
    user_model = get_user_model()
    return (
        user_model.objects.filter(is_active=True, groups__name__in=[Role.AGENT, Role.MANAGER, Role.ADMIN])
        .distinct()
        .order_by("first_name", "last_name", "username")
    )
