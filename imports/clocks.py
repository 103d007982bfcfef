"""SLA clocks of an imported case: the rows a live case with the same history would end with.

A live case's clocks move in ``sla.services`` as each event is recorded, and the sweep records
warnings and breaches as deadlines pass. An imported case arrives with its whole history at once,
so this module replays it: the same rules, applied in memory, event by event, in time order, then
written in bulk (no signal, no timeline event, no notification). The rules are those of
``sla.services`` (see its module docstring), with the sweep made exact:

* between two events, a running clock whose warning point passes is warned at that instant
  (``warned_at = warn_at``), and one whose due instant passes is breached then
  (``breached_at = due_at``); a clock met later still gets its ``met_at`` (met late);
* at the end, the same happens up to the moment of the import, so the live sweep finds nothing
  overdue among imported clocks and sends nothing; deadlines still ahead stay for it.

Only targets the mapping can measure get clocks: the first response when the mapping says which
update is the first staff response, triage when it says what triage is, the update cadence when it
says which updates are public replies; the resolution always. A target the source cannot stop
would otherwise show as breached although it was met.

Policies and calendars are those a live case of the same organisation and severity would use;
business time is counted with ``imports.businesstime`` (``sla.clock``'s arithmetic, tabulated).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from cases.models import OPEN_STATUSES, Status
from sla.models import ClockState, Target

# Plain strings: enum member access costs a descriptor call, and this runs for every imported case.
RUNNING, PAUSED, MET = ClockState.RUNNING.value, ClockState.PAUSED.value, ClockState.MET.value
BREACHED, CANCELLED = ClockState.BREACHED.value, ClockState.CANCELLED.value
FIRST_RESPONSE, TRIAGE = Target.FIRST_RESPONSE.value, Target.TRIAGE.value
UPDATE_CADENCE, RESOLUTION = Target.UPDATE_CADENCE.value, Target.RESOLUTION.value
TARGETS = tuple(Target.values)
S_TRIAGED, S_WAITING = Status.TRIAGED.value, Status.WAITING_ON_CUSTOMER.value
S_RESOLVED, S_REOPENED, S_NEW = Status.RESOLVED.value, Status.REOPENED.value, Status.NEW.value
OPEN = frozenset(s.value for s in OPEN_STATUSES)
LIVE = (RUNNING, PAUSED)
PAUSING_TARGETS = (RESOLUTION, UPDATE_CADENCE)
ZERO = dt.timedelta(0)


class Arithmetic(Protocol):
    def add(self, start: dt.datetime, delta: dt.timedelta) -> dt.datetime: ...

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta: ...


@dataclass(frozen=True)
class Terms:
    """What a clock takes from its policy."""

    policy_id: int
    business_time: bool
    warning_ratio: float
    minutes: dict[str, int | None]


@dataclass
class ClockRow:
    """The fields of one ``sla.models.SlaClock`` row (``case_id`` is added when written)."""

    target: str
    run: int
    policy_id: int | None
    target_minutes: int
    business_time: bool
    warning_ratio: float
    started_at: dt.datetime
    state: str = RUNNING
    due_at: dt.datetime | None = None
    warn_at: dt.datetime | None = None
    paused_at: dt.datetime | None = None
    pauses: list[list[str]] = field(default_factory=list)
    paused_total: dt.timedelta = ZERO
    consumed: dt.timedelta = ZERO
    remaining_at_pause: dt.timedelta | None = None
    warned_at: dt.datetime | None = None
    met_at: dt.datetime | None = None
    breached_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    # When due/warn were last computed (not stored): a deadline a re-target put in the past is
    # noticed from then on, as the live sweep would notice it.
    changed_at: dt.datetime | None = None

    @property
    def is_live(self) -> bool:
        return self.state in LIVE

    def as_fields(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "run": self.run,
            "state": self.state,
            "policy_id": self.policy_id,
            "target_minutes": self.target_minutes,
            "business_time": self.business_time,
            "warning_ratio": self.warning_ratio,
            "started_at": self.started_at,
            "due_at": self.due_at,
            "warn_at": self.warn_at,
            "paused_at": self.paused_at,
            "pauses": self.pauses,
            "paused_total": self.paused_total,
            "consumed": self.consumed,
            "remaining_at_pause": self.remaining_at_pause,
            "warned_at": self.warned_at,
            "met_at": self.met_at,
            "breached_at": self.breached_at,
            "cancelled_at": self.cancelled_at,
        }


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


class ClockReplay:
    """Feed a case's history in time order; ``finish(now)`` returns its clock rows."""

    def __init__(
        self,
        *,
        terms_for: Callable[[str], Terms | None],
        business: Arithmetic,
        round_the_clock: Arithmetic,
        measured: frozenset[str],
    ) -> None:
        self.terms_for = terms_for
        self.business = business
        self.round_the_clock = round_the_clock
        self.measured = measured
        self.by_target: dict[str, list[ClockRow]] = {t: [] for t in TARGETS}
        self.severity = ""
        self.status = S_NEW
        self.created_at: dt.datetime | None = None
        self.first_response_at: dt.datetime | None = None
        self.triaged_at: dt.datetime | None = None
        self._terms: Terms | None = None

    # --- helpers mirroring sla.services ---------------------------------------------------------

    def _calc(self, clk: ClockRow) -> Arithmetic:
        return self.business if clk.business_time else self.round_the_clock

    def _deadlines(self, clk: ClockRow) -> None:
        calc = self._calc(clk)
        target = dt.timedelta(minutes=clk.target_minutes)
        left = max(target - clk.consumed, ZERO)
        warn_left = max(target * clk.warning_ratio - clk.consumed, ZERO)
        clk.due_at = calc.add(clk.started_at, left + clk.paused_total)
        clk.warn_at = calc.add(clk.started_at, warn_left + clk.paused_total)

    def _new_clock(
        self, target: str, *, run: int, started_at: dt.datetime, now: dt.datetime, consumed=ZERO, paused=False
    ) -> ClockRow | None:
        terms = self._terms
        minutes = terms.minutes.get(target) if terms else None
        if terms is None or not minutes or target not in self.measured:
            return None
        clk = ClockRow(
            target=target,
            run=run,
            policy_id=terms.policy_id,
            target_minutes=minutes,
            business_time=terms.business_time,
            warning_ratio=terms.warning_ratio,
            started_at=started_at,
            consumed=consumed,
            changed_at=now,
        )
        self._deadlines(clk)
        if paused:
            clk.state = PAUSED
            clk.paused_at = now
            clk.remaining_at_pause = self._calc(clk).between(now, clk.due_at)
        return clk

    def _add(self, clk: ClockRow | None) -> None:
        if clk is not None:
            self.by_target[clk.target].append(clk)

    def _latest(self, target: str) -> ClockRow | None:
        runs = self.by_target[target]
        return runs[-1] if runs else None

    def _live(self, target: str) -> list[ClockRow]:
        return [c for c in self.by_target[target] if c.is_live]

    def _next_run(self, target: str) -> int:
        latest = self._latest(target)
        return latest.run + 1 if latest else 1

    def _pause(self, clk: ClockRow, now: dt.datetime) -> None:
        if clk.state != RUNNING or clk.due_at < now:
            return
        clk.state = PAUSED
        clk.paused_at = now
        clk.remaining_at_pause = self._calc(clk).between(now, clk.due_at)

    def _resume(self, clk: ClockRow, now: dt.datetime) -> None:
        if clk.state != PAUSED:
            return
        paused_at = clk.paused_at or now
        clk.pauses = [*clk.pauses, [_iso(paused_at), _iso(now)]]
        clk.paused_total += self._calc(clk).between(paused_at, now)
        clk.paused_at = None
        clk.remaining_at_pause = None
        clk.state = RUNNING
        clk.changed_at = now
        self._deadlines(clk)

    def _meet(self, clk: ClockRow, now: dt.datetime) -> None:
        if clk.state == BREACHED:
            if clk.met_at is None:
                clk.met_at = now
            return
        if not clk.is_live:
            return
        self._resume(clk, now)
        clk.met_at = now
        if now <= clk.due_at:
            clk.state = MET
        else:  # not reached when the sweep ran first; kept for parity with sla.services
            clk.state = BREACHED
            clk.breached_at = now

    def _cancel(self, clk: ClockRow, now: dt.datetime) -> None:
        if not clk.is_live:
            return
        self._resume(clk, now)
        clk.state = CANCELLED
        clk.cancelled_at = now

    def _retarget(self, clk: ClockRow, now: dt.datetime) -> None:
        terms = self._terms
        minutes = terms.minutes.get(clk.target) if terms else None
        if terms is None or not minutes:
            self._cancel(clk, now)
            return
        clk.policy_id = terms.policy_id
        clk.target_minutes = minutes
        clk.business_time = terms.business_time
        clk.warning_ratio = terms.warning_ratio
        calc = self._calc(clk)
        clk.paused_total = sum(
            (calc.between(dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in clk.pauses),
            ZERO,
        )
        clk.changed_at = now
        self._deadlines(clk)
        if clk.state == PAUSED and clk.paused_at is not None:
            clk.remaining_at_pause = calc.between(clk.paused_at, clk.due_at)

    def _active_time(self, clk: ClockRow, end: dt.datetime) -> dt.timedelta:
        counted = self._calc(clk).between(clk.started_at, end) - clk.paused_total
        return clk.consumed + max(counted, ZERO)

    # --- the sweep, made exact -------------------------------------------------------------------

    def advance(self, now: dt.datetime) -> None:
        """Record the warnings and breaches whose instant passed before ``now``."""
        for runs in self.by_target.values():
            for clk in runs:
                if clk.state != RUNNING:
                    continue
                changed = clk.changed_at or clk.started_at
                if clk.warned_at is None and clk.warn_at < now and clk.warn_at <= clk.due_at:
                    clk.warned_at = max(clk.warn_at, changed)
                if clk.due_at < now:
                    clk.state = BREACHED
                    clk.breached_at = max(clk.due_at, changed)

    # --- reactions to the case's history (sla.services.on_case_event) ----------------------------

    def created(self, now: dt.datetime, *, severity: str) -> None:
        self.created_at = now
        self.severity = severity
        self._terms = self.terms_for(severity)
        for target in TARGETS:
            self._add(self._new_clock(target, run=1, started_at=now, now=now))

    def severity_changed(self, now: dt.datetime, *, severity: str) -> None:
        self.advance(now)
        self.severity = severity
        self._terms = self.terms_for(severity)
        for runs in self.by_target.values():
            for clk in runs:
                if clk.is_live:
                    self._retarget(clk, now)
        if self._terms is None:
            return
        is_open = self.status in OPEN
        waiting = self.status == S_WAITING
        needed = {
            FIRST_RESPONSE: self.first_response_at is None and is_open,
            TRIAGE: self.triaged_at is None and is_open,
            RESOLUTION: is_open,
            UPDATE_CADENCE: is_open,
        }
        for target, wanted in needed.items():
            if not wanted or self.by_target[target]:
                continue
            start = now if target == UPDATE_CADENCE else self.created_at
            paused = waiting and target in PAUSING_TARGETS
            self._add(self._new_clock(target, run=1, started_at=start, now=now, paused=paused))

    def staff_reply(self, now: dt.datetime) -> None:
        """A public reply by staff: first response met, this update met, the next one started."""
        self.advance(now)
        if self.first_response_at is None:
            self.first_response_at = now
        for target in (FIRST_RESPONSE, UPDATE_CADENCE):
            latest = self._latest(target)
            if latest is not None:
                self._meet(latest, now)
        if self.status in OPEN:
            paused = self.status == S_WAITING
            run = self._next_run(UPDATE_CADENCE)
            self._add(self._new_clock(UPDATE_CADENCE, run=run, started_at=now, now=now, paused=paused))

    def first_response(self, now: dt.datetime) -> None:
        """The first staff response, where the source records no reply as such (no cadence)."""
        self.advance(now)
        if self.first_response_at is None:
            self.first_response_at = now
        latest = self._latest(FIRST_RESPONSE)
        if latest is not None:
            self._meet(latest, now)

    def triaged(self, now: dt.datetime) -> None:
        """Triage reached without a ``triaged`` status (the mapping's [triage] rule)."""
        self.advance(now)
        if self.triaged_at is None:
            self.triaged_at = now
        latest = self._latest(TRIAGE)
        if latest is not None:
            self._meet(latest, now)

    def status_changed(self, now: dt.datetime, *, old: str, new: str) -> None:
        self.advance(now)
        self.status = new
        if old == S_WAITING:
            for target in PAUSING_TARGETS:
                for clk in self._live(target):
                    self._resume(clk, now)
        if new == S_TRIAGED:
            if self.triaged_at is None:
                self.triaged_at = now
            if (latest := self._latest(TRIAGE)) is not None:
                self._meet(latest, now)
        elif new == S_WAITING:
            for target in PAUSING_TARGETS:
                for clk in self._live(target):
                    self._pause(clk, now)
        elif new == S_RESOLVED:
            if (latest := self._latest(RESOLUTION)) is not None:
                self._meet(latest, now)
            for target in (UPDATE_CADENCE, FIRST_RESPONSE, TRIAGE):
                for clk in self._live(target):
                    self._cancel(clk, now)
        elif new == S_REOPENED:
            for target in PAUSING_TARGETS:
                for clk in self._live(target):
                    self._cancel(clk, now)
            previous = self._latest(RESOLUTION)
            consumed = ZERO
            if previous is not None:
                consumed = self._active_time(previous, previous.met_at or previous.cancelled_at or now)
            run = self._next_run(RESOLUTION)
            self._add(self._new_clock(RESOLUTION, run=run, started_at=now, now=now, consumed=consumed))
            run = self._next_run(UPDATE_CADENCE)
            self._add(self._new_clock(UPDATE_CADENCE, run=run, started_at=now, now=now))

    def finish(self, now: dt.datetime) -> list[ClockRow]:
        """Settle everything due before ``now`` (the import) and return the rows, oldest run first."""
        self.advance(now)
        return [clk for target in sorted(self.by_target) for clk in self.by_target[target]]
