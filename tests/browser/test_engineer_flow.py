"""An engineer acknowledges their team's escalation in the browser; the agent's package form keeps
its quality score in view at desktop and phone widths. Screenshots under var/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from cases import services as case_services
from cases.models import Status
from escalations import services
from escalations.models import EngineeringTeam, EngineerScope
from tests import factories
from tests.browser.helpers import expect_message

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def _screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=False)


def _log_in(page, base_url: str, username: str, landing: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("pw-for-tests-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(rf".*{landing}$"))


def _no_horizontal_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def _setup():
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    engineer = factories.EngineerFactory(username="erik", first_name="Erik", last_name="Engineer")
    payments = EngineeringTeam.objects.create(
        name="Payments", slug="payments", components="checkout-api", min_quality_score=3
    )
    EngineerScope.objects.create(user=engineer).teams.set([payments])
    organisation = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    contact = factories.ContactFactory(organisation=organisation, name="Carla Customer")
    now = factories.at(2026, 3, 2, 9)
    case = case_services.create_case(
        title="Checkout fails with 502",
        description="Every EU checkout fails.\nVersion: 4.2.0\nEnvironment: production\nBrowser: Chrome 126",
        organisation=organisation,
        requester=contact,
        severity="P2",
        actor=agent,
        now=now,
    )
    case = case_services.transition(case, Status.TRIAGED, actor=agent, now=now, severity="P2", assignee=agent)
    case_services.add_customer_message(
        case, body="Region: eu-west-1\nIt started at 08:55.", sender=contact, now=now
    )
    return agent, engineer, payments, case, now


def _submitted(case, payments, agent, now):
    draft = services.create_draft(
        case=case,
        team=payments,
        actor=agent,
        now=now,
        summary="Checkout returns 502 for EU tenants",
        component="checkout-api",
        steps_to_reproduce="1. Log in as an EU user\n2. Add an item\n3. Press Pay",
        expected_behaviour="The order is confirmed.",
        actual_behaviour="A 502 page after 30 s.",
        product_version="4.2.0",
        region="eu-west-1",
        tenant="acme-prod",
        request_ids="req-8f2c91",
        first_seen_at=now,
        users_affected=1200,
        workaround_available=False,
    )
    return services.submit(draft, actor=agent, now=now)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_engineer_acknowledges_their_teams_escalation_in_the_browser(live_server, browser):
    agent, engineer, payments, case, now = _setup()
    escalation = _submitted(case, payments, agent, now)
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        _log_in(page, live_server.url, "erik", "/escalations/")
        # The board lists it; the engineer opens it.
        page.get_by_role("link", name=escalation.key).click()
        page.wait_for_url(re.compile(rf".*/escalations/{escalation.pk}/view/$"))
        state = page.locator("#escalation-state .pill.state")
        assert state.inner_text() == "Submitted"
        actions = page.locator("#actions")
        assert actions.get_by_role("button", name="Acknowledge").is_visible()
        assert actions.get_by_role("button", name="Start work").count() == 0  # not yet allowed
        _screenshot(page, "engineer-page-1440.png")

        actions.get_by_role("button", name="Acknowledge").click()
        expect_message(page, f"{escalation.key} acknowledged: Payments owns it.")
        assert state.inner_text() == "Acknowledged"
        assert actions.get_by_role("button", name="Acknowledge").count() == 0
        assert actions.get_by_role("button", name="Start work").is_visible()
        assert "Not yet" not in page.locator("#h-dates + dl").inner_text()
        _screenshot(page, "engineer-page-acknowledged-1440.png")
        escalation.refresh_from_db()
        assert escalation.state == "acknowledged"
        assert escalation.case.events.get(kind="escalation_acknowledged").actor_id == engineer.pk

        # A refused step is a message on the page, not an error page: the colleague's tab is stale.
        page.set_viewport_size(PHONE)
        page.reload()
        _no_horizontal_scroll(page)
        _screenshot(page, "engineer-page-390.png")
        page.get_by_role("link", name="Actions", exact=True).click()
        page.locator("#actions").get_by_text("Ask support for more").click()
        _no_horizontal_scroll(page)
        _screenshot(page, "engineer-page-actions-390.png")
        services.start(escalation, actor=engineer, now=now)
        page.locator("#actions").get_by_role("button", name="Start work").click()
        page.locator(".messages").get_by_text("cannot be started now").wait_for()
        assert page.locator("#escalation-state .pill.state").inner_text() == "In progress"
        _no_horizontal_scroll(page)
    finally:
        context.close()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_quality_score_stays_in_view_while_the_agent_fills_the_form(live_server, browser):
    agent, engineer, payments, case, now = _setup()
    context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        _log_in(page, live_server.url, "alice", "/cases/")
        page.goto(f"{live_server.url}/escalations/new/{case.key}/")
        # Prefilled from the case text.
        assert page.get_by_label("Product version", exact=True).input_value() == "4.2.0"
        assert page.get_by_label("Region", exact=True).input_value() == "eu-west-1"
        assert "Browser: Chrome 126" in page.get_by_label("Other environment facts").input_value()
        page.get_by_label("Engineering team").select_option("payments")
        page.locator("#quality-minimum", has_text="asks for at least 3").wait_for()

        # Desktop: after scrolling to the bottom of the form the score is still on screen.
        page.get_by_label("Severity rationale").scroll_into_view_if_needed()
        page.get_by_label("Severity rationale").fill("Every EU checkout fails.")
        page.get_by_label("Users affected").fill("1200")
        page.get_by_label("Workaround available?").select_option("no")
        page.locator("#quality-score", has_text=re.compile(r"^2$")).wait_for()
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        box = page.locator("#quality").bounding_box()
        assert box is not None
        assert box["y"] >= 0  # on screen after scrolling to the bottom
        assert box["y"] + 60 <= DESKTOP["height"]
        form_box = page.locator("#package-form").bounding_box()
        assert box["x"] >= form_box["x"] + form_box["width"]  # beside the form, not over it
        _screenshot(page, "escalation-form-sticky-1440.png")

        # Phone: a compact bar at the top that stays while scrolling, the form fully usable below it.
        page.set_viewport_size(PHONE)
        page.evaluate("window.scrollTo(0, 0)")
        _no_horizontal_scroll(page)
        _screenshot(page, "escalation-form-top-390.png")
        field = page.get_by_label("Hypotheses tested and results")
        field.click()
        field.fill("CDN cache purged: no change.")
        bar = page.locator(".esc-score-head").bounding_box()
        assert bar["y"] >= -1
        assert bar["height"] <= 110
        field_box = field.bounding_box()
        assert field_box["y"] >= bar["y"] + bar["height"]  # the focused field is not under the bar
        page.locator("#quality-score", has_text=re.compile(r"^3$")).wait_for()
        page.locator("#quality-minimum", has_text="meets the minimum").wait_for()
        _no_horizontal_scroll(page)
        _screenshot(page, "escalation-form-sticky-390.png")
    finally:
        context.close()
