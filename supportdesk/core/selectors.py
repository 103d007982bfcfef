"""Reads of the platform's own tables that pages and the API of other apps show."""

from __future__ import annotations

from collections.abc import Iterable

from .models import OutboundMessage, StaffProfile

DELIVERY_FIELDS = (
    "id",
    "event_id",
    "kind",
    "to",
    "cc",
    "status",
    "attempts",
    "last_error",
    "next_attempt_at",
)


def deliveries_by_event(*, event_ids: Iterable[int]) -> dict[int, OutboundMessage]:
    """The outbox row of each of these timeline events that sent a mail, in one query (the latest
    row when an event sent several)."""
    ids = [pk for pk in event_ids if pk is not None]
    if not ids:
        return {}
    rows = (
        OutboundMessage.objects.filter(event_id__in=ids)
        .only(*DELIVERY_FIELDS, "sent_at", "message_id", "created_at")
        .order_by("event_id", "id")
    )
    return {row.event_id: row for row in rows if row.event_id is not None}


def email_opt_outs(*, user_ids: Iterable[int]) -> set[int]:
    """The ids among ``user_ids`` of people who asked (preferences page) not to be e-mailed their
    notifications; one query."""
    ids = [pk for pk in user_ids if pk is not None]
    if not ids:
        return set()
    return set(
        StaffProfile.objects.filter(user_id__in=ids, email_notifications=False).values_list(
            "user_id", flat=True
        )
    )
