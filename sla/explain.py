"""Why a clock is due when it is: its policy and terms, the calendar stretches it counted, every
pause and re-target, and the arithmetic of its due instant (issue 19, "explainable SLAs").

:func:`explanation` is pure: it takes a clock's stored values (an ``SlaClock`` or anything with
its fields), the calendar arithmetic it counts in and the case's severity changes, and works the
due instant out again the way ``sla.engine`` does (start + what is left of the target + the
business time spent paused). :func:`explain` loads those for one stored clock. When the stored
due instant and the recomputed one differ, the calendar or the policy changed after the clock's
deadlines were last computed, and the explanation says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from cases.models import CaseEvent, EventKind

from . import calendars, clock
from .models import SlaClock, Target

#: At most this many calendar stretches are listed (a clock of weeks has one or two a day).
MAX_SPANS = 60
ZERO = dt.timedelta(0)


@dataclass(frozen=True)
class Pause:
    start: dt.datetime
    end: dt.datetime | None  # None: paused now
    business: dt.timedelta  # business time inside it (what it moved the due instant by)

    @property
    def business_text(self) -> str:
        return _duration(self.business)


@dataclass(frozen=True)
class Span:
    """One open stretch of the calendar between the start and the due instant."""

    start: dt.datetime
    end: dt.datetime
    counted: dt.timedelta  # the part not inside a pause
    running_total: dt.timedelta  # counted from the start up to the end of this stretch

    @property
    def counted_text(self) -> str:
        return _duration(self.counted)

    @property
    def running_total_text(self) -> str:
        return _duration(self.running_total)


@dataclass(frozen=True)
class Retarget:
    at: dt.datetime
    old: str
    new: str


@dataclass(frozen=True)
class Explanation:
    target: str
    target_label: str
    run: int
    state: str
    policy: str  # e.g. "Enterprise · P1", or "" when the policy was deleted
    target_minutes: int
    business_time: bool
    calendar: str  # the calendar's name, or "around the clock"
    warning_ratio: float
    started_at: dt.datetime
    consumed: dt.timedelta  # used by earlier runs (a reopened case's resolution)
    left: dt.timedelta  # target - consumed
    pauses: list[Pause]
    paused_total: dt.timedelta
    spans: list[Span]
    spans_left_out: int
    retargets: list[Retarget]
    due_at: dt.datetime
    warn_at: dt.datetime
    recomputed_due_at: dt.datetime
    recomputed_warn_at: dt.datetime
    met_at: dt.datetime | None
    breached_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    remaining_at_pause: dt.timedelta | None
    steps: list[str] = field(default_factory=list)

    @property
    def spans_gap_after(self) -> int:
        """After which listed stretch the left-out ones would be (the first half of ``MAX_SPANS``)."""
        return MAX_SPANS // 2

    @property
    def left_text(self) -> str:
        return _duration(self.left)

    @property
    def consumed_text(self) -> str:
        return _duration(self.consumed)

    @property
    def remaining_at_pause_text(self) -> str:
        return _duration(self.remaining_at_pause) if self.remaining_at_pause is not None else ""

    @property
    def matches(self) -> bool:
        """Whether the stored deadlines are what the clock's terms and calendar give today."""
        return self.recomputed_due_at == self.due_at and self.recomputed_warn_at == self.warn_at


def _pauses(values, *, now: dt.datetime, calc: clock.Calendar) -> list[Pause]:
    found = []
    for start_iso, end_iso in values.pauses or []:
        start, end = dt.datetime.fromisoformat(start_iso), dt.datetime.fromisoformat(end_iso)
        found.append(Pause(start=start, end=end, business=calc.between(start, end)))
    if values.paused_at is not None:
        found.append(Pause(start=values.paused_at, end=None, business=calc.between(values.paused_at, now)))
    return found


def _spans(
    start: dt.datetime, end: dt.datetime, pauses: Sequence[Pause], calendar: clock.Calendar
) -> tuple[list[Span], int]:
    closed = [(p.start, p.end) for p in pauses if p.end is not None]
    spans, total = [], ZERO
    stretches = clock.open_spans(calendar, start, end)  # one stretch when it counts around the clock
    for lo, hi in stretches:
        inside = sum((max(ZERO, min(hi, b) - max(lo, a)) for a, b in closed), ZERO)
        counted = (hi - lo) - inside
        total += counted
        spans.append(Span(start=lo, end=hi, counted=counted, running_total=total))
    left_out = max(0, len(spans) - MAX_SPANS)
    return (spans[: MAX_SPANS // 2] + spans[-MAX_SPANS // 2 :] if left_out else spans), left_out


def _duration(delta: dt.timedelta) -> str:
    """Hours and minutes, never days: 24 business hours are three office days, not one day."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes)
    parts += [f"{seconds} s"] * bool(seconds)
    return " ".join(parts) or "0 min"


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def explanation(
    values,
    *,
    calc: clock.Calendar,
    policy: str,
    calendar_name: str,
    retargets: Sequence[Retarget] = (),
    now: dt.datetime,
) -> Explanation:
    """The explanation of one clock (``values``: an ``SlaClock`` or anything with its fields).

    ``calc`` is the calendar it counts in (24x7 for a clock counting around the clock).
    """
    target = dt.timedelta(minutes=values.target_minutes)
    left = max(target - values.consumed, ZERO)
    warn_left = max(target * values.warning_ratio - values.consumed, ZERO)
    pauses = _pauses(values, now=now, calc=calc)
    due = calc.add(values.started_at, left + values.paused_total)
    warn = calc.add(values.started_at, warn_left + values.paused_total)
    spans, left_out = _spans(values.started_at, values.due_at, pauses, calc)
    label = Target(values.target).label
    counting = f"business hours of {calendar_name}" if values.business_time else "around the clock"
    steps = [
        f"{label}: {_duration(target)} ({values.target_minutes} min), counted in {counting}"
        + (f", by the policy {policy}." if policy else " (its policy has since been deleted)."),
    ]
    if values.consumed:
        steps.append(
            f"Earlier runs of this clock used {_duration(values.consumed)}, so {_duration(left)} are left."
        )
    if pauses:
        steps.append(
            f"It was paused {_times(len(pauses))} while the case waited on the customer: "
            f"{_duration(values.paused_total)} of business time, which moves the due instant later "
            "by as much."
        )
    for change in retargets:
        steps.append(
            f"The severity changed from {change.old} to {change.new}: the clock was re-targeted to that "
            "policy's target, counted again from its original start."
        )
    steps.append(
        f"Due = start + {_duration(left)}"
        + (f" + {_duration(values.paused_total)} paused" if values.paused_total else "")
        + f" of {'business ' if values.business_time else ''}time; "
        f"the warning at {round(values.warning_ratio * 100)} % of the target"
        + (f" ({_duration(warn_left)} after the start, plus the pauses)." if warn_left else ".")
    )
    return Explanation(
        target=values.target,
        target_label=label,
        run=values.run,
        state=values.state,
        policy=policy,
        target_minutes=values.target_minutes,
        business_time=values.business_time,
        calendar=calendar_name if values.business_time else "around the clock",
        warning_ratio=values.warning_ratio,
        started_at=values.started_at,
        consumed=values.consumed,
        left=left,
        pauses=pauses,
        paused_total=values.paused_total,
        spans=spans,
        spans_left_out=left_out,
        retargets=list(retargets),
        due_at=values.due_at,
        warn_at=values.warn_at,
        recomputed_due_at=due,
        recomputed_warn_at=warn,
        met_at=values.met_at,
        breached_at=values.breached_at,
        cancelled_at=values.cancelled_at,
        remaining_at_pause=values.remaining_at_pause,
        steps=steps,
    )


def explain(row: SlaClock, *, now: dt.datetime) -> Explanation:
    """The explanation of a stored clock: its policy, its organisation's calendar as it is now,
    and the severity changes recorded on the case's timeline while it ran."""
    case = row.case
    stored = calendars.calendar_for_organisation(case.organisation_id)
    until = max(row.due_at, now)
    calc = calendars.clock_calendar(
        stored, business_time=row.business_time, since=row.started_at, until=until
    )
    counts_business = row.business_time and calc is not calendars.TWENTY_FOUR_SEVEN
    policy = row.policy
    policy_label = f"{policy.get_tier_display()} · {policy.severity}" if policy is not None else ""
    stopped = row.met_at or row.cancelled_at or now
    changes = (
        CaseEvent.objects.filter(
            case_id=case.pk,
            kind=EventKind.SEVERITY_CHANGED,
            created_at__gte=row.started_at,
            created_at__lte=stopped,
        )
        .order_by("created_at", "id")
        .values_list("created_at", "old_value", "new_value")
    )
    retargets = [Retarget(at=at, old=str(old or ""), new=str(new or "")) for at, old, new in changes]
    return explanation(
        row,
        calc=calc,
        policy=policy_label,
        calendar_name=stored.name if stored is not None and counts_business else "around the clock",
        retargets=retargets,
        now=now,
    )
