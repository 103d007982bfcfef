"""An agent runs a major incident in a real browser: declares it from a P1, links the other
customers' cases, posts an update that reaches every case, and resolves them all.

Screenshots: var/screenshots/incident-1440.png and incident-390.png (the incident's page after an
update, no horizontal scroll at either width).
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from cases import services
from cases.models import CaseEvent, EventKind, Status
from tests import factories
from tests.browser.helpers import expect_message, log_in, screenshot_widths


@pytest.fixture
def outage(transactional_db):
    now = timezone.now()
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    cases = []
    for name in ("Acme Corp", "Globex", "Initech"):
        org = factories.OrganisationFactory(name=name, tier="enterprise")
        contact = factories.ContactFactory(organisation=org, email=f"ops@{name.split()[0].lower()}.example")
        case = services.create_case(
            title=f"{name}: checkout returns 502",
            organisation=org,
            requester=contact,
            severity="P1",
            assignee=agent,
            actor=agent,
            now=now,
        )
        cases.append(services.transition(case, Status.TRIAGED, severity="P1", actor=agent, now=now))
    return cases


@pytest.mark.browser
def test_agent_declares_an_incident_and_updates_every_customer(live_server, page, outage):
    first, *others = outage
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/incidents/declare/?case={first.key}")
    page.get_by_label("Title").fill("Checkout returns 502")
    page.get_by_role("button", name="Declare").click()
    expect_message(page, "declared")

    page.get_by_label("Cases to link").fill(", ".join(c.key for c in others))
    page.get_by_role("button", name="Link").click()
    expect_message(page, f"Linked: {others[0].key}, {others[1].key}")
    assert page.locator("tr[data-key]").count() == 3

    page.locator("textarea[name=body]").fill("Engineers are rolling back the payment proxy.")
    page.get_by_role("button", name="Post update").click()
    expect_message(page, "Posted to")
    page.get_by_text("posted to 3 cases").wait_for()
    for case in outage:
        assert CaseEvent.objects.filter(
            case=case, kind=EventKind.PUBLIC_REPLY, body="Engineers are rolling back the payment proxy."
        ).exists()
    screenshot_widths(page, "incident", fits_width=True)

    page.get_by_label("Closing message").fill("Fixed: checkout works again.")
    page.get_by_role("button", name="Resolve").click()
    expect_message(page, f"Resolved: {first.key}")
    for case in outage:
        case.refresh_from_db()
        assert case.status == Status.RESOLVED
