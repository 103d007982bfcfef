"""Per-agent figures (the dashboard's "By agent" table and /api/metrics/agents/): computed in the
database, equal to a direct computation over the rows, in a constant number of queries."""

from __future__ import annotations

import datetime as dt
import math
from statistics import mean

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cases import services as cases
from cases.models import Case
from metrics import selectors as m
from sla import services as sla
from sla.models import ClockState, SlaClock
from tests import factories
from tests.factories import at
from tests.metrics.conftest import BERLIN, PERIOD

pytestmark = pytest.mark.django_db

AGENTS = "/api/metrics/agents/"
BERLIN_WEEK = {"start": "2025-03-03", "end": "2025-03-09", "tz": BERLIN}


def _percentile_cont(values: list[float], p: float) -> float | None:
    """What PostgreSQL's percentile_cont computes: linear between the two nearest ranks."""
    if not values:
        return None
    values = sorted(values)
    pos = (len(values) - 1) * p
    lo, hi = math.floor(pos), math.ceil(pos)
    return values[lo] + (pos - lo) * (values[hi] - values[lo])


def _direct(user, *, start: dt.datetime, end: dt.datetime) -> dict:
    """The figures of ``user`` computed from the rows in Python, the plain way."""

    def within(instant):
        return instant is not None and start <= instant < end

    mine = list(Case.objects.filter(assignee=user))
    frt = [(c.first_response_at - c.created_at).total_seconds() for c in mine if within(c.first_response_at)]
    ttr = [(c.first_resolved_at - c.created_at).total_seconds() for c in mine if within(c.first_resolved_at)]
    completed = [
        clk
        for clk in SlaClock.objects.filter(case__assignee=user)
        if (clk.state == ClockState.MET and within(clk.met_at))
        or (clk.state == ClockState.BREACHED and within(clk.breached_at))
    ]

    def stats(values):
        return (
            len(values),
            _percentile_cont(values, 0.5),
            _percentile_cont(values, 0.9),
            mean(values) if values else None,
        )

    return {
        "handled": sum(1 for c in mine if within(c.first_response_at) or within(c.first_resolved_at)),
        "frt": stats(frt),
        "ttr": stats(ttr),
        "clocks": (sum(1 for c in completed if c.state == ClockState.MET), len(completed)),
    }


def _figures(row: m.AgentFigures) -> dict:
    def stats(s: m.DurationStats):
        return (s.count, s.median, s.p90, s.mean)

    return {
        "handled": row.handled,
        "frt": stats(row.first_response_time),
        "ttr": stats(row.time_to_resolve),
        "clocks": (row.sla_compliance.numerator, row.sla_compliance.denominator),
    }


@pytest.fixture
def bob_cases(dataset, organisation, contact, agent, other_agent):
    """Two more cases in the Berlin week, for Bob: a P2 answered after 30 min and resolved after 6 h;
    a P1 answered after 40 min, so its first response (15 min) and first update (30 min) breach."""
    one = cases.create_case(
        title="Bob 1",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=other_agent,
        actor=agent,
        now=at(2025, 3, 4, 9, 0),
    )
    cases.add_public_reply(one, body="On it.", actor=other_agent, now=at(2025, 3, 4, 9, 30))
    one = Case.objects.get(pk=one.pk)
    one = cases.transition(one, "triaged", severity="P2", actor=other_agent, now=at(2025, 3, 4, 9, 40))
    one = cases.transition(one, "in_progress", actor=other_agent, now=at(2025, 3, 4, 9, 45))
    cases.transition(one, "resolved", actor=other_agent, now=at(2025, 3, 4, 15, 0))
    two = cases.create_case(
        title="Bob 2",
        organisation=organisation,
        requester=contact,
        severity="P1",
        assignee=other_agent,
        actor=agent,
        now=at(2025, 3, 5, 10, 0),
    )
    # The P1's 15 min first response passes unanswered: the sweep records the breach at 10:16.
    sla.record_due_warnings_and_breaches(now=at(2025, 3, 5, 10, 16))
    cases.add_public_reply(
        Case.objects.get(pk=two.pk), body="Sorry.", actor=other_agent, now=at(2025, 3, 5, 10, 40)
    )
    return one, two


def test_each_agents_figures_equal_a_direct_computation(bob_cases, agent, other_agent):
    rows = {row.user.pk: row for row in m.agent_figures(**PERIOD)}

    assert set(rows) == {agent.pk, other_agent.pk}  # C is unassigned: in nobody's row
    for user in (agent, other_agent):
        assert _figures(rows[user.pk]) == _direct(user, start=PERIOD["start"], end=PERIOD["end"]), user


def test_the_figures_read_as_expected(bob_cases, agent, other_agent):
    alice, bob = m.agent_figures(**PERIOD)  # most cases handled first: Alice 2 (A, B), Bob 2 -> by name
    assert (alice.user, bob.user) == (agent, other_agent)
    assert bob.handled == 2
    assert bob.first_response_time.median == (1800 + 2400) / 2  # 30 min and 40 min
    assert bob.time_to_resolve.median == 6 * 3600
    assert bob.breached == 2  # the P1's first response and its first customer update, both late
    assert alice.handled == 2  # A and B; D is answered on Monday 10 March in Berlin


def test_filters_apply_as_on_every_figure(bob_cases, agent, other_agent, team):
    only_p1 = {row.user.pk: row for row in m.agent_figures(**PERIOD, severity="P1")}
    assert only_p1[other_agent.pk].handled == 1
    assert only_p1[other_agent.pk].time_to_resolve.count == 0
    tier_2 = m.agent_figures(**PERIOD, team=team)
    assert [row.user for row in tier_2] == [agent]  # A is the team's only assigned case


def test_the_query_count_does_not_grow_with_the_agents(dataset, organisation, contact, agent):
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            m.agent_figures(**PERIOD)
        return len(ctx.captured_queries)

    before = queries()
    for i in range(4):
        person = factories.AgentFactory(username=f"extra{i}")
        case = cases.create_case(
            title=f"Extra {i}",
            organisation=organisation,
            requester=contact,
            severity="P3",
            assignee=person,
            actor=agent,
            now=at(2025, 3, 4, 9, i),
        )
        cases.add_public_reply(case, body="Hello", actor=person, now=at(2025, 3, 4, 10, i))
    assert len(m.agent_figures(**PERIOD)) == 5
    assert queries() == before
    # Five reads (handled, two duration groupings, compliance, the users); PostgreSQL adds the
    # savepoint and work_mem setting around the figures.
    assert before == (8 if connection.vendor == "postgresql" else 5)


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_the_api_gives_the_same_figures(bob_cases, manager, other_agent):
    response = _api(manager).get(AGENTS, BERLIN_WEEK)

    assert response.status_code == 200
    body = response.json()
    assert body["tz"] == BERLIN
    bob = next(a for a in body["agents"] if a["username"] == "bob")
    assert bob == {
        "id": other_agent.pk,
        "username": "bob",
        "name": "Bob Builder",
        "handled": 2,
        "first_response_time": {"count": 2, "median": 2100.0, "p90": 2340.0, "mean": 2100.0},
        "time_to_resolve": {"count": 1, "median": 21600.0, "p90": 21600.0, "mean": 21600.0},
        "sla_compliance": bob["sla_compliance"],
        "breached": 2,
    }
    assert bob["sla_compliance"]["denominator"] - bob["sla_compliance"]["numerator"] == 2


def test_the_api_takes_the_filters_of_the_other_metrics(bob_cases, manager, team):
    body = _api(manager).get(AGENTS, {**BERLIN_WEEK, "team": team.pk}).json()
    assert [a["username"] for a in body["agents"]] == ["alice"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "2025-03-09", "end": "2025-03-03"}, "end"),
        ({"end": "2025-03-03"}, "start"),
        ({**BERLIN_WEEK, "tz": "Mars/Olympus"}, "tz"),
        ({**BERLIN_WEEK, "severity": "P9"}, "severity"),
    ],
)
def test_bad_parameters_are_400_with_the_field(manager, params, field):
    response = _api(manager).get(AGENTS, params)
    assert response.status_code == 400
    assert field in response.json()


@pytest.mark.parametrize("role", ["agent", "engineer"])
def test_only_managers_read_it(request, role):
    assert _api(request.getfixturevalue(role)).get(AGENTS, BERLIN_WEEK).status_code == 403


def test_the_schema_documents_the_endpoint(manager):
    schema = _api(manager).get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"][AGENTS]["get"]
    assert operation["operationId"] == "metrics_agents"
    assert {p["name"] for p in operation["parameters"]} >= {
        "start",
        "end",
        "tz",
        "team",
        "assignee",
        "severity",
    }


def test_the_dashboard_shows_the_table_with_links_to_the_breached_cases(
    bob_cases, client, manager, other_agent
):
    client.force_login(manager)
    html = client.get("/metrics/", {**BERLIN_WEEK}).content.decode()
    assert '<tr data-agent="bob">' in html
    assert f"part=breached&amp;assignee={other_agent.pk}" in html
    assert 'data-figure="breached"' in html
