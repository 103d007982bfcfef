"""Every write of the SLA app: clocks follow the case, the sweep records warnings and breaches once.

The rules of the clocks are ``sla.engine``'s (its module docstring lists them); this module adapts
them to stored rows and the case timeline. Clocks move only when an event changes them
(``on_case_event``, connected to ``cases.signals.case_event_recorded`` and run inside the case's
transaction, with the case locked), never on read: the case's clock rows are locked, the engine
applies the event to their values, and the rows it changed are written back (its new clocks
inserted). The sweep (``record_due_warnings_and_breaches``) is safe with several workers and a
duplicated scheduler: it locks the cases it works on with ``SKIP LOCKED`` (the same lock every case
write takes first, so the two can never deadlock) and claims each warning or breach the engine
says is due (``sla.engine.observe``) with a conditional UPDATE whose row count says whether this
process recorded it. Notifications are in-app rows written in the same transaction (one INSERT per
batch, once per recipient by their dedupe key) and e-mails written to the outbox in it, sent by a
worker after it commits.

What the timeline and the notifications add to the engine's rules:

* a clock met after its due instant but before the sweep noticed is recorded as breached then
  (timeline event, no notification: nobody needs to act any more), with its warning marked late
  if that was never recorded either;
* a warning first seen by the sweep after its due instant (a broker outage, a stopped beat) is
  recorded once, by the breach's claim: a warning event marked late, then the breach; the breach's
  notification says the warning was not sent in time, and no separate warning is sent (it would
  only repeat the breach);
* the queue's urgency (``Case.next_due_at`` / ``next_due_target`` / ``next_due_state``) is written
  by the same transaction that moves the clocks (``refresh_urgency``): the earliest due instant of
  the clocks still to be met, running or breached and not met yet (the most overdue first); none
  for a case that is not open, or whose clocks are all paused.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import NoReverseMatch, reverse

from cases.models import (
    Case,
    CaseEvent,
    EventKind,
    Organisation,
    Severity,
    Team,
    Tier,
)
from cases.services import record_event
from supportdesk.core import outbox
from supportdesk.core.instants import as_zone, default_zone, format_instant
from supportdesk.core.models import MailKind, Notification, OutboundMessage, StaffProfile, validate_time_zone
from supportdesk.core.roles import active_managers
from supportdesk.core.signals import OutboundEvent, outbound_events

from . import calendars, clock, engine, outbound, urgency
from .events import SLA_EVENT_KINDS, SlaEventKind
from .models import (
    BREACH_PERCENT,
    MAX_TARGET_MINUTES,
    BusinessCalendar,
    ClockRung,
    ClockState,
    CustomHoliday,
    DutyShift,
    OpeningHours,
    OrganisationCalendar,
    Recipient,
    SlaClock,
    SlaPolicy,
    Target,
    TeamLead,
    WarningThreshold,
)

logger = logging.getLogger(__name__)

#: Severities whose warnings and breaches also go to the managers.
MANAGER_SEVERITIES = (Severity.P1, Severity.P2)


# =============================================================================== the engine's adapter


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


# Policies and calendars by (organisation, severity) / organisation, while ``fixed_configuration()``.
_configuration: ContextVar[dict[tuple, Any] | None] = ContextVar("sla_configuration", default=None)


@contextmanager
def fixed_configuration() -> Iterator[None]:
    """Inside, each organisation's policy per severity and its calendar are read once, not per
    event: for a bulk writer during which nobody edits policies or calendars (the demo load)."""
    token = _configuration.set({})
    try:
        yield
    finally:
        _configuration.reset(token)


def _configured(key: tuple, load: Callable[[], Any]) -> Any:
    memo = _configuration.get()
    if memo is None:
        return load()
    if key not in memo:
        memo[key] = load()
    return memo[key]


@dataclass
class _CaseContext:
    """What the reactions to one case event need, each loaded at most once."""

    case: Case
    _policy: SlaPolicy | None = None
    _policy_loaded: bool = False
    _calendar: BusinessCalendar | None = None
    _calendar_loaded: bool = False
    _terms: engine.Terms | None = None
    _terms_loaded: bool = False

    @property
    def policy(self) -> SlaPolicy | None:
        if not self._policy_loaded:
            org, severity = self.case.organisation_id, self.case.severity
            self._policy = _configured(
                ("policy", org, severity),
                lambda: policy_for(organisation_id=org, severity=severity),
            )
            self._policy_loaded = True
        return self._policy

    def calendar(self, *, business_time: bool, since: dt.datetime, until: dt.datetime) -> clock.Calendar:
        if not business_time:
            return calendars.TWENTY_FOUR_SEVEN
        if not self._calendar_loaded:
            org = self.case.organisation_id
            self._calendar = _configured(("calendar", org), lambda: calendars.calendar_for_organisation(org))
            self._calendar_loaded = True
        return calendars.clock_calendar(self._calendar, business_time=True, since=since, until=until)

    def counting(self, business_time: bool, since: dt.datetime, until: dt.datetime) -> clock.Calendar:
        """The engine's arithmetic for a clock (``sla.engine.Counting``)."""
        return self.calendar(business_time=business_time, since=since, until=until)

    @property
    def terms(self) -> engine.Terms | None:
        if not self._terms_loaded:
            policy = self.policy
            ladders = (
                _configured(("ladders", policy.pk), lambda: ladders_of(policy.pk))
                if policy is not None
                else {}
            )
            self._terms = _terms(policy, ladders)
            self._terms_loaded = True
        return self._terms

    def clocks(self, values: Iterable[engine.Clock] = ()) -> engine.CaseClocks:
        """The engine's view of the case and its clocks; policy and calendar loaded when needed."""
        case = self.case
        return engine.CaseClocks(
            list(values),
            counting=self.counting,
            terms=lambda: self.terms,
            status=case.status,
            created_at=case.created_at,
            first_response_at=case.first_response_at,
            triaged_at=case.triaged_at,
        )


def _terms(policy: SlaPolicy | None, ladders: dict[str, tuple[float, ...]]) -> engine.Terms | None:
    if policy is None:
        return None
    return engine.Terms(
        policy_id=policy.pk,
        business_time=policy.business_time,
        warning_ratio=policy.warning_ratio,
        minutes={t: policy.minutes_for(t) for t in Target.values},
        ladders=ladders,
    )


def ladders_of(policy_id: int) -> dict[str, tuple[float, ...]]:
    """The warning shares of the policy's ladder per target, lowest first (the rungs below 100 %);
    a target without any is not in it (its clocks warn once, at the policy's ``warning_ratio``)."""
    rows = WarningThreshold.objects.filter(policy_id=policy_id, percent__lt=BREACH_PERCENT).values_list(
        "target", "percent"
    )
    ladders: dict[str, list[float]] = {}
    for target, percent in sorted(rows):
        ladders.setdefault(target, []).append(percent / 100)
    return {target: tuple(shares) for target, shares in ladders.items()}


def _value(row: SlaClock, rungs: Iterable[ClockRung] = ()) -> engine.Clock:
    """A stored clock (and its ladder's further rungs) as the engine's value; ``key`` is the row's id."""
    fields = {name: getattr(row, name) for name in engine.STORED_FIELDS}
    fields["pauses"] = list(fields["pauses"] or [])
    return engine.Clock(
        **fields,
        key=row.pk,
        rungs=[engine.Rung(r.ratio, warn_at=r.warn_at, warned_at=r.warned_at, key=r.pk) for r in rungs],
    )


def _rungs_of(clock_ids: Iterable[int]) -> dict[int, list[ClockRung]]:
    """The further rungs of these clocks, lowest first (one query; none for a clock without a ladder)."""
    ids = list(clock_ids)
    found: dict[int, list[ClockRung]] = {}
    if not ids:
        return found
    for rung in ClockRung.objects.filter(clock_id__in=ids).order_by("clock_id", "ratio"):
        found.setdefault(rung.clock_id, []).append(rung)
    return found


def _insert(case: Case, values: Sequence[engine.Clock]) -> list[SlaClock]:
    """Insert the clocks the engine started, and the further rungs of their ladders."""
    rows = [SlaClock(case=case, **value.as_fields()) for value in values]
    if not rows:
        return rows
    SlaClock.objects.bulk_create(rows)
    rungs = [
        ClockRung(clock=row, ratio=r.ratio, warn_at=r.warn_at, warned_at=r.warned_at)
        for row, value in zip(rows, values, strict=True)
        for r in value.rungs
    ]
    if rungs:
        ClockRung.objects.bulk_create(rungs)
    return rows


def _write_rungs(row: SlaClock, value: engine.Clock, stored: list[ClockRung]) -> None:
    """Bring a changed clock's stored rungs in line with the engine's (a re-target may change the
    ladder: rungs of a share it keeps are updated, the others replaced)."""
    by_key = {rung.pk: rung for rung in stored}
    kept = {r.key for r in value.rungs if r.key is not None}
    gone = [pk for pk in by_key if pk not in kept]
    if gone:
        ClockRung.objects.filter(pk__in=gone).delete()
    new = []
    for rung in value.rungs:
        old = by_key.get(rung.key) if rung.key is not None else None
        if old is None:
            new.append(ClockRung(clock=row, ratio=rung.ratio, warn_at=rung.warn_at, warned_at=rung.warned_at))
        elif (old.warn_at, old.warned_at) != (rung.warn_at, rung.warned_at):
            old.warn_at, old.warned_at = rung.warn_at, rung.warned_at
            old.save(update_fields=["warn_at", "warned_at"])
    if new:
        ClockRung.objects.bulk_create(new)


def _store(value: engine.Clock, row: SlaClock) -> None:
    for name in engine.STORED_FIELDS:
        setattr(row, name, getattr(value, name))


def policy_for(*, organisation_id: int, severity: str) -> SlaPolicy | None:
    """The policy of the organisation's tier and ``severity`` (one query), or None."""
    tier = Organisation.objects.filter(pk=organisation_id).values("tier")[:1]
    return SlaPolicy.objects.filter(tier=tier, severity=severity).first()


# =============================================================================== reacting to cases


def on_case_event(sender, *, case: Case, event: CaseEvent, now: dt.datetime, **kwargs) -> None:
    """Receiver of ``cases.signals.case_event_recorded``: move the case's clocks (same transaction)."""
    kind = event.kind
    if kind in SLA_EVENT_KINDS:
        return
    if kind == EventKind.CREATED:
        start_clocks(case, now=now)
    elif kind == EventKind.PUBLIC_REPLY:
        if event.actor_id is None or event.imported:
            return
        record_staff_reply(case, now=now)
    elif kind == EventKind.STATUS_CHANGED:
        apply_status_change(case, old=event.old_value, new=event.new_value, now=now)
    elif kind == EventKind.SEVERITY_CHANGED:
        retarget_clocks(case, now=now)
    else:
        return
    refresh_urgency_of(case)


def refresh_urgency_of(case: Case) -> None:
    """The queue's urgency of one case whose clocks just moved (see ``sla.urgency``). The columns were
    written by SQL, so the instance forgets its copies: reading them reloads them, and a later
    ``save()`` of this instance (which then saves only its loaded fields) cannot write them back."""
    urgency.refresh([case.pk])
    for name in urgency.FIELDS:
        case.__dict__.pop(name, None)


class _Clocks:
    """A case's clock rows (locked for the transaction), oldest run first, with the further rungs
    of their ladders; few rows per case."""

    def __init__(self, case: Case) -> None:
        self.rows: dict[int, SlaClock] = {
            clk.pk: clk
            for clk in SlaClock.objects.select_for_update().filter(case=case).order_by("target", "run")
        }
        self.rungs = _rungs_of(self.rows)

    def values(self) -> list[engine.Clock]:
        return [_value(row, self.rungs.get(pk, ())) for pk, row in self.rows.items()]

    def write(self, case: Case, changes: engine.Changes, *, now: dt.datetime) -> list[SlaClock]:
        """Write back the rows the engine changed (recording its warnings and breaches on the
        timeline first, in order, and announcing them to webhook subscribers) and insert the
        clocks it started."""
        changed = []
        for value in changes.changed:
            row = self.rows[value.key]
            _store(value, row)
            changed.append((row, value))
        recorded = changes.recorded
        if recorded:
            recipients = _Recipients(now=now)
            points = [
                (change, self.rows[change.clock.key], _point(change, self.rows[change.clock.key]))
                for change in recorded
            ]
            events: list[OutboundEvent] = []
            for change, row, point in points:
                together = [p for c, _, p in points if c.clock is change.clock]
                _record_clock_event(
                    case,
                    row,
                    point,
                    now=now,
                    late_meet=point.breach and change.late,
                    late_with=_late_with(point, together),
                )
                if recipients.sends_webhook(row, point):
                    events.append(_outbound(case, row, point))
            _publish(events, now=now)
        for row, value in changed:
            row.save()
            if value.rungs or self.rungs.get(row.pk):
                _write_rungs(row, value, self.rungs.get(row.pk, []))
        return _insert(case, changes.started)


def start_clocks(case: Case, *, now: dt.datetime) -> list[SlaClock]:
    """Start every target of the case's policy at ``now`` (the case was just created)."""
    ctx = _CaseContext(case)
    changes = ctx.clocks().created(now, terms=ctx.terms)
    return _insert(case, changes.started)


def record_staff_reply(case: Case, *, now: dt.datetime) -> None:
    """A public reply by staff: first response met, this update met and the next one started."""
    ctx = _CaseContext(case)
    rows = _Clocks(case)
    rows.write(case, ctx.clocks(rows.values()).staff_reply(now), now=now)


def apply_status_change(case: Case, *, old: str | None, new: str | None, now: dt.datetime) -> None:
    """Meet, pause, resume, cancel or restart clocks for a status change ``old -> new``."""
    ctx = _CaseContext(case)
    rows = _Clocks(case)
    rows.write(case, ctx.clocks(rows.values()).status_changed(now, old=old, new=new), now=now)


def retarget_clocks(case: Case, *, now: dt.datetime) -> None:
    """The severity changed: re-target live clocks with the new policy from their original start."""
    ctx = _CaseContext(case)
    rows = _Clocks(case)
    rows.write(case, ctx.clocks(rows.values()).severity_changed(now, terms=ctx.terms), now=now)


# =============================================================================== the sweep


@dataclass(frozen=True)
class _Phase:
    name: str

    def due_q(self, now: dt.datetime) -> Q:
        """The clocks whose breach (or own warning) is due: what the phase's claim requires."""
        if self.name == "breach":
            return Q(state=ClockState.RUNNING, due_at__lt=now)
        # A clock already past due is the breach phase's: its claim records the late warning too.
        return Q(state=ClockState.RUNNING, warned_at__isnull=True, warn_at__lte=now, due_at__gte=now)

    def recheck_q(self, now: dt.datetime) -> Q:
        """The clocks this phase has something to record for: also, for warnings, a clock with a
        further rung of its ladder due."""
        if self.name == "breach":
            return self.due_q(now)
        rung_due = ClockRung.objects.filter(warned_at__isnull=True, warn_at__lte=now).values("clock_id")
        return self.due_q(now) | Q(state=ClockState.RUNNING, due_at__gte=now, pk__in=rung_due)

    @property
    def order(self) -> str:
        return "due_at" if self.name == "breach" else "warn_at"


BREACH = _Phase("breach")
WARNING = _Phase("warning")


def due_clocks(*, now: dt.datetime, phase: _Phase = BREACH):
    """Clocks whose breach (or a warning) is due at ``now``: range scans of partial indexes.

    Warnings: the clocks' own warning (``sla_clock_warn_idx``) united with the clocks that have a
    further rung of their ladder due (``sla_rung_warn_idx``), in one statement.
    """
    if phase is BREACH:
        return SlaClock.objects.filter(phase.due_q(now)).order_by(phase.order)
    # Each part unordered (the model's default ordering is not allowed inside a compound query).
    own = SlaClock.objects.filter(phase.due_q(now)).order_by()
    laddered = SlaClock.objects.filter(
        state=ClockState.RUNNING, due_at__gte=now, rungs__warned_at__isnull=True, rungs__warn_at__lte=now
    ).order_by()
    # A compound query orders by its output columns only; the id keeps batches stable.
    return own.union(laddered).order_by("id")


def record_due_warnings_and_breaches(
    *, now: dt.datetime, batch_size: int = 200, max_batches: int = 10_000
) -> int:
    """Record every breach, then every warning, due at ``now``; returns how many claims this call
    made (a clock's breach or its warnings at one look count once).

    Each warning and breach is recorded exactly once across processes: the case is locked with SKIP
    LOCKED (a case another sweep or a person is changing is left for them / the next sweep) and
    each point claimed with a conditional UPDATE (the clock's own row for its breach and first
    warning, the rung's row for a further rung of a ladder). One transaction per batch; a process
    killed mid-batch loses nothing, the next sweep finds the same clocks still due. A warning not
    recorded before a higher one or the breach is recorded (marked late) by that claim.
    """
    recipients = _Recipients(now=now)
    recorded = 0
    for phase in (BREACH, WARNING):
        for _ in range(max_batches):
            claimed = _sweep_batch(phase, now=now, batch_size=batch_size, recipients=recipients)
            recorded += claimed
            # Nothing claimed: nothing left, or all of it in the hands of another sweep (or of a
            # person changing those cases), which records it; the next sweep retries what remains.
            if not claimed:
                break
    return recorded


def _claim(
    clk: SlaClock, value: engine.Clock, observed: engine.Changes, *, phase: _Phase, now: dt.datetime
) -> list[engine.Change]:
    """Claim what ``observed`` says to record for ``clk``; returns the changes this process won.

    The breach and the clock's own warning are one conditional UPDATE of the clock's row (a breach
    someone else claimed takes its late warnings with it); each further rung is its own
    conditional UPDATE of the rung's row."""
    own = [c for c in observed if c.kind == engine.ChangeKind.WARNED and c.rung is None]
    breach = any(c.kind == engine.ChangeKind.BREACHED for c in observed)
    won_clock = False
    if breach or own:
        update: dict[str, Any] = {"warned_at": value.warned_at} if own else {}
        claim = phase.due_q(now)
        if breach:
            update |= {"state": value.state, "breached_at": value.breached_at}
            if own:
                claim &= Q(warned_at__isnull=True)
        # The claim: only the process whose UPDATE changes the row records and notifies.
        won_clock = SlaClock.objects.filter(claim, pk=clk.pk).update(**update) == 1
        if won_clock:
            for name, stamp in update.items():
                setattr(clk, name, stamp)
        elif breach:
            return []
    won = []
    for change in observed:
        if change.kind == engine.ChangeKind.WARNED and change.rung is not None:
            rung = change.rung
            if ClockRung.objects.filter(pk=rung.key, warned_at__isnull=True).update(warned_at=rung.warned_at):
                won.append(change)
        elif won_clock:
            won.append(change)
    return won


def _sweep_batch(phase: _Phase, *, now: dt.datetime, batch_size: int, recipients: _Recipients) -> int:
    candidates = list(due_clocks(now=now, phase=phase).values_list("id", "case_id")[:batch_size])
    if not candidates:
        return 0
    case_ids = sorted({case_id for _, case_id in candidates})
    claimed = 0
    mails: list[OutboundMessage] = []
    notes: list[Notification] = []
    events: list[OutboundEvent] = []
    with transaction.atomic():
        cases = {
            c.pk: c
            for c in Case.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=case_ids)
            .select_related("organisation", "assignee", "team")
            .order_by("pk")
        }
        if not cases:
            return 0  # all being changed by someone else right now
        recipients.prefetch_teams(cases.values())
        clock_ids = [clock_id for clock_id, case_id in candidates if case_id in cases]
        touched: set[int] = set()
        # Re-read under the case lock: an event may have met or moved a clock since the candidates query.
        rows = list(
            SlaClock.objects.filter(phase.recheck_q(now), pk__in=clock_ids).order_by(phase.order, "id")
        )
        rungs = _rungs_of(row.pk for row in rows)
        for clk in rows:
            value = _value(clk, rungs.get(clk.pk, ()))
            observed = engine.observe(value, now)
            breach = any(c.kind == engine.ChangeKind.BREACHED for c in observed)
            if breach is not (phase is BREACH) or not observed:
                continue  # the other phase's (the query and the engine agree; this only guards it)
            won = _claim(clk, value, observed, phase=phase, now=now)
            if not won:
                continue
            case = cases[clk.case_id]
            points = [_point(change, clk) for change in won]
            for point in points:
                _record_clock_event(case, clk, point, now=now, late_with=_late_with(point, points))
                if recipients.sends_webhook(clk, point):
                    events.append(_outbound(case, clk, point))
            mails.extend(_notify(case, clk, points, now=now, recipients=recipients, notes=notes))
            claimed += 1
            touched.add(clk.case_id)
        # The breached and warned cases move up the queue, in the transaction that recorded it.
        urgency.refresh(touched)
        # One INSERT for the batch's in-app notifications (the dedupe key's unique constraint
        # still makes each once per recipient) instead of a savepoint and INSERT per person.
        Notification.objects.bulk_create(notes, ignore_conflicts=True)
        # The e-mails go to the outbox in the same transaction (once per clock and phase by their
        # dedupe key) and are sent by a worker after the commit, with retries.
        outbox.enqueue_many(mails)
        # And the webhook deliveries (escalations.outbound), sent after the commit as well.
        _publish(events, now=now)
    return claimed


# =============================================================================== timeline, notifications


def _target_label(target: str) -> str:
    return Target(target).label


def _duration_text(minutes: int) -> str:
    hours, mins = divmod(minutes, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    return f"{hours} h" if hours else f"{mins} min"


def _event_kind(clk: SlaClock, *, breach: bool) -> str:
    if clk.target == Target.UPDATE_CADENCE:
        return SlaEventKind.CADENCE_MISSED if breach else SlaEventKind.CADENCE_REMINDER
    return SlaEventKind.BREACHED if breach else SlaEventKind.WARNING


@dataclass(frozen=True)
class _Point:
    """One warning point or the breach of a clock, as it is recorded: the share of the target it
    stands for, when that share was used up, and whether it was seen late."""

    breach: bool
    percent: int
    reached_at: dt.datetime
    late: bool = False
    #: A further rung of a ladder (not the clock's own warning).
    further: bool = False
    #: The clock has a ladder (several warning points), so its texts name the percentage.
    laddered: bool = False

    @property
    def suffix(self) -> str:
        """The notifications' and e-mails' dedupe key part: once per clock run and point."""
        if self.breach:
            return "breach"
        return f"warning-{self.percent}" if self.further else "warning"

    @property
    def name(self) -> str:
        return "the breach" if self.breach else f"the {self.percent} % warning"


def _point(change: engine.Change, row: SlaClock) -> _Point:
    laddered = bool(change.clock.rungs)
    if change.kind == engine.ChangeKind.BREACHED:
        return _Point(True, BREACH_PERCENT, row.due_at, change.late, laddered=laddered)
    rung = change.rung
    reached = row.warn_at if rung is None or rung.warn_at is None else rung.warn_at
    return _Point(
        False, engine.percent_of(change.ratio), reached, change.late, rung is not None, laddered=laddered
    )


def _late_with(point: _Point, together: Sequence[_Point]) -> _Point | None:
    """The point a late one was recorded with: the last of those recorded together for its clock."""
    head = together[-1]
    return head if point.late and point is not head else None


def _percent_list(points: Sequence[_Point]) -> str:
    names = [f"{p.percent} %" for p in points]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


_LATE_WARNING = (
    "Recorded late, with the breach: no sweep ran between the warning point ({warn}) and the due time."
)
_LATE_RUNG = "Recorded late, with {head}: no sweep ran between this point ({warn}) and that one."
_WARNING_MISSED = (
    "The warning was not sent in time: no sweep ran between the warning point ({warn}) and the due time."
)
_RUNGS_MISSED = "The {shares} {warnings} not sent in time: no sweep ran between {their} ({warns}) and {head}."


def _describe(
    clk: SlaClock,
    point: _Point,
    *,
    late_meet: bool = False,
    late_with: _Point | None = None,
    missed: Sequence[_Point] = (),
    zone: dt.tzinfo = dt.UTC,
) -> str:
    """The sentence of an SLA event. The timeline's copy (read by everyone) names the due time in
    UTC; a person's notification in their own zone; both in the one format of every page.
    ``late_with``: a warning recorded late, with this later point (the breach, or a higher rung);
    ``missed``: the warnings recorded late with this point, whose people it tells instead."""
    text = _sentence(clk, point, late_meet=late_meet, zone=zone)
    if late_with is not None:
        warn = format_instant(point.reached_at, zone)
        if late_with.breach and not point.laddered:
            text += " " + _LATE_WARNING.format(warn=warn)
        else:
            text += " " + _LATE_RUNG.format(head=late_with.name, warn=warn)
    if missed:
        warns = ", ".join(format_instant(p.reached_at, zone) for p in missed)
        if point.breach and not point.laddered and len(missed) == 1:
            text += " " + _WARNING_MISSED.format(warn=warns)
        else:
            text += " " + _RUNGS_MISSED.format(
                shares=_percent_list(missed),
                warnings="warnings were" if len(missed) > 1 else "warning was",
                their="their points" if len(missed) > 1 else "its point",
                warns=warns,
                head="the due time" if point.breach else f"the {point.percent} % point",
            )
    return text


def _sentence(clk: SlaClock, point: _Point, *, late_meet: bool, zone: dt.tzinfo) -> str:
    label = _target_label(clk.target)
    terms = f"{_duration_text(clk.target_minutes)} {'business time' if clk.business_time else '24x7'}"
    due = format_instant(clk.due_at, zone)
    used = f"{point.percent} % used, " if point.laddered else ""
    if clk.target == Target.UPDATE_CADENCE:
        if point.breach:
            return f"Customer update missed: none sent within {terms} (was due {due})."
        return f"Update the customer: {used}the next update is due {due} ({terms} cadence)."
    if late_meet:
        return f"{label} target ({terms}) met late: it was due {due}."
    if point.breach:
        return f"{label} target ({terms}) breached: it was due {due}."
    return f"{label} target ({terms}) at risk: {used}due {due}."


def _record_clock_event(
    case: Case,
    clk: SlaClock,
    point: _Point,
    *,
    now: dt.datetime,
    late_meet: bool = False,
    late_with: _Point | None = None,
) -> CaseEvent:
    new = {
        "target": clk.target,
        "run": clk.run,
        "due_at": _iso(clk.due_at),
        "clock": clk.pk,
        "percent": point.percent,
    }
    if late_with is not None:
        new |= {"late": True, "warn_at": _iso(point.reached_at)}
    return record_event(
        case,
        _event_kind(clk, breach=point.breach),
        actor=None,
        now=now,
        field=clk.target,
        new=new,
        body=_describe(clk, point, late_meet=late_meet, late_with=late_with),
    )


def _outbound(case: Case, clk: SlaClock, point: _Point) -> OutboundEvent:
    return outbound.sla_event(
        case, clk, breach=point.breach, percent=point.percent, reached_at=point.reached_at, late=point.late
    )


def _publish(events: list[OutboundEvent], *, now: dt.datetime) -> None:
    """Hand the recorded warnings and breaches to the webhook outbox (same transaction)."""
    if events:
        outbound_events.send(sender=SlaClock, events=events, now=now)


@dataclass(frozen=True)
class _Preferences:
    zone: dt.tzinfo
    email: bool = True
    sla_warnings: bool = True


class _Recipients:
    """Who hears about a case's SLA events, resolved when they fire: the ladder's rungs, the
    managers, team members, team leads, the duty manager and everyone's preferences, each loaded
    at most once per sweep (``now``)."""

    def __init__(self, *, now: dt.datetime | None = None) -> None:
        self.now = now
        self._managers: list | None = None
        self._team_members: dict[int, list] = {}
        self._team_leads: dict[int, Any] = {}
        self._duty_manager: Any = None
        self._duty_loaded = False
        self._preferences: dict[int, _Preferences] = {}
        self._thresholds: dict[tuple[int | None, str, int], WarningThreshold] | None = None

    def preferences(self, people: Iterable) -> dict[int, _Preferences]:
        """Each person's zone and notification choices (one query for those not seen yet)."""
        missing = [p.pk for p in people if p.pk not in self._preferences]
        if missing:
            rows = {row.user_id: row for row in StaffProfile.objects.filter(user_id__in=missing)}
            for pk in missing:
                row = rows.get(pk)
                self._preferences[pk] = (
                    _Preferences(default_zone())
                    if row is None
                    else _Preferences(
                        as_zone(row.time_zone) or default_zone(), row.email_notifications, row.sla_warnings
                    )
                )
        return {p.pk: self._preferences[p.pk] for p in people}

    @property
    def managers(self) -> list:
        if self._managers is None:
            self._managers = active_managers()
        return self._managers

    def threshold(self, clk: SlaClock, point: _Point) -> WarningThreshold | None:
        """The rung of the clock's policy for this point, as configured now (None: the default)."""
        if self._thresholds is None:  # a few dozen rows: all of them, once
            self._thresholds = {(t.policy_id, t.target, t.percent): t for t in WarningThreshold.objects.all()}
        return self._thresholds.get((clk.policy_id, clk.target, point.percent))

    def sends_webhook(self, clk: SlaClock, point: _Point) -> bool:
        rung = self.threshold(clk, point)
        return True if rung is None else rung.webhook

    def prefetch_teams(self, cases: Iterable[Case]) -> None:
        team_ids = {c.team_id for c in cases if c.assignee_id is None and c.team_id is not None}
        team_ids -= set(self._team_members)
        if not team_ids:
            return
        through = Team.members.through
        rows = through.objects.filter(team_id__in=team_ids, user__is_active=True).select_related("user")
        for team_id in team_ids:
            self._team_members[team_id] = []
        for row in rows:
            self._team_members[row.team_id].append(row.user)

    def owners(self, case: Case) -> list:
        """The assignee, else the members of the case's team."""
        if case.assignee_id is not None and case.assignee.is_active:
            return [case.assignee]
        if case.team_id is not None:
            if case.team_id not in self._team_members:
                self.prefetch_teams([case])
            return self._team_members.get(case.team_id, [])
        return []

    def team_lead(self, case: Case) -> Any:
        """The lead of the case's team now, if it has an active one."""
        if case.team_id is None:
            return None
        if case.team_id not in self._team_leads:
            row = TeamLead.objects.filter(team_id=case.team_id, user__is_active=True).select_related("user")
            lead = row.first()
            self._team_leads[case.team_id] = lead.user if lead is not None else None
        return self._team_leads[case.team_id]

    def duty_manager(self) -> Any:
        """The manager whose shift covers the sweep's instant (the latest-starting one), if any."""
        if not self._duty_loaded:
            shift = None
            if self.now is not None:
                shift = (
                    DutyShift.objects.filter(
                        starts_at__lte=self.now, ends_at__gt=self.now, user__is_active=True
                    )
                    .select_related("user")
                    .order_by("-starts_at", "-id")
                    .first()
                )
            self._duty_manager = shift.user if shift is not None else None
            self._duty_loaded = True
        return self._duty_manager

    def of_role(self, role: str, case: Case) -> list:
        """The people a rung's ``role`` names for ``case`` now; the managers stand in for a team
        lead or a duty manager nobody is (answering for something nobody else does)."""
        if role == Recipient.ASSIGNEE:
            return list(self.owners(case))
        if role == Recipient.TEAM_LEAD:
            lead = self.team_lead(case)
            return [lead] if lead is not None else list(self.managers)
        if role == Recipient.DUTY_MANAGER:
            duty = self.duty_manager()
            return [duty] if duty is not None else list(self.managers)
        if role == Recipient.MANAGERS:
            return list(self.managers)
        return []

    def for_point(self, case: Case, clk: SlaClock, point: _Point) -> tuple[list, bool]:
        """Who is told of ``point``, and whether the case's owners are among them (the team's
        mailbox then stands for an unassigned case's members)."""
        rung = self.threshold(clk, point)
        if rung is None:
            return self.for_event(case, clk, breach=point.breach), True
        people = [person for role in rung.notify for person in self.of_role(role, case)]
        return _unique(people), Recipient.ASSIGNEE in rung.notify

    def for_event(self, case: Case, clk: SlaClock, *, breach: bool) -> list:
        """The default: the owners, and for P1 and P2 the managers (not for a cadence reminder)."""
        people = list(self.owners(case))
        reminder = clk.target == Target.UPDATE_CADENCE and not breach
        if case.severity in MANAGER_SEVERITIES and not reminder:
            people += self.managers
        return _unique(people)


def _unique(people: Iterable) -> list:
    unique: dict[int, Any] = {}
    for person in people:
        unique.setdefault(person.pk, person)
    return list(unique.values())


def _case_url(case: Case) -> str:
    try:
        return reverse("cases:detail", args=[case.key])
    except NoReverseMatch:
        return f"/cases/{case.key}/"


def _notify(
    case: Case,
    clk: SlaClock,
    points: Sequence[_Point],
    *,
    now: dt.datetime,
    recipients: _Recipients,
    notes: list[Notification],
) -> list[OutboundMessage]:
    """Add the in-app notifications to ``notes`` (written in the recording transaction, once per
    recipient and key) and return the outbox rows of the e-mails to send after the commit.

    One notification per claim: of its last point (the breach, or the highest warning), to the
    people of every point recorded with it, saying which earlier warnings came too late."""
    head, missed = points[-1], [p for p in points[:-1] if p.late]
    breach = head.breach
    kind = _event_kind(clk, breach=breach)
    if clk.target == Target.UPDATE_CADENCE:
        headline = f"{case.severity}: customer update {'missed' if breach else 'due soon'}"
    else:
        headline = f"{case.severity}: {_target_label(clk.target)} {'breached' if breach else 'at risk'}"
    if head.laddered and not breach:
        headline += f" ({head.percent} %)"
    title = f"{case.key} {headline}"
    url = _case_url(case)
    people: list = []
    with_owners = False
    for point in points:
        told, owners_told = recipients.for_point(case, clk, point)
        people += told
        with_owners = with_owners or owners_told
    people = _unique(people)
    prefs = recipients.preferences(people)
    if not breach:  # warnings are optional; breaches always reach everyone
        people = [p for p in people if prefs[p.pk].sla_warnings]

    def body_in(zone: dt.tzinfo) -> str:
        return f"{case.title}\n{_describe(clk, head, missed=missed, zone=zone)}"

    key = f"sla:{clk.pk}:{head.suffix}"
    notes.extend(
        Notification(
            recipient=person,
            kind=kind,
            title=title[:300],
            body=body_in(prefs[person.pk].zone),
            url=url,
            created_at=now,
            dedupe_key=key,
        )
        for person in people
    )
    mailed = [p for p in people if p.email and prefs[p.pk].email]
    addresses = [p.email for p in mailed]
    if with_owners and case.assignee_id is None and case.team_id is not None and case.team.email:
        owners = {p.pk for p in recipients.owners(case)}
        mailed = [p for p in mailed if p.pk not in owners]
        addresses = [case.team.email] + [p.email for p in mailed]
    if not addresses:
        return []
    # One mail for all its readers: in their zone when they share one, else the site's.
    zones = {str(prefs[p.pk].zone) for p in mailed}
    mail_zone = (
        prefs[mailed[0].pk].zone if len(zones) == 1 and len(mailed) == len(addresses) else default_zone()
    )
    body = body_in(mail_zone)
    return [
        outbox.build(
            kind=MailKind.CADENCE_REMINDER if clk.target == Target.UPDATE_CADENCE else MailKind.NOTIFICATION,
            subject=f"[{case.key}] {headline}",
            body=f"{body}\n\n{settings.SITE_URL}{url}\n",
            to=sorted(set(addresses)),
            headers={"X-SupportDesk-Case": case.key, "X-SupportDesk-Notification": key},
            case_id=case.pk,
            dedupe_key=key,
            now=now,
        )
    ]


# =============================================================================== calendars, policies


@dataclass(frozen=True)
class OpeningRangeInput:
    weekday: int
    start: dt.time
    end: dt.time


def _validation_error(errors: dict[str, list[str]]) -> None:
    if errors:
        raise ValidationError(errors)


def validate_calendar(
    *,
    time_zone: str,
    always_open: bool,
    holiday_country: str,
    holiday_subdivision: str,
    opening_hours: Sequence[OpeningRangeInput],
    custom_holidays: Sequence[tuple[dt.date, str]],
    year: int,
) -> dict[str, list[str]]:
    """Field errors of a calendar (empty if it can count business time)."""
    errors: dict[str, list[str]] = {}
    try:
        validate_time_zone(time_zone)
    except ValidationError:
        errors["time_zone"] = [f"“{time_zone}” is not a known time zone (e.g. Europe/Berlin)."]
    if holiday_subdivision and not holiday_country:
        errors["holiday_subdivision"] = ["Give the country of this subdivision too."]
    if holiday_country:
        try:
            clock.holiday_dates(holiday_country, None, [year])
        except ValueError:
            errors["holiday_country"] = [f"“{holiday_country}” is not a country the holiday library knows."]
        else:
            if holiday_subdivision:
                try:
                    clock.holiday_dates(holiday_country, holiday_subdivision, [year])
                except ValueError:
                    errors["holiday_subdivision"] = [
                        f"“{holiday_subdivision}” is not a subdivision of {holiday_country}."
                    ]
    dates = [d for d, _ in custom_holidays]
    if len(set(dates)) != len(dates):
        errors["custom_holidays"] = ["Each custom holiday date may appear only once."]
    if always_open:
        if opening_hours:
            errors["opening_hours"] = ["A 24x7 calendar has no opening hours: clear them or untick 24x7."]
        if holiday_country or custom_holidays:
            errors.setdefault("custom_holidays", []).append(
                "A 24x7 calendar has no holidays: clear them or untick 24x7."
            )
        return errors
    if not opening_hours:
        errors["opening_hours"] = ["Give at least one opening range, or make the calendar 24x7."]
        return errors
    ranges = []
    hour_errors = []
    for item in opening_hours:
        try:
            ranges.append(clock.OpeningRange(weekday=item.weekday, start=item.start, end=item.end))
        except ValueError:
            hour_errors.append(
                f"{_weekday_name(item.weekday)} {item.start:%H:%M}-{_end_text(item.end)}: "
                "the start must be before the end (00:00 as end means midnight, 24:00)."
            )
    if not hour_errors and "time_zone" not in errors:
        try:
            clock.Calendar(tz=time_zone, ranges=tuple(ranges))
        except ValueError:
            hour_errors.append(_overlap_message(ranges))
    if hour_errors:
        errors["opening_hours"] = hour_errors
    return errors


def _weekday_name(weekday: int) -> str:
    names = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    return names[weekday] if 0 <= weekday < 7 else f"Weekday {weekday}"


def _end_text(end: dt.time) -> str:
    return "24:00" if end == dt.time(0) else f"{end:%H:%M}"


def _overlap_message(ranges: list[clock.OpeningRange]) -> str:
    by_day: dict[int, list[clock.OpeningRange]] = {}
    for r in sorted(ranges, key=lambda r: (r.weekday, r.start_offset_us)):
        same = by_day.setdefault(r.weekday, [])
        if same and same[-1].end_offset_us > r.start_offset_us:
            return f"Opening hours overlap on {_weekday_name(r.weekday)}: {same[-1]} and {r}."
        same.append(r)
    return "Opening hours overlap."


def save_calendar(
    calendar: BusinessCalendar | None,
    *,
    name: str,
    time_zone: str,
    always_open: bool,
    holiday_country: str,
    holiday_subdivision: str,
    is_default: bool,
    opening_hours: Sequence[OpeningRangeInput],
    custom_holidays: Sequence[tuple[dt.date, str]],
    organisations: Iterable[Organisation] | None,
    now: dt.datetime,
) -> BusinessCalendar:
    """Create or replace a calendar (hours, holidays, organisations) or raise ValidationError.

    Existing clocks keep their due instants; the calendar counts from their next event on.
    """
    name = name.strip()
    holiday_country = holiday_country.strip().upper()
    holiday_subdivision = holiday_subdivision.strip().upper()
    errors = validate_calendar(
        time_zone=time_zone,
        always_open=always_open,
        holiday_country=holiday_country,
        holiday_subdivision=holiday_subdivision,
        opening_hours=opening_hours,
        custom_holidays=custom_holidays,
        year=now.year,
    )
    if not name:
        errors["name"] = ["A calendar needs a name."]
    else:
        clash = BusinessCalendar.objects.filter(name__iexact=name)
        if calendar is not None:
            clash = clash.exclude(pk=calendar.pk)
        if clash.exists():
            errors["name"] = [f"There is already a calendar called “{name}”."]
    errors.update(default_change_errors(calendar, is_default=is_default))
    _validation_error(errors)
    try:
        with transaction.atomic():
            if calendar is not None:
                calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
            else:
                calendar = BusinessCalendar()
            if is_default:
                unset_other_defaults(calendar)
            calendar.name = name
            calendar.time_zone = time_zone
            calendar.always_open = always_open
            calendar.holiday_country = holiday_country
            calendar.holiday_subdivision = holiday_subdivision
            calendar.is_default = is_default
            if calendar.pk is not None:
                calendar.version = F("version") + 1
            calendar.save()
            calendar.refresh_from_db()
            _replace_opening_hours(calendar, opening_hours)
            _replace_holidays(calendar, custom_holidays)
            if organisations is not None:
                _assign_organisations(calendar, list(organisations))
    except IntegrityError as exc:  # a concurrent edit made another default or took the name
        raise ValidationError(
            {"name": ["Someone else changed the calendars at the same time; reload and try again."]}
        ) from exc
    return calendar


# The writes below go row by row (a calendar has a few dozen rows at most), not through
# ``update()``/``bulk_create``: each row's save or delete is what the configuration audit trail
# records (supportdesk.core.audit), so only what really changed appears there.


def default_change_errors(calendar: BusinessCalendar | None, *, is_default: bool) -> dict[str, list[str]]:
    """The one-default rule, for a form: the stored default stays the default until another is made it."""
    if calendar is not None and calendar.is_default and not is_default:
        return {
            "is_default": ["Make another calendar the default instead; one calendar is always the default."]
        }
    return {}


def unset_other_defaults(calendar: BusinessCalendar) -> None:
    """``calendar`` becomes the only default: the previous one stops being it (caller's transaction)."""
    for other in BusinessCalendar.objects.filter(is_default=True).exclude(pk=calendar.pk):
        other.is_default = False
        other.save(update_fields=["is_default", "updated_at"])


def _replace_opening_hours(calendar: BusinessCalendar, opening_hours: Sequence[OpeningRangeInput]) -> None:
    wanted = Counter((h.weekday, h.start, h.end) for h in opening_hours)
    for row in OpeningHours.objects.filter(calendar=calendar):
        key = (row.weekday, row.start, row.end)
        if wanted[key] > 0:
            wanted[key] -= 1  # unchanged
        else:
            row.delete()
    for (weekday, start, end), count in sorted(wanted.items()):
        for _ in range(count):
            OpeningHours.objects.create(calendar=calendar, weekday=weekday, start=start, end=end)


def _replace_holidays(calendar: BusinessCalendar, custom_holidays: Sequence[tuple[dt.date, str]]) -> None:
    wanted = {day: name[:100] for day, name in custom_holidays}
    for row in CustomHoliday.objects.filter(calendar=calendar):
        if row.date not in wanted:
            row.delete()
            continue
        name = wanted.pop(row.date)
        if row.name != name:
            row.name = name
            row.save(update_fields=["name"])
    for day, name in sorted(wanted.items()):
        CustomHoliday.objects.create(calendar=calendar, date=day, name=name)


def _assign_organisations(calendar: BusinessCalendar, organisations: list[Organisation]) -> None:
    wanted = {o.pk for o in organisations}
    for row in OrganisationCalendar.objects.filter(calendar=calendar).exclude(organisation_id__in=wanted):
        row.delete()
    existing = {
        row.organisation_id: row for row in OrganisationCalendar.objects.filter(organisation_id__in=wanted)
    }
    for row in existing.values():
        if row.calendar_id != calendar.pk:  # moved here from another calendar
            row.calendar = calendar
            row.save(update_fields=["calendar"])
    for org_id in sorted(wanted - set(existing)):
        OrganisationCalendar.objects.create(organisation_id=org_id, calendar=calendar)


def delete_calendar(calendar: BusinessCalendar) -> None:
    """Delete a calendar nobody uses, or raise ValidationError."""
    with transaction.atomic():
        calendar = BusinessCalendar.objects.select_for_update().get(pk=calendar.pk)
        if calendar.is_default:
            raise ValidationError(
                {"is_default": ["The default calendar cannot be deleted; make another the default."]}
            )
        used = OrganisationCalendar.objects.filter(calendar=calendar).count()
        if used:
            raise ValidationError(
                {"organisations": [f"{used} organisation(s) use this calendar; move them to another first."]}
            )
        calendar.delete()


def save_policy(
    policy: SlaPolicy | None,
    *,
    tier: str,
    severity: str,
    business_time: bool,
    warning_ratio: float,
    first_response_minutes: int | None,
    triage_minutes: int | None,
    update_cadence_minutes: int | None,
    resolution_minutes: int | None,
) -> SlaPolicy:
    """Create or change a policy, or raise ValidationError. Running clocks keep their terms."""
    errors: dict[str, list[str]] = {}
    if tier not in Tier.values:
        errors["tier"] = [f"“{tier}” is not a tier; use one of {', '.join(Tier.values)}."]
    if severity not in Severity.values:
        errors["severity"] = [f"“{severity}” is not a severity; use one of {', '.join(Severity.values)}."]
    if not 0 < warning_ratio < 1:
        errors["warning_ratio"] = ["The warning point is a share of the target between 0 and 1 (e.g. 0.75)."]
    minutes = {
        "first_response_minutes": first_response_minutes,
        "triage_minutes": triage_minutes,
        "update_cadence_minutes": update_cadence_minutes,
        "resolution_minutes": resolution_minutes,
    }
    for name, value in minutes.items():
        if value is not None and not 1 <= value <= MAX_TARGET_MINUTES:
            errors[name] = [f"Give a number of minutes from 1 to {MAX_TARGET_MINUTES}, or leave it empty."]
    if not errors:
        clash = SlaPolicy.objects.filter(tier=tier, severity=severity)
        if policy is not None:
            clash = clash.exclude(pk=policy.pk)
        if clash.exists():
            errors["severity"] = [f"There is already a policy for {tier} {severity}; change that one."]
    _validation_error(errors)
    policy = policy or SlaPolicy()
    policy.tier = tier
    policy.severity = severity
    policy.business_time = business_time
    policy.warning_ratio = warning_ratio
    for name, value in minutes.items():
        setattr(policy, name, value)
    try:
        with transaction.atomic():
            policy.save()
    except IntegrityError as exc:
        raise ValidationError({"severity": [f"There is already a policy for {tier} {severity}."]}) from exc
    return policy


# =============================================================================== the warning ladder


@dataclass(frozen=True)
class ThresholdInput:
    """One rung as a manager gives it: at ``percent`` of ``target`` (100: the breach), tell
    ``notify`` (``sla.models.Recipient`` codes) and, with ``webhook``, the webhook subscribers."""

    target: str
    percent: int
    notify: Sequence[str] = ()
    webhook: bool = True


def ladder_errors(thresholds: Sequence[ThresholdInput]) -> list[str]:
    """What is wrong with a ladder, one sentence per problem (empty if it can be saved)."""
    errors: list[str] = []
    seen: set[tuple[str, int]] = set()
    for item in thresholds:
        name = f"{item.target} {item.percent} %"
        if item.target not in Target.values:
            errors.append(f"“{item.target}” is not a target; use one of {', '.join(Target.values)}.")
            continue
        if isinstance(item.percent, bool) or not isinstance(item.percent, int):
            errors.append(f"{_target_label(item.target)}: give the share as a whole percentage.")
            continue
        name = f"{_target_label(item.target)} at {item.percent} %"
        if not 1 <= item.percent <= BREACH_PERCENT:
            errors.append(f"{name}: give a percentage from 1 to 100 (100 is the breach).")
        if (item.target, item.percent) in seen:
            errors.append(f"{name} is given twice; each percentage once per target.")
        seen.add((item.target, item.percent))
        unknown = [code for code in item.notify if code not in Recipient.values]
        if unknown:
            errors.append(
                f"{name}: “{', '.join(map(str, unknown))}” is not someone to tell; "
                f"use {', '.join(Recipient.values)}."
            )
        if len(set(item.notify)) != len(item.notify):
            errors.append(f"{name}: name each recipient once.")
        if not item.notify and not item.webhook:
            errors.append(f"{name} tells nobody: choose whom to tell, or the webhook.")
    return errors


def save_ladder(policy: SlaPolicy, *, thresholds: Sequence[ThresholdInput]) -> list[WarningThreshold]:
    """Replace the policy's warning ladder (every target), or raise ValidationError.

    Clocks running now keep the shares they started (or were re-targeted) with; whom a rung tells
    and whether it sends a webhook are read when it fires, so those changes apply at once.
    """
    errors = ladder_errors(thresholds)
    if errors:
        raise ValidationError({"thresholds": errors})
    wanted = {(t.target, t.percent): t for t in thresholds}
    # Row by row, so the configuration audit trail records only what really changed.
    with transaction.atomic():
        policy = SlaPolicy.objects.select_for_update().get(pk=policy.pk)
        for row in WarningThreshold.objects.filter(policy=policy):
            item = wanted.pop((row.target, row.percent), None)
            if item is None:
                row.delete()
                continue
            notify = list(item.notify)
            if (row.notify, row.webhook) != (notify, item.webhook):
                row.notify, row.webhook = notify, item.webhook
                row.save(update_fields=["notify", "webhook"])
        for (target, percent), item in sorted(wanted.items()):
            WarningThreshold.objects.create(
                policy=policy, target=target, percent=percent, notify=list(item.notify), webhook=item.webhook
            )
    return list(WarningThreshold.objects.filter(policy=policy).order_by("target", "percent"))
