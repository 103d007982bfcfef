"""The queue page's presentation: one dense line per case, its "next due" cell and its columns.

The queue view itself is ``cases.views.queue``; this module turns a page of cases into rows without
a query per row: the "next due" cell is read from the case's stored urgency columns
(``next_due_at`` / ``next_due_target`` / ``next_due_state``, kept by the SLA app), and the other
clocks come from the registered queue columns, each loaded once for the whole page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import extensions
from .models import Case, DueState

# The SLA targets by their codes (the core does not import the SLA app; it stores the code).
TARGET_LABELS = {
    "first_response": "First response",
    "triage": "Triage",
    "update_cadence": "Next update",
    "resolution": "Resolution",
}

# Columns a person may show or hide (a saved view keeps its choice); the key and the title always show.
QUEUE_COLUMNS: dict[str, str] = {
    "organisation": "Organisation",
    "severity": "Severity",
    "status": "Status",
    "assignee": "Owner",
    "due": "Next due",
    "age": "Age",
    "updated": "Updated",
}
DEFAULT_COLUMNS: tuple[str, ...] = ("organisation", "severity", "status", "assignee", "due", "age")


def shown_columns(chosen: Sequence[str] | None) -> list[str]:
    """The optional columns to show, in the page's order; none chosen (or none known) -> the default."""
    known = [c for c in QUEUE_COLUMNS if chosen and c in chosen]
    return known or list(DEFAULT_COLUMNS)


def compact_duration(value: dt.timedelta) -> str:
    """A short, always positive duration for a dense cell: ``45m``, ``3h 10m``, ``2d 4h``."""
    minutes = int(abs(value.total_seconds()) // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


@dataclass(frozen=True)
class NextDue:
    """What the queue says about a case's next SLA deadline at ``now``."""

    state: str  # a DueState value, "breached" once the instant has passed
    state_label: str  # the state in words (never colour alone)
    target: str  # the target's code ("" when nothing is due)
    target_label: str
    at: dt.datetime | None
    countdown: str  # "overdue 3h 10m", "in 45m", "" when nothing is due

    @property
    def overdue(self) -> bool:
        return self.state == DueState.BREACHED


_STATE_LABELS = {
    DueState.BREACHED: "Breached",
    DueState.AT_RISK: "At risk",
    DueState.ON_TRACK: "On track",
    DueState.PAUSED: "Paused",
    DueState.NONE: "No SLA running",
}


def next_due(case: Case, *, now: dt.datetime) -> NextDue:
    """The case's next deadline from its stored columns. A deadline that has passed is shown as
    breached even before the SLA sweep records it (the stored state can be a minute behind)."""
    at = case.next_due_at
    state = case.next_due_state or DueState.NONE
    if state not in _STATE_LABELS:
        state = DueState.NONE
    if at is not None and at <= now:
        state = DueState.BREACHED
    countdown = ""
    if at is not None:
        countdown = (
            f"overdue {compact_duration(now - at)}" if at <= now else f"in {compact_duration(at - now)}"
        )
    elif state == DueState.PAUSED:
        countdown = "waiting on the customer"
    target = case.next_due_target if at is not None else ""
    return NextDue(
        state=str(state),
        state_label=_STATE_LABELS[DueState(state)],
        target=target,
        target_label=TARGET_LABELS.get(target, target.replace("_", " ").capitalize()),
        at=at,
        countdown=countdown,
    )


@dataclass(frozen=True)
class QueueRow:
    case: Case
    due: NextDue
    age: str  # since the case was opened, compact
    updated: str  # since its last change, compact
    tags: Sequence[str] = ()


def queue_rows(
    cases: Sequence[Case], *, now: dt.datetime, tags: Mapping[int, Sequence[str]] | None = None
) -> list[QueueRow]:
    """The page's lines; ``tags`` maps a case id to its tag names (``selectors.tag_names``)."""
    tags = tags or {}
    return [
        QueueRow(
            case=c,
            due=next_due(c, now=now),
            age=compact_duration(now - c.created_at),
            updated=compact_duration(now - c.updated_at),
            tags=tags.get(c.pk, ()),
        )
        for c in cases
    ]


def extra_column_data(columns: Sequence[Any], cases: Sequence[Case]) -> list[tuple[Any, Any]]:
    """Each registered column (e.g. the SLA app's clocks) with what it loads for the whole page."""
    return [(column, column.load(cases) if column.load else None) for column in columns]


#: The filters behind the bar's "More filters" (the bar shows search, status, severity and sort).
MORE_FILTERS = ("state", "organisation", "tier", "assignee", "team", "tag", "mine", "unassigned")


def more_filters_active(params) -> int:
    """How many of the "More filters" (and other apps' filters) are set (the default "open" state
    is not a choice)."""
    names = (*MORE_FILTERS, *extensions.queue_filters())
    return sum(1 for name in names if params.get(name) and (name, params.get(name)) != ("state", "open"))
