"""Suggested cases: open cases of the incident's severity and product area, opened since it began,
in no active incident, whose text is like the incident's; linked from the suggestion list."""

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


@pytest.fixture
def open_case(agent):
    def make(title, *, minutes=10, severity="P1", product_area="checkout", description=""):
        org = factories.OrganisationFactory()
        return case_services.create_case(
            title=title,
            description=description,
            organisation=org,
            requester=factories.ContactFactory(organisation=org),
            severity=severity,
            product_area=product_area,
            actor=agent,
            now=T0 + minutes * MIN,
        )

    return make


@pytest.fixture
def incident(agent, open_case):
    origin = open_case("Checkout returns 502 on card payments", minutes=0)
    return services.declare(
        title="Card payments fail at checkout",
        severity="P1",
        product_area="checkout",
        commander=agent,
        actor=agent,
        now=T0 + 5 * MIN,
        from_case=origin,
    )


def _keys(incident) -> list[str]:
    return [c.key for c in selectors.suggested_cases(incident)]


def test_only_cases_hit_by_the_same_fault_are_suggested_most_similar_first(agent, incident, open_case):
    best = open_case("Card payments fail: checkout returns 502", minutes=20)
    some = open_case("Checkout is slow", minutes=12)
    in_description = open_case("Orders stuck", minutes=15, description="Our card payments fail since 9:00.")
    # Not suggested: another severity, another product area, opened before the incident began,
    # unrelated words, resolved, or in an incident already.
    open_case("Card payments fail at checkout", severity="P2")
    open_case("Card payments fail at checkout", product_area="login")
    open_case("Card payments fail at checkout", minutes=-10)
    open_case("Password reset mail never arrives", minutes=30)
    resolved = open_case("Card payments fail at checkout", minutes=25)
    case_services.transition(resolved, Status.RESOLVED, actor=agent, now=T0 + 26 * MIN)
    linked = open_case("Card payments fail at checkout", minutes=25)
    services.link_cases(incident, [linked], actor=agent, now=T0 + 30 * MIN)
    elsewhere = open_case("Card payments fail at checkout", minutes=25)
    other = services.declare(title="Other", severity="P1", commander=agent, actor=agent, now=T0 + 30 * MIN)
    services.link_cases(other, [elsewhere], actor=agent, now=T0 + 30 * MIN)

    keys = _keys(incident)
    assert set(keys) == {best.key, some.key, in_description.key}
    assert keys[0] == best.key  # the most words of the incident in its title


def test_a_resolved_incident_suggests_nothing(agent, incident, open_case):
    open_case("Card payments fail at checkout", minutes=20)
    services.resolve(incident, actor=agent, now=T0 + 30 * MIN, resolve_cases=False)
    incident.refresh_from_db()
    assert _keys(incident) == []


def test_suggested_cases_are_linked_from_the_incident_page(client, agent, incident, open_case):
    first = open_case("Card payments fail", minutes=20)
    second = open_case("Checkout card error", minutes=21)
    client.force_login(agent)
    page = client.get(reverse("incidents:detail", args=[incident.key])).content.decode()
    for case in (first, second):
        assert f'<tr data-suggested="{case.key}">' in page
    response = client.post(
        reverse("incidents:link", args=[incident.key]), {"keys": [first.key, second.key]}, follow=True
    )
    assert f"Linked: {first.key}, {second.key}." in response.content.decode()
    assert set(incident.cases.all()) >= {first, second}
    assert _keys(incident) == []
