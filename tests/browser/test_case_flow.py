"""An agent works a case from creation to resolution in a real browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from cases.models import Case, Status
from tests import factories
from tests.browser.helpers import expect_message, log_in

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "screenshots" / "case-flow.png"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_agent_works_a_case_from_creation_to_resolution(live_server, page):
    factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    organisation = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    factories.ContactFactory(organisation=organisation, name="Carla Customer", email="carla@acme.example")
    factories.ContactFactory(name="Gina Elsewhere")  # another organisation's contact
    factories.TeamFactory(name="Tier 2", slug="tier-2")

    log_in(page, live_server.url, "alice")

    # Create the case.
    page.get_by_role("link", name="New case").click()
    page.get_by_label("Organisation").select_option(label="Acme Corp (Enterprise)")
    page.get_by_label("Requester").select_option(label="Carla Customer <carla@acme.example>")
    page.get_by_label("Title").fill("Checkout fails with 502")
    page.get_by_label("Description").fill("Since 09:00 every checkout returns 502.")
    page.get_by_label("Severity").select_option("P2")
    page.get_by_role("button", name="Create case").click()
    page.wait_for_url(re.compile(r".*/cases/CASE-\d+/$"))
    expect_message(page, "created.")
    case = Case.objects.get(title="Checkout fails with 502")
    assert page.get_by_role("heading", level=1).inner_text() == f"{case.key} Checkout fails with 502"

    # An internal note, then a public reply.
    page.get_by_label("Internal note — never shown to the customer").fill(
        "Same stack trace as last week's incident."
    )
    page.get_by_role("button", name="Add internal note").click()
    expect_message(page, "Internal note added.")
    page.get_by_label("Public reply — e-mailed to carla@acme.example").fill("We are looking into it now.")
    page.get_by_role("button", name="Send reply to Carla Customer").click()
    expect_message(page, "Reply recorded and queued for delivery to carla@acme.example.")

    # Triage: confirm the severity and take the case.
    page.get_by_label("New status").select_option("triaged")
    triage = page.locator("fieldset.triage")
    triage.get_by_label("Confirm severity").select_option("P2")
    triage.get_by_label("Assignee").select_option(label="Alice Agent")
    page.get_by_role("button", name="Change status").click()
    expect_message(page, "is now triaged.")

    page.get_by_label("New status").select_option("in_progress")
    assert not page.locator("fieldset.triage").is_visible()
    page.get_by_role("button", name="Change status").click()
    expect_message(page, "is now in progress.")

    page.get_by_label("New status").select_option("resolved")
    page.get_by_role("button", name="Change status").click()
    expect_message(page, "is now resolved.")

    # The timeline tells the whole story, in order, with the note marked internal.
    events = page.locator("ol.timeline > li")
    kinds = [events.nth(i).get_attribute("data-kind") for i in range(events.count())]
    texts = [events.nth(i).inner_text() for i in range(events.count())]
    assert kinds == [
        "created",
        "internal_note",
        "public_reply",
        "assignee_changed",
        "status_changed",
        "status_changed",
        "status_changed",
    ]
    assert "Opened the case" in texts[0]
    assert "Internal note" in texts[1]
    assert "Same stack trace as last week's incident." in texts[1]
    assert "Public reply to the customer" in texts[2]
    assert "Queued for delivery to carla@acme.example" in texts[2]  # no worker here sends it
    assert "We are looking into it now." in texts[2]
    assert "Assignee: Unassigned → Alice Agent" in texts[3]
    assert "Status: New → Triaged" in texts[4]
    assert "Status: Triaged → In progress" in texts[5]
    assert "Status: In progress → Resolved" in texts[6]
    assert all("Alice Agent" in t for t in texts)
    note = events.nth(1)
    assert "ev-internal_note" in note.get_attribute("class")
    assert "ev-public_reply" in events.nth(2).get_attribute("class")

    case.refresh_from_db()
    assert case.status == Status.RESOLVED
    assert case.severity_confirmed
    assert case.first_response_at is not None

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
