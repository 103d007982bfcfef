"""What an import (or a check of a file) reports beyond its counters: every adjustment the
importer made to the source's history, and every problem it found, each counted by kind with a
few examples. Pure code: no ORM.

The job stores the codes and numbers (``ImportJob.adjustments``, ``ImportJob.problems``); the
labels and the rules below are how the page and the command explain them (imports/README.md
states each rule in full).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: Examples kept per kind (source keys for adjustments, rows for problems).
EXAMPLES = 3

# --- adjustments ------------------------------------------------------------------------------

MISSING_RESOLUTION = "missing_resolution_instant"
RESOLUTION_REPLACED = "resolution_instant_replaced"
CLOSURE_REPLACED = "closure_instant_replaced"
CREATION_MOVED = "creation_moved"
TIME_OUT_OF_ORDER = "time_out_of_order"
DUPLICATE = "duplicate_collapsed"
OUTSIDE_LIFECYCLE = "outside_lifecycle"

#: code -> (label, the rule applied), in the order they are shown.
ADJUSTMENTS: dict[str, tuple[str, str]] = {
    MISSING_RESOLUTION: (
        "Resolution instant missing",
        "The resolving update gives no resolution instant: the update's own time is the resolution.",
    ),
    RESOLUTION_REPLACED: (
        "Resolution instant replaced",
        "The resolution instant lies before the previous update or after the next one: the "
        "update's own time is the resolution.",
    ),
    CLOSURE_REPLACED: (
        "Closure instant replaced",
        "The closure instant lies before the previous update or after the next one: the update's "
        "own time is the closure.",
    ),
    CREATION_MOVED: (
        "Creation moved",
        "The first update precedes the creation instant: the case is created at the first update.",
    ),
    TIME_OUT_OF_ORDER: (
        "Update time out of sequence",
        "An update's time precedes the time of the update before it in the source's sequence: it "
        "takes that update's time, so the order stays the source's (no reopen is invented).",
    ),
    DUPLICATE: (
        "Duplicate update collapsed",
        "An update identical to the one before it (every mapped field, its time and sequence "
        "included) is recorded once.",
    ),
    OUTSIDE_LIFECYCLE: (
        "Transition outside the lifecycle",
        "The source moved the case in a way the case lifecycle does not allow; it is written as shown.",
    ),
}

# --- problems ---------------------------------------------------------------------------------

#: code -> label (``{}`` is the subject: a state, a field, a value).
PROBLEMS: dict[str, str] = {
    "source": "{}",
    "no_key": "no {} (it belongs to no case)",
    "repeated_key": "a case appears again further on in the file",
    "missing_value": "no {}",
    "bad_date": "{} is not a valid date",
    "future_date": "{} is in the future",
    "unknown_state": "unknown state {}",
    "unknown_severity": "unknown severity {}",
    "no_severity": "no {} on any update and no default",
    "unknown_organisation": "organisation {} does not exist",
    "unknown_field": "the mapping names {}, which no event or trace of the file has",
    "no_updates": "no updates",
    "known_case": "{}",
    "other": "{}",
}


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem of one row: its kind, what it is about, where, and the full sentence."""

    kind: str
    subject: str
    where: str
    message: str


class Tally:
    """Counts by key, each with the number of cases it concerns and a few examples."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, ...], list[Any]] = {}

    def add(self, key: tuple[str, ...], *, count: int, example: str, first: str = "") -> None:
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = [count, 1, [example] if example else [], first]
            return
        row[0] += count
        row[1] += 1
        if example and len(row[2]) < EXAMPLES and example not in row[2]:
            row[2].append(example)

    def __bool__(self) -> bool:
        return bool(self.rows)

    @property
    def total(self) -> int:
        return sum(row[0] for row in self.rows.values())


def add_plan_adjustments(tally: Tally, adjustments, *, key: str, from_update: int = 0) -> None:
    """Count one case's adjustments (``(kind, detail, written_as, update)`` tuples), those made at
    or after ``from_update`` (a known case counts only what its new updates brought)."""
    counts: dict[tuple[str, str, str], int] = {}
    for kind, detail, written, update in adjustments:
        if update >= from_update:
            counts[(kind, detail, written)] = counts.get((kind, detail, written), 0) + 1
    for entry, count in counts.items():
        tally.add(entry, count=count, example=key)


def add_rejection_issues(tally: Tally, issues: list[Issue]) -> None:
    """Count one rejected case's problems by kind and subject (a row per problem)."""
    grouped: dict[tuple[str, str], list[Issue]] = {}
    for issue in issues:
        grouped.setdefault((issue.kind, issue.subject), []).append(issue)
    for entry, found in grouped.items():
        tally.add(entry, count=len(found), example=found[0].where, first=found[0].message)
        examples = tally.rows[entry][2]
        for issue in found[1:]:
            if len(examples) >= EXAMPLES:
                break
            if issue.where not in examples:
                examples.append(issue.where)


def adjustments_json(tally: Tally) -> list[dict[str, Any]]:
    """The job's ``adjustments``: one entry per kind (and, outside the lifecycle, per transition
    and how it was written), in the order of ``ADJUSTMENTS``, larger counts first."""
    order = list(ADJUSTMENTS)
    entries = [
        {"kind": kind, "detail": detail, "written_as": written, "count": row[0], "cases": row[1],
         "examples": row[2]}
        for (kind, detail, written), row in tally.rows.items()
    ]  # fmt: skip
    entries.sort(
        key=lambda e: (order.index(e["kind"]) if e["kind"] in order else 99, -e["count"], e["detail"])
    )
    return entries


def problems_json(tally: Tally) -> list[dict[str, Any]]:
    """The job's ``problems``: one entry per kind and subject, most rows first."""
    entries = [
        {"kind": kind, "subject": subject, "rows": row[0], "cases": row[1], "examples": row[2],
         "first": row[3]}
        for (kind, subject), row in tally.rows.items()
    ]  # fmt: skip
    entries.sort(key=lambda e: (-e["rows"], e["kind"], e["subject"]))
    return entries


def adjustment_label(kind: str) -> str:
    return ADJUSTMENTS.get(kind, (kind, ""))[0]


def adjustment_rule(kind: str) -> str:
    return ADJUSTMENTS.get(kind, ("", ""))[1]


def problem_label(kind: str, subject: str) -> str:
    return PROBLEMS.get(kind, "{}").format(subject)


def describe_adjustments(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The stored entries with their label and rule, for the page and the command."""
    return [{**e, "label": adjustment_label(e["kind"]), "rule": adjustment_rule(e["kind"])} for e in entries]


def describe_problems(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "label": problem_label(e["kind"], e["subject"])} for e in entries]
