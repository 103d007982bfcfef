"""Major incidents in the queue: a linked case's line names its incident, the queue filters on it,
and the bulk bar links the ticked cases to an incident (or declares one with them), each case
through ``incidents.services`` with a result per case; the queue's queries stay constant."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases import extensions
from cases import services as case_services
from cases.models import CaseEvent, Status
from incidents import services
from incidents.models import IncidentStatus, MajorIncident
from tests import factories

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 4, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


@pytest.fixture
def agent_client(client, agent):
    client.force_login(agent)
    return client


@pytest.fixture
def make_case(organisation, contact, agent):
    def make(title="Checkout returns 502", **kwargs):
        kwargs.setdefault("severity", "P1")
        return case_services.create_case(
            title=title, organisation=organisation, requester=contact, actor=agent, now=T0, **kwargs
        )

    return make


def _incident(agent, *cases, title="Checkout is down", now=T0 + MIN):
    incident = services.declare(title=title, severity="P1", commander=agent, actor=agent, now=now)
    if cases:
        services.link_cases(incident, cases, actor=agent, now=now)
    return incident


def _queue(client, **params):
    with time_machine.travel(T0 + 5 * MIN, tick=False):
        return client.get(reverse("cases:queue"), params).content.decode()


def _row(html: str, key: str) -> str:
    match = re.search(rf'<tr class="q-row" data-key="{key}".*?</tr>', html, re.S)
    assert match, f"no row for {key}"
    return match.group(0)


def _keys(html: str) -> list[str]:
    return re.findall(r'<tr class="q-row" data-key="(CASE-\d+)"', html)


# --- The line and the filter ---------------------------------------------------------------------


def test_a_linked_case_names_its_active_incident_in_its_line(agent_client, agent, make_case):
    linked, other, earlier = make_case("Linked"), make_case("Not linked"), make_case("Earlier")
    resolved = _incident(agent, earlier, title="Last week's outage")
    services.resolve(resolved, actor=agent, now=T0 + MIN, resolve_cases=False)
    incident = _incident(agent, linked)

    html = _queue(agent_client)
    badge = re.search(
        r'<a class="pill bad q-badge q-incident" href="([^"]+)" title="([^"]+)">', _row(html, linked.key)
    )
    assert badge, "no incident badge"
    assert badge.group(1) == reverse("incidents:detail", args=[incident.key])
    assert badge.group(2) == f"Major incident {incident.key}: Checkout is down"
    # A resolved incident is history: the queue names active ones only.
    assert "q-incident" not in _row(html, other.key)
    assert "q-incident" not in _row(html, earlier.key)


def test_the_queue_filters_cases_in_a_major_incident(agent_client, agent, make_case):
    linked, other, earlier = make_case("Linked"), make_case("Not linked"), make_case("Earlier")
    resolved = _incident(agent, earlier, title="Last week's outage")
    services.resolve(resolved, actor=agent, now=T0 + MIN, resolve_cases=False)
    incident = _incident(agent, linked)

    assert _keys(_queue(agent_client, incident="yes")) == [linked.key]
    assert set(_keys(_queue(agent_client, incident="no"))) == {other.key, earlier.key}
    # One incident's cases, active or resolved (the incident page's drill-down), by key.
    assert _keys(_queue(agent_client, incident=resolved.key.lower())) == [earlier.key]
    html = _queue(agent_client, incident=incident.key)
    assert _keys(html) == [linked.key]
    assert re.search(rf'<option value="{incident.key}" selected>', html)
    assert "More filters (1 set)" in html
    assert _queue(agent_client, incident="maybe").count("q-row") == 3  # not understood: ignored, said
    # The case list API takes the same filter.
    api = agent_client.get("/api/cases/", {"incident": "yes"}).json()
    assert [c["key"] for c in api["results"]] == [linked.key]


def test_the_queue_runs_the_same_queries_for_10_or_50_lines_with_incidents(
    agent_client, agent, organisation, contact, django_assert_num_queries, monkeypatch
):
    def add(n: int, start: int) -> list:
        cases = []
        for i in range(start, start + n):
            org = factories.OrganisationFactory()
            cases.append(
                case_services.create_case(
                    title=f"Case {i}",
                    organisation=org,
                    requester=factories.ContactFactory(organisation=org),
                    severity="P1",
                    actor=agent,
                    now=T0 - i * MIN,
                )
            )
        return cases

    first = add(10, 0)
    incident = _incident(agent, *first[:5])
    _incident(agent, title="Another outage")
    with CaptureQueriesContext(connection) as ten:
        small = _queue(agent_client)
    assert small.count("q-incident") == 5

    more = add(40, 10)
    services.link_cases(incident, more[:20], actor=agent, now=T0)
    with django_assert_num_queries(len(ten.captured_queries)):
        large = _queue(agent_client)
    assert len(_keys(large)) == 50
    assert large.count("q-incident") == 25

    # What the incidents add to the page: one query (the bar's open incidents), none per line.
    monkeypatch.setattr(extensions, "_badges", {})
    monkeypatch.setattr(extensions, "_bulk_actions", {})
    with CaptureQueriesContext(connection) as without:
        _queue(agent_client)
    assert len(ten.captured_queries) - len(without.captured_queries) == 1


# --- Bulk ------------------------------------------------------------------------------------------


def _closed(make_case, agent):
    case = make_case("Old problem")
    case_services.transition(case, Status.RESOLVED, actor=agent, now=T0)
    case_services.auto_close_resolved(now=T0 + dt.timedelta(days=8))
    case.refresh_from_db()
    return case


def test_the_bulk_bar_offers_the_active_incidents(agent_client, agent, make_case):
    make_case()
    incident = _incident(agent)
    resolved = _incident(agent, title="Old outage")
    services.resolve(resolved, actor=agent, now=T0 + 2 * MIN)
    html = _queue(agent_client)
    assert '<option value="link_incident">Link to a major incident</option>' in html
    assert '<option value="declare_incident">Declare a major incident with them…</option>' in html
    bar = re.search(r'<span class="bv bv-link_incident">.*?</span>', html, re.S).group(0)
    assert f'<option value="{incident.key}">{incident.key} Checkout is down</option>' in bar
    assert resolved.key not in bar


def test_bulk_link_links_each_case_and_lists_what_was_refused_and_why(agent_client, agent, make_case):
    fresh, again, elsewhere = make_case("Fresh"), make_case("Already"), make_case("Elsewhere")
    closed = _closed(make_case, agent)
    incident = _incident(agent, again)
    other = _incident(agent, elsewhere, title="Payments down")

    response = agent_client.post(
        reverse("cases:bulk"),
        {
            "action": "link_incident",
            "incident": incident.key,
            "keys": [f"{c.key}:{c.version}" for c in (fresh, again, elsewhere, closed)],
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"<h1>Link to {incident.key} Checkout is down</h1>" in page
    assert "1 changed, 1 already so, 2 refused." in page
    assert f"{fresh.key}</a>: linked to {incident.key}</li>" in page
    assert f"{again.key}</a>: already linked to this incident</li>" in page
    assert f"{elsewhere.key}</a>: already part of {other.key}, which is still active</li>" in page
    assert f"{closed.key}</a>: closed; the customer" in page
    assert set(incident.cases.all()) == {fresh, again}
    assert CaseEvent.objects.filter(case=fresh, field="major_incident", new_value=incident.key).count() == 1


def test_bulk_link_to_a_resolved_incident_changes_nothing(agent_client, agent, make_case):
    case = make_case()
    incident = _incident(agent)
    services.resolve(incident, actor=agent, now=T0 + 2 * MIN)
    response = agent_client.post(
        reverse("cases:bulk"), {"action": "link_incident", "incident": incident.key, "keys": [case.key]}
    )
    assert response.status_code == 400
    assert f"{incident.key} is resolved; choose an active incident." in response.content.decode()
    assert not incident.cases.exists()


def test_declare_from_the_queue_the_ticked_cases_are_its_first_linked_cases(
    agent_client, agent, manager, make_case
):
    older = make_case("Checkout returns 502 for all cards", product_area="checkout")
    with time_machine.travel(T0 + 3 * MIN, tick=False):
        newer = case_services.create_case(
            title="Cannot pay",
            organisation=older.organisation,
            requester=older.requester,
            severity="P2",
            product_area="checkout",
            actor=agent,
            now=T0 + 3 * MIN,
        )
    closed = _closed(make_case, agent)
    keys = [f"{c.key}:{c.version}" for c in (newer, older, closed)]
    form = agent_client.post(reverse("cases:bulk"), {"action": "declare_incident", "keys": keys})
    assert form.status_code == 200
    page = form.content.decode()
    assert "<h1>Declare a major incident</h1>" in page
    # Prefilled from the most severe case; every ticked case is listed to be linked.
    assert 'value="Checkout returns 502 for all cards"' in page
    for case in (newer, older, closed):
        assert f'<input type="hidden" name="keys" value="{case.key}">' in page
    assert not MajorIncident.objects.exists()

    with time_machine.travel(T0 + 10 * MIN, tick=False):
        response = agent_client.post(
            reverse("incidents:declare"),
            {
                "title": "Checkout fails",
                "severity": "P1",
                "product_area": "checkout",
                "commander": manager.pk,
                "cadence_minutes": "60",
                "keys": [newer.key, older.key, closed.key],
            },
            follow=True,
        )
    incident = MajorIncident.objects.get()
    page = response.content.decode()
    assert f"Linked: {newer.key}, {older.key}." in page
    assert f"{closed.key}: closed; the customer" in page
    assert set(incident.cases.all()) == {newer, older}
    assert incident.status == IncidentStatus.ACTIVE
    assert incident.cadence_minutes == 60
    assert incident.next_update_due_at == T0 + 70 * MIN
    assert incident.started_at == T0  # when the earliest of its cases was opened
    assert incident.origin_case is None


def test_bulk_link_through_the_api(client, agent, make_case):
    case, closed = make_case(), _closed(make_case, agent)
    incident = _incident(agent)
    client.force_login(agent)
    response = client.post(
        "/api/cases/bulk/",
        {"keys": [case.key, closed.key], "action": "link_incident", "value": incident.key},
        content_type="application/json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["changed"] == [{"key": case.key, "change": f"linked to {incident.key}"}]
    assert [r["key"] for r in body["refused"]] == [closed.key]
    bad = client.post(
        "/api/cases/bulk/",
        {"keys": [case.key], "action": "link_incident", "value": "INC-999"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "value" in bad.json()
    # Declaring asks for a form: the API declares through /api/incidents/ instead.
    declare = client.post(
        "/api/cases/bulk/",
        {"keys": [case.key], "action": "declare_incident"},
        content_type="application/json",
    )
    assert declare.status_code == 400
    assert "action" in declare.json()
