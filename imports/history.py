"""From one source case (its updates, as read from the file) to the case(s) SupportDesk will hold.

``derive`` checks every update (timestamp, state, values), orders them (by the source's sequence
number where every update has one, else by time) and walks them once, producing the case's
fields, its timeline (one or more events per update, in the shapes ``cases.services`` writes),
the history the SLA replay needs, and every adjustment it made to the source's history. It
touches no database: names are turned into teams and people by the ``Resolver`` it is given.

Rules (see imports/README.md for the full text; ``imports.summary`` names each adjustment):

* The case starts ``new`` at its creation time (the ``created`` field, e.g. ServiceNow's
  ``opened_at``, else the first update; a first update before it moves the creation there), with
  a ``created`` event like ``cases.services.create_case``.
* Each update's state goes through ``[status]``; ``unchanged`` keeps the status. Every status
  change follows ``cases.lifecycle``: a source transition the lifecycle does not allow is written
  as the shortest way the lifecycle allows through open statuses (``new -> in_progress`` as
  ``new -> triaged -> in_progress``; a reopening as ``resolved -> reopened -> <status>``; closing an
  open case as ``-> resolved -> closed``), or, where there is none, the status is kept. A source
  that moves a closed case on either withdraws the close and reopens the case (the default) or
  opens a new case linked to the closed one (``[lifecycle] after_close = "new_case"``).
* A resolution's instant is the update's ``resolved`` field (ServiceNow ``resolved_at``) when it
  lies between the previous and the next update, else the update's own time; likewise ``closed``.
* An update whose time precedes the one before it in the source's sequence takes that one's time;
  an update identical to the one before it is recorded once.
* A missing value (``?``) never changes a field: the case keeps the last value it had.
* The severity follows ``[severity]`` on every update (a change is a ``severity_changed`` event);
  the case keeps the last one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from collections import deque
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Protocol

from django.utils.text import slugify

from cases import lifecycle
from cases.models import OPEN_STATUSES, EventKind, Severity, Status

from . import summary
from .dates import DateError, DateParser
from .mapping import AFTER_CLOSE_NEW_CASE, UNCHANGED, Mapping
from .sources import SourceCase, SourceUpdate

#: Timeline kind of an imported update that changed none of the case's mapped fields.
IMPORTED_UPDATE = "imported_update"
# Plain strings: enum member access costs a descriptor call per use in the hot loop.
NEW, TRIAGED, REOPENED = Status.NEW.value, Status.TRIAGED.value, Status.REOPENED.value
RESOLVED, CLOSED = Status.RESOLVED.value, Status.CLOSED.value
DONE = (RESOLVED, CLOSED)
SEVERITIES = frozenset(Severity.values)
K_CREATED, K_STATUS, K_REOPENED = (
    EventKind.CREATED.value,
    EventKind.STATUS_CHANGED.value,
    EventKind.REOPENED.value,
)
K_SEVERITY, K_ASSIGNEE = EventKind.SEVERITY_CHANGED.value, EventKind.ASSIGNEE_CHANGED.value
K_TEAM, K_REPLY = EventKind.TEAM_CHANGED.value, EventKind.PUBLIC_REPLY.value
K_FOLLOW_UP = EventKind.FOLLOW_UP_OPENED.value
OPEN = frozenset(str(s) for s in OPEN_STATUSES)
_SEP, _END = "\x1f", "\x1e"
#: A source case split by ``after_close = "new_case"``: the follow-ups' keys are ``KEY#2``, ``KEY#3``.
PART_SEP = "#"
_EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
#: (kind, detail, written as, index of the update) of one adjustment (``imports.summary``).
Adjustment = tuple[str, str, str, int]


class Resolver(Protocol):
    """Turns source names into SupportDesk references (no database access is required)."""

    def team_slug(self, value: str) -> str | None: ...

    def username(self, value: str) -> str | None: ...


@dataclass(slots=True)
class PlannedEvent:
    update: int  # index (in time order) of the source update that produced it
    kind: str
    at: dt.datetime
    actor_name: str
    actor_source: str  # the source's name for the actor (looked up in [people])
    field: str = ""
    old: Any = None
    new: Any = None
    body: str = ""
    is_public: bool = False


@dataclass(slots=True)
class Step:
    """One thing the SLA replay reacts to, in time order."""

    at: dt.datetime
    kind: str  # created, severity, reply, first_response, triage, status, passage (moves no clock)
    severity: str = ""
    old: str = ""
    new: str = ""


@dataclass
class CasePlan:
    key: str
    external_ref: str
    where: str
    title: str
    description: str
    product_area: str
    organisation: str
    requester_name: str
    requester_email: str
    team_value: str | None
    team_slug: str | None
    assignee_value: str | None
    assignee_username: str | None
    severity: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    first_response_at: dt.datetime | None
    triaged_at: dt.datetime | None
    first_resolved_at: dt.datetime | None
    last_resolved_at: dt.datetime | None
    closed_at: dt.datetime | None
    reopen_count: int
    version: int
    events: list[PlannedEvent]
    steps: list[Step]
    update_count: int
    digest: str
    identities: list[str] = field(repr=False, default_factory=list)
    adjustments: list[Adjustment] = field(default_factory=list)
    # Updates whose close was withdrawn because a later update moved the case on (after_close = reopen).
    withdrawn_closes: list[int] = field(default_factory=list)
    # The external reference of the closed case this one follows (after_close = new_case).
    follow_up_of_ref: str | None = None

    def digest_of_first(self, count: int) -> str | None:
        """The digest the first ``count`` updates had (compared with what an earlier import stored)."""
        if count <= 0 or count > len(self.identities):
            return None
        return digest_of(self.key, self.identities[:count])

    def summary(self) -> PlanSummary:
        """What telling a new case from a known one needs (all that crosses to the writing process
        for a case that is written from its COPY lines)."""
        return PlanSummary(
            self.key,
            self.external_ref,
            self.where,
            self.update_count,
            self.digest,
            self.identities,
            self.created_at,
            self.adjustments,
        )


@dataclass(slots=True)
class PlanSummary:
    """A ``CasePlan`` without its timeline: enough to classify it, not to write it."""

    key: str
    external_ref: str
    where: str
    update_count: int
    digest: str
    identities: list[str]
    created_at: dt.datetime  # the metrics rollup marks the days from here on (imports.services)
    adjustments: list[Adjustment]  # counted in the import's summary when the case is written

    digest_of_first = CasePlan.digest_of_first

    def __reduce__(self):  # a tuple, without field names (it crosses between processes)
        return PlanSummary, (
            self.key,
            self.external_ref,
            self.where,
            self.update_count,
            self.digest,
            self.identities,
            self.created_at,
            self.adjustments,
        )


@dataclass
class Rejection:
    key: str
    where: str
    problems: list[str]
    issues: list[summary.Issue] = field(default_factory=list)  # the problems by kind, for the summary

    @property
    def rows(self) -> int:
        """The bad rows (a row with two problems counts once)."""
        return len({issue.where for issue in self.issues}) if self.issues else len(self.problems)


@dataclass(slots=True)
class _Update:
    at: dt.datetime
    sequence: int
    position: int
    source: SourceUpdate
    status: str
    state_keys: tuple[str, ...]
    label: str
    moved: bool = False  # its time preceded the update before it in the source's sequence
    duplicate: bool = False  # identical to the update before it: recorded once


def digest_of(key: str, identities: list[str]) -> str:
    """SHA-256 over a case's key and its updates' identities, in order."""
    return hashlib.sha256((key + _END + _END.join(identities) + _END).encode()).hexdigest()


def _known(value: str | None, missing: frozenset[str]) -> bool:
    return value is not None and value not in missing


def severity_code(mapping: Mapping, raw: str) -> str | None:
    """The severity for a source value: mapped, or already a code (P1..P4), or the default."""
    code = mapping.severity.values.get(raw)
    if code is None and raw in SEVERITIES:
        code = raw
    return code or mapping.severity.default


@lru_cache(maxsize=20_000)
def _identity(domain: str, name: str) -> tuple[str, str]:
    name = name.strip()
    if "@" in name and " " not in name:
        return name[:200], name.lower()[:254]
    local = slugify(name)[:60] or "unknown"
    return name[:200], f"{local}@{domain}"


def requester_identity(mapping: Mapping, name: str) -> tuple[str, str]:
    """(name, e-mail) of the requester contact for a source value (an address is used as is)."""
    return _identity(mapping.requester_email_domain, name)


def organisation_name(mapping: Mapping, raw: str | None) -> str | None:
    org = mapping.organisation
    if org.fixed:
        return org.fixed
    if raw is None:
        return org.default
    return org.values.get(raw) or (raw if org.create_missing or not org.default else org.default)


def derive(
    source: SourceCase, *, mapping: Mapping, dates: DateParser, resolver: Resolver, now: dt.datetime
) -> list[CasePlan] | Rejection:
    """The planned case(s) for ``source`` (more than one only when a closed case's later updates
    open linked follow-ups), or why it cannot be imported (every bad row listed)."""
    m = mapping
    parse = dates.parse_iso if m.format == "xes" else dates.parse
    status_map = m.status
    ts_field, state_field, transition_field = m.timestamp, m.state, m.transition
    severity_field = m.severity.field
    severity_values = m.severity.values
    sequence_field = m.sequence
    time_fields = [name for name in (m.created, m.resolved, m.closed) if name]
    checked: set[str] = set()  # time values already parsed (a case repeats them on every row)
    issues: list[summary.Issue] = []
    updates: list[_Update] = []
    sequenced = bool(sequence_field)  # every update has the source's sequence number
    for u in source.updates:
        values = u.values
        raw_at = values.get(ts_field)
        at = None
        if raw_at is None:
            issues.append(summary.Issue("missing_value", ts_field, u.where, f"{u.where}: no {ts_field}"))
        else:
            try:
                at = parse(raw_at)
            except DateError as exc:
                issues.append(summary.Issue("bad_date", ts_field, u.where, f"{u.where}: {ts_field} {exc}"))
            else:
                if at > now:
                    issues.append(
                        summary.Issue(
                            "future_date",
                            ts_field,
                            u.where,
                            f"{u.where}: {ts_field} “{raw_at}” is in the future",
                        )
                    )
        state = values.get(state_field, "")
        transition = values.get(transition_field) if transition_field else None
        if transition:
            keys: tuple[str, ...] = (f"{state}+{transition}", state)
            label = f"{state} ({transition})"
            status = status_map.get(keys[0]) or status_map.get(state)
        else:
            keys = (state,)
            label = state
            status = status_map.get(state)
        if not state:
            issues.append(
                summary.Issue("missing_value", state_field, u.where, f"{u.where}: no {state_field}")
            )
        elif status is None:
            shown = " or ".join(f"“{k}”" for k in keys)
            issues.append(
                summary.Issue(
                    "unknown_state",
                    shown,
                    u.where,
                    f"{u.where}: unknown state {shown}: add it to [status] in the mapping",
                )
            )
        if severity_field:
            raw = values.get(severity_field)
            if raw is not None and raw not in severity_values and severity_code(m, raw) is None:
                issues.append(
                    summary.Issue(
                        "unknown_severity",
                        f"“{raw}”",
                        u.where,
                        f"{u.where}: unknown {severity_field} “{raw}”: "
                        "add it to [severity.values] or give a default",
                    )
                )
        for name in time_fields:
            raw = values.get(name)
            if raw is not None and raw not in checked:
                try:
                    parse(raw)
                except DateError as exc:
                    issues.append(summary.Issue("bad_date", name, u.where, f"{u.where}: {name} {exc}"))
                else:
                    checked.add(raw)
        if sequenced:
            sequence = values.get(sequence_field, "")
            if sequence.isdigit():
                seq = int(sequence)
            else:
                seq = 0
                sequenced = False
        else:
            seq = 0
        if at is not None and status is not None:
            updates.append(_Update(at, seq, u.position, u, status, keys, label))
    if issues:
        return Rejection(source.key, source.where, [i.message for i in issues], issues)
    if not updates:
        message = f"{source.where}: no updates"
        return Rejection(
            source.key, source.where, [message], [summary.Issue("no_updates", "", source.where, message)]
        )
    _order(updates, by_sequence=sequenced)
    parts = _after_close_parts(updates) if m.after_close == AFTER_CLOSE_NEW_CASE else [updates]
    plans: list[CasePlan] = []
    carried: dict[str, str] = {}
    try:
        for number, part in enumerate(parts, start=1):
            walk = _Walk(
                source,
                part,
                mapping=m,
                dates=dates,
                resolver=resolver,
                part=number,
                follows=plans[-1].external_ref if plans else None,
                carried=carried,
            )
            plans.append(walk.plan())
            carried = walk.current
    except _Reject as exc:
        return Rejection(source.key, source.where, [str(exc)], [exc.issue])
    return plans


def _order(updates: list[_Update], *, by_sequence: bool) -> None:
    """Order the updates in place: by the source's sequence number (then time, then file order)
    where every update has one, else by time (then sequence, then file order). In sequence order a
    time earlier than the update before it is raised to that update's time, so the steps keep the
    source's order. An update identical to the one before it is marked a duplicate."""
    if by_sequence:
        updates.sort(key=_by_sequence)
        latest = updates[0].at
        for update in updates:
            if update.at < latest:
                update.at = latest
                update.moved = True
            else:
                latest = update.at
    else:
        updates.sort(key=_by_time)
    previous = updates[0]
    for update in updates[1:]:
        # Same time first: a cheap test that rules out almost every pair.
        if update.at == previous.at and update.source.values == previous.source.values:
            update.duplicate = True
        previous = update


def _by_time(update: _Update) -> tuple[dt.datetime, int, int]:
    return update.at, update.sequence, update.position


def _by_sequence(update: _Update) -> tuple[int, dt.datetime, int]:
    return update.sequence, update.at, update.position


def _after_close_parts(updates: list[_Update]) -> list[list[_Update]]:
    """``after_close = "new_case"``: the updates split where one moves a closed case on; each part
    after the first becomes a new case linked to the one before."""
    parts: list[list[_Update]] = [[]]
    status = NEW
    for update in updates:
        target = status if update.status == UNCHANGED else update.status
        if status == CLOSED and target != CLOSED:
            parts.append([])
        parts[-1].append(update)
        status = target
    return parts


@cache
def lifecycle_route(current: str, target: str) -> tuple[str, ...] | None:
    """The statuses after ``current`` on the shortest way to ``target`` that ``cases.lifecycle``
    allows (the scheduler's moves included), through open statuses only, so that no resolution or
    closure is invented on the way; None when there is no such way. ``(target,)`` when the
    lifecycle allows the move itself."""
    if target in lifecycle.allowed_next(current, system=True):
        return (target,)
    frontier: deque[tuple[str, tuple[str, ...]]] = deque([(current, ())])
    seen = {current}
    while frontier:
        node, path = frontier.popleft()
        if node != current and node not in OPEN:
            continue
        for following in lifecycle.allowed_next(node, system=True):
            status = str(following)
            if status in seen:
                continue
            route = (*path, status)
            if status == target:
                return route
            seen.add(status)
            frontier.append((status, route))
    return None


class _Walk:
    """One pass over a case's ordered updates (or over one part of them: see ``after_close``)."""

    def __init__(
        self,
        source: SourceCase,
        updates: list[_Update],
        *,
        mapping: Mapping,
        dates: DateParser,
        resolver,
        part: int = 1,
        follows: str | None = None,
        carried: dict[str, str] | None = None,
    ) -> None:
        self.source = source
        self.updates = updates
        self.m = mapping
        self.dates = dates
        self.resolver = resolver
        self.part = part
        self.key = source.key if part == 1 else f"{source.key}{PART_SEP}{part}"
        self.follows = follows
        self.events: list[PlannedEvent] = []
        self.steps: list[Step] = []
        self.known = [u.source.values for u in updates]  # only known values (see sources)
        # Latest known values, carried forward over missing ones (a follow-up starts from those of
        # the case it follows).
        self.current: dict[str, str] = dict(carried or {})
        self.adjustments: list[Adjustment] = []
        self.withdrawn: list[int] = []
        self.status = NEW
        self.triaged_at: dt.datetime | None = None
        self.first_resolved_at: dt.datetime | None = None
        self.last_resolved_at: dt.datetime | None = None
        self.closed_at: dt.datetime | None = None
        self.reopen_count = 0
        self._close: tuple[PlannedEvent, Step, int] | None = None  # the latest close written

    def _time(self, raw: str) -> dt.datetime:
        return self.dates.parse_iso(raw) if self.m.format == "xes" else self.dates.parse(raw)

    def _first(self, name: str | None) -> str | None:
        if name:
            for known in self.known:
                if name in known:
                    return known[name]
            return self.current.get(name)
        return None

    def _person(self, value: str | None) -> str | None:
        return None if value is None else (self.resolver.username(value) or value)

    def _team(self, value: str | None) -> str | None:
        return None if value is None else (self.resolver.team_slug(value) or value)

    def _adjust(self, kind: str, detail: str, written: str, update: int) -> None:
        # Interned: the same few texts for thousands of cases, pickled once per batch.
        self.adjustments.append((kind, sys.intern(detail), sys.intern(written), update))

    def plan(self) -> CasePlan:
        m = self.m
        ups = self.updates
        first = ups[0]
        created = None
        if self.part == 1 and m.created:
            raw = self._first(m.created)
            if raw is not None:
                created = self._time(raw)
                if created > first.at:
                    created = None
                    self._adjust(summary.CREATION_MOVED, m.created, "", 0)
        created_at = created or first.at

        current = self.current
        severity_raw = self._first(m.severity.field)
        severity = (severity_code(m, severity_raw) if severity_raw else None) or m.severity.default
        if severity is None:
            if m.severity.field:
                raise _Reject(
                    summary.Issue(
                        "no_severity",
                        m.severity.field,
                        self.source.where,
                        f"{self.source.where}: no {m.severity.field} on any update and no default",
                    )
                )
            severity = Severity.P3.value
        # Owners as the first update has them (unset at first is common); changes are events.
        assignee_value = self.known[0].get(m.assignee.field) if m.assignee.field else None
        team_value = m.team.fixed or (self.known[0].get(m.team.field) if m.team.field else None)
        org_name = organisation_name(m, self._first(m.organisation.field) if m.organisation.field else None)
        requester_raw = self._first(m.requester.field) if m.requester.field else None
        requester_name, requester_email = requester_identity(
            m, requester_raw or m.requester.default or m.requester.fixed or "Unknown requester"
        )

        first_response_at = None
        if self.part == 1:
            creator = self.known[0].get(m.creator or "") or self.known[0].get(m.actor or "") or m.name
        else:
            creator = self.known[0].get(m.actor or "") or m.name
        external_ref = (m.key_prefix + self.key)[:100]
        self._event(
            0,
            K_CREATED,
            created_at,
            creator,
            new={
                "title": "",  # filled below, once the final values are known
                "severity": severity,
                "status": NEW,
                "organisation": org_name,
                "requester": requester_email,
                "assignee": self._person(assignee_value),
                "team": self._team(team_value),
                "tags": [],
                "external_ref": external_ref,
            },
            body=f"{m.name}: {first.label}",
        )
        if self.follows is not None:
            # As cases.services.open_follow_up records it; the writer fills in the closed case's key.
            self._event(0, K_FOLLOW_UP, created_at, creator, field="follow_up_of")
            target = first.status if first.status != UNCHANGED else NEW
            self._adjust(
                summary.OUTSIDE_LIFECYCLE, f"{CLOSED} → {target}", "a new case, linked to the closed one", 0
            )
        self.steps.append(Step(created_at, "created", severity=severity))

        # "" never names a field, so a .get() with it finds nothing.
        actor_field, severity_field = m.actor or "", m.severity.field or ""
        assignee_field, team_field = m.assignee.field or "", m.team.field or ""
        replies, first_response, triage = m.replies, m.first_response, m.triage
        for index, update in enumerate(ups):
            if update.duplicate:
                self._adjust(summary.DUPLICATE, "", "", index)
                continue
            if update.moved:
                self._adjust(summary.TIME_OUT_OF_ORDER, m.timestamp, "", index)
            at = update.at
            previous_at = ups[index - 1].at if index else created_at
            next_at = ups[index + 1].at if index + 1 < len(ups) else None
            known = self.known[index]
            actor = known.get(actor_field, m.name)
            mark = len(self.events)
            current.update(known)
            values = current

            raw = known.get(severity_field)
            if raw is not None and (code := severity_code(m, raw)) and code != severity:
                self._event(index, K_SEVERITY, at, actor, field="severity", old=severity, new=code)
                self.steps.append(Step(at, "severity", severity=code))
                severity = code
            raw = known.get(assignee_field)
            if raw is not None and raw != assignee_value:
                old, new = self._person(assignee_value), self._person(raw)
                self._event(index, K_ASSIGNEE, at, actor, field="assignee", old=old, new=new)
                assignee_value = raw
            raw = None if m.team.fixed else known.get(team_field)
            if raw is not None and raw != team_value:
                old, new = self._team(team_value), self._team(raw)
                self._event(index, K_TEAM, at, actor, field="team", old=old, new=new)
                team_value = raw

            status = self.status
            new_status = update.status if update.status != UNCHANGED else status
            keys = update.state_keys
            if replies is not None and replies.matches(state_keys=keys, status=new_status, values=values):
                self._event(index, K_REPLY, at, actor, public=True)
                self.steps.append(Step(at, "reply"))
                first_response_at = first_response_at or at
            elif (
                first_response_at is None
                and first_response is not None
                and first_response.matches(state_keys=keys, status=new_status, values=values)
            ):
                first_response_at = at
                self.steps.append(Step(at, "first_response"))
            if (
                self.triaged_at is None
                and triage is not None
                and triage.matches(state_keys=keys, status=new_status, values=values)
            ):
                self.triaged_at = at
                self.steps.append(Step(at, "triage"))

            if new_status != status:
                self._change(index, update, at, actor, new_status, known, previous_at, next_at)

            if len(self.events) == mark and index > 0:
                self._event(index, IMPORTED_UPDATE, at, actor, new={"state": update.label})
            if len(self.events) > mark and index > 0:
                self.events[mark].body = f"{m.name}: {update.label}"

        values = {**current, m.key: self.source.key}
        title = m.title.render(values)[:300] or f"{m.name} {self.source.key}"
        self.events[0].new["title"] = title
        self.events.sort(key=lambda e: e.at)
        self.steps.sort(key=lambda s: s.at)
        identities = self._identities()
        status = self.status
        return CasePlan(
            key=self.key,
            external_ref=external_ref,
            where=self.source.where,
            title=title,
            description=m.description.render(values),
            product_area=m.product_area.render(values)[:100],
            organisation=org_name or "",
            requester_name=requester_name,
            requester_email=requester_email,
            team_value=team_value,
            team_slug=self.resolver.team_slug(team_value) if team_value is not None else None,
            assignee_value=assignee_value,
            assignee_username=self.resolver.username(assignee_value) if assignee_value is not None else None,
            severity=severity,
            status=status,
            created_at=created_at,
            updated_at=max(e.at for e in self.events),
            first_response_at=first_response_at,
            triaged_at=self.triaged_at,
            first_resolved_at=self.first_resolved_at,
            last_resolved_at=self.last_resolved_at,
            closed_at=self.closed_at if status == CLOSED else None,
            reopen_count=self.reopen_count,
            version=len(self.events),
            events=self.events,
            steps=self.steps,
            update_count=len(ups),
            digest=digest_of(self.key, identities),
            identities=identities,
            adjustments=self.adjustments,
            withdrawn_closes=self.withdrawn,
            follow_up_of_ref=self.follows,
        )

    # --- status changes, through the lifecycle --------------------------------------------------

    def _change(
        self,
        index: int,
        update: _Update,
        at: dt.datetime,
        actor: str,
        target: str,
        known: dict[str, str],
        previous_at: dt.datetime,
        next_at: dt.datetime | None,
    ) -> None:
        """Move the case to the update's ``target`` status the way ``cases.lifecycle`` allows, and
        say how, when the source's own move is not one the lifecycle allows."""
        origin = self.status
        withdrawn = ""
        if origin == CLOSED:
            # A closed case takes no change (after_close = "new_case" split the history before it
            # got here): the close is withdrawn, and the case moves on from resolved.
            self._withdraw_close()
            withdrawn = "close withdrawn, then "
        current = self.status
        if target == CLOSED:
            if current == RESOLVED:
                self._close_at(index, self._closure_instant(index, known, previous_at, next_at, at), actor)
                return
            closing = self._closure_instant(index, known, previous_at, next_at, at)
            resolved_at = min(self._resolution_instant(index, known, previous_at, next_at, at), closing)
            self._resolve(index, resolved_at, actor)
            self._close_at(index, closing, actor)
            self._adjust(
                summary.OUTSIDE_LIFECYCLE, f"{origin} → {CLOSED}", f"{origin} → {RESOLVED} → {CLOSED}", index
            )
            return
        if target == RESOLVED:
            resolved_at = self._resolution_instant(index, known, previous_at, next_at, at)
            if current == RESOLVED:  # a re-resolution after the withdrawn close
                self._reopen(index, min(at, resolved_at), actor)
                self._resolve(index, resolved_at, actor)
                written = f"{withdrawn}{RESOLVED} → {REOPENED} → {RESOLVED}"
                self._adjust(summary.OUTSIDE_LIFECYCLE, f"{origin} → {RESOLVED}", written, index)
            else:
                self._resolve(index, resolved_at, actor)
            return
        if current == RESOLVED:
            # A reopening, as cases.services.transition records it, then on to the target.
            route = lifecycle_route(RESOLVED, target) or (REOPENED,)
            self._reopen(index, at, actor)
            for status in route[1:]:
                self._status(index, at, actor, self.status, status, passage=status != route[-1])
            if withdrawn or route != (target,):
                written = f"{withdrawn}{RESOLVED} → " + " → ".join(route)
                if route[-1] != target:
                    written += f" (no way on to {target})"
                self._adjust(summary.OUTSIDE_LIFECYCLE, f"{origin} → {target}", written, index)
            return
        route = lifecycle_route(current, target)
        if route is None:
            self._adjust(summary.OUTSIDE_LIFECYCLE, f"{current} → {target}", f"kept {current}", index)
            if target == TRIAGED and self.triaged_at is None:  # the source says triage happened
                self.triaged_at = at
                self.steps.append(Step(at, "triage"))
            return
        for status in route:
            self._status(index, at, actor, self.status, status, passage=status != route[-1])
        if target == TRIAGED and self.triaged_at is None:
            self.triaged_at = at
        if len(route) > 1:
            self._adjust(
                summary.OUTSIDE_LIFECYCLE, f"{current} → {target}", " → ".join((current, *route)), index
            )

    def _resolution_instant(self, index, known, previous_at, next_at, at) -> dt.datetime:
        name = self.m.resolved
        if not name:
            return at
        raw = known.get(name)
        if raw is None:
            self._adjust(summary.MISSING_RESOLUTION, name, "", index)
            return at
        value = self._time(raw)
        if value < previous_at or (next_at is not None and value > next_at):
            self._adjust(summary.RESOLUTION_REPLACED, name, "", index)
            return at
        return value

    def _closure_instant(self, index, known, previous_at, next_at, at) -> dt.datetime:
        name = self.m.closed
        raw = known.get(name) if name else None
        if raw is None:
            return at
        value = self._time(raw)
        if value < previous_at or (next_at is not None and value > next_at):
            self._adjust(summary.CLOSURE_REPLACED, name, "", index)
            return at
        return value

    def _resolve(self, index: int, at: dt.datetime, actor: str) -> None:
        self._status(index, at, actor, self.status, RESOLVED)
        self.first_resolved_at = self.first_resolved_at or at
        self.last_resolved_at = at

    def _reopen(self, index: int, at: dt.datetime, actor: str) -> None:
        self._event(index, K_REOPENED, at, actor, old=RESOLVED, new=REOPENED)
        self._status(index, at, actor, RESOLVED, REOPENED)
        self.reopen_count += 1

    def _close_at(self, index: int, at: dt.datetime, actor: str) -> None:
        event, step = self._status(index, at, actor, self.status, CLOSED)
        self._close = (event, step, index)
        self.closed_at = at

    def _withdraw_close(self) -> None:
        """Take the latest close back: the case is resolved, as before it (its update is recorded
        as an update that changed nothing, unless it also resolved the case)."""
        assert self._close is not None
        event, step, index = self._close
        position = next(i for i, e in enumerate(self.events) if e is event)
        if index == 0 or any(e.update == index and e is not event for e in self.events):
            del self.events[position]
        else:
            self.events[position] = PlannedEvent(
                index,
                IMPORTED_UPDATE,
                event.at,
                event.actor_name,
                event.actor_source,
                new={"state": self.updates[index].label},
                body=event.body,
            )
        self.steps = [s for s in self.steps if s is not step]
        self.withdrawn.append(index)
        self._close = None
        self.closed_at = None
        self.status = RESOLVED

    def _event(
        self,
        update: int,
        kind: str,
        at: dt.datetime,
        actor: str,
        field="",
        old=None,
        new=None,
        body="",
        public=False,
    ) -> PlannedEvent:
        event = PlannedEvent(update, kind, at, actor[:200], actor, field, old, new, body, public)
        self.events.append(event)
        return event

    def _status(
        self, update: int, at: dt.datetime, actor: str, old: str, new: str, *, passage: bool = False
    ) -> tuple[PlannedEvent, Step]:
        """A status change on the timeline and for the SLA replay. A ``triaged`` passed through on
        the way the lifecycle requires is not a triage: it meets no triage clock (the mapping's
        ``[triage]`` says what triage is)."""
        event = self._event(update, K_STATUS, at, actor, field="status", old=old, new=new)
        step = Step(at, "passage" if passage and new == TRIAGED else "status", old=old, new=new)
        self.steps.append(step)
        self.status = new
        return event, step

    def _identities(self) -> list[str]:
        """What identifies each update (time, sequence, state, actor), in order, for the digest."""
        m = self.m
        names = [n for n in (m.timestamp, m.sequence, m.state, m.transition, m.actor) if n]
        return [_SEP.join([u.source.values.get(n, "") for n in names]) for u in self.updates]


class _Reject(Exception):
    def __init__(self, issue: summary.Issue) -> None:
        self.issue = issue
        super().__init__(issue.message)
