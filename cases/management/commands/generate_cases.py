"""Generate large volumes of cases with their timelines, for benchmarks and capacity tests.

This command bypasses ``cases.services`` on purpose: the services write one case at a time with a
row lock, a signal and several queries per step, which is right for real work and far too slow for
a million rows. Instead it plans each case's whole story in memory with the same rules the services
enforce (only allowed transitions, lifecycle timestamps set exactly as ``transition`` sets them,
``updated_at`` = last event, ``version`` bumped once per transition, one ``created`` event with the
same payload as ``create_case``), and writes rows in batches:

* PostgreSQL: ``COPY`` (text format) into cases_case, cases_caseevent and the tag table. Case ids are
  reserved from the table's own sequence with ``nextval`` (one round trip per batch), so the rows
  never collide with cases created concurrently through the application.
* other databases (SQLite in tests): ``bulk_create`` in batches.

What it does not produce: SLA clocks, escalations, CC contacts or e-mails; other apps that keep their
own rows per case must not rely on generated cases having them. Reproducible with ``--seed``;
timestamps are relative to the moment the command runs and never in the future.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import time
import zoneinfo
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from cases.management.commands.load_demo_data import (
    ACKS,
    ASK_INFO,
    ENGINEERING_NOTES,
    ISSUES,
    NOTES,
    REOPEN_NOTES,
    RESOLUTIONS,
    UPDATES,
)
from cases.models import Case, CaseEvent, Contact, EventKind, Organisation, Status, Tag, Team, Tier
from supportdesk.core.roles import Role

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
AUTO_CLOSE = 7 * DAY

ORG_PREFIXES = [
    "Acorn", "Alder", "Amber", "Arbor", "Aster", "Beacon", "Birch", "Blue Harbor", "Brightwater",
    "Cedar", "Cobalt", "Copperline", "Driftwood", "Ember", "Evergreen", "Falcon", "Fernwood", "Granite",
    "Harbor Point", "Ironbridge", "Juniper", "Keystone", "Lakeshore", "Maple", "Meridian", "Northstar",
    "Oakridge", "Pinecrest", "Quarry", "Redwood", "Riverside", "Sable", "Silverline", "Stonegate",
    "Summit", "Tidewater", "Upland", "Vantage", "Willow", "Zephyr",
]  # fmt: skip
ORG_SUFFIXES = [
    "Logistics", "Health", "Analytics", "Retail", "Bank", "Media", "Energy", "Labs", "Travel", "Foods",
    "Insurance", "Robotics", "Software", "Telecom", "Learning", "Mobility",
]  # fmt: skip
TIME_ZONES = [
    "Europe/Berlin", "Europe/London", "Europe/Paris", "Europe/Oslo", "America/New_York",
    "America/Chicago", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Singapore",
    "Asia/Kolkata", "Australia/Sydney", "UTC",
]  # fmt: skip
FIRST_NAMES = [
    "Aisha", "Ben", "Carmen", "David", "Elena", "Farid", "Greta", "Hiro", "Isabel", "Jonas", "Kavya",
    "Liam", "Mei", "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen",
    "Ximena", "Yusuf", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Abe", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Gupta", "Hansen", "Ito", "Jensen", "Khan",
    "Lopez", "Moreau", "Nakamura", "Okoye", "Park", "Rossi", "Santos", "Tanaka", "Usman", "Varga",
    "Weber", "Yilmaz", "Zhang",
]  # fmt: skip
BENCH_TEAMS = [
    ("Tier 1", "tier-1"), ("Tier 2", "tier-2"), ("Platform", "platform"), ("Billing Desk", "billing-desk"),
    ("Integrations", "integrations"), ("EMEA Enterprise", "emea-enterprise"),
]  # fmt: skip
AREA_TEAM = {
    "Billing": "billing-desk",
    "Integrations": "integrations",
    "Performance": "platform",
    "Webhooks": "platform",
}
SEVERITY_WEIGHTS = (("P1", 2), ("P2", 13), ("P3", 55), ("P4", 30))
# Seconds (low, high), drawn log-uniformly: how long the desk takes, per severity.
TRIAGE = {
    "P1": (3 * MINUTE, 30 * MINUTE),
    "P2": (10 * MINUTE, 3 * HOUR),
    "P3": (30 * MINUTE, 10 * HOUR),
    "P4": (1 * HOUR, 2 * DAY),
}
WORK = {
    "P1": (1 * HOUR, 1 * DAY),
    "P2": (3 * HOUR, 4 * DAY),
    "P3": (6 * HOUR, 12 * DAY),
    "P4": (1 * HOUR, 6 * DAY),
}
TIER_VOLUME: dict[str, int] = {Tier.ENTERPRISE: 6, Tier.BUSINESS: 2, Tier.STANDARD: 1}


@dataclass(frozen=True)
class Person:
    id: int
    username: str
    name: str


@dataclass
class Pools:
    organisations: list[tuple[Organisation, list[Contact], int]]  # org, contacts, UTC offset (minutes)
    org_weights: list[float]
    agents: list[Person]
    agent_weights: list[float]
    teams: dict[str, Team]
    tags: dict[str, int]


def _esc(value: str) -> str:
    """A value for PostgreSQL's COPY text format."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _ts(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat()


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


# One generated case: the row's values (times as epoch seconds), its tag ids and its events.
# Event: (epoch, kind, actor or None, field, old JSON or None, new JSON or None, body, is_public)
Event = tuple[float, str, Person | None, str, str | None, str | None, str, bool]


def _decoded(value: str | None) -> Any:
    """The JSON value of an event's old or new value, where its kind always has one."""
    assert value is not None
    return json.loads(value)


@dataclass
class Generated:
    row: dict[str, Any]
    tag_ids: list[int]
    events: list[Event]


class CasePlanner:
    """Plans whole case stories that obey cases.lifecycle and the services' bookkeeping."""

    def __init__(self, rng: random.Random, pools: Pools, *, now: float, days: int, events_per_case: float):
        self.rng = rng
        self.pools = pools
        self.now = now
        self.events_per_case = events_per_case
        today = math.floor(now / DAY) * DAY
        self.day_starts: list[float] = []
        cum: list[float] = []
        total = 0.0
        for i in range(days):
            start = today - (days - 1 - i) * DAY
            weekday = dt.datetime.fromtimestamp(start, dt.UTC).weekday()
            # Volume grows over the period (the customer base grows) and drops at weekends.
            total += (0.5 + i / days) * (0.2 if weekday >= 5 else 1.0)
            self.day_starts.append(start)
            cum.append(total)
        self.day_cum = cum
        self.sev_names = [s for s, _ in SEVERITY_WEIGHTS]
        self.sev_cum = list(_cumulative([w for _, w in SEVERITY_WEIGHTS]))
        self.org_cum = list(_cumulative(pools.org_weights))
        self.agent_cum = list(_cumulative(pools.agent_weights))
        self.issues_by_sev = {s: [i for i in ISSUES if s in i.severities] for s in self.sev_names}
        self._text_cache: dict[tuple[int, str], str] = {}
        self.agent_ids = {a.username: a.id for a in pools.agents}

    def _lu(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return low * (high / low) ** self.rng.random()

    def _agent(self) -> Person:
        return self.rng.choices(self.pools.agents, cum_weights=self.agent_cum)[0]

    def _text(self, options: list[str], first: str, severity: str) -> str:
        index = self.rng.randrange(len(options))
        key = (id(options) + index, first + severity)
        text = self._text_cache.get(key)
        if text is None:
            cadence = {
                "P1": "30 minutes",
                "P2": "2 hours",
                "P3": "one business day",
                "P4": "two business days",
            }
            text = self._text_cache[key] = options[index].format(first=first, cadence=cadence[severity])
        return text

    def plan(self, count: int) -> list[Generated]:
        rng = self.rng
        days = rng.choices(self.day_starts, cum_weights=self.day_cum, k=count)
        return [self._one(day) for day in days]

    def _one(self, day_start: float) -> Generated:
        rng = self.rng
        org, contacts, offset = rng.choices(self.pools.organisations, cum_weights=self.org_cum)[0]
        severity = rng.choices(self.sev_names, cum_weights=self.sev_cum)[0]
        if org.tier == Tier.STANDARD and severity == "P1":
            severity = "P2"
        if severity == "P1" and rng.random() < 0.4:
            local_minutes = rng.uniform(0, 24 * 60)  # outages do not wait for office hours
        else:
            local_minutes = rng.triangular(7.5 * 60, 18.5 * 60, 10.5 * 60)
        created = day_start + (local_minutes - offset) * MINUTE + rng.random()
        if created > self.now - 1:
            created = self.now - rng.uniform(1, 6 * HOUR)
        issue = rng.choice(self.issues_by_sev[severity])
        requester = rng.choice(contacts)
        first = requester.name.split()[0]
        team = self.pools.teams[AREA_TEAM.get(issue.area, "tier-1")]
        if org.tier == Tier.ENTERPRISE and rng.random() < 0.3:
            team = self.pools.teams["emea-enterprise"]
        # Routing assigns most cases on arrival; the rest wait for triage.
        assignee: Person | None = self._agent() if rng.random() < 0.6 else None
        tags = list(issue.tags) if rng.random() < 0.5 else []
        creator = self._agent() if rng.random() < 0.3 else None
        stuck = rng.random() < 0.01  # the long tail of the backlog: never resolved (yet)
        # Answered and solved on first contact (new -> resolved, no triage) by whoever took it.
        first_contact = not stuck and severity in ("P3", "P4") and rng.random() < 0.25
        if first_contact and assignee is None:
            assignee = creator or self._agent()
        initial_assignee = assignee

        events: list[Event] = []
        status: str = Status.NEW
        t = created
        events.append(
            (
                t,
                EventKind.CREATED,
                creator,
                "",
                None,
                _json(
                    {
                        "title": issue.title,
                        "severity": severity,
                        "status": Status.NEW,
                        "organisation": org.name,
                        "requester": requester.email,
                        "assignee": assignee.username if assignee else None,
                        "team": team.slug,
                        "tags": sorted(tags),
                    }
                ),
                "",
                False,
            )
        )

        def move(to: str, actor: Person | None, at: float) -> None:
            nonlocal status
            if to == Status.REOPENED:
                events.append((at, EventKind.REOPENED, actor, "", _json(status), _json(to), "", False))
            events.append(
                (at, EventKind.STATUS_CHANGED, actor, "status", _json(status), _json(to), "", False)
            )
            status = to

        def reply(actor: Person, options: list[str], at: float) -> None:
            events.append(
                (at, EventKind.PUBLIC_REPLY, actor, "", None, None, self._text(options, first, sev), True)
            )

        def note(actor: Person, options: list[str], at: float) -> None:
            events.append((at, EventKind.INTERNAL_NOTE, actor, "", None, None, rng.choice(options), False))

        sev = severity
        # Conversation beyond the lifecycle itself (which averages about 5.5 events), so the mean
        # approaches --events-per-case when that is higher.
        budget = max(0.0, self.events_per_case - 5.5)
        optional = round(rng.expovariate(1 / budget)) if budget > 0 else 0

        if first_contact:
            owner = assignee
            assert owner is not None  # a first-contact case was given an assignee above
            t += self._lu(TRIAGE[sev])
            reply(owner, RESOLUTIONS, t)
            t += rng.uniform(30, 10 * MINUTE)
            move(Status.RESOLVED, owner, t)
            resolved_at = [t]
        else:
            triager = self._agent()
            ack_first = rng.random() < 0.5
            if ack_first:
                t += self._lu(TRIAGE[sev]) * 0.5
                reply(triager, ACKS, t)
            t += self._lu(TRIAGE[sev])
            confirmed = sev
            if rng.random() < 0.1:
                confirmed = self.sev_names[min(3, max(0, self.sev_names.index(sev) + rng.choice((-1, 1))))]
                change = (t, EventKind.SEVERITY_CHANGED, triager, "severity", _json(sev), _json(confirmed))
                events.append((*change, "", False))
                sev = confirmed
            if assignee is None and rng.random() < 0.9:
                assignee = self._agent()
                name = _json(assignee.username)
                events.append((t, EventKind.ASSIGNEE_CHANGED, triager, "assignee", None, name, "", False))
            move(Status.TRIAGED, triager, t)
            owner = assignee or triager
            if not ack_first:
                t += rng.uniform(MINUTE, 30 * MINUTE)
                reply(owner, ACKS, t)
            resolved_at = []
            work = self._lu(WORK[sev])
            if stuck or optional > 0 or rng.random() < 0.6:
                t += rng.uniform(5 * MINUTE, 2 * HOUR)
                move(Status.IN_PROGRESS, owner, t)
                while optional > 0:
                    pick = rng.random()
                    if pick < 0.25 and optional >= 3:
                        t += work * rng.uniform(0.05, 0.3)
                        reply(owner, ASK_INFO, t)
                        t += rng.uniform(30, 5 * MINUTE)
                        move(Status.WAITING_ON_CUSTOMER, owner, t)
                        t += self._lu((HOUR, 3 * DAY))
                        move(Status.IN_PROGRESS, owner, t)
                        optional -= 3
                    elif pick < 0.35 and optional >= 3:
                        t += work * rng.uniform(0.05, 0.3)
                        note(owner, ENGINEERING_NOTES, t)
                        t += rng.uniform(30, 5 * MINUTE)
                        move(Status.WAITING_ON_ENGINEERING, owner, t)
                        t += self._lu((4 * HOUR, 6 * DAY))
                        move(Status.IN_PROGRESS, owner, t)
                        optional -= 3
                    elif pick < 0.7:
                        t += work * rng.uniform(0.05, 0.3)
                        reply(owner, UPDATES, t)
                        optional -= 1
                    else:
                        t += work * rng.uniform(0.05, 0.3)
                        note(owner, NOTES, t)
                        optional -= 1
            if stuck:
                t += work * rng.uniform(0.1, 0.5)
                note(owner, ENGINEERING_NOTES, t)
                t += rng.uniform(30, 5 * MINUTE)
                move(rng.choice((Status.WAITING_ON_ENGINEERING, Status.WAITING_ON_CUSTOMER)), owner, t)
            else:
                t += work
                if status == Status.IN_PROGRESS:
                    reply(owner, RESOLUTIONS, t)
                    t += rng.uniform(30, 10 * MINUTE)
                move(Status.RESOLVED, owner, t)
                resolved_at.append(t)
        if resolved_at and rng.random() < 0.04:
            # The customer says it is not fixed: reopened before the auto-close.
            t += self._lu((6 * HOUR, 6 * DAY))
            move(Status.REOPENED, owner, t)
            note(owner, REOPEN_NOTES, t + 1)
            t += 1 + self._lu((10 * MINUTE, 4 * HOUR))
            move(Status.IN_PROGRESS, owner, t)
            t += self._lu((2 * HOUR, 3 * DAY))
            reply(owner, RESOLUTIONS, t)
            t += rng.uniform(30, 10 * MINUTE)
            move(Status.RESOLVED, owner, t)
            resolved_at.append(t)
        if resolved_at:
            # The auto-close sweep (every 15 minutes) closes the case AUTO_CLOSE after resolution.
            t += AUTO_CLOSE + rng.uniform(0, 15 * MINUTE)
            move(Status.CLOSED, None, t)

        return self._cut(
            events,
            org=org,
            requester=requester,
            issue=issue,
            severity=severity,
            team=team,
            tags=tags,
            created=created,
            assignee=initial_assignee,
        )

    def _cut(
        self, events: list[Event], *, org, requester, issue, severity, team, tags, created, assignee
    ) -> Generated:
        """Keep what has happened by now and derive the case row from exactly those events."""
        now = self.now
        kept = [e for e in events if e[0] <= now]
        row: dict[str, Any] = {
            "title": issue.title,
            "description": issue.description,
            "organisation_id": org.pk,
            "requester_id": requester.pk,
            "severity": severity,
            "severity_confirmed": False,
            "status": Status.NEW,
            "assignee_id": assignee.id if assignee else None,
            "team_id": team.pk,
            "product_area": issue.area,
            "created_at": created,
            "updated_at": created,
            "first_response_at": None,
            "triaged_at": None,
            "first_resolved_at": None,
            "last_resolved_at": None,
            "closed_at": None,
            "reopen_count": 0,
            "version": 1,
        }
        for at, kind, _actor, _field, _old, new, _body, _public in kept:
            row["updated_at"] = at
            if kind == EventKind.PUBLIC_REPLY and row["first_response_at"] is None:
                row["first_response_at"] = at
            elif kind == EventKind.SEVERITY_CHANGED:
                row["severity"] = _decoded(new)
                row["severity_confirmed"] = True
            elif kind == EventKind.ASSIGNEE_CHANGED:
                row["assignee_id"] = self.agent_ids[_decoded(new)]
            elif kind == EventKind.REOPENED:
                row["reopen_count"] += 1
            elif kind == EventKind.STATUS_CHANGED:
                to = _decoded(new)
                row["status"] = to
                row["version"] += 1
                if to == Status.TRIAGED:
                    row["severity_confirmed"] = True
                    row["triaged_at"] = row["triaged_at"] or at
                elif to == Status.RESOLVED:
                    row["first_resolved_at"] = row["first_resolved_at"] or at
                    row["last_resolved_at"] = at
                elif to == Status.CLOSED:
                    row["closed_at"] = at
        tag_ids = [self.pools.tags[name] for name in tags]
        return Generated(row=row, tag_ids=tag_ids, events=kept)


def _cumulative(weights: list[float]):
    total = 0.0
    for w in weights:
        total += w
        yield total


class Command(BaseCommand):
    help = "Generate N cases with consistent timelines in bulk (COPY on PostgreSQL) for benchmarks."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, required=True, help="How many cases to add.")
        parser.add_argument(
            "--batch", type=int, default=50_000, help="Cases per transaction (default 50000)."
        )
        parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
        parser.add_argument(
            "--events-per-case",
            type=float,
            default=4.0,
            help="Target mean events per case; a closed case's own lifecycle needs about 5, "
            "so lower values give the minimal timeline (default 4).",
        )
        parser.add_argument(
            "--days", type=int, default=730, help="Spread creation over this many days (730)."
        )
        parser.add_argument("--organisations", type=int, default=300, help="Size of the organisation pool.")
        parser.add_argument("--agents", type=int, default=40, help="Size of the agent pool.")

    def handle(
        self,
        *args,
        count: int,
        batch: int,
        seed: int,
        events_per_case: float,
        days: int,
        organisations: int,
        agents: int,
        **options,
    ):
        if count < 1 or batch < 1 or days < 1 or organisations < 1 or agents < 1:
            raise CommandError("--count, --batch, --days, --organisations and --agents must be positive.")
        if organisations > len(ORG_PREFIXES) * len(ORG_SUFFIXES):
            raise CommandError(f"--organisations can be at most {len(ORG_PREFIXES) * len(ORG_SUFFIXES)}.")
        rng = random.Random(seed)
        started = time.monotonic()
        pools = self._pools(rng, organisations=organisations, agents=agents)
        planner = CasePlanner(
            rng, pools, now=timezone.now().timestamp(), days=days, events_per_case=events_per_case
        )
        postgres = connection.vendor == "postgresql"
        self.stdout.write(
            f"Generating {count:,} cases in batches of {batch:,} "
            f"({'COPY' if postgres else 'bulk_create'} on {connection.vendor})."
        )
        sizes = [min(batch, count - start) for start in range(0, count, batch)]
        if postgres:
            total_events = self._load_postgres(planner, sizes, count=count)
        else:
            total_events = self._load_orm(planner, sizes, count=count)
        total_cases = count
        if postgres:
            t0 = time.monotonic()
            with connection.cursor() as cursor:
                # The small pool tables too: fresh statistics keep the planner's join estimates right.
                for model in (
                    Case,
                    CaseEvent,
                    Case.tags.through,
                    Organisation,
                    Contact,
                    Team,
                    get_user_model(),
                ):
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
            self.stdout.write(f"  ANALYZE in {time.monotonic() - t0:.1f} s")
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {total_cases:,} cases and {total_events:,} events "
                f"({total_events / max(total_cases, 1):.2f} per case) in {elapsed:.1f} s "
                f"({(total_cases + total_events) / max(elapsed, 1e-9):,.0f} rows/s)."
            )
        )

    # --- pools -----------------------------------------------------------------------------------

    def _pools(self, rng: random.Random, *, organisations: int, agents: int) -> Pools:
        user_model = get_user_model()
        agent_group = Group.objects.get(name=Role.AGENT)
        people = []
        for i in range(agents):
            first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[(i * 7) % len(LAST_NAMES)]
            user, created = user_model.objects.get_or_create(
                username=f"bench-agent-{i + 1:03d}",
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"bench-agent-{i + 1:03d}@support.example",
                },
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
                user.groups.add(agent_group)
            people.append(Person(user.pk, user.username, user.get_full_name() or user.username))
        # A few agents carry much of the load (the experts); the tail takes less.
        agent_weights = [1 / math.sqrt(i + 1) for i in range(agents)]

        teams = {}
        for name, slug in BENCH_TEAMS:
            teams[slug], _ = Team.objects.get_or_create(slug=slug, defaults={"name": name})

        tag_names = sorted({t for issue in ISSUES for t in issue.tags})
        Tag.objects.bulk_create([Tag(name=n) for n in tag_names], ignore_conflicts=True)
        tags = dict(Tag.objects.filter(name__in=tag_names).values_list("name", "id"))

        pool_rng = random.Random(0)  # the pool is the same whatever --seed, so runs add to one pool
        combos = [(p, s) for p in ORG_PREFIXES for s in ORG_SUFFIXES]
        pool_rng.shuffle(combos)
        specs = []
        for prefix, suffix in combos[:organisations]:
            tier = pool_rng.choices([Tier.ENTERPRISE, Tier.BUSINESS, Tier.STANDARD], weights=[10, 30, 60])[0]
            specs.append((f"{prefix} {suffix}", tier, pool_rng.choice(TIME_ZONES)))
        # Only the missing ones, with their history rows (the configuration audit trail).
        names = [n for n, _, _ in specs]
        known = set(Organisation.objects.filter(name__in=names).values_list("name", flat=True))
        bulk_create_with_history(
            [Organisation(name=n, tier=t, time_zone=z) for n, t, z in specs if n not in known],
            Organisation,
            default_change_reason="manage.py generate_cases",
        )
        orgs = {o.name: o for o in Organisation.objects.filter(name__in=[n for n, _, _ in specs])}
        contacts = []
        for name, _, _ in specs:
            domain = name.lower().replace(" ", "") + ".example"
            for _ in range(4):
                first, last = pool_rng.choice(FIRST_NAMES), pool_rng.choice(LAST_NAMES)
                email = f"{first}.{last}@{domain}".lower()
                contacts.append(Contact(organisation=orgs[name], name=f"{first} {last}", email=email))
        Contact.objects.bulk_create(contacts, ignore_conflicts=True)
        by_org: dict[int, list[Contact]] = {}
        for c in Contact.objects.filter(organisation__in=orgs.values()).order_by("id"):
            by_org.setdefault(c.organisation_id, []).append(c)
        now = timezone.now()
        org_pool = []
        for name, _, _ in specs:
            org = orgs[name]
            offset = now.astimezone(zoneinfo.ZoneInfo(org.time_zone)).utcoffset() or dt.timedelta(0)
            org_pool.append((org, by_org[org.pk], int(offset.total_seconds() // 60)))
        org_weights = [TIER_VOLUME[o.tier] * (0.5 + rng.random()) for o, _, _ in org_pool]
        return Pools(org_pool, org_weights, people, agent_weights, teams, tags)

    # --- writers ---------------------------------------------------------------------------------

    CASE_COLUMNS = [
        "title", "description", "organisation_id", "requester_id", "severity", "severity_confirmed",
        "status", "assignee_id", "team_id", "product_area", "created_at", "updated_at",
        "first_response_at", "triaged_at", "first_resolved_at", "last_resolved_at", "closed_at",
        "reopen_count", "version",
    ]  # fmt: skip
    TIME_COLUMNS = frozenset(
        {"created_at", "updated_at", "first_response_at", "triaged_at"}
        | {"first_resolved_at", "last_resolved_at", "closed_at"}
    )
    EVENT_COLUMNS = [
        "case_id",
        "kind",
        "actor_id",
        "actor_name",
        "created_at",
        "field",
        "old_value",
        "new_value",
        "body",
        "is_public",
        "imported",
    ]

    def _progress(
        self, number: int, size: int, events: int, *, prepare: float, write: float, done: int, count: int
    ):
        rows = size + events
        self.stdout.write(
            f"  batch {number}: {size:,} cases + {events:,} events written in {write:.1f} s "
            f"({rows / max(write, 1e-9):,.0f} rows/s; prepared in {prepare:.1f} s); {done:,}/{count:,}"
        )
        self.stdout.flush()

    def _load_orm(self, planner: CasePlanner, sizes: list[int], *, count: int) -> int:
        total_events = done = 0
        for number, size in enumerate(sizes, start=1):
            t0 = time.monotonic()
            generated = planner.plan(size)
            t1 = time.monotonic()
            with transaction.atomic():
                events = self._write_orm(generated)
            done += size
            total_events += events
            self._progress(
                number, size, events, prepare=t1 - t0, write=time.monotonic() - t1, done=done, count=count
            )
        return total_events

    def _load_postgres(self, planner: CasePlanner, sizes: list[int], *, count: int) -> int:
        """Plan and format batch n+1 in a worker thread while batch n is copied and committed.

        The database does most of its work (indexes, the deferred foreign-key checks at commit)
        while the client waits with the GIL released, so the two overlap well.
        """
        total_events = done = 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(self._prepare_postgres, planner, self._reserve_ids(sizes[0]))
            for number, size in enumerate(sizes, start=1):
                buffers, events, prepare = pending.result()
                if number < len(sizes):
                    pending = pool.submit(self._prepare_postgres, planner, self._reserve_ids(sizes[number]))
                t0 = time.monotonic()
                with transaction.atomic(), connection.cursor() as cursor:
                    # Losing the last batches in a crash is harmless for generated data.
                    cursor.execute("SET LOCAL synchronous_commit TO off")
                    for table, columns, data in buffers:
                        self._copy(table, columns, data)
                done += size
                total_events += events
                self._progress(
                    number, size, events, prepare=prepare, write=time.monotonic() - t0, done=done, count=count
                )
        return total_events

    def _reserve_ids(self, size: int) -> list[int]:
        """Case ids from the table's own sequence: never reused, so safe next to live inserts."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [Case._meta.db_table, size],
            )
            return [r[0] for r in cursor.fetchall()]

    def _prepare_postgres(self, planner: CasePlanner, ids: list[int]) -> tuple[list, int, float]:
        """Plan a batch and render it as COPY text: ([(table, columns, data)], events, seconds)."""
        started = time.monotonic()
        generated = planner.plan(len(ids))
        case_table = Case._meta.db_table
        esc_cache: dict[str, str] = {}

        def esc(value: str) -> str:
            out = esc_cache.get(value)
            if out is None:
                out = esc_cache[value] = _esc(value)
            return out

        case_lines = []
        tag_lines = []
        event_lines = []
        events = 0
        time_columns = self.TIME_COLUMNS
        for case_id, g in zip(ids, generated, strict=True):
            values = [str(case_id)]
            for column in self.CASE_COLUMNS:
                value = g.row[column]
                if value is None:
                    values.append("\\N")
                elif column in time_columns:
                    values.append(_ts(value))
                elif isinstance(value, bool):
                    values.append("t" if value else "f")
                elif isinstance(value, str):
                    values.append(esc(value))
                else:
                    values.append(str(value))
            case_lines.append("\t".join(values))
            for tag_id in g.tag_ids:
                tag_lines.append(f"{case_id}\t{tag_id}")
            cid = str(case_id)
            for at, kind, actor, field, old, new, body, public in g.events:
                event_lines.append(
                    "\t".join(
                        (
                            cid,
                            kind,
                            str(actor.id) if actor else "\\N",
                            esc(actor.name) if actor else "system",
                            _ts(at),
                            field,
                            esc(old) if old is not None else "\\N",
                            esc(new) if new is not None else "\\N",
                            esc(body),
                            "t" if public else "f",
                            "f",
                        )
                    )
                )
            events += len(g.events)
        buffers = [
            (case_table, ["id", *self.CASE_COLUMNS], "\n".join(case_lines) + "\n"),
            (CaseEvent._meta.db_table, self.EVENT_COLUMNS, "\n".join(event_lines) + "\n"),
        ]
        if tag_lines:
            buffers.append(
                (Case.tags.through._meta.db_table, ["case_id", "tag_id"], "\n".join(tag_lines) + "\n")
            )
        return buffers, events, time.monotonic() - started

    def _copy(self, table: str, columns: list[str], data: str) -> None:
        qn = connection.ops.quote_name
        sql = f"COPY {qn(table)} ({', '.join(qn(c) for c in columns)}) FROM STDIN WITH (FORMAT text)"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:  # psycopg 3
            copy.write(data)

    def _write_orm(self, generated: list[Generated]) -> int:
        """bulk_create one batch (SQLite and other databases); returns the number of events written."""

        def aware(value):
            return dt.datetime.fromtimestamp(value, dt.UTC) if value is not None else None

        cases = []
        for g in generated:
            fields = {k: (aware(v) if k in self.TIME_COLUMNS else v) for k, v in g.row.items()}
            cases.append(Case(**fields))
        Case.objects.bulk_create(cases)
        through = Case.tags.through
        Case.tags.through.objects.bulk_create(
            [
                through(case_id=c.pk, tag_id=t)
                for c, g in zip(cases, generated, strict=True)
                for t in g.tag_ids
            ]
        )
        events = [
            CaseEvent(
                case_id=c.pk,
                kind=kind,
                actor_id=actor.id if actor else None,
                actor_name=actor.name if actor else "system",
                created_at=aware(at),
                field=field,
                old_value=json.loads(old) if old is not None else None,
                new_value=json.loads(new) if new is not None else None,
                body=body,
                is_public=public,
            )
            for c, g in zip(cases, generated, strict=True)
            for at, kind, actor, field, old, new, body, public in g.events
        ]
        CaseEvent.objects.bulk_create(events, batch_size=2000)
        return len(events)
