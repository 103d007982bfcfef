"""The incident pages: who may use them, declaring from a case, linking, posting, resolving."""

from __future__ import annotations

import pytest
from django.urls import reverse

from cases import services as case_services
from cases.models import Status
from incidents.models import IncidentStatus, MajorIncident
from supportdesk.core.models import OutboundMessage
from tests.factories import at

T0 = at(2026, 3, 4, 10, 0)


@pytest.fixture
def p1(agent, organisation, contact):
    case = case_services.create_case(
        title="Checkout is down",
        organisation=organisation,
        requester=contact,
        severity="P1",
        assignee=agent,
        actor=agent,
        now=T0,
        product_area="checkout",
    )
    return case_services.transition(case, Status.TRIAGED, severity="P1", actor=agent, now=T0)


def _declare(client, case, commander):
    return client.post(
        reverse("incidents:declare"),
        {
            "title": "Checkout outage",
            "severity": "P1",
            "product_area": "checkout",
            "commander": commander.pk,
            "case": case.key,
        },
    )


@pytest.mark.django_db
def test_only_support_staff_see_incidents(client, engineer):
    url = reverse("incidents:list")
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(engineer)
    assert client.get(url).status_code == 403
    assert client.post(reverse("incidents:declare"), {"title": "x"}).status_code == 403


@pytest.mark.django_db
def test_an_agent_declares_from_a_p1_links_cases_posts_and_resolves(
    client, agent, manager, p1, organisation, contact
):
    client.force_login(agent)
    case_page = client.get(p1.get_absolute_url()).content.decode()
    assert f"Declare a major incident from {p1.key}" in case_page
    form = client.get(reverse("incidents:declare") + f"?case={p1.key}")
    assert form.status_code == 200
    assert "Checkout is down" in form.content.decode()
    response = _declare(client, p1, manager)
    incident = MajorIncident.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("incidents:detail", args=[incident.key])
    assert list(incident.cases.all()) == [p1]
    # The case page names its incident.
    assert f"{incident.key}</a> Checkout outage" in client.get(p1.get_absolute_url()).content.decode()

    other = case_services.create_case(
        title="Cannot pay", organisation=organisation, requester=contact, severity="P1", actor=agent, now=T0
    )
    response = client.post(
        reverse("incidents:link", args=[incident.key]), {"keys": f"{other.key}, CASE-999999"}, follow=True
    )
    page = response.content.decode()
    assert f"Linked: {other.key}" in page
    assert "CASE-999999: no such case" in page
    assert incident.cases.count() == 2

    client.post(reverse("incidents:update", args=[incident.key]), {"body": "We are on it.", "public": "true"})
    assert OutboundMessage.objects.filter(body="We are on it.").count() == 2
    client.post(
        reverse("incidents:update", args=[incident.key]), {"body": "Proxy at fault.", "public": "false"}
    )
    assert not OutboundMessage.objects.filter(body="Proxy at fault.").exists()

    page = client.get(reverse("incidents:detail", args=[incident.key])).content.decode()
    assert "posted to 2 cases" in page
    assert "Internal note" in page
    assert organisation.name in page

    # Resolving (and every linked case with it) is the commander's, or a manager's.
    resolve = {"closing_message": "Fixed.", "resolve_cases": "on"}
    assert client.post(reverse("incidents:resolve", args=[incident.key]), resolve).status_code == 403
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.ACTIVE
    client.force_login(manager)
    client.post(reverse("incidents:resolve", args=[incident.key]), resolve)
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert set(incident.cases.values_list("status", flat=True)) == {Status.RESOLVED}


@pytest.mark.django_db
def test_bad_input_is_a_form_error_and_changes_nothing(client, agent, manager, p1):
    client.force_login(agent)
    _declare(client, p1, manager)
    incident = MajorIncident.objects.get()
    response = client.post(reverse("incidents:update", args=[incident.key]), {"body": "", "public": "true"})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()
    response = client.post(reverse("incidents:link", args=[incident.key]), {"keys": " , "})
    assert response.status_code == 400
    response = client.post(
        reverse("incidents:declare"), {"title": "", "severity": "P9", "commander": manager.pk}
    )
    assert response.status_code == 400
    assert MajorIncident.objects.count() == 1
    assert client.get(reverse("incidents:detail", args=["INC-999"])).status_code == 404


@pytest.mark.django_db
def test_the_cadence_and_resolving_are_offered_to_the_commander_and_managers_only(
    client, agent, other_agent, manager, p1
):
    client.force_login(agent)
    _declare(client, p1, agent)  # the agent commands it
    incident = MajorIncident.objects.get()
    url = reverse("incidents:detail", args=[incident.key])
    assert reverse("incidents:resolve", args=[incident.key]) in client.get(url).content.decode()

    client.force_login(other_agent)
    page = client.get(url).content.decode()
    assert "The commander or a manager resolves the incident." in page
    assert reverse("incidents:resolve", args=[incident.key]) not in page
    assert reverse("incidents:cadence", args=[incident.key]) not in page
    assert (
        client.post(reverse("incidents:cadence", args=[incident.key]), {"cadence_minutes": "60"}).status_code
        == 403
    )
    # Working the incident is everyone's: a colleague posts an update.
    client.post(reverse("incidents:update", args=[incident.key]), {"body": "On it.", "public": "true"})
    assert OutboundMessage.objects.filter(body="On it.").count() == 1

    client.force_login(manager)
    response = client.post(
        reverse("incidents:cadence", args=[incident.key]), {"cadence_minutes": "60"}, follow=True
    )
    assert "Customer updates every 60 minutes from now on." in response.content.decode()
    incident.refresh_from_db()
    assert incident.cadence_minutes == 60
    bad = client.post(reverse("incidents:cadence", args=[incident.key]), {"cadence_minutes": "7"})
    assert bad.status_code == 400
