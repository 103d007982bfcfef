"""An agent runs a major incident in a real browser: declares it from a P1, links the other
customers' cases (by key, or ticked in the queue), posts an update that reaches every case, and
resolves them all.

Screenshots under var/screenshots/: incident-1440.png and incident-390.png (the incident's page
after an update, no horizontal scroll at either width), and those named in the second test.
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
    page.get_by_role("button", name="Link", exact=True).click()
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


@pytest.mark.browser
def test_declare_from_a_p1_link_cases_in_bulk_from_the_queue_and_see_the_update_on_a_case(
    live_server, page, outage
):
    """Screenshots: incident-queue-{1440,390}.png (the queue with the incident's badges),
    incident-bulk-result-{1440,390}.png, incident-page-{1440,390}.png and incident-case-{1440,390}.png
    (a linked case showing the update)."""
    first, *others = outage
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, "alice")

    # Declare from the P1 case's page: the form is prefilled from the case.
    page.goto(f"{live_server.url}/cases/{first.key}/")
    page.get_by_role("link", name=f"Declare a major incident from {first.key}").click()
    assert page.get_by_label("Title").input_value() == first.title
    page.get_by_label("Title").fill("Checkout returns 502")
    page.get_by_role("button", name="Declare").click()
    expect_message(page, "declared")
    key = page.url.rstrip("/").rsplit("/", 1)[1]
    assert page.locator("tr[data-key]").count() == 1

    # The other customers' cases, ticked in the queue and linked in one go.
    page.goto(f"{live_server.url}/cases/")
    bar = page.locator("form#bulk-form")
    for case in others:
        page.get_by_label(f"Tick {case.key}").check()
    bar.get_by_label("Change").select_option("link_incident")
    bar.get_by_label("Link to a major incident").select_option(key)
    bar.get_by_role("button", name="Apply").click()
    page.get_by_role("heading", name=f"Link to {key} Checkout returns 502").wait_for()
    assert page.locator(".bulk-summary").inner_text() == "2 changed, 0 already so, 0 refused."
    screenshot_widths(page, "incident-bulk-result", fits_width=True)

    # Every line of the outage now names the incident.
    page.get_by_role("link", name="Back to the queue").first.click()
    page.locator("tr.q-row").first.wait_for()
    for case in outage:
        badge = page.locator(f'tr[data-key="{case.key}"] a.q-incident')
        assert badge.inner_text().startswith(key)
    screenshot_widths(page, "incident-queue")

    # One update on the incident ...
    page.locator(f'tr[data-key="{first.key}"] a.q-incident').click()
    page.locator("textarea[name=body]").fill("Engineers are rolling back the payment proxy.")
    page.get_by_role("button", name="Post update").click()
    expect_message(page, "Posted to")
    page.get_by_text("posted to 3 cases").wait_for()
    assert "Next update due" in page.locator("#cadence").inner_text()
    screenshot_widths(page, "incident-page", fits_width=True)

    # ... is on each linked case, as its public reply.
    page.get_by_role("link", name=others[1].key).first.click()
    page.get_by_text("Engineers are rolling back the payment proxy.").first.wait_for()
    assert page.locator("#major-incidents").get_by_text(key).is_visible()
    screenshot_widths(page, "incident-case", fits_width=True)
    for case in outage:
        assert CaseEvent.objects.filter(
            case=case, kind=EventKind.PUBLIC_REPLY, body="Engineers are rolling back the payment proxy."
        ).exists()
