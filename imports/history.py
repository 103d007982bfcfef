"""From one source case (its updates, as read from the file) to the case SupportDesk will hold.

``derive`` checks every update (timestamp, state, values), orders them in time and walks them once,
producing the case's fields, its timeline (one or more events per update, in the shapes
``cases.services`` writes) and the history the SLA replay needs. It touches no database: names
are turned into teams and people by the ``Resolver`` it is given.

Rules (see imports/README.md for the full text):

* The case starts ``new`` at its creation time (the ``created`` field, e.g. ServiceNow's
  ``opened_at``, else the first update), with a ``created`` event like ``cases.services.create_case``.
* Each update's state goes through ``[status]``; ``unchanged`` keeps the status. Moving from a
  resolved or closed status back to an open one is a reopening, recorded as live: a ``reopened``
  event, ``resolved -> reopened`` and then ``reopened -> <status>``. Closing an open case records
  ``-> resolved`` and ``resolved -> closed``, as the lifecycle requires.
* A resolution's instant is the update's ``resolved`` field (ServiceNow ``resolved_at``) when it
  lies between the previous and the next update, else the update's own time; likewise ``closed``.
* A missing value (``?``) never changes a field: the case keeps the last value it had.
* The severity follows ``[severity]`` on every update (a change is a ``severity_changed`` event);
  the case keeps the last one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from django.utils.text import slugify

from cases.models import EventKind, Severity, Status

from .dates import DateError, DateParser
from .mapping import UNCHANGED, Mapping
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
_SEP, _END = "\x1f", "\x1e"


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
    kind: str  # created, severity, reply, first_response, triage, status
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
        )


@dataclass
class Rejection:
    key: str
    where: str
    problems: list[str]

    @property
    def rows(self) -> int:
        return len(self.problems)


@dataclass(slots=True)
class _Update:
    at: dt.datetime
    sequence: int
    position: int
    source: SourceUpdate
    status: str
    state_keys: tuple[str, ...]
    label: str


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
) -> CasePlan | Rejection:
    """The planned case for ``source``, or why it cannot be imported (every bad row listed)."""
    m = mapping
    parse = dates.parse_iso if m.format == "xes" else dates.parse
    status_map = m.status
    ts_field, state_field, transition_field = m.timestamp, m.state, m.transition
    severity_field = m.severity.field
    severity_values = m.severity.values
    time_fields = [name for name in (m.created, m.resolved, m.closed) if name]
    checked: set[str] = set()  # time values already parsed (a case repeats them on every row)
    problems: list[str] = []
    updates: list[_Update] = []
    for u in source.updates:
        values = u.values
        raw_at = values.get(ts_field)
        at = None
        if raw_at is None:
            problems.append(f"{u.where}: no {ts_field}")
        else:
            try:
                at = parse(raw_at)
            except DateError as exc:
                problems.append(f"{u.where}: {ts_field} {exc}")
            else:
                if at > now:
                    problems.append(f"{u.where}: {ts_field} “{raw_at}” is in the future")
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
            problems.append(f"{u.where}: no {state_field}")
        elif status is None:
            shown = " or ".join(f"“{k}”" for k in keys)
            problems.append(f"{u.where}: unknown state {shown}: add it to [status] in the mapping")
        if severity_field:
            raw = values.get(severity_field)
            if raw is not None and raw not in severity_values and severity_code(m, raw) is None:
                problems.append(
                    f"{u.where}: unknown {severity_field} “{raw}”: "
                    "add it to [severity.values] or give a default"
                )
        for name in time_fields:
            raw = values.get(name)
            if raw is not None and raw not in checked:
                try:
                    parse(raw)
                except DateError as exc:
                    problems.append(f"{u.where}: {name} {exc}")
                else:
                    checked.add(raw)
        sequence = values.get(m.sequence, "") if m.sequence else ""
        seq = int(sequence) if sequence.isdigit() else 0
        if at is not None and status is not None:
            updates.append(_Update(at, seq, u.position, u, status, keys, label))
    if problems:
        return Rejection(source.key, source.where, problems)
    if not updates:
        return Rejection(source.key, source.where, [f"{source.where}: no updates"])
    updates.sort(key=_order)
    try:
        return _Walk(source, updates, mapping=m, dates=dates, resolver=resolver).plan()
    except _Reject as exc:
        return Rejection(source.key, source.where, [str(exc)])


def _order(update: _Update) -> tuple[dt.datetime, int, int]:
    return update.at, update.sequence, update.position


class _Walk:
    """One pass over a case's ordered updates."""

    def __init__(
        self, source: SourceCase, updates: list[_Update], *, mapping: Mapping, dates: DateParser, resolver
    ) -> None:
        self.source = source
        self.updates = updates
        self.m = mapping
        self.dates = dates
        self.resolver = resolver
        self.events: list[PlannedEvent] = []
        self.steps: list[Step] = []
        self.known = [u.source.values for u in updates]  # only known values (see sources)

    def _time(self, raw: str) -> dt.datetime:
        return self.dates.parse_iso(raw) if self.m.format == "xes" else self.dates.parse(raw)

    def _first(self, name: str | None) -> str | None:
        if name:
            for known in self.known:
                if name in known:
                    return known[name]
        return None

    def _instant_within(self, raw: str | None, low: dt.datetime, high: dt.datetime | None, default):
        """The source's own instant for a resolution/closure if it lies between the neighbours."""
        if raw is None:
            return default
        value = self._time(raw)
        if value < low or (high is not None and value > high):
            return default
        return value

    def _person(self, value: str | None) -> str | None:
        return None if value is None else (self.resolver.username(value) or value)

    def _team(self, value: str | None) -> str | None:
        return None if value is None else (self.resolver.team_slug(value) or value)

    def plan(self) -> CasePlan:
        m = self.m
        ups = self.updates
        first = ups[0]
        created = self._instant_within(
            self._first(m.created), dt.datetime.min.replace(tzinfo=dt.UTC), first.at, None
        )
        created_at = created or first.at

        # Latest known values, carried forward over missing ones.
        current: dict[str, str] = {}
        severity_raw = self._first(m.severity.field)
        severity = (severity_code(m, severity_raw) if severity_raw else None) or m.severity.default
        if severity is None:
            if m.severity.field:
                raise _Reject(f"{self.source.where}: no {m.severity.field} on any update and no default")
            severity = Severity.P3.value
        # Owners as the first update has them (unset at first is common); changes are events.
        assignee_value = self.known[0].get(m.assignee.field) if m.assignee.field else None
        team_value = m.team.fixed or (self.known[0].get(m.team.field) if m.team.field else None)
        org_name = organisation_name(m, self._first(m.organisation.field) if m.organisation.field else None)
        requester_raw = self._first(m.requester.field) if m.requester.field else None
        requester_name, requester_email = requester_identity(
            m, requester_raw or m.requester.default or m.requester.fixed or "Unknown requester"
        )

        status = NEW
        first_response_at = triaged_at = first_resolved_at = last_resolved_at = closed_at = None
        reopen_count = 0
        creator = self.known[0].get(m.creator or "") or self.known[0].get(m.actor or "") or m.name
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
                "external_ref": m.key_prefix + self.source.key,
            },
            body=f"{m.name}: {first.label}",
        )
        self.steps.append(Step(created_at, "created", severity=severity))

        # "" never names a field, so a .get() with it finds nothing.
        actor_field, severity_field = m.actor or "", m.severity.field or ""
        assignee_field, team_field = m.assignee.field or "", m.team.field or ""
        resolved_field, closed_field = m.resolved or "", m.closed or ""
        replies, first_response, triage = m.replies, m.first_response, m.triage
        for index, update in enumerate(ups):
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
                triaged_at is None
                and triage is not None
                and triage.matches(state_keys=keys, status=new_status, values=values)
            ):
                triaged_at = at
                self.steps.append(Step(at, "triage"))

            if new_status != status:
                if status in DONE and new_status not in DONE:
                    # A reopening, as cases.services.transition records it.
                    self._event(index, K_REOPENED, at, actor, old=status, new=REOPENED)
                    self._status(index, at, actor, status, REOPENED)
                    reopen_count += 1
                    if status == CLOSED:
                        closed_at = None
                    status = REOPENED
                if new_status in DONE and status not in DONE:
                    resolved_at = self._instant_within(known.get(resolved_field), previous_at, next_at, at)
                    if new_status == CLOSED:
                        closing = self._instant_within(known.get(closed_field), previous_at, next_at, at)
                        resolved_at = min(resolved_at, closing)
                    self._status(index, resolved_at, actor, status, RESOLVED)
                    first_resolved_at = first_resolved_at or resolved_at
                    last_resolved_at = resolved_at
                    status = RESOLVED
                    if new_status == CLOSED:
                        self._status(index, closing, actor, status, CLOSED)
                        closed_at = closing
                        status = CLOSED
                elif new_status == CLOSED and status == RESOLVED:
                    closing = self._instant_within(known.get(closed_field), previous_at, next_at, at)
                    self._status(index, closing, actor, status, CLOSED)
                    closed_at = closing
                    status = CLOSED
                elif new_status != status:
                    self._status(index, at, actor, status, new_status)
                    if new_status == TRIAGED and triaged_at is None:
                        triaged_at = at
                    status = new_status

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
        return CasePlan(
            key=self.source.key,
            external_ref=(m.key_prefix + self.source.key)[:100],
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
            triaged_at=triaged_at,
            first_resolved_at=first_resolved_at,
            last_resolved_at=last_resolved_at,
            closed_at=closed_at if status == CLOSED else None,
            reopen_count=reopen_count,
            version=len(self.events),
            events=self.events,
            steps=self.steps,
            update_count=len(ups),
            digest=digest_of(self.source.key, identities),
            identities=identities,
        )

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
    ) -> None:
        self.events.append(PlannedEvent(update, kind, at, actor[:200], actor, field, old, new, body, public))

    def _status(self, update: int, at: dt.datetime, actor: str, old: str, new: str) -> None:
        self._event(update, K_STATUS, at, actor, field="status", old=old, new=new)
        self.steps.append(Step(at, "status", old=old, new=new))

    def _identities(self) -> list[str]:
        """What identifies each update (time, sequence, state, actor), in order, for the digest."""
        m = self.m
        names = [n for n in (m.timestamp, m.sequence, m.state, m.transition, m.actor) if n]
        return [_SEP.join([u.source.values.get(n, "") for n in names]) for u in self.updates]


class _Reject(Exception):
    pass
