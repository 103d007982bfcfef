"""Small synthetic ServiceNow exports for the import tests: a few incidents, written row by row.

Each row is ``Row(number, state, seq, at, ...)`` with times as ``dd/mm hh:mm`` in March 2023, UTC
(the tests import with ``time_zone="UTC"``). Columns the default mapping reads and a row does not
set are "?" (no value).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

COLUMNS = (
    "number", "incident_state", "sys_mod_count", "sys_updated_at", "sys_updated_by", "opened_by",
    "opened_at", "resolved_at", "closed_at", "priority", "caller_id", "assignment_group", "assigned_to",
    "category", "subcategory",
)  # fmt: skip


@dataclass(frozen=True)
class Row:
    number: str
    state: str
    seq: int | str
    at: str  # "dd/mm hh:mm" (March 2023, UTC)
    opened: str = ""  # opened_at; "" = the first row's time
    resolved: str = "?"
    closed: str = "?"
    priority: str = "3 - Moderate"
    group: str = "Group 1"
    actor: str = "Agent 1"


def day(text: str) -> str:
    """``"06/03 09:00"`` -> ``"06/03/2023 09:00"``."""
    date, time = text.split()
    return f"{date}/2023 {time}"


def utc(text: str) -> dt.datetime:
    return dt.datetime.strptime(day(text), "%d/%m/%Y %H:%M").replace(tzinfo=dt.UTC)


def export(path: Path, rows: list[Row]) -> Path:
    """Write ``rows`` as a ServiceNow CSV export at ``path`` (in the order given)."""
    opened: dict[str, str] = {}
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            first = opened.setdefault(row.number, row.opened or row.at)
            writer.writerow(
                [
                    row.number, row.state, row.seq, day(row.at), row.actor, "Opener",
                    day(row.opened or first), day(row.resolved) if row.resolved != "?" else "?",
                    day(row.closed) if row.closed != "?" else "?", row.priority, "Caller 1", row.group,
                    "?", "Category 1", "Subcategory 1",
                ]
            )  # fmt: skip
    return path
