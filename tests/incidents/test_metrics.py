"""An incident's figures, counted by hand: customers and cases hit, time to the first customer update,
update-cadence adherence across its cases while linked, its own updates on time; and the incidents
of a period for the metrics dashboard."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from cases import services as case_services
from cases.models import Status
from incidents import selectors, services
from tests import factories
from tests.factories import at

pytestmark = pytest.mark.django_db

T0 = at(2026, 3, 4, 10, 0)
MIN = dt.timedelta(minutes=1)


def _case(agent, org, minute: int, title="Checkout down"):
    contact = factories.ContactFactory(organisation=org)
    case = case_services.create_case(
        title=title, organisation=org, requester=contact, severity="P1", actor=agent, now=T0 + minute * MIN
    )
    return case_services.transition(
        case, Status.TRIAGED, severity="P1", assignee=agent, actor=agent, now=T0 + minute * MIN
    )


@pytest.fixture
def outage(agent, manager):
    """Enterprise P1 cases (update cadence every 30 min): A and B at Acme, C at Globex.

    X (declared 1, resolved 3) had B for two minutes: no clock of B completed then.
    The incident (declared 5, from A; B linked at 6, C at 40): updates at 25 (due 35: on time)
    and 60 (due 55: late), a reminder at 56. Clocks completed while linked: A run 1 met at 25,
    A run 2 (due 55) met late at 60; B the same; C run 1 (due 32) met late at 60. 2 of 5 on time.
    """
    acme = factories.OrganisationFactory(name="Acme", tier="enterprise")
    globex = factories.OrganisationFactory(name="Globex", tier="enterprise")
    a, b, c = _case(agent, acme, 0), _case(agent, acme, 1), _case(agent, globex, 2)
    x = services.declare(title="Blip", severity="P1", commander=manager, actor=agent, now=T0 + MIN)
    services.link_cases(x, [b], actor=agent, now=T0 + MIN)
    services.resolve(x, actor=manager, now=T0 + 3 * MIN, resolve_cases=False)
    x.refresh_from_db()
    incident = services.declare(
        title="Checkout is down", severity="P1", commander=manager, actor=agent, now=T0 + 5 * MIN, from_case=a
    )
    services.link_cases(incident, [b], actor=agent, now=T0 + 6 * MIN)
    services.post_update(incident, body="On it.", public=True, actor=manager, now=T0 + 25 * MIN)
    services.link_cases(incident, [c], actor=agent, now=T0 + 40 * MIN)
    assert services.remind_overdue(now=T0 + 56 * MIN) == 1
    services.post_update(incident, body="Rolling back.", public=True, actor=manager, now=T0 + 60 * MIN)
    return x, incident


def test_the_figures_of_an_incident_counted_by_hand(outage):
    x, incident = outage
    figures = selectors.incident_figures(incident)
    assert (figures.cases, figures.organisations) == (3, 2)
    assert figures.first_update_at == T0 + 25 * MIN
    assert figures.time_to_first_update == dt.timedelta(minutes=20)
    assert (figures.cadence_met, figures.cadence_completed) == (2, 5)
    assert figures.cadence_adherence == pytest.approx(0.4)
    assert (figures.updates_on_time, figures.public_updates) == (1, 2)
    assert figures.reminders == 1
    assert figures.duration is None

    earlier = selectors.incident_figures(x)
    assert (earlier.cases, earlier.organisations, earlier.public_updates) == (1, 1, 0)
    assert (earlier.cadence_met, earlier.cadence_completed, earlier.cadence_adherence) == (0, 0, None)
    assert earlier.time_to_first_update is None
    assert earlier.duration == dt.timedelta(minutes=2)


def test_a_resolved_incident_counts_the_clocks_completed_until_its_resolution(outage, manager):
    _, incident = outage
    services.resolve(incident, actor=manager, now=T0 + 70 * MIN, resolve_cases=False)
    incident.refresh_from_db()
    before = selectors.incident_figures(incident)
    case = incident.cases.order_by("id").first()
    # A reply after the resolution completes another cadence clock: not the incident's any more.
    case_services.add_public_reply(case, body="Anything else?", actor=manager, now=T0 + 80 * MIN)
    after = selectors.incident_figures(incident)
    assert (after.cadence_met, after.cadence_completed) == (before.cadence_met, before.cadence_completed)


def test_the_incidents_of_a_period_for_the_dashboard(outage, django_assert_num_queries):
    x, incident = outage
    with django_assert_num_queries(5):
        rows = selectors.incidents_in_period(T0 + 2 * MIN, T0 + 6 * MIN)
    assert [r.key for r in rows] == [x.key, incident.key]
    assert rows[1].url == reverse("incidents:detail", args=[incident.key])
    assert rows[1].as_dict()["cadence_adherence"] == pytest.approx(0.4)
    assert rows[1].as_dict()["time_to_first_update"] == dt.timedelta(minutes=20)
    # Resolved before the period began, or declared after it ended: not in it.
    assert [r.key for r in selectors.incidents_in_period(T0 + 4 * MIN, T0 + 10 * MIN)] == [incident.key]
    assert [r.key for r in selectors.incidents_in_period(T0, T0 + 2 * MIN)] == [x.key]
    assert selectors.incidents_in_period(T0 - 60 * MIN, T0) == []


def test_the_incident_page_shows_its_figures(client, outage, manager):
    _, incident = outage
    client.force_login(manager)
    page = client.get(reverse("incidents:detail", args=[incident.key])).content.decode()
    assert "<dt>Customers affected</dt><dd>2</dd>" in page
    assert "<dt>Time to first customer update</dt><dd>20 min</dd>" in page
    assert "40 %" in page
    assert "(2 of 5 met on time)" in page
    assert "(1 of 2)" in page
    assert '<span class="late">late</span>' in page
