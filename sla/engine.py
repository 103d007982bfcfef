"""The SLA clock rules, once: a case's clocks and what each domain event does to them.

Pure code (no ORM, no settings): clocks are plain values (:class:`Clock`), a policy's terms are
:class:`Terms`, and business time is counted by an arithmetic the caller hands in (``sla.clock``'s
:class:`~sla.clock.Calendar` or :class:`~sla.clock.TabulatedCalendar`). :class:`CaseClocks` holds
one case's clocks and applies each event in time order; every method returns the :class:`Changes`
it made. Two callers use it:

* the live service (``sla.services``) loads the case's clock rows locked, applies the one event
  just recorded, writes back the rows that changed and records the warnings and breaches on the
  timeline; its sweep asks :func:`observe` what to record for each due clock and claims it;
* the history import (``imports.services``) replays a whole case's history, calling
  ``advance(at, exact=True)`` before each event and at the import's ``now``.

Rules (DOMAIN.md, issue 4), and the choices made where they were open:

* created -> first_response, triage, update_cadence (run 1) and resolution start, for the targets the
  policy of (organisation tier, severity) has (and, for an import, that its source can measure).
* a public reply by staff -> first_response is met; the live update_cadence run is met (or a missed
  one gets its ``met_at``) and the next run starts (paused if the case waits on the customer; none
  once the case is resolved). A customer's reply meets nothing: it moves clocks only through the
  status change it causes.
* status ``triaged`` -> triage is met. ``waiting_on_customer`` -> resolution and update_cadence
  pause (a clock already past due is not paused: it is breached); leaving it -> they resume and
  their due moves by the business time spent paused.
* ``resolved`` -> resolution is met; the update cadence and any first_response/triage still live
  are *cancelled* (a resolved case needs no updates; cancelled clocks do not count for compliance).
* ``reopened`` -> a new resolution run starts, carrying the business time used by the earlier runs
  in ``consumed``, and a new update_cadence run starts.
* severity changed -> live clocks are re-targeted with the new policy from their original start
  (pauses recounted); a target the new policy lacks is cancelled; a target it adds starts as if it
  had applied from the case's creation. Breached clocks stay breached: that breach happened.
* a warning fires once a running clock's warning point has come, a breach once its due instant
  has passed; each once per clock run. A warning first seen after its due instant is recorded
  with the breach (``late``), so it still fires once and before it.
* the warning ladder: a policy may give a target several warning shares (``Terms.ladders``, e.g.
  50 %, 75 % and 90 %). The first is the clock's own warning (``warning_ratio``, ``warn_at``,
  ``warned_at``), the others its :class:`Rung` s; each point lands where that share of the target
  is used, counted like the due instant (business time, pauses, earlier runs). Each fires once per
  clock run; one first seen after a later point or the breach has passed fires then, ``late``,
  before it. A re-target takes the new ladder's shares: the clock's own warning stays recorded as
  it was, and a new rung counts as fired when the run was already warned at that share or above.
* a clock met after its due instant that nobody had seen breached is breached then (``late``),
  with its warning if that was never recorded either.
* advancing to an instant records what came due: a sweep (``exact=False``) stamps the instant it
  looked; a replay of history (``exact=True``) stamps the instant each one passed (but never
  before the clock's deadlines were last computed: a re-target that put them in the past is
  noticed from then on, as a sweep would).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

# The codes of ``sla.models.Target``/``ClockState`` and ``cases.models.Status`` the rules speak of
# (tests/sla/test_engine.py checks they are the models' codes; this module imports no model).
FIRST_RESPONSE, TRIAGE = "first_response", "triage"
UPDATE_CADENCE, RESOLUTION = "update_cadence", "resolution"
#: Every target, in the order clocks are started.
TARGETS = (FIRST_RESPONSE, TRIAGE, UPDATE_CADENCE, RESOLUTION)
RUNNING, PAUSED, MET, BREACHED, CANCELLED = "running", "paused", "met", "breached", "cancelled"
LIVE = (RUNNING, PAUSED)
#: Targets that stop counting while the case waits on the customer.
PAUSING_TARGETS = (RESOLUTION, UPDATE_CADENCE)
NEW, TRIAGED, WAITING_ON_CUSTOMER = "new", "triaged", "waiting_on_customer"
RESOLVED, REOPENED = "resolved", "reopened"
#: The open statuses (``cases.models.OPEN_STATUSES``).
OPEN = frozenset({NEW, TRIAGED, "in_progress", WAITING_ON_CUSTOMER, "waiting_on_engineering", REOPENED})

ZERO = dt.timedelta(0)


class Arithmetic(Protocol):
    """Business time of one calendar: ``sla.clock.Calendar``, ``sla.clock.TabulatedCalendar``."""

    def add(self, start: dt.datetime, delta: dt.timedelta) -> dt.datetime: ...

    def between(self, start: dt.datetime, end: dt.datetime) -> dt.timedelta: ...


#: ``counting(business_time, since, until)``: the arithmetic of a clock counting business time (else
#: 24x7) for instants from ``since`` to about ``until`` (which holidays a calendar needs).
Counting = Callable[[bool, dt.datetime, dt.datetime], Arithmetic]


@dataclass(frozen=True)
class Terms:
    """What a clock takes from its policy: targets in minutes (None: not measured); per target, the
    warning shares of its ladder in rising order (a target without one warns at ``warning_ratio``)."""

    policy_id: int | None
    business_time: bool
    warning_ratio: float
    minutes: Mapping[str, int | None]
    ladders: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def warnings(self, target: str) -> tuple[float, ...]:
        """The warning shares of ``target``'s clocks, lowest first (at least one)."""
        return self.ladders.get(target) or (self.warning_ratio,)


#: The fields of a clock that are stored (``sla.models.SlaClock``'s, without the case).
STORED_FIELDS = (
    "target", "run", "state", "policy_id", "target_minutes", "business_time", "warning_ratio",
    "started_at", "due_at", "warn_at", "paused_at", "pauses", "paused_total", "consumed",
    "remaining_at_pause", "warned_at", "met_at", "breached_at", "cancelled_at",
)  # fmt: skip


@dataclass(slots=True)
class Rung:
    """A further warning point of a clock, after its own warning: at ``ratio`` of the target.

    ``warn_at`` is None while the clock does not run and the rung has not fired (a stored rung the
    sweep cannot find, which a resume or a re-target computes again)."""

    ratio: float
    warn_at: dt.datetime | None = None
    warned_at: dt.datetime | None = None
    #: The stored row's identity, if it has one (not used by the rules).
    key: Any = field(default=None, compare=False)

    @property
    def percent(self) -> int:
        return percent_of(self.ratio)


def percent_of(ratio: float) -> int:
    """A share as the whole percentage a ladder names it by (0.75 -> 75)."""
    return round(ratio * 100)


@dataclass(slots=True)
class Clock:
    """One run of one target of one case (the fields of an ``SlaClock`` row)."""

    target: str
    run: int
    policy_id: int | None
    target_minutes: int
    business_time: bool
    warning_ratio: float
    started_at: dt.datetime
    state: str = RUNNING
    due_at: dt.datetime = None  # type: ignore[assignment]  # set by CaseClocks when it starts the clock
    warn_at: dt.datetime = None  # type: ignore[assignment]
    paused_at: dt.datetime | None = None
    pauses: list[list[str]] = field(default_factory=list)  # finished pauses, [[ISO start, ISO end], ...]
    paused_total: dt.timedelta = ZERO
    consumed: dt.timedelta = ZERO
    remaining_at_pause: dt.timedelta | None = None
    warned_at: dt.datetime | None = None
    met_at: dt.datetime | None = None
    breached_at: dt.datetime | None = None
    cancelled_at: dt.datetime | None = None
    #: The stored row's identity, if it has one (not used by the rules).
    key: Any = field(default=None, compare=False)
    #: When ``due_at``/``warn_at`` were last computed, if known (not stored; see ``advance``).
    changed_at: dt.datetime | None = field(default=None, compare=False)
    #: The further points of its warning ladder, lowest first (stored apart: ``sla.models.ClockRung``).
    rungs: list[Rung] = field(default_factory=list)

    @property
    def is_live(self) -> bool:
        return self.state in LIVE

    def as_fields(self) -> dict[str, Any]:
        """The stored fields, by name."""
        return {name: getattr(self, name) for name in STORED_FIELDS}


class Change(NamedTuple):
    """One thing an event did to one clock. ``late``: for ``warned``, recorded after a later
    point of the ladder or the due instant had passed (with it); for ``breached``, met after its
    due instant (the meet recorded it). ``rung``: for ``warned``, which further rung of the ladder
    fired (None: the clock's own warning)."""

    kind: str
    clock: Clock
    late: bool = False
    rung: Rung | None = None

    @property
    def ratio(self) -> float:
        """The share of the target this warning stands for."""
        return self.clock.warning_ratio if self.rung is None else self.rung.ratio


class ChangeKind:
    """What a :class:`Change` did."""

    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    MET = "met"
    CANCELLED = "cancelled"
    RETARGETED = "retargeted"
    WARNED = "warned"
    BREACHED = "breached"


class Changes:
    """What one event changed, in the order it happened."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        # Plain (kind, clock, late, rung) tuples: a replay of a million events makes many and reads none.
        self.items: list[tuple[str, Clock, bool, Rung | None]] = []

    def add(self, kind: str, clock: Clock, late: bool = False, rung: Rung | None = None) -> None:
        self.items.append((kind, clock, late, rung))

    def __iter__(self) -> Iterator[Change]:
        return (Change._make(item) for item in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def of(self, kind: str) -> list[Clock]:
        return [clk for k, clk, _, _ in self.items if k == kind]

    @property
    def started(self) -> list[Clock]:
        """Clocks this event started (to insert)."""
        return self.of(ChangeKind.STARTED)

    @property
    def changed(self) -> list[Clock]:
        """Clocks that existed before this event and that it changed (to update), each once."""
        new = {id(clk) for clk in self.started}
        out: dict[int, Clock] = {}
        for _, clk, _, _ in self.items:
            if id(clk) not in new:
                out.setdefault(id(clk), clk)
        return list(out.values())

    @property
    def recorded(self) -> list[Change]:
        """The warnings and breaches, which the live service records on the case's timeline."""
        return [c for c in self if c.kind in (ChangeKind.WARNED, ChangeKind.BREACHED)]


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _points(clk: Clock) -> list[tuple[Rung | None, dt.datetime | None, dt.datetime | None]]:
    """The clock's warning points, lowest first, as (rung, warn_at, warned_at): its own warning
    (rung None), then its rungs."""
    return [(None, clk.warn_at, clk.warned_at), *((r, r.warn_at, r.warned_at) for r in clk.rungs)]


def _fire(clk: Clock, rung: Rung | None, at: dt.datetime) -> None:
    if rung is None:
        clk.warned_at = at
    else:
        rung.warned_at = at


def _park(clk: Clock) -> None:
    """The clock stopped running: its rungs that have not fired have no instant to come due at."""
    for rung in clk.rungs:
        if rung.warned_at is None:
            rung.warn_at = None


def observe(clk: Clock, now: dt.datetime, changes: Changes | None = None) -> Changes:
    """What a sweep at ``now`` records for ``clk``: a running clock past its due instant is breached
    (with its warnings, late, if they were not recorded), else each warning point it has passed is
    warned (all but the last passed late: the ladder was not swept in time)."""
    changes = Changes() if changes is None else changes
    if clk.state != RUNNING:
        return changes
    if clk.rungs:
        return _observe_ladder(clk, now, changes)
    if clk.due_at < now:
        if clk.warned_at is None:
            clk.warned_at = now
            changes.add(ChangeKind.WARNED, clk, True)
        clk.state = BREACHED
        clk.breached_at = now
        changes.add(ChangeKind.BREACHED, clk)
    elif clk.warned_at is None and clk.warn_at <= now:
        clk.warned_at = now
        changes.add(ChangeKind.WARNED, clk)
    return changes


def _observe_ladder(clk: Clock, now: dt.datetime, changes: Changes) -> Changes:
    points = _points(clk)
    if clk.due_at < now:
        for rung, _, warned_at in points:
            if warned_at is None:
                _fire(clk, rung, now)
                changes.add(ChangeKind.WARNED, clk, True, rung)
        clk.state = BREACHED
        clk.breached_at = now
        _park(clk)
        changes.add(ChangeKind.BREACHED, clk)
        return changes
    for index, (rung, warn_at, warned_at) in enumerate(points):
        if warned_at is not None or warn_at is None or warn_at > now:
            continue
        # Late: a higher point has fired already or comes due in the same look.
        late = any(w is not None or (a is not None and a <= now) for _, a, w in points[index + 1 :])
        _fire(clk, rung, now)
        changes.add(ChangeKind.WARNED, clk, late, rung)
    return changes


def _no_terms() -> Terms | None:
    return None


class CaseClocks:
    """One case's clocks (oldest run first per target) and what the rules need to know of the case.

    ``counting`` gives the business-time arithmetic of a clock; ``terms`` loads the policy terms of
    the case's current severity when first needed (``created`` and ``severity_changed`` are given
    them); ``measured``: the targets that may start (an import starts only those its source can stop).
    """

    def __init__(
        self,
        clocks: Iterable[Clock] = (),
        *,
        counting: Counting,
        terms: Callable[[], Terms | None] = _no_terms,
        status: str = NEW,
        created_at: dt.datetime | None = None,
        first_response_at: dt.datetime | None = None,
        triaged_at: dt.datetime | None = None,
        measured: Iterable[str] = TARGETS,
    ) -> None:
        self.by_target: dict[str, list[Clock]] = {t: [] for t in TARGETS}
        for clk in clocks:
            self.by_target[clk.target].append(clk)
        self.counting = counting
        self._load_terms = terms
        self._terms: Terms | None = None
        self._terms_loaded = False
        self.status = status
        self.created_at = created_at
        self.first_response_at = first_response_at
        self.triaged_at = triaged_at
        self.measured = frozenset(measured)

    # --- reading ---------------------------------------------------------------------------------

    @property
    def terms(self) -> Terms | None:
        if not self._terms_loaded:
            self._terms = self._load_terms()
            self._terms_loaded = True
        return self._terms

    def _set_terms(self, terms: Terms | None) -> None:
        self._terms, self._terms_loaded = terms, True

    def latest(self, target: str) -> Clock | None:
        runs = self.by_target[target]
        return runs[-1] if runs else None

    def live(self, target: str) -> list[Clock]:
        return [c for c in self.by_target[target] if c.state in LIVE]

    def all(self) -> list[Clock]:
        """Every clock, by target name, oldest run first."""
        return [c for target in sorted(self.by_target) for c in self.by_target[target]]

    def _next_run(self, target: str) -> int:
        latest = self.latest(target)
        return latest.run + 1 if latest else 1

    # --- one clock -------------------------------------------------------------------------------

    @staticmethod
    def _deadlines(clk: Clock, calc: Arithmetic) -> None:
        """``warn_at``/``due_at``: where the warning share / all of the target is used.

        Business time from ``started_at`` to due is what is left of the target after earlier runs
        (``consumed``) plus the business time spent paused since, so it lands where the running time
        adds up to the target.
        """
        target = dt.timedelta(minutes=clk.target_minutes)
        left = max(target - clk.consumed, ZERO)
        warn_left = max(target * clk.warning_ratio - clk.consumed, ZERO)
        clk.due_at = calc.add(clk.started_at, left + clk.paused_total)
        clk.warn_at = calc.add(clk.started_at, warn_left + clk.paused_total)
        for rung in clk.rungs:  # every point of the ladder lands the same way
            rung_left = max(target * rung.ratio - clk.consumed, ZERO)
            rung.warn_at = calc.add(clk.started_at, rung_left + clk.paused_total)

    def _start(
        self,
        changes: Changes,
        target: str,
        *,
        run: int,
        started_at: dt.datetime,
        now: dt.datetime,
        consumed: dt.timedelta = ZERO,
        paused: bool = False,
    ) -> None:
        terms = self._terms if self._terms_loaded else self.terms
        minutes = terms.minutes.get(target) if terms is not None else None
        if terms is None or not minutes or target not in self.measured:
            return
        first, *further = terms.warnings(target)
        clk = Clock(
            target=target,
            run=run,
            policy_id=terms.policy_id,
            target_minutes=minutes,
            business_time=terms.business_time,
            warning_ratio=first,
            started_at=started_at,
            consumed=consumed,
            changed_at=now,
            rungs=[Rung(ratio) for ratio in further],
        )
        calc = self.counting(clk.business_time, clk.started_at, now)
        self._deadlines(clk, calc)
        if paused:
            clk.state = PAUSED
            clk.paused_at = now
            clk.remaining_at_pause = calc.between(now, clk.due_at)
            _park(clk)
        self.by_target[target].append(clk)
        changes.add(ChangeKind.STARTED, clk)

    def _pause(self, changes: Changes, clk: Clock, now: dt.datetime) -> None:
        if clk.state != RUNNING or clk.due_at < now:
            return  # an overdue clock is breached by the sweep, not frozen
        calc = self.counting(clk.business_time, clk.started_at, now)
        clk.state = PAUSED
        clk.paused_at = now
        clk.remaining_at_pause = calc.between(now, clk.due_at)
        _park(clk)
        changes.add(ChangeKind.PAUSED, clk)

    def _resume(self, changes: Changes, clk: Clock, now: dt.datetime) -> None:
        if clk.state != PAUSED:
            return
        calc = self.counting(clk.business_time, clk.started_at, now)
        paused_at = clk.paused_at or now
        clk.pauses = [*clk.pauses, [_iso(paused_at), _iso(now)]]
        clk.paused_total += calc.between(paused_at, now)
        clk.paused_at = None
        clk.remaining_at_pause = None
        clk.state = RUNNING
        clk.changed_at = now
        self._deadlines(clk, calc)
        changes.add(ChangeKind.RESUMED, clk)

    def _meet(self, changes: Changes, clk: Clock, now: dt.datetime) -> None:
        """Stop ``clk`` as met at ``now``; late means breached (recorded here if nobody saw it)."""
        if clk.state == BREACHED:
            if clk.met_at is None:
                clk.met_at = now
                changes.add(ChangeKind.MET, clk)
            return
        if clk.state not in LIVE:
            return
        self._resume(changes, clk, now)
        clk.met_at = now
        if now <= clk.due_at:
            clk.state = MET
            _park(clk)
            changes.add(ChangeKind.MET, clk)
            return
        clk.state = BREACHED
        clk.breached_at = now
        for rung, _, warned_at in _points(clk):  # its warnings fire once too, late, with the breach
            if warned_at is None:
                _fire(clk, rung, now)
                changes.add(ChangeKind.WARNED, clk, True, rung)
        _park(clk)
        changes.add(ChangeKind.BREACHED, clk, True)

    def _cancel(self, changes: Changes, clk: Clock, now: dt.datetime) -> None:
        if clk.state not in LIVE:
            return
        self._resume(changes, clk, now)  # so the pause is on record and the time used is right
        clk.state = CANCELLED
        clk.cancelled_at = now
        _park(clk)
        changes.add(ChangeKind.CANCELLED, clk)

    def _retarget(self, changes: Changes, clk: Clock, now: dt.datetime) -> None:
        terms = self.terms
        minutes = terms.minutes.get(clk.target) if terms is not None else None
        if terms is None or not minutes:
            self._cancel(changes, clk, now)
            return
        clk.policy_id = terms.policy_id
        clk.target_minutes = minutes
        clk.business_time = terms.business_time
        first, *further = terms.warnings(clk.target)
        clk.rungs = _retargeted_rungs(clk, further)
        clk.warning_ratio = first
        calc = self.counting(clk.business_time, clk.started_at, now)
        # Finished pauses are recounted: the new policy may count in another calendar (24x7 vs business).
        clk.paused_total = sum(
            (calc.between(dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b)) for a, b in clk.pauses),
            ZERO,
        )
        clk.changed_at = now
        self._deadlines(clk, calc)
        if clk.state == PAUSED and clk.paused_at is not None:
            clk.remaining_at_pause = calc.between(clk.paused_at, clk.due_at)
        if clk.state != RUNNING:
            _park(clk)
        changes.add(ChangeKind.RETARGETED, clk)

    def _active_time(self, clk: Clock, end: dt.datetime) -> dt.timedelta:
        """Business time ``clk`` counted from its start to ``end`` (without pauses, with earlier runs)."""
        counted = (
            self.counting(clk.business_time, clk.started_at, end).between(clk.started_at, end)
            - clk.paused_total
        )
        return clk.consumed + max(counted, ZERO)

    # --- events ----------------------------------------------------------------------------------

    def created(self, now: dt.datetime, *, terms: Terms | None) -> Changes:
        """The case was created at ``now`` with a severity whose policy has ``terms``."""
        changes = Changes()
        self.created_at = now
        self._set_terms(terms)
        for target in TARGETS:
            self._start(changes, target, run=1, started_at=now, now=now)
        return changes

    def staff_reply(self, now: dt.datetime) -> Changes:
        """A public reply by staff: first response met, this update met, the next one started."""
        changes = Changes()
        if self.first_response_at is None:
            self.first_response_at = now
        for target in (FIRST_RESPONSE, UPDATE_CADENCE):
            latest = self.latest(target)
            if latest is not None:
                self._meet(changes, latest, now)
        if self.status in OPEN:
            run = self._next_run(UPDATE_CADENCE)
            paused = self.status == WAITING_ON_CUSTOMER
            self._start(changes, UPDATE_CADENCE, run=run, started_at=now, now=now, paused=paused)
        return changes

    def customer_reply(self, now: dt.datetime) -> Changes:
        """A reply from the customer meets no target; the status change it causes moves the clocks."""
        return Changes()

    def first_response(self, now: dt.datetime) -> Changes:
        """The first staff response, where the source records no reply as such (no cadence)."""
        changes = Changes()
        if self.first_response_at is None:
            self.first_response_at = now
        latest = self.latest(FIRST_RESPONSE)
        if latest is not None:
            self._meet(changes, latest, now)
        return changes

    def triaged(self, now: dt.datetime) -> Changes:
        """Triage reached without a ``triaged`` status (an import mapping's triage rule)."""
        changes = Changes()
        if self.triaged_at is None:
            self.triaged_at = now
        latest = self.latest(TRIAGE)
        if latest is not None:
            self._meet(changes, latest, now)
        return changes

    def status_changed(self, now: dt.datetime, *, old: str | None, new: str | None) -> Changes:
        """Meet, pause, resume, cancel or restart clocks for a status change ``old -> new``."""
        changes = Changes()
        self.status = new or self.status
        if old == WAITING_ON_CUSTOMER:
            for target in PAUSING_TARGETS:
                for clk in self.live(target):
                    self._resume(changes, clk, now)
        if new == TRIAGED:
            if self.triaged_at is None:
                self.triaged_at = now
            if (latest := self.latest(TRIAGE)) is not None:
                self._meet(changes, latest, now)
        elif new == WAITING_ON_CUSTOMER:
            for target in PAUSING_TARGETS:
                for clk in self.live(target):
                    self._pause(changes, clk, now)
        elif new == RESOLVED:
            if (latest := self.latest(RESOLUTION)) is not None:
                self._meet(changes, latest, now)
            for target in (UPDATE_CADENCE, FIRST_RESPONSE, TRIAGE):
                for clk in self.live(target):
                    self._cancel(changes, clk, now)
        elif new == REOPENED:
            for target in PAUSING_TARGETS:
                for clk in self.live(target):  # none normally: resolving stopped them
                    self._cancel(changes, clk, now)
            previous = self.latest(RESOLUTION)
            consumed = ZERO
            if previous is not None:
                consumed = self._active_time(previous, previous.met_at or previous.cancelled_at or now)
            run = self._next_run(RESOLUTION)
            self._start(changes, RESOLUTION, run=run, started_at=now, now=now, consumed=consumed)
            run = self._next_run(UPDATE_CADENCE)
            self._start(changes, UPDATE_CADENCE, run=run, started_at=now, now=now)
        return changes

    def severity_changed(self, now: dt.datetime, *, terms: Terms | None) -> Changes:
        """The severity changed to one whose policy has ``terms``: live clocks re-targeted from their
        original start, targets the new policy adds started as if they had applied all along."""
        changes = Changes()
        self._set_terms(terms)
        for target in TARGETS:
            for clk in self.live(target):
                self._retarget(changes, clk, now)
        if terms is None:
            return changes
        is_open = self.status in OPEN
        waiting = self.status == WAITING_ON_CUSTOMER
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
            if start is None:
                continue
            paused = waiting and target in PAUSING_TARGETS
            self._start(changes, target, run=1, started_at=start, now=now, paused=paused)
        return changes

    def advance(self, now: dt.datetime, *, exact: bool = False) -> Changes:
        """Record the warnings and breaches that came due before ``now``.

        ``exact=False`` (a sweep): as :func:`observe`, stamped ``now``. ``exact=True`` (a replay of
        history, which knows when each passed): a warning point passed before ``now`` is recorded at
        that instant, a due instant passed before ``now`` breaches the clock then; neither earlier
        than the clock's deadlines were last computed.
        """
        changes = Changes()
        for runs in self.by_target.values():
            for clk in runs:
                if clk.state != RUNNING:
                    continue
                if not exact:
                    observe(clk, now, changes)
                    continue
                since = clk.changed_at or clk.started_at
                if clk.rungs:
                    self._replay_ladder(clk, now, since, changes)
                    continue
                if clk.warned_at is None and clk.warn_at < now and clk.warn_at <= clk.due_at:
                    clk.warned_at = max(clk.warn_at, since)
                    changes.add(ChangeKind.WARNED, clk, clk.warned_at > clk.due_at)
                if clk.due_at < now:
                    clk.state = BREACHED
                    clk.breached_at = max(clk.due_at, since)
                    changes.add(ChangeKind.BREACHED, clk)
        return changes

    @staticmethod
    def _replay_ladder(clk: Clock, now: dt.datetime, since: dt.datetime, changes: Changes) -> None:
        """``advance(exact=True)`` of a clock with rungs: each point passed before ``now`` fires at
        the instant it passed (not before ``since``), late if a higher one had passed by then."""
        points = _points(clk)
        for index, (rung, warn_at, warned_at) in enumerate(points):
            if warned_at is not None or warn_at is None or warn_at >= now or warn_at > clk.due_at:
                continue
            stamp = max(warn_at, since)
            later = any(w is not None or (a is not None and a < stamp) for _, a, w in points[index + 1 :])
            _fire(clk, rung, stamp)
            changes.add(ChangeKind.WARNED, clk, later or stamp > clk.due_at, rung)
        if clk.due_at < now:
            clk.state = BREACHED
            clk.breached_at = max(clk.due_at, since)
            _park(clk)
            changes.add(ChangeKind.BREACHED, clk)


def _retargeted_rungs(clk: Clock, ratios: list[float]) -> list[Rung]:
    """The rungs of ``clk`` under a new ladder's further ``ratios``: a rung of the same share keeps
    its identity; a rung counts as fired when the run was already warned at its share or above
    (never warned twice for a share it passed)."""
    fired = [(r.ratio, r.warned_at) for r in clk.rungs if r.warned_at is not None]
    if clk.warned_at is not None:
        fired.append((clk.warning_ratio, clk.warned_at))
    kept = {percent_of(r.ratio): r for r in clk.rungs}
    rungs = []
    for ratio in ratios:
        old = kept.get(percent_of(ratio))
        covering = [at for share, at in fired if percent_of(share) >= percent_of(ratio)]
        rungs.append(Rung(ratio, warned_at=min(covering) if covering else None, key=old.key if old else None))
    return rungs
