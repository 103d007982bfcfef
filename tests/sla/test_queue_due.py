"""The queue's urgency order: the case whose next deadline is earliest comes first, breached ones at
their (past) due instant, so overdue work is always on top; cases with nothing due come last."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.urls import reverse

from cases import services
from cases.models import DueState, Status
from sla.models import SlaPolicy
from sla.services import record_due_warnings_and_breaches
from tests import factories

T0 = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)  # a Wednesday; enterprise P1/P2 count 24x7


def _open(title, severity, *, minutes_ago, organisation, contact, agent):
    return services.create_case(
        title=title,
        organisation=organisation,
        requester=contact,
        severity=severity,
        actor=agent,
        now=T0 - dt.timedelta(minutes=minutes_ago),
    )


@pytest.fixture
def mixed(organisation, contact, agent):
    """Breached long ago, breached recently, at risk, on track, paused, and without any SLA."""
    cases = {
        # Enterprise P1 answers in 15 min, P2 in 1 h (round the clock); warnings at 75 %.
        "on_track": _open(
            "Slow export", "P2", minutes_ago=10, organisation=organisation, contact=contact, agent=agent
        ),
        "breached_old": _open(
            "Outage", "P1", minutes_ago=180, organisation=organisation, contact=contact, agent=agent
        ),
        "at_risk": _open(
            "Login fails", "P1", minutes_ago=13, organisation=organisation, contact=contact, agent=agent
        ),
        "breached_recent": _open(
            "Errors", "P2", minutes_ago=90, organisation=organisation, contact=contact, agent=agent
        ),
    }
    paused = _open("Need logs", "P2", minutes_ago=20, organisation=organisation, contact=contact, agent=agent)
    at = T0 - dt.timedelta(minutes=15)
    services.add_public_reply(paused, body="Could you send the logs?", actor=agent, now=at)
    services.transition(paused, Status.TRIAGED, actor=agent, now=at, severity="P2", assignee=agent)
    services.transition(paused, Status.IN_PROGRESS, actor=agent, now=at)
    services.transition(paused, Status.WAITING_ON_CUSTOMER, actor=agent, now=at)
    cases["paused"] = paused
    plain = factories.OrganisationFactory(name="Plain Ltd", tier="standard")
    SlaPolicy.objects.filter(tier="standard", severity="P4").delete()
    cases["none"] = _open(
        "A question",
        "P4",
        minutes_ago=60,
        organisation=plain,
        contact=factories.ContactFactory(organisation=plain),
        agent=agent,
    )
    record_due_warnings_and_breaches(now=T0)
    for case in cases.values():
        case.refresh_from_db()
    return cases


EXPECTED = ["breached_old", "breached_recent", "at_risk", "on_track", "paused", "none"]


def test_the_sla_app_keeps_each_cases_next_deadline_and_its_state(mixed):
    assert {name: c.next_due_state for name, c in mixed.items()} == {
        "breached_old": DueState.BREACHED,
        "breached_recent": DueState.BREACHED,
        "at_risk": DueState.AT_RISK,
        "on_track": DueState.ON_TRACK,
        "paused": DueState.PAUSED,
        "none": DueState.NONE,
    }
    # Breached clocks count at their due instant: the first response was due 15 min / 1 h after creation.
    assert mixed["breached_old"].next_due_at == T0 - dt.timedelta(minutes=165)
    assert mixed["breached_old"].next_due_target == "first_response"
    assert mixed["breached_recent"].next_due_at == T0 - dt.timedelta(minutes=30)
    assert mixed["at_risk"].next_due_at == T0 + dt.timedelta(minutes=2)
    assert mixed["paused"].next_due_at is None
    assert mixed["paused"].next_due_target == ""
    assert mixed["none"].next_due_at is None


def test_the_queue_puts_the_most_overdue_case_first(client, agent, mixed):
    client.force_login(agent)
    with time_machine.travel(T0, tick=False):
        html = client.get(reverse("cases:queue")).content.decode()
    keys = list(dict.fromkeys(re.findall(r'href="/cases/(CASE-\d+)/"', html)))
    assert keys == [mixed[name].key for name in EXPECTED]


def test_the_api_sorts_by_urgency_and_pages_through_it_by_cursor(client, agent, mixed):
    client.force_login(agent)
    url = reverse("cases_api:case-list") + "?state=open&ordering=due&page_size=2"
    pages, seen = [], []
    while url:
        body = client.get(url).json()
        pages.append(body)
        seen += [row["key"] for row in body["results"]]
        url = body["next"]
    assert seen == [mixed[name].key for name in EXPECTED]
    # Back from the last page (the cases with nothing due) into those with a deadline.
    back = client.get(pages[-1]["previous"]).json()
    assert [row["key"] for row in back["results"]] == [mixed[name].key for name in EXPECTED[2:4]]


def test_meeting_a_breached_clock_moves_the_case_to_its_next_deadline(agent, mixed):
    case = mixed["breached_recent"]
    services.add_public_reply(case, body="Looking into it.", actor=agent, now=T0)
    case.refresh_from_db()
    # The first response is met (late); the triage target (2 h from creation) is next, and the sweep
    # at T0 already warned it (75 % of 2 h).
    assert case.next_due_target == "triage"
    assert case.next_due_at == T0 + dt.timedelta(minutes=30)
    assert case.next_due_state == DueState.AT_RISK


def test_a_resolved_case_has_nothing_due(agent, mixed):
    case = mixed["on_track"]
    services.transition(case, Status.RESOLVED, actor=agent, now=T0)
    case.refresh_from_db()
    assert (case.next_due_at, case.next_due_state) == (None, DueState.NONE)


def test_the_backfill_fills_existing_cases_from_their_clocks(mixed):
    from cases.models import Case
    from sla import urgency

    Case.objects.update(next_due_at=None, next_due_target="", next_due_state=DueState.NONE)
    urgency.refresh(Case.objects.values_list("pk", flat=True))
    order = Case.objects.filter(status__in=[s for s in Status.values if s not in ("resolved", "closed")])
    from django.db.models import F

    ordered = order.order_by(F("next_due_at").asc(nulls_last=True), "id")
    assert [c.pk for c in ordered] == [mixed[name].pk for name in EXPECTED]
