"""A small fixed data set for the KPI tests, built through the services with explicit ``now=``.

The period under test is the local week Monday 2025-03-03 00:00 to Monday 2025-03-10 00:00 in
Europe/Berlin (UTC+1 in March before the DST change), i.e. 2025-03-02 23:00 UTC to 2025-03-09
23:00 UTC. The organisation is enterprise tier, so P1/P2 SLA policies are the seeded 24x7 ones:
P1 first response 15 min, triage 30 min, cadence 30 min, resolution 8 h; P2 1 h, 2 h, 2 h, 24 h.

- A (P1, team "Tier 2", assignee alice): created Mon 03-03 10:00 UTC, replied 10:10 (FRT 600 s,
  first-response and cadence run 1 met on time), triaged 10:20 (TTT 1200 s), in progress 10:30,
  resolved 12:00 (first resolution: MTTR 7200 s), reopened 03-04 09:00, resolved 10:00, reopened
  03-05 09:00, resolved 10:00 (reopened twice). Linked to a KB article.
- B (P2, no team): created Sat 03-01 12:00 UTC (previous week), triaged 12:30, replied 14:00
  (first response met late: breached 03-01 14:00, before the period), in progress 14:00, waiting on
  customer 18:00 to 03-02 18:00 (the resolution clock pauses 24 h), resolved Mon 03-03 12:00
  (in the period: MTTR 172800 s). The 24 h resolution clock was due 03-02 12:00 + 24 h paused =
  03-03 12:00, so it is met on time.
- C (P1, team "Tier 2"): created 03-02 23:30 UTC = Mon 03-03 00:30 Berlin (in the Berlin period,
  outside the UTC week starting 03-03 00:00 UTC), replied 23:50 UTC (FRT 1200 s; due 23:45: met
  late, a breach), triaged 03-03 00:00 UTC (TTT 1800 s, due 00:00: on time). Escalated 01:00 UTC,
  engineering asked for more info 02:00 (a bounce). Stays open.
- D (P2): created 03-09 23:30 UTC = Mon 03-10 00:30 Berlin (outside the Berlin period, inside the
  UTC week), replied 23:40 UTC (FRT 600 s), triaged 23:40, escalated 23:45 UTC. Stays open.
- E (P3): created 2025-02-01 09:00 UTC, never touched: open backlog older than 21 days.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cases import services as cases
from cases.models import Case, Status
from escalations import services as escalations
from escalations.models import EngineeringTeam
from knowledge import services as knowledge
from tests.escalations.conftest import complete_package
from tests.factories import at

BERLIN = "Europe/Berlin"
PERIOD = {"start": at(2025, 3, 3, tz=BERLIN), "end": at(2025, 3, 10, tz=BERLIN), "tz": BERLIN}
UTC_WEEK = {"start": at(2025, 3, 3), "end": at(2025, 3, 10), "tz": "UTC"}


@dataclass
class DataSet:
    a: Case
    b: Case
    c: Case
    d: Case
    e: Case


def _refresh(case: Case) -> Case:
    return Case.objects.get(pk=case.pk)


@pytest.fixture
def dataset(organisation, contact, agent, engineer, team) -> DataSet:
    def create(title, severity, when, **kw):
        return cases.create_case(
            title=title,
            organisation=organisation,
            requester=contact,
            severity=severity,
            actor=agent,
            now=when,
            **kw,
        )

    def move(case, to, when, **kw):
        return cases.transition(_refresh(case), to, actor=agent, now=when, **kw)

    def reply(case, when):
        cases.add_public_reply(_refresh(case), body="We are on it.", actor=agent, now=when)

    a = create("A", "P1", at(2025, 3, 3, 10, 0), team=team, assignee=agent)
    reply(a, at(2025, 3, 3, 10, 10))
    move(a, Status.TRIAGED, at(2025, 3, 3, 10, 20), severity="P1")
    move(a, Status.IN_PROGRESS, at(2025, 3, 3, 10, 30))
    move(a, Status.RESOLVED, at(2025, 3, 3, 12, 0))
    for day in (4, 5):
        move(a, Status.REOPENED, at(2025, 3, day, 9, 0))
        move(a, Status.IN_PROGRESS, at(2025, 3, day, 9, 0))
        move(a, Status.RESOLVED, at(2025, 3, day, 10, 0))
    article = knowledge.create_draft(title="Fixing checkout 502", actor=agent, now=at(2025, 3, 5, 10, 0))
    knowledge.link_to_case(article, _refresh(a), actor=agent, now=at(2025, 3, 5, 10, 0))

    b = create("B", "P2", at(2025, 3, 1, 12, 0))
    move(b, Status.TRIAGED, at(2025, 3, 1, 12, 30), severity="P2", assignee=agent)
    reply(b, at(2025, 3, 1, 14, 0))
    move(b, Status.IN_PROGRESS, at(2025, 3, 1, 14, 0))
    move(b, Status.WAITING_ON_CUSTOMER, at(2025, 3, 1, 18, 0))
    move(b, Status.IN_PROGRESS, at(2025, 3, 2, 18, 0))
    move(b, Status.RESOLVED, at(2025, 3, 3, 12, 0))

    payments = EngineeringTeam.objects.create(name="Payments", slug="payments", components="checkout-api")
    c = create("C", "P1", at(2025, 3, 2, 23, 30), team=team)
    reply(c, at(2025, 3, 2, 23, 50))
    move(c, Status.TRIAGED, at(2025, 3, 3, 0, 0), severity="P1")
    esc = escalations.create_draft(
        case=_refresh(c), team=payments, actor=agent, now=at(2025, 3, 3, 0, 50), **complete_package()
    )
    esc = escalations.submit(esc, actor=agent, now=at(2025, 3, 3, 1, 0))
    escalations.request_info(esc, questions="Which tenant?", actor=engineer, now=at(2025, 3, 3, 2, 0))

    d = create("D", "P2", at(2025, 3, 9, 23, 30))
    reply(d, at(2025, 3, 9, 23, 40))
    move(d, Status.TRIAGED, at(2025, 3, 9, 23, 40), severity="P2", assignee=agent)
    esc_d = escalations.create_draft(
        case=_refresh(d), team=payments, actor=agent, now=at(2025, 3, 9, 23, 45), **complete_package()
    )
    escalations.submit(esc_d, actor=agent, now=at(2025, 3, 9, 23, 45))

    e = create("E", "P3", at(2025, 2, 1, 9, 0))
    return DataSet(*(_refresh(x) for x in (a, b, c, d, e)))
