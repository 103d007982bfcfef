"""Load a believable month of support work for demos and local development (``make run``).

Everything about a case is done through ``cases.services`` with an explicit ``now`` for each step,
in global time order, so the timeline, the lifecycle timestamps and anything other apps record
from ``case_event_recorded`` are exactly what real use would have produced. The whole load is one
transaction: either all of it is there or none of it, which is what makes the marker check safe.

Idempotent: when the marker organisation exists the command stops at once and changes nothing.
Reproducible: one ``random.Random(2026)`` drives every choice (only "now" differs between runs).
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
import time
import zoneinfo
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher, get_hasher
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from cases import services
from cases.models import Case, CaseEvent, Contact, Organisation, OrganisationDomain, Status, Team, Tier
from metrics import rollup
from sla import services as sla_services
from sla import urgency
from supportdesk.core import audit, outbox
from supportdesk.core.models import OutboundMessage, StaffProfile
from supportdesk.core.roles import Role

SEED = 2026
_Key = TypeVar("_Key")
DEFAULT_CASES = 300
MARKER_ORGANISATION = "Northwind Logistics"

# The demo staff: roles, superuser (admin only) and the time zone their profile shows times in.
DEMO_USERS: list[dict[str, Any]] = [
    {"username": "agent", "first_name": "Priya", "last_name": "Raman", "roles": [Role.AGENT],
     "time_zone": "Europe/Berlin"},
    {"username": "agent2", "first_name": "Tom", "last_name": "Becker", "roles": [Role.AGENT],
     "time_zone": "America/New_York"},
    {"username": "manager", "first_name": "Sofia", "last_name": "Marquez", "roles": [Role.MANAGER],
     "time_zone": "Europe/Berlin"},
    {"username": "engineer", "first_name": "Kenji", "last_name": "Watanabe", "roles": [Role.ENGINEER],
     "time_zone": "Asia/Tokyo"},
    {"username": "admin", "first_name": "Dana", "last_name": "Okafor", "roles": [Role.ADMIN],
     "superuser": True, "time_zone": "UTC"},
]  # fmt: skip
# Demo-only credentials: the password is the username (documented in the README and printed).
DEMO_PASSWORDS = {u["username"]: u["username"] for u in DEMO_USERS}
DEMO_HASH_ITERATIONS = 10_000

TEAMS = [
    ("Tier 1", "tier-1", "tier1@support.example", ["agent", "agent2"]),
    ("Tier 2", "tier-2", "tier2@support.example", ["agent2", "manager"]),
    ("Platform", "platform", "platform-support@support.example", ["manager", "admin"]),
]

# name, tier, time zone, e-mail domain, contacts (name, local part).
ORGANISATIONS = [
    (MARKER_ORGANISATION, Tier.ENTERPRISE, "Europe/Berlin", "northwind.example",
     [("Jana Hoffmann", "jana.hoffmann"), ("Lukas Weber", "lukas.weber"), ("Mira Schulz", "it-ops")]),
    ("Globex Retail", Tier.ENTERPRISE, "America/New_York", "globex.example",
     [("Marcus Reed", "marcus.reed"), ("Olivia Grant", "olivia.grant"), ("Ray Donovan", "ray.d"),
      ("Helpdesk Globex", "helpdesk")]),
    ("Kaito Robotics", Tier.BUSINESS, "Asia/Tokyo", "kaito.example",
     [("Yuki Sato", "yuki.sato"), ("Haruto Tanaka", "h.tanaka")]),
    ("Bluebird Health", Tier.BUSINESS, "America/Chicago", "bluebird.example",
     [("Grace Liu", "grace.liu"), ("Samuel Ortiz", "sortiz"), ("Nadia Petrova", "nadia")]),
    ("Fjordline Analytics", Tier.BUSINESS, "Europe/Oslo", "fjordline.example",
     [("Ingrid Berg", "ingrid"), ("Ola Nordmann", "ola.nordmann")]),
    ("Lantern Labs", Tier.STANDARD, "UTC", "lanternlabs.example",
     [("Chris Adeyemi", "chris"), ("Pat Kowalski", "pat"), ("Robin Evans", "robin")]),
    ("Piedmont Credit Union", Tier.STANDARD, "America/New_York", "piedmontcu.example",
     [("Ellen Brooks", "ebrooks"), ("Dwayne Harris", "dharris")]),
    ("Saffron Travel", Tier.STANDARD, "Asia/Kolkata", "saffrontravel.example",
     [("Ananya Iyer", "ananya"), ("Rohan Mehta", "rohan.mehta"), ("Support Desk", "support")]),
]  # fmt: skip


@dataclass(frozen=True)
class Issue:
    area: str
    title: str
    description: str
    tags: tuple[str, ...]
    severities: tuple[str, ...]  # the severities a requester would plausibly file this as


# Titles and bodies a SaaS support desk sees; shared with generate_cases.
ISSUES: list[Issue] = [
    Issue("Authentication", "SSO login loop after IdP certificate rotation",
          "Since we rotated the signing certificate in Okta this morning, users are redirected back and "
          "forth between the IdP and the login page. Local admin login still works.",
          ("sso", "saml"), ("P1", "P2")),
    Issue("Authentication", "SAML assertion rejected: audience mismatch",
          "New users provisioned through SCIM cannot sign in; the error page says the assertion "
          "audience does not match. Existing users are fine.", ("sso", "saml", "scim"), ("P2", "P3")),
    Issue("Authentication", "MFA codes not accepted for some users",
          "About a dozen users report that their authenticator codes are rejected. Their phone clocks "
          "look correct.", ("mfa",), ("P2", "P3")),
    Issue("Authentication", "Password reset e-mail never arrives",
          "A user requested a password reset three times; nothing in inbox or spam. Other "
          "notification e-mails arrive.", ("email", "login"), ("P3", "P4")),
    Issue("Webhooks", "Webhook deliveries delayed in EU region",
          "Our order.created webhooks arrive 20-40 minutes late since about 08:30 CET. Our endpoint "
          "responds in under 200 ms.", ("webhooks", "eu-region"), ("P1", "P2")),
    Issue("Webhooks", "Webhook signature verification fails after secret rotation",
          "After rotating the signing secret our receiver rejects every delivery with an invalid "
          "signature. We use the documented HMAC-SHA256 check.", ("webhooks", "security"), ("P2", "P3")),
    Issue("Webhooks", "Duplicate webhook events for invoice.paid",
          "We receive each invoice.paid event two or three times with the same event id, which "
          "creates duplicate bookings on our side.", ("webhooks", "billing"), ("P2", "P3")),
    Issue("API", "API returns 502 on bulk export endpoint",
          "GET /v2/exports/{id} intermittently fails with 502 Bad Gateway for exports over 50k rows. "
          "Smaller exports succeed.", ("api", "exports"), ("P2", "P3")),
    Issue("API", "Rate limit headers missing on 429 responses",
          "When we hit the rate limit the response has no Retry-After or X-RateLimit-Reset header, so "
          "our client backs off blindly.", ("api", "rate-limit"), ("P3", "P4")),
    Issue("API", "Pagination cursor skips records on /v2/contacts",
          "Iterating /v2/contacts with the next cursor returns fewer records than the total count; "
          "roughly 1 in 500 records is missing.", ("api", "data-integrity"), ("P2", "P3")),
    Issue("API", "OAuth token refresh returns invalid_grant",
          "Our integration started failing overnight: refresh requests return invalid_grant although "
          "the refresh token is less than a day old.", ("api", "oauth"), ("P2", "P3")),
    Issue("Billing", "Invoice shows wrong VAT rate for Norwegian entity",
          "The March invoice applies 19% VAT instead of 25% for our Norwegian entity. Finance needs a "
          "corrected invoice before month-end close.", ("billing", "invoice"), ("P3", "P4")),
    Issue("Billing", "Seats not released after user deactivation",
          "We deactivated 40 users last week but the billing page still counts them as used seats.",
          ("billing", "seats"), ("P3", "P4")),
    Issue("Billing", "Card payment declined but charged",
          "Our renewal shows as failed in the billing page, yet the card was charged. Please check "
          "and refund the duplicate.", ("billing", "payments"), ("P2", "P3")),
    Issue("Reporting", "Dashboard widgets stuck on 'Loading'",
          "Since the last release the team performance dashboard never finishes loading; browser "
          "console shows a timeout on /reports/aggregate.", ("reporting", "performance"), ("P2", "P3")),
    Issue("Reporting", "Scheduled report e-mailed with empty CSV",
          "The weekly SLA report arrived with only the header row. Running it manually shows data.",
          ("reporting", "email"), ("P3",)),
    Issue("Reporting", "Time zone wrong in exported reports",
          "Timestamps in CSV exports are in UTC although our account is set to Asia/Tokyo, which "
          "shifts daily totals by one day.", ("reporting", "timezone"), ("P3", "P4")),
    Issue("Integrations", "Salesforce sync stopped after field rename",
          "We renamed a custom field in Salesforce and since then no accounts sync. The integration "
          "log shows INVALID_FIELD errors.", ("salesforce", "sync"), ("P2", "P3")),
    Issue("Integrations", "Slack notifications posted to the wrong channel",
          "Alerts for the EMEA queue are posted in #support-us. We reconnected the Slack app once "
          "already.", ("slack",), ("P3", "P4")),
    Issue("Integrations", "Jira issue links not created from cases",
          "Linking a case to Jira shows a success message, but no link appears on either side.",
          ("jira",), ("P3",)),
    Issue("Data import", "CSV import fails on UTF-8 with BOM",
          "Importing our customer list fails with 'unknown column ï»¿email'. The file was exported "
          "from Excel.", ("import", "csv"), ("P3", "P4")),
    Issue("Data import", "Import job stuck at 99% for hours",
          "An import of 120k records has been at 99% since yesterday; we cannot start a new one.",
          ("import",), ("P2", "P3")),
    Issue("Notifications", "E-mail notifications delayed by several hours",
          "Assignment e-mails arrive 2-3 hours late for all our agents since this morning.",
          ("email", "notifications"), ("P2", "P3")),
    Issue("Notifications", "Unsubscribe link in digest e-mail returns 404",
          "Customers clicking unsubscribe in the weekly digest land on a 404 page.",
          ("email",), ("P3", "P4")),
    Issue("Performance", "Search is very slow for large workspaces",
          "Full-text search takes 15-30 seconds in our main workspace (2M records); small workspaces "
          "are fast.", ("search", "performance"), ("P2", "P3")),
    Issue("Performance", "Application unavailable: 503 for all users",
          "Every page returns 503 Service Unavailable for all our users since 14:05 local time. "
          "Status page shows all green.", ("outage",), ("P1",)),
    Issue("Performance", "Intermittent timeouts saving records",
          "Roughly one save in twenty times out after 30 s, mostly in the afternoon.",
          ("performance",), ("P2", "P3")),
    Issue("Mobile app", "iOS app crashes on launch after update 5.12",
          "Since updating to 5.12 the iOS app crashes immediately on iPhone 12 and 13; Android is fine.",
          ("mobile", "ios"), ("P2", "P3")),
    Issue("Mobile app", "Push notifications not received on Android 14",
          "Several field technicians on Android 14 no longer get push notifications.",
          ("mobile", "android"), ("P3",)),
    Issue("Admin", "Audit log export missing last 7 days",
          "Our compliance team needs the audit log; the export stops seven days ago.",
          ("audit", "compliance"), ("P2", "P3")),
    Issue("Admin", "Custom role cannot be assigned to new users",
          "The 'Regional lead' custom role is greyed out when inviting users.",
          ("permissions",), ("P3", "P4")),
    Issue("Admin", "Request: raise API rate limit for migration weekend",
          "We migrate our historical data next weekend and would like a temporary higher API rate "
          "limit (about 3x).", ("api", "request"), ("P4",)),
    Issue("Admin", "How do we configure data retention per workspace?",
          "Legal asked us to keep closed records for 2 years in one workspace and 10 in another. Is "
          "that possible?", ("question", "retention"), ("P4",)),
    Issue("Admin", "Question about sandbox refresh schedule",
          "How often is the sandbox refreshed from production, and can we trigger it ourselves?",
          ("question", "sandbox"), ("P4",)),
    Issue("UI", "Date picker shows wrong first day of week",
          "Our German users see Sunday as the first day of the week in the date picker.",
          ("ui", "i18n"), ("P4",)),
    Issue("UI", "Attachments over 10 MB fail to upload",
          "Uploading a 14 MB PDF ends in a generic error; the documented limit is 25 MB.",
          ("attachments", "ui"), ("P3",)),
]  # fmt: skip

ACKS = [
    "Hi {first},\n\nthanks for reporting this. I'm looking into it now and will update you within {cadence}.",
    "Hello {first},\n\nthank you for the details. I've reproduced the behaviour on our side and am "
    "working on it; next update within {cadence}.",
    "Hi {first},\n\nwe're on it. I've asked our engineers to check the logs for your tenant and will "
    "get back to you within {cadence}.",
]
ASK_INFO = [
    "Hi {first},\n\ncould you send us a HAR file of a failing attempt and the exact time (with time "
    "zone) it happened? That lets us find the request in our logs.",
    "Hi {first},\n\nto narrow this down, could you share the request IDs (X-Request-Id header) of two "
    "or three failing calls?",
    "Hi {first},\n\ncould you confirm which users are affected and whether they use the same browser "
    "or network? A screenshot of the error would help too.",
    "Hi {first},\n\nwe need the export/job ID and the approximate record count to investigate further.",
]
UPDATES = [
    "Hi {first},\n\nquick update: engineering has identified the cause and is testing a fix. I'll "
    "update you within {cadence}.",
    "Hi {first},\n\nwe're still investigating. We've ruled out your configuration and are now checking "
    "the component on our side; next update within {cadence}.",
    "Hi {first},\n\nthe fix is deployed to our staging environment and passes our tests; we expect to "
    "roll it out later today.",
]
RESOLUTIONS = [
    "Hi {first},\n\nthe fix has been deployed and we see the issue resolved for your account. Please "
    "let us know if you still notice anything; otherwise this case closes automatically in 7 days.",
    "Hi {first},\n\nwe've applied the correction on your account and verified it. If the problem "
    "comes back, just reply to this e-mail.",
    "Hi {first},\n\nthis is answered in our documentation (link below), and I've confirmed the "
    "settings on your workspace. Let us know if anything is unclear.",
    "Hi {first},\n\nroot cause: a configuration change on our side in the affected region. It's been "
    "reverted and we've added a check to prevent it. Apologies for the disruption.",
]
NOTES = [
    "Reproduced on staging with a copy of the tenant's settings. Looks related to last Tuesday's deploy.",
    "Checked the logs for the tenant: many 401s from the IdP callback between 08:10 and 09:30 UTC.",
    "Customer is on the legacy plan; entitlement allows 24x7 support for P1 only.",
    "Possible duplicate of a case from last week; same stack trace in the error tracker.",
    "Asked Platform on-call in #platform-support; they're looking at the queue backlog.",
    "Workaround offered: switch to the US region endpoint temporarily.",
    "Account manager informed; renewal is next month, handle with care.",
    "Customer sent the requested IDs by e-mail; attached to the escalation draft.",
]
REOPEN_NOTES = [
    "Customer replied that the problem is back for some users since this morning.",
    "Customer says the fix did not cover their second workspace; reopening.",
]
ENGINEERING_NOTES = [
    "Escalated to engineering with reproduction steps, tenant ID and request IDs. Waiting on a fix.",
    "Engineering confirmed a bug in the export worker; fix scheduled for the next patch release.",
]
CUSTOMER_BACK_NOTES = [
    "Customer provided the requested details; continuing the investigation.",
    "Customer confirmed the affected users and sent a screenshot.",
]

SEVERITY_WEIGHTS = {"P1": 3, "P2": 15, "P3": 55, "P4": 27}
# How a month of cases ends up (before the time window trims the newest ones).
FINAL_STATE_WEIGHTS = {
    Status.CLOSED: 55,
    Status.RESOLVED: 12,
    Status.IN_PROGRESS: 10,
    Status.WAITING_ON_CUSTOMER: 7,
    Status.WAITING_ON_ENGINEERING: 5,
    Status.TRIAGED: 4,
    Status.NEW: 5,
    Status.REOPENED: 2,
}
# The oldest a case in that final state plausibly is (days).
MAX_AGE_DAYS = {
    Status.NEW: 2,
    Status.TRIAGED: 3,
    Status.IN_PROGRESS: 8,
    Status.WAITING_ON_CUSTOMER: 10,
    Status.WAITING_ON_ENGINEERING: 14,
    Status.REOPENED: 8,
    Status.RESOLVED: 14,
    Status.CLOSED: 30,
}
# Minutes: how quickly the desk triages and first answers, per severity (low, high).
TRIAGE_MINUTES = {"P1": (3, 20), "P2": (10, 90), "P3": (30, 360), "P4": (60, 1200)}
CADENCE = {"P1": "30 minutes", "P2": "2 hours", "P3": "one business day", "P4": "two business days"}
AUTO_CLOSE_DAYS = 7


@dataclass
class Step:
    offset: float  # minutes after creation
    action: str  # create | transition | reply | note | update
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class PlannedCase:
    final: Status
    severity: str
    organisation: Organisation
    requester: Contact
    issue: Issue
    steps: list[Step]
    created_at: dt.datetime | None = None


class Planner:
    """Plans each case's whole story (offsets from creation), before anything is written."""

    def __init__(self, rng: random.Random, *, users: dict[str, Any], teams: dict[str, Team]) -> None:
        self.rng = rng
        self.users = users
        self.teams = teams
        self.workers = [users["agent"], users["agent2"], users["manager"]]

    def _pick(self, weights: Mapping[_Key, int]) -> _Key:
        keys = list(weights)
        return self.rng.choices(keys, weights=[weights[k] for k in keys])[0]

    def plan(
        self, *, final: Status, severity: str, organisation: Organisation, contacts: list[Contact]
    ) -> PlannedCase:
        rng = self.rng
        candidates = [i for i in ISSUES if severity in i.severities] or ISSUES
        issue = rng.choice(candidates)
        requester = rng.choice(contacts)
        first = requester.name.split()[0]
        steps: list[Step] = []
        t = 0.0

        def later(low: float, high: float) -> float:
            nonlocal t
            t += rng.uniform(low, high)
            return t

        creator = rng.choice([None, None, self.users["agent"], self.users["agent2"]])
        cc = [c for c in contacts if c != requester and rng.random() < 0.25]
        steps.append(
            Step(
                0.0,
                "create",
                {
                    "actor": creator,
                    "title": issue.title,
                    "description": issue.description,
                    "severity": severity,
                    "product_area": issue.area,
                    "tags": list(issue.tags),
                    "cc": cc,
                },
            )
        )
        if final == Status.NEW:
            return PlannedCase(final, severity, organisation, requester, issue, steps)

        # Triage: confirm (sometimes correct) the severity, set an owner.
        low, high = TRIAGE_MINUTES[severity]
        confirmed = severity
        if rng.random() < 0.15:
            order = ["P1", "P2", "P3", "P4"]
            i = order.index(severity) + rng.choice([-1, 1])
            confirmed = order[min(max(i, 0), 3)]
        assignee = rng.choices(self.workers, weights=[5, 4, 1])[0]
        team_slug = "tier-2" if confirmed in ("P1", "P2") and rng.random() < 0.6 else "tier-1"
        if issue.area in ("Performance", "Webhooks") and confirmed == "P1":
            team_slug = "platform"
        triager = rng.choice([self.users["agent"], self.users["agent2"]])
        replied = False
        if rng.random() < 0.5:  # acknowledged before triage
            steps.append(
                Step(
                    later(low * 0.3, low * 0.8),
                    "reply",
                    {"actor": triager, "body": self._ack(first, confirmed)},
                )
            )
            replied = True
        steps.append(
            Step(
                later(low * 0.2, high),
                "transition",
                {
                    "to": Status.TRIAGED,
                    "actor": triager,
                    "severity": confirmed,
                    "assignee": assignee,
                    "team": self.teams[team_slug],
                },
            )
        )
        if final == Status.TRIAGED:
            return PlannedCase(final, severity, organisation, requester, issue, steps)

        if not replied:
            steps.append(
                Step(later(2, 30), "reply", {"actor": assignee, "body": self._ack(first, confirmed)})
            )
        steps.append(Step(later(5, 120), "transition", {"to": Status.IN_PROGRESS, "actor": assignee}))

        state = {"assignee": assignee, "severity": confirmed}
        rounds = rng.choice([0, 1, 1, 2, 2, 3])
        for _ in range(rounds):
            self._work_round(steps, later, state, first)
        if final == Status.IN_PROGRESS:
            return PlannedCase(final, severity, organisation, requester, issue, steps)
        if final == Status.WAITING_ON_CUSTOMER:
            steps.append(
                Step(
                    later(10, 240), "reply", {"actor": state["assignee"], "body": self._text(ASK_INFO, first)}
                )
            )
            steps.append(
                Step(
                    later(1, 5), "transition", {"to": Status.WAITING_ON_CUSTOMER, "actor": state["assignee"]}
                )
            )
            return PlannedCase(final, severity, organisation, requester, issue, steps)
        if final == Status.WAITING_ON_ENGINEERING:
            steps.append(
                Step(
                    later(10, 240),
                    "note",
                    {"actor": state["assignee"], "body": rng.choice(ENGINEERING_NOTES)},
                )
            )
            steps.append(
                Step(
                    later(1, 5),
                    "transition",
                    {"to": Status.WAITING_ON_ENGINEERING, "actor": state["assignee"]},
                )
            )
            return PlannedCase(final, severity, organisation, requester, issue, steps)

        self._resolve(steps, later, state, first)
        reopen = final == Status.REOPENED or (final == Status.CLOSED and rng.random() < 0.08)
        if reopen:
            steps.append(
                Step(
                    later(6 * 60, 4 * 24 * 60),
                    "transition",
                    {"to": Status.REOPENED, "actor": state["assignee"]},
                )
            )
            steps.append(
                Step(later(1, 10), "note", {"actor": state["assignee"], "body": rng.choice(REOPEN_NOTES)})
            )
            if final == Status.REOPENED:
                return PlannedCase(final, severity, organisation, requester, issue, steps)
            steps.append(
                Step(later(10, 240), "transition", {"to": Status.IN_PROGRESS, "actor": state["assignee"]})
            )
            steps.append(
                Step(
                    later(30, 600),
                    "reply",
                    {"actor": state["assignee"], "body": self._text(UPDATES, first, confirmed)},
                )
            )
            self._resolve(steps, later, state, first)
        if final == Status.CLOSED:
            # The auto-close sweep runs every 15 minutes, AUTO_CLOSE_DAYS after the last resolution.
            close_at = later(AUTO_CLOSE_DAYS * 24 * 60, AUTO_CLOSE_DAYS * 24 * 60 + 15)
            steps.append(Step(close_at, "transition", {"to": Status.CLOSED, "actor": None}))
        return PlannedCase(final, severity, organisation, requester, issue, steps)

    def _work_round(self, steps: list[Step], later, state: dict[str, Any], first: str) -> None:
        rng = self.rng
        actor = state["assignee"]
        kind = rng.choices(
            ["customer", "engineering", "update", "note", "severity", "reassign", "team"],
            weights=[30, 12, 25, 20, 5, 6, 4],
        )[0]
        if kind == "customer":
            steps.append(Step(later(10, 240), "reply", {"actor": actor, "body": self._text(ASK_INFO, first)}))
            steps.append(Step(later(1, 5), "transition", {"to": Status.WAITING_ON_CUSTOMER, "actor": actor}))
            steps.append(
                Step(later(60, 2 * 24 * 60), "transition", {"to": Status.IN_PROGRESS, "actor": actor})
            )
            steps.append(
                Step(later(1, 10), "note", {"actor": actor, "body": rng.choice(CUSTOMER_BACK_NOTES)})
            )
        elif kind == "engineering":
            steps.append(
                Step(later(30, 300), "note", {"actor": actor, "body": rng.choice(ENGINEERING_NOTES)})
            )
            steps.append(
                Step(later(1, 5), "transition", {"to": Status.WAITING_ON_ENGINEERING, "actor": actor})
            )
            steps.append(
                Step(later(4 * 60, 3 * 24 * 60), "transition", {"to": Status.IN_PROGRESS, "actor": actor})
            )
        elif kind == "update":
            body = self._text(UPDATES, first, state["severity"])
            steps.append(Step(later(30, 600), "reply", {"actor": actor, "body": body}))
        elif kind == "note":
            steps.append(Step(later(10, 300), "note", {"actor": actor, "body": rng.choice(NOTES)}))
        elif kind == "severity":
            order = ["P1", "P2", "P3", "P4"]
            i = order.index(state["severity"])
            new = order[i + 1] if i < 3 else order[i - 1]
            state["severity"] = new
            steps.append(Step(later(30, 600), "update", {"actor": self.users["manager"], "severity": new}))
            body = f"Severity changed to {new} after talking to the customer about impact."
            steps.append(Step(later(1, 5), "note", {"actor": self.users["manager"], "body": body}))
        elif kind == "reassign":
            others = [u for u in self.workers if u != actor]
            new = rng.choice(others)
            # Only a manager reassigns someone else's case (services._check_can_assign).
            steps.append(Step(later(30, 600), "update", {"actor": self.users["manager"], "assignee": new}))
            state["assignee"] = new
        else:
            steps.append(Step(later(30, 600), "update", {"actor": actor, "team": self.teams["tier-2"]}))
            steps.append(
                Step(later(1, 5), "note", {"actor": actor, "body": "Moved to Tier 2: needs log access."})
            )

    def _resolve(self, steps: list[Step], later, state: dict[str, Any], first: str) -> None:
        actor = state["assignee"]
        steps.append(
            Step(later(30, 24 * 60), "reply", {"actor": actor, "body": self._text(RESOLUTIONS, first)})
        )
        steps.append(Step(later(1, 10), "transition", {"to": Status.RESOLVED, "actor": actor}))

    def _ack(self, first: str, severity: str) -> str:
        return self._text(ACKS, first, severity)

    def _text(self, options: list[str], first: str, severity: str = "P3") -> str:
        return self.rng.choice(options).format(first=first, cadence=CADENCE[severity])


@contextmanager
def _bulk_load() -> Iterator[None]:
    """What the services do per event for other readers is done once at the end of the load, inside
    its transaction (nobody can look before it commits): the queue's urgency of each case and the
    metrics rollup's dirty days; policies and calendars are read once (nobody edits them meanwhile);
    no mail is written (the demo's customers are made up). Every case write still goes through the
    services, with its lifecycle checks, timeline events and clocks."""
    with (
        outbox.discarding(),
        sla_services.fixed_configuration(),
        urgency.deferred(),
        rollup.deferred(),
    ):
        yield


def _in_business_hours(instant: dt.datetime, tz_name: str) -> bool:
    """Mon-Fri 08:00-18:00 in the organisation's time zone."""
    local = instant.astimezone(zoneinfo.ZoneInfo(tz_name))
    return local.weekday() < 5 and 8 <= local.hour < 18


class Command(BaseCommand):
    help = "Load demo users, teams, organisations and a month of cases (skipped if already loaded)."

    def add_arguments(self, parser):
        parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="How many cases (default 300).")

    def handle(self, *args, cases: int, verbosity: int = 1, **options):
        if cases < 8:
            raise CommandError("--cases must be at least 8 (one case per status).")
        if Organisation.objects.filter(name=MARKER_ORGANISATION).exists():
            self.stdout.write(f"Demo data already loaded ({MARKER_ORGANISATION} exists); nothing to do.")
            self._print_logins()
            return
        started = time.monotonic()
        real_now = timezone.now()
        # Public replies (and surveys, SLA alerts) write their e-mails to the outbox; demo contacts must
        # never get mail, so the load takes back the outbox rows it wrote before it commits.
        before = OutboundMessage.objects.aggregate(last=Max("pk"))["last"] or 0
        with transaction.atomic(), _bulk_load(), audit.acting_as(None, reason="manage.py load_demo_data"):
            users = self._users()
            teams = self._teams(users)
            organisations = self._organisations()
            counts = self._cases(cases, users=users, teams=teams, organisations=organisations, now=real_now)
            OutboundMessage.objects.filter(pk__gt=before).delete()
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {len(users)} users, {len(teams)} teams, {len(organisations)} organisations, "
                f"{counts['cases']} cases and {counts['events']} timeline events in {elapsed:.1f} s."
            )
        )
        self.stdout.write(
            "Cases by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts["status"].items()))
        )
        self.stdout.write(
            "Cases by severity: " + ", ".join(f"{k} {v}" for k, v in sorted(counts["severity"].items()))
        )
        self._print_logins()

    def _print_logins(self) -> None:
        self.stdout.write("Demo logins (username / password):")
        for spec in DEMO_USERS:
            roles = ", ".join(spec["roles"])
            self.stdout.write(f"  {spec['username']:<9} / {DEMO_PASSWORDS[spec['username']]:<9} ({roles})")

    def _users(self) -> dict[str, Any]:
        user_model = get_user_model()
        groups = {g.name: g for g in Group.objects.filter(name__in=[r.value for r in Role])}
        users = {}
        for spec in DEMO_USERS:
            superuser = spec.get("superuser", False)
            user, created = user_model.objects.get_or_create(
                username=spec["username"],
                defaults={
                    "first_name": spec["first_name"],
                    "last_name": spec["last_name"],
                    "email": f"{spec['username']}@support.example",
                    "is_staff": superuser,
                    "is_superuser": superuser,
                },
            )
            if created:
                # Demo-only passwords, set directly: the password validators are for real accounts.
                # Few PBKDF2 iterations (the full count takes ~0.4 s a user): Django re-hashes with
                # the full count at the first login (the hasher's must_update).
                password, hasher = DEMO_PASSWORDS[spec["username"]], get_hasher()
                if isinstance(hasher, PBKDF2PasswordHasher):
                    user.password = hasher.encode(password, hasher.salt(), iterations=DEMO_HASH_ITERATIONS)
                else:
                    user.set_password(password)
                user.save(update_fields=["password"])
                user.groups.add(*(groups[r] for r in spec["roles"]))
                StaffProfile.objects.get_or_create(user=user, defaults={"time_zone": spec["time_zone"]})
            users[spec["username"]] = user
        return users

    def _teams(self, users: dict[str, Any]) -> dict[str, Team]:
        teams = {}
        for name, slug, email, members in TEAMS:
            team, created = Team.objects.get_or_create(slug=slug, defaults={"name": name, "email": email})
            if created:
                team.members.add(*(users[m] for m in members))
            teams[slug] = team
        return teams

    def _organisations(self) -> dict[str, tuple[Organisation, list[Contact]]]:
        result = {}
        for name, tier, tz, domain, people in ORGANISATIONS:
            org, _ = Organisation.objects.get_or_create(name=name, defaults={"tier": tier, "time_zone": tz})
            # Mail from an unknown address at the domain opens a case for the organisation.
            OrganisationDomain.objects.get_or_create(domain=domain, defaults={"organisation": org})
            contacts = [
                Contact.objects.get_or_create(
                    organisation=org, email=f"{local}@{domain}", defaults={"name": person}
                )[0]
                for person, local in people
            ]
            result[name] = (org, contacts)
        return result

    def _cases(self, count: int, *, users, teams, organisations, now: dt.datetime) -> dict[str, Any]:
        rng = random.Random(SEED)
        planner = Planner(rng, users=users, teams=teams)
        tier_weight = {Tier.ENTERPRISE: 4, Tier.BUSINESS: 3, Tier.STANDARD: 2}
        org_list = list(organisations.values())
        org_weights = [tier_weight[org.tier] for org, _ in org_list]
        finals = list(FINAL_STATE_WEIGHTS)
        severities = list(SEVERITY_WEIGHTS)
        planned: list[PlannedCase] = []
        for i in range(count):
            # The first cases cover every status and severity whatever --cases is.
            if i < len(finals):
                final, severity = finals[i], severities[i % len(severities)]
            else:
                final = planner._pick(FINAL_STATE_WEIGHTS)
                severity = planner._pick(SEVERITY_WEIGHTS)
            org, contacts = rng.choices(org_list, weights=org_weights)[0]
            if org.tier == Tier.STANDARD and severity == "P1" and i >= len(finals):
                severity = "P2"  # production-down cases come mostly from the big accounts
            case = planner.plan(final=final, severity=severity, organisation=org, contacts=contacts)
            case.created_at = self._creation_time(case, now=now, rng=rng)
            planned.append(case)

        # Replay every step of every case in global time order, so case keys follow creation time and
        # the database sees the month exactly as it would have happened.
        queue: list[tuple[dt.datetime, int, int]] = []
        for n, case in enumerate(planned):
            created_at = case.created_at
            assert created_at is not None  # every planned case was given its creation time above
            for s, step in enumerate(case.steps):
                queue.append((created_at + dt.timedelta(minutes=step.offset), n, s))
        heapq.heapify(queue)
        created: dict[int, Case] = {}
        while queue:
            at, n, s = heapq.heappop(queue)
            assert at <= now, "a demo step would be in the future"
            self._perform(planned[n], planned[n].steps[s], created, n, at)

        case_ids = [c.pk for c in created.values()]
        statuses = Counter(Case.objects.filter(pk__in=case_ids).values_list("status", flat=True))
        sevs = Counter(Case.objects.filter(pk__in=case_ids).values_list("severity", flat=True))
        events = CaseEvent.objects.filter(case_id__in=case_ids).count()
        return {"cases": len(case_ids), "events": events, "status": statuses, "severity": sevs}

    def _creation_time(self, case: PlannedCase, *, now: dt.datetime, rng: random.Random) -> dt.datetime:
        """A creation instant such that the whole planned story has happened by ``now``."""
        duration = dt.timedelta(minutes=case.steps[-1].offset + 1)
        latest = now - duration
        earliest = now - dt.timedelta(days=MAX_AGE_DAYS[case.final])
        if case.final == Status.RESOLVED:
            # Still resolved only if resolved less than AUTO_CLOSE_DAYS ago.
            earliest = max(earliest, now - dt.timedelta(days=AUTO_CLOSE_DAYS - 0.2) - duration)
        earliest = min(earliest, latest)
        raw = earliest + (latest - earliest) * rng.random()
        if case.severity == "P1" and rng.random() < 0.4:
            return raw  # outages do not wait for office hours
        # Customers file cases while they work: draw again until the instant is in their working day.
        for _ in range(30):
            if _in_business_hours(raw, case.organisation.time_zone):
                return raw
            raw = earliest + (latest - earliest) * rng.random()
        return raw

    def _perform(
        self, plan: PlannedCase, step: Step, created: dict[int, Case], n: int, at: dt.datetime
    ) -> None:
        p = step.params
        if step.action == "create":
            created[n] = services.create_case(
                title=p["title"],
                description=p["description"],
                organisation=plan.organisation,
                requester=plan.requester,
                severity=p["severity"],
                product_area=p["product_area"],
                tags=p["tags"],
                cc=p["cc"],
                actor=p["actor"],
                now=at,
            )
            return
        case = created[n]
        if step.action == "transition":
            extra = {k: p[k] for k in ("severity", "assignee", "team") if k in p}
            created[n] = services.transition(case, p["to"], actor=p["actor"], now=at, **extra)
        elif step.action == "reply":
            services.add_public_reply(case, body=p["body"], actor=p["actor"], now=at)
        elif step.action == "note":
            services.add_internal_note(case, body=p["body"], actor=p["actor"], now=at)
        elif step.action == "update":
            changes = {k: p[k] for k in ("severity", "assignee", "team") if k in p}
            created[n] = services.update_case(case, actor=p["actor"], now=at, **changes)
        else:  # pragma: no cover - a planning bug
            raise CommandError(f"Unknown demo step {step.action!r}")
