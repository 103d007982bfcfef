"""An agent escalates a case, engineering bounces it through the API, the agent answers, engineering
resolves it, and the case timeline shows each step: in a real browser against a live server."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from cases import services as case_services
from cases.models import Status
from escalations.models import EngineeringTeam, Escalation
from tests import factories
from tests.browser.helpers import expect_message, log_in

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def _expect_score(page, score: int) -> None:
    page.locator("#quality-score", has_text=re.compile(rf"^{score}$")).wait_for()


def _engineering(
    base_url: str, token: str, escalation_id: int, action: str, payload: dict | None = None
) -> dict:
    """What engineering's tooling does: POST an action to the REST API with a token."""
    request = urllib.request.Request(  # noqa: S310 - the live test server
        f"{base_url}/api/escalations/{escalation_id}/{action}/",
        data=json.dumps(payload or {}).encode(),
        method="POST",
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
        return json.loads(response.read())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_agent_escalates_engineering_bounces_agent_answers_engineering_resolves(live_server, page):
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    engineer = factories.EngineerFactory(username="erik", first_name="Erik", last_name="Engineer")
    token = factories.api_token_key(engineer)
    organisation = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    contact = factories.ContactFactory(organisation=organisation, name="Carla Customer")
    EngineeringTeam.objects.create(
        name="Payments", slug="payments", components="checkout-api", min_quality_score=4
    )
    case = case_services.create_case(
        title="Checkout fails with 502",
        organisation=organisation,
        requester=contact,
        severity="P2",
        actor=agent,
        now=factories.at(2025, 3, 3, 9),
    )
    case = case_services.transition(
        case, Status.TRIAGED, actor=agent, now=factories.at(2025, 3, 3, 9, 5), severity="P2", assignee=agent
    )

    log_in(page, live_server.url, "alice")

    # The package form: the score starts at 0 and rises as each criterion is met.
    page.goto(f"{live_server.url}/escalations/new/{case.key}/")
    assert page.get_by_label("Summary").input_value() == "Checkout fails with 502"
    _expect_score(page, 0)
    page.get_by_label("Engineering team").select_option("payments")
    page.locator("#quality-minimum", has_text="asks for at least 4").wait_for()
    page.get_by_label("Steps to reproduce").fill("1. Log in as an EU user\n2. Add an item\n3. Press Pay")
    page.get_by_label("Expected behaviour").fill("The order is confirmed.")
    page.get_by_label("Actual behaviour").fill("A 502 page after 30 seconds.")
    _expect_score(page, 1)
    page.get_by_label("Product version").fill("4.2.0")
    page.get_by_label("Region").fill("eu-west-1")
    page.get_by_label("Tenant").fill("acme-prod")
    _expect_score(page, 2)
    page.get_by_label("Request / correlation IDs").fill("req-8f2c91")
    page.get_by_label("First seen").fill("2025-03-03T08:55")
    _expect_score(page, 3)
    page.get_by_label("Users affected").fill("1200")
    page.get_by_label("Workaround available?").select_option("no")
    _expect_score(page, 4)
    page.locator("#quality-minimum", has_text="meets the minimum").wait_for()
    page.get_by_label("Hypotheses tested and results").fill("CDN cache purged: no change.")
    assert "Diagnosis" in page.locator("#quality-missing").inner_text()
    page.get_by_label("Severity rationale").fill("Every EU checkout fails.")
    _expect_score(page, 5)
    page.locator("#quality-missing", has_text="Nothing: the package is complete.").wait_for()
    page.screenshot(path=str(_screenshot("escalation-form.png")), full_page=True)

    page.get_by_role("button", name="Save draft").click()
    expect_message(page, "saved as a draft: quality 5/5")
    escalation = Escalation.objects.get(case=case)
    page.get_by_role("button", name="Submit to engineering").click()
    expect_message(page, f"{escalation.key} submitted to Payments.")

    # Engineering bounces it through the API.
    body = _engineering(
        live_server.url, token, escalation.pk, "request-info", {"questions": "Which card brands fail?"}
    )
    assert body["state"] == "needs_info"

    # The agent sees the question on the escalation and answers it in one form.
    page.reload()
    page.get_by_text("Which card brands fail?").first.wait_for()
    page.screenshot(path=str(_screenshot("escalation-detail.png")), full_page=True)
    page.get_by_label("Your answer to engineering").fill("All of them: Visa, Mastercard and Amex.")
    page.get_by_role("button", name="Send answer").click()
    expect_message(page, f"Answer sent: {escalation.key} is back with Payments.")

    # Engineering takes it on and resolves it.
    assert _engineering(live_server.url, token, escalation.pk, "acknowledge")["state"] == "acknowledged"
    assert _engineering(live_server.url, token, escalation.pk, "start")["state"] == "in_progress"
    body = _engineering(
        live_server.url,
        token,
        escalation.pk,
        "resolve",
        {"resolution": "Raised the upstream timeout.", "fix_version": "4.2.1"},
    )
    assert body["state"] == "resolved"

    # The case timeline shows every step, and the case is back with support.
    page.goto(f"{live_server.url}/cases/{case.key}/")
    events = page.locator("ol.timeline > li")
    kinds = [events.nth(i).get_attribute("data-kind") for i in range(events.count())]
    escalation_kinds = [k for k in kinds if k.startswith("escalation_")]
    assert escalation_kinds == [
        "escalation_drafted",
        "escalation_submitted",
        "escalation_info_requested",
        "escalation_info_provided",
        "escalation_acknowledged",
        "escalation_started",
        "escalation_resolved",
    ]
    timeline = page.locator("ol.timeline").inner_text()
    assert "Which card brands fail?" in timeline
    assert "All of them: Visa, Mastercard and Amex." in timeline
    assert "Fixed in 4.2.1. Raised the upstream timeout." in timeline
    assert "Status: In progress → Waiting on engineering" in timeline
    assert "Status: Waiting on engineering → In progress" in timeline
    resolved = events.nth(kinds.index("escalation_resolved")).inner_text()
    assert "Erik Engineer" in resolved
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS
    page.screenshot(path=str(_screenshot("escalation-timeline.png")), full_page=True)

    # Nothing is left open with engineering on the board.
    page.get_by_role("link", name="Escalations").click()
    page.get_by_text("Nothing is open with engineering.").wait_for()


def _screenshot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
