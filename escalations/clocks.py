"""Engineering clocks: a team's internal targets (operational-level agreements) on an escalation.

Three clocks per escalation, each started by the first submission when the team has a target for
the escalation's severity (``EngineeringTarget``), counted in business time of the team's calendar
(the default calendar when the team has none) with ``sla.clock``'s arithmetic:

| clock | stops (met) | cancelled by |
| --- | --- | --- |
| ``acknowledge`` | acknowledge; decline | withdraw |
| ``first_response`` | engineering's first answer: request info, start, resolve or decline | withdraw |
| ``resolve`` | resolve or decline | withdraw |

Every live clock pauses while the escalation is ``needs_info`` (the time is support's) and resumes
where it stopped when support answers. A clock already past its due instant is not paused: its
breach stands. Met after ``due_at`` is ``breached`` (met late), and the breach is recorded then if
the sweep had not recorded it yet.

``react`` is called by ``escalations.services`` inside each action's transaction, with the
escalation locked. ``record_due_warnings_and_breaches`` is the beat task's service (through
``services.record_clock_alerts``, which says how engineers are told): it claims each warning and
breach with a conditional UPDATE, so each is recorded once however many sweeps run at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce

from cases import services as case_services
from cases.models import Severity
from sla import calendars as sla_calendars
from sla import clock as sla_clock
from sla.models import BusinessCalendar
from supportdesk.core import audit
from supportdesk.core.errors import DomainError
from supportdesk.core.roles import is_manager

from .events import EscalationEventKind
from .models import (
    LIVE_CLOCK_STATES,
    ClockKind,
    ClockState,
    EngineeringClock,
    EngineeringTarget,
    EngineeringTeam,
    Escalation,
)

logger = logging.getLogger(__name__)

K = ClockKind

#: Which clocks each escalation action meets (stops on time or late).
MEETS: dict[str, tuple[str, ...]] = {
    "acknowledge": (K.ACKNOWLEDGE,),
    "request_info": (K.FIRST_RESPONSE,),
    "start": (K.FIRST_RESPONSE,),
    "resolve": (K.ACKNOWLEDGE, K.FIRST_RESPONSE, K.RESOLVE),
    "decline": (K.ACKNOWLEDGE, K.FIRST_RESPONSE, K.RESOLVE),
}

_BOUND = dt.timedelta(days=400)  # how far ahead holidays are looked up for a due instant


def calendar_for(escalation: Escalation, *, now: dt.datetime) -> sla_clock.Calendar:
    """The arithmetic's calendar of the escalation's team (its own, else the default calendar)."""
    team = escalation.team
    stored = team.calendar if team.calendar_id else sla_calendars.default_calendar()
    return sla_calendars.clock_calendar(stored, business_time=True, since=now - _BOUND, until=now + _BOUND)


def _schedule(clock: EngineeringClock, calendar: sla_clock.Calendar, *, now: dt.datetime) -> None:
    """Set ``warn_at``/``due_at`` for a clock (re)starting to run at ``now`` with ``used`` behind it."""
    left = clock.target - clock.used
    warn_left = clock.target * clock.warning_ratio - clock.used
    clock.running_since = now
    clock.due_at = calendar.add(now, max(left, dt.timedelta(0)))
    clock.warn_at = calendar.add(now, max(warn_left, dt.timedelta(0)))


def start_clocks(escalation: Escalation, *, now: dt.datetime) -> list[EngineeringClock]:
    """Start the team's clocks for the escalation's severity (on its first submission; idempotent)."""
    target = EngineeringTarget.objects.filter(
        team_id=escalation.team_id, severity=escalation.severity
    ).first()
    if target is None:
        return []
    existing = set(EngineeringClock.objects.filter(escalation=escalation).values_list("kind", flat=True))
    calendar = calendar_for(escalation, now=now)
    clocks = []
    for kind in K.values:
        minutes = target.minutes(kind)
        if minutes is None or kind in existing:
            continue
        clock = EngineeringClock(
            escalation=escalation,
            kind=kind,
            target_minutes=minutes,
            warning_ratio=target.warning_ratio,
            started_at=now,
        )
        _schedule(clock, calendar, now=now)
        clocks.append(clock)
    EngineeringClock.objects.bulk_create(clocks)
    return clocks


def react(escalation: Escalation, action: str, *, now: dt.datetime) -> None:
    """Apply an escalation action (already saved in the caller's transaction) to its clocks."""
    if action == "submit":
        start_clocks(escalation, now=now)
        return
    live = list(
        EngineeringClock.objects.select_for_update().filter(
            escalation=escalation, state__in=LIVE_CLOCK_STATES
        )
    )
    if not live:
        return
    calendar = calendar_for(escalation, now=now)
    for clock in live:
        if action == "withdraw":
            _cancel(clock, now=now)
        elif clock.kind in MEETS.get(action, ()):
            _meet(escalation, clock, calendar, now=now)
        elif action == "request_info":
            _pause(clock, calendar, now=now)
        elif action == "answer":
            _resume(clock, calendar, now=now)
        else:
            continue
        clock.save()


def _cancel(clock: EngineeringClock, *, now: dt.datetime) -> None:
    clock.state = ClockState.CANCELLED
    clock.running_since = clock.paused_since = None


def _pause(clock: EngineeringClock, calendar: sla_clock.Calendar, *, now: dt.datetime) -> None:
    if clock.state != ClockState.RUNNING or (clock.due_at is not None and clock.due_at <= now):
        return  # past due already: the breach stands, pausing would hide it
    if clock.running_since is not None:
        clock.used += calendar.between(clock.running_since, now)
    clock.state = ClockState.PAUSED
    clock.running_since = None
    clock.paused_since = now
    # Not due while paused: the sweep's indexes only look at running clocks.


def _resume(clock: EngineeringClock, calendar: sla_clock.Calendar, *, now: dt.datetime) -> None:
    if clock.state != ClockState.PAUSED:
        return
    if clock.paused_since is not None:
        clock.paused_total += calendar.between(clock.paused_since, now)
    clock.paused_since = None
    clock.state = ClockState.RUNNING
    _schedule(clock, calendar, now=now)


def _meet(
    escalation: Escalation, clock: EngineeringClock, calendar: sla_clock.Calendar, *, now: dt.datetime
) -> None:
    if clock.state == ClockState.PAUSED:  # declined while support was answering
        _resume(clock, calendar, now=now)
    clock.met_at = now
    late = clock.due_at is not None and now > clock.due_at
    clock.state = ClockState.BREACHED if late else ClockState.MET
    if clock.running_since is not None:
        clock.used += calendar.between(clock.running_since, now)
    clock.running_since = None
    if late and clock.breached_at is None:
        # The sweep had not seen it yet: record the breach now, once (the row is locked).
        clock.breached_at = now
        clock.warned_at = clock.warned_at or now
        _record(escalation, clock, EscalationEventKind.CLOCK_BREACHED, now=now, late=True)


# --- The sweep ------------------------------------------------------------------------------------


def _record(
    escalation: Escalation, clock: EngineeringClock, kind: str, *, now: dt.datetime, late: bool = False
) -> None:
    what = "breached" if kind == EscalationEventKind.CLOCK_BREACHED else "warning"
    label = ClockKind(clock.kind).label.lower()
    if what == "breached":
        body = (
            f"{escalation.key} ({escalation.team.name}): {label} target of {clock.target_minutes} min missed"
        )
        body += " (recorded when it was met late)." if late else "."
    else:
        share = round(clock.warning_ratio * 100)
        body = (
            f"{escalation.key} ({escalation.team.name}): {share} % of the {label} target of "
            f"{clock.target_minutes} min used."
        )
    case_services.record_event(
        escalation.case,
        kind,
        actor=None,
        now=now,
        field="engineering_clock",
        old=clock.kind,
        new={
            "escalation": escalation.pk,
            "due_at": clock.due_at.isoformat() if clock.due_at else None,
            "late": late,
        },
        body=body,
    )


def _title(escalation: Escalation, clock: EngineeringClock, what: str) -> str:
    label = ClockKind(clock.kind).label.lower()
    how = "missed" if what == "breached" else "nearly used"
    return f"{escalation.key}: {label} target ({clock.target_minutes} min) {how}: {escalation.summary}"


#: ``tell(escalation, what=..., title=...)``: how the sweep's caller tells the team's engineers
#: (``services.record_clock_alerts`` passes the path every escalation notice takes).
Tell = Callable[..., object]


def record_due_warnings_and_breaches(*, now: dt.datetime, tell: Tell, batch: int = 200) -> int:
    """Record each due breach, then each due warning, exactly once; returns how many were recorded.

    Candidates come from the partial indexes (running clocks whose ``due_at`` / ``warn_at`` has
    passed). Each is claimed with a conditional UPDATE; only the process whose UPDATE changed the
    row writes the timeline event and tells the team, so two sweeps on two workers record it once.
    A breach's claim also fills ``warned_at``: a warning that no sweep sent in time is not sent after
    the breach.
    """
    with _one_sweep_at_a_time() as alone:
        return _record_due(now=now, tell=tell, batch=batch) if alone else 0


#: The PostgreSQL advisory lock key of the clock sweep (any constant unique to it).
_SWEEP_LOCK = 0x5D_EC_10C5


@contextlib.contextmanager
def _one_sweep_at_a_time() -> Iterator[bool]:
    """Whether this sweep is the only one running. On PostgreSQL the sweep runs in one transaction
    holding a transaction-level advisory lock (safe behind PgBouncer's transaction pooling): a
    second sweep started meanwhile, by a duplicated beat or a slow run, finds it taken and records
    nothing, the running one records everything due. The per-clock claims still decide each record
    (each clock is a savepoint inside it)."""
    if connection.vendor != "postgresql":
        yield True
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_SWEEP_LOCK])
            held = bool(cursor.fetchone()[0])
        yield held


def _record_due(*, now: dt.datetime, tell: Tell, batch: int) -> int:
    recorded = 0
    for what in ("breached", "warning"):
        while True:
            if what == "breached":
                unclaimed = {"state": ClockState.RUNNING, "breached_at__isnull": True}
                due = EngineeringClock.objects.filter(**unclaimed, due_at__lte=now).order_by("due_at", "id")
            else:
                unclaimed = {
                    "state": ClockState.RUNNING,
                    "warned_at__isnull": True,
                    "breached_at__isnull": True,
                }
                due = EngineeringClock.objects.filter(**unclaimed, warn_at__lte=now).order_by("warn_at", "id")
            ids = list(due.values_list("pk", flat=True)[:batch])
            claimed_any = False
            for pk in ids:
                with transaction.atomic():
                    rows = EngineeringClock.objects.filter(pk=pk, **unclaimed)
                    if what == "breached":
                        changed = rows.update(breached_at=now, warned_at=Coalesce(F("warned_at"), now))
                    else:
                        changed = rows.update(warned_at=now)
                    if not changed:
                        continue  # met meanwhile, or another sweep claimed it
                    claimed_any = True
                    clock = EngineeringClock.objects.select_related(
                        "escalation__team", "escalation__case__organisation"
                    ).get(pk=pk)
                    escalation = clock.escalation
                    kind = (
                        EscalationEventKind.CLOCK_BREACHED
                        if what == "breached"
                        else EscalationEventKind.CLOCK_WARNING
                    )
                    _record(escalation, clock, kind, now=now)
                    tell(escalation, what=f"clock_{what}:{clock.kind}", title=_title(escalation, clock, what))
                    recorded += 1
            if len(ids) < batch or not claimed_any:
                break
    return recorded


def state_in_words(clock: EngineeringClock, *, now: dt.datetime) -> str:
    """What a person reads about the clock: running, overdue, paused, met, met late or cancelled."""
    if clock.state == ClockState.RUNNING:
        return "overdue" if clock.due_at is not None and clock.due_at <= now else "running"
    if clock.state == ClockState.PAUSED:
        return "paused while support answers"
    if clock.state == ClockState.MET:
        return "met"
    if clock.state == ClockState.BREACHED:
        return "met late"
    return "cancelled"


__all__ = [
    "MEETS",
    "calendar_for",
    "react",
    "record_due_warnings_and_breaches",
    "start_clocks",
    "state_in_words",
]


# --- Targets (managers) ---------------------------------------------------------------------------

TARGET_FIELDS = ("acknowledge_minutes", "first_response_minutes", "resolve_minutes", "warning_ratio")
_KEEP: Any = object()


def save_targets(
    team: EngineeringTeam,
    *,
    actor: User | None,
    targets: dict[str, dict[str, Any]],
    calendar: BusinessCalendar | None = _KEEP,
) -> list[EngineeringTarget]:
    """Set a team's internal targets per severity (and, when given, its calendar); managers only.

    ``targets`` maps a severity to its ``TARGET_FIELDS``; a severity whose three minutes are all
    empty has no targets (its row is removed). Escalations submitted from now on use the new values;
    running clocks keep the targets they started with.
    """
    if not is_manager(actor):
        raise PermissionDenied("Only managers set engineering targets.")
    unknown = set(targets) - set(Severity.values)
    if unknown:
        raise DomainError(f"Not a severity: {', '.join(sorted(unknown))}.", field="severity")
    with transaction.atomic(), audit.acting_as(actor):
        team = EngineeringTeam.objects.select_for_update().get(pk=team.pk)
        if calendar is not _KEEP and team.calendar_id != (calendar.pk if calendar else None):
            team.calendar = calendar
            team.save(update_fields=["calendar"])
        existing = {t.severity: t for t in EngineeringTarget.objects.filter(team=team)}
        for severity, values in targets.items():
            extra = set(values) - set(TARGET_FIELDS)
            if extra:
                raise TypeError(f"Not target fields: {', '.join(sorted(extra))}")
            row = existing.get(severity) or EngineeringTarget(team=team, severity=severity)
            for name, value in values.items():
                setattr(row, name, value)
            if all(row.minutes(kind) is None for kind in ClockKind.values):
                if row.pk:
                    row.delete()
                    existing.pop(severity)
                continue
            try:
                row.full_clean(exclude=["team"])
            except ValidationError as exc:
                errors = exc.message_dict
                name = next(iter(errors))
                message = f"{severity}: {' '.join(errors[name])}"
                raise DomainError(message, field=f"{severity}_{name}") from exc
            row.save()
            existing[severity] = row
    return sorted(existing.values(), key=lambda t: t.severity)
