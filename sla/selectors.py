"""Reads of the SLA app. Nothing here writes: remaining time is computed for display only."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import (
    Case,
    Exists,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Value,
    When,
)

from cases.models import Case as SupportCase
from cases.models import Organisation, Severity, Tier

from . import calendars, clock
from .models import (
    BREACH_PERCENT,
    BusinessCalendar,
    ClockRung,
    ClockState,
    SlaClock,
    SlaPolicy,
    Target,
    WarningThreshold,
)

# How a clock looks to a person; every state has a word and an icon (the ``icon`` template tag's
# inline SVG, which renders in any font), never colour alone.
DISPLAY = {
    "on_track": ("On track", "clock", "good"),
    "at_risk": ("At risk", "warning", "warn"),
    "breached": ("Breached", "cross", "bad"),
    "paused": ("Paused", "pause", ""),
    "met": ("Met", "check", "good"),
    "cancelled": ("Stopped", "dash", ""),
}
TARGET_SHORT = {
    Target.FIRST_RESPONSE: "First response",
    Target.TRIAGE: "Triage",
    Target.UPDATE_CADENCE: "Next update",
    Target.RESOLUTION: "Resolution",
}


@dataclass(frozen=True)
class ClockView:
    """A clock as seen at ``now``; ``remaining`` is real time to due (negative when overdue), or
    for a paused clock the business time it will still have when it resumes."""

    clock: SlaClock
    display_state: str
    remaining: dt.timedelta | None

    @property
    def target(self) -> str:
        return self.clock.target

    @property
    def label(self) -> str:
        return TARGET_SHORT[Target(self.clock.target)]

    @property
    def state_label(self) -> str:
        if self.display_state == "breached" and self.clock.met_at is not None:
            return "Breached (met late)"
        return DISPLAY[self.display_state][0]

    @property
    def symbol(self) -> str:
        return DISPLAY[self.display_state][1]

    @property
    def tone(self) -> str:
        return DISPLAY[self.display_state][2]

    @property
    def due_at(self) -> dt.datetime:
        return self.clock.due_at

    @property
    def overdue(self) -> bool:
        return self.remaining is not None and self.remaining < dt.timedelta(0)

    @property
    def overdue_by(self) -> dt.timedelta | None:
        return -self.remaining if self.overdue and self.remaining is not None else None

    @property
    def warnings(self) -> list[dict]:
        """The clock's warning points, lowest first: its own warning, then the further rungs of its
        ladder (``rungs`` prefetched by ``clocks_for_case``); each with when it is or was due
        (None while paused) and when it fired."""
        clk = self.clock
        own = {"percent": round(clk.warning_ratio * 100), "warn_at": clk.warn_at, "warned_at": clk.warned_at}
        if clk.state == ClockState.PAUSED and clk.warned_at is None:
            own["warn_at"] = None
        rungs = [
            {"percent": round(r.ratio * 100), "warn_at": r.warn_at, "warned_at": r.warned_at}
            for r in clk.rungs.all()
        ]
        return [own, *rungs]

    @property
    def counting(self) -> bool:
        """Whether time still matters for this clock (running, paused, or breached and not met)."""
        return self.clock.is_live or (self.clock.state == ClockState.BREACHED and self.clock.met_at is None)


def display_state(clk: SlaClock, *, now: dt.datetime) -> str:
    if clk.state == ClockState.RUNNING:
        if now > clk.due_at:
            return "breached"  # the sweep records it within a minute
        if clk.warned_at is not None or now >= clk.warn_at:
            return "at_risk"
        return "on_track"
    return str(clk.state)


def clock_view(clk: SlaClock, *, now: dt.datetime) -> ClockView:
    state = display_state(clk, now=now)
    remaining: dt.timedelta | None = None
    if clk.state == ClockState.PAUSED:
        remaining = clk.remaining_at_pause
    elif clk.state == ClockState.RUNNING or (clk.state == ClockState.BREACHED and clk.met_at is None):
        remaining = clk.due_at - now
    return ClockView(clock=clk, display_state=state, remaining=remaining)


def _current_runs(qs: QuerySet[SlaClock]) -> QuerySet[SlaClock]:
    """Only the latest run of each (case, target): earlier update-cadence runs are history."""
    later = SlaClock.objects.filter(
        case_id=OuterRef("case_id"), target=OuterRef("target"), run__gt=OuterRef("run")
    )
    return qs.filter(~Exists(later))


_TARGET_ORDER = {t.value: i for i, t in enumerate(Target)}


def clocks_for_case(case: SupportCase, *, now: dt.datetime, history: bool = False) -> list[ClockView]:
    """The case's clocks (the current run of each target, or every run with ``history``) with the
    further rungs of their warning ladders: two queries."""
    qs = SlaClock.objects.filter(case_id=case.pk).prefetch_related(
        Prefetch("rungs", queryset=ClockRung.objects.order_by("ratio"))
    )
    if not history:
        qs = _current_runs(qs)
    clocks = sorted(qs, key=lambda c: (_TARGET_ORDER[c.target], c.run))
    return [clock_view(c, now=now) for c in clocks]


def clocks_for_cases(case_ids: Iterable[int], *, now: dt.datetime) -> dict[int, list[ClockView]]:
    """For a list page: the current runs that still count (live, or breached and not met), one query."""
    ids = list(case_ids)
    result: dict[int, list[ClockView]] = {pk: [] for pk in ids}
    if not ids:
        return result
    qs = _current_runs(SlaClock.objects.filter(case_id__in=ids))
    for clk in sorted(qs, key=lambda c: (c.case_id, _TARGET_ORDER[c.target])):
        view = clock_view(clk, now=now)
        if view.counting:
            result[clk.case_id].append(view)
    return result


# --------------------------------------------------------------------------- calendars and policies


def calendar_list() -> QuerySet[BusinessCalendar]:
    return BusinessCalendar.objects.prefetch_related(
        "opening_hours",
        "custom_holidays",
        Prefetch("organisations__organisation", queryset=Organisation.objects.only("id", "name")),
    ).order_by("-is_default", "name")


def policy_list(*, with_ladder: bool = False) -> QuerySet[SlaPolicy]:
    """Policies as a support lead reads them: enterprise first, then P1 to P4 (with their warning
    ladders' rungs, ``thresholds``, in one more query)."""
    tier_rank = Case(*(When(tier=t.value, then=Value(i)) for i, t in enumerate(Tier)), default=Value(99))
    policies = SlaPolicy.objects.annotate(tier_rank=tier_rank).order_by("tier_rank", "severity")
    if with_ladder:
        policies = policies.prefetch_related(
            Prefetch("thresholds", queryset=WarningThreshold.objects.order_by("target", "percent"))
        )
    return policies


@dataclass(frozen=True)
class LadderRow:
    """A target of a policy and the percentages its ladder fires at, as the policies page lists it."""

    target: str
    label: str
    percents: list[int]
    default: bool

    @property
    def text(self) -> str:
        shares = ", ".join("breach" if p == BREACH_PERCENT else f"{p} %" for p in self.percents)
        return f"{self.label}: {shares}"


def ladder_summary(policy: SlaPolicy) -> list[LadderRow]:
    """Per measured target: where it warns (its rungs below 100 %, else the policy's single
    warning) and whether the breach has a rung of its own. Reads ``policy.thresholds`` (prefetched)."""
    rungs: dict[str, list[int]] = {}
    for rung in policy.thresholds.all():
        rungs.setdefault(rung.target, []).append(rung.percent)
    rows = []
    for target in Target:
        if not policy.minutes_for(target):
            continue
        percents = sorted(rungs.get(target, []))
        warnings = [p for p in percents if p < BREACH_PERCENT]
        default = not warnings
        if default:
            percents = [round(policy.warning_ratio * 100), *percents]
        rows.append(LadderRow(target.value, TARGET_SHORT[target], percents, default))
    return rows


# --------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class TargetPreview:
    target: str
    label: str
    minutes: int | None
    warn_at: dt.datetime | None
    due_at: dt.datetime | None

    @property
    def duration(self) -> str:
        if not self.minutes:
            return "not measured"
        hours, minutes = divmod(self.minutes, 60)
        if hours and minutes:
            return f"{hours} h {minutes} min"
        return f"{hours} h" if hours else f"{minutes} min"


@dataclass(frozen=True)
class Preview:
    tier: str
    severity: str
    start: dt.datetime
    policy: SlaPolicy | None
    calendar: BusinessCalendar | None
    business_time: bool
    time_zone: str
    targets: list[TargetPreview]


def preview_due(
    *,
    severity: str,
    start: dt.datetime,
    organisation: Organisation | None = None,
    calendar: BusinessCalendar | None = None,
    tier: str | None = None,
) -> Preview:
    """When would each target of a case of ``severity`` arriving at ``start`` be due?

    With an ``organisation``, its tier and calendar; with a ``calendar``, that calendar and ``tier``.
    """
    if organisation is not None:
        tier = organisation.tier
        calendar = calendars.calendar_for_organisation(organisation.pk)
    if tier is None:
        raise ValueError("preview_due needs an organisation or a tier")
    if severity not in Severity.values:
        raise ValueError(f"unknown severity {severity!r}")
    policy = SlaPolicy.objects.filter(tier=tier, severity=severity).first()
    business = bool(policy and policy.business_time and calendar and not calendar.always_open)
    cal = calendars.clock_calendar(calendar, business_time=business, since=start, until=start)
    targets = []
    for target in Target:
        minutes = policy.minutes_for(target) if policy else None
        warn_at = due_at = None
        if policy is not None and minutes:
            total = dt.timedelta(minutes=minutes)
            due_at = clock.add_business_time(cal, start, total)
            warn_at = clock.add_business_time(cal, start, total * policy.warning_ratio)
        targets.append(
            TargetPreview(
                target=target.value, label=target.label, minutes=minutes, warn_at=warn_at, due_at=due_at
            )
        )
    return Preview(
        tier=tier,
        severity=severity,
        start=start,
        policy=policy,
        calendar=calendar,
        business_time=business,
        time_zone=calendar.time_zone if calendar is not None else "UTC",
        targets=targets,
    )


# --------------------------------------------------------------------------- sweep lag


@dataclass(frozen=True)
class UnrecordedDeadline:
    """A warning or breach the sweep should have recorded and has not."""

    clock_id: int
    case_id: int
    target: str
    kind: str  # "breach" or "warning"
    due: dt.datetime


def oldest_unrecorded_deadline(*, now: dt.datetime, older_than: dt.timedelta) -> UnrecordedDeadline | None:
    """The oldest breach or warning that passed more than ``older_than`` before ``now`` and is still
    not recorded, on a case nobody changed within that time either.

    A clock can become overdue the moment it is written (a severity raised on an old case retargets
    it into the past); the case's ``updated_at`` tells those apart from a deadline the sweep missed.
    Range scans of the sweep's own partial indexes, which hold nothing this old while sweeps keep up.
    """
    horizon = now - older_than
    unchanged = Q(case__updated_at__lt=horizon)
    fields = ("id", "case_id", "target", "due_at", "warn_at")
    breach = (
        SlaClock.objects.filter(unchanged, state=ClockState.RUNNING, due_at__lt=horizon)
        .order_by("due_at")
        .values_list(*fields)
        .first()
    )
    warning = (
        # Past due as well: its breach (above) is what the sweep records, not a late warning.
        SlaClock.objects.filter(
            unchanged,
            state=ClockState.RUNNING,
            warned_at__isnull=True,
            warn_at__lt=horizon,
            due_at__gte=horizon,
        )
        .order_by("warn_at")
        .values_list(*fields)
        .first()
    )
    # A further rung of a warning ladder (its own partial index), on a clock still short of due.
    rung = (
        ClockRung.objects.filter(
            warned_at__isnull=True,
            warn_at__lt=horizon,
            clock__state=ClockState.RUNNING,
            clock__due_at__gte=horizon,
            clock__case__updated_at__lt=horizon,
        )
        .order_by("warn_at")
        .values_list("clock_id", "clock__case_id", "clock__target", "clock__due_at", "warn_at")
        .first()
    )
    found = [
        UnrecordedDeadline(clock_id=row[0], case_id=row[1], target=row[2], kind=kind, due=row[index])
        for row, kind, index in ((breach, "breach", 3), (warning, "warning", 4), (rung, "warning", 4))
        if row is not None
    ]
    return min(found, key=lambda item: item.due, default=None)
