"""An agent works the queue in a real browser: the most urgent case on top, a dense page on a laptop,
a card list on a phone, and a bulk change with one case refused."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.utils import timezone

from cases import saved_views, services
from cases.models import Case
from sla.services import record_due_warnings_and_breaches
from tests import factories
from tests.browser.helpers import log_in

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

TITLES = [
    "Checkout fails with 502 for every customer in the EU region since this morning's deploy",
    "Password reset mails arrive hours late",
    "CSV export of invoices truncates the last column when it holds commas",
    "Dashboard widgets load forever on Safari",
    "SAML login loops back to the identity provider",
    "Webhook retries hammer our endpoint",
    "Mobile app crashes when opening an attachment",
    "Search ignores accented characters",
]


def _backlog(n: int, *, agent, now: dt.datetime) -> list[Case]:
    """``n`` open cases opened over the last hours through the services (so their SLA clocks run),
    with the sweep run at ``now``: the oldest P1s are breached, others at risk or on track."""
    orgs = [
        factories.OrganisationFactory(name="Acme Corporation International", tier="enterprise"),
        factories.OrganisationFactory(name="Globex", tier="business"),
        factories.OrganisationFactory(name="Initech", tier="standard"),
    ]
    contacts = [factories.ContactFactory(organisation=o) for o in orgs]
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")
    cases = []
    for i in range(n):
        org = i % 3
        opened = now - dt.timedelta(minutes=5 + 7 * i)
        with time_machine.travel(opened, tick=False):
            case = services.create_case(
                title=TITLES[i % len(TITLES)],
                organisation=orgs[org],
                requester=contacts[org],
                severity=f"P{i % 4 + 1}",
                team=team if i % 2 else None,
                tags=["billing"] if i % 5 == 0 else [],
                actor=agent,
                now=timezone.now(),
            )
        cases.append(case)
    record_due_warnings_and_breaches(now=now)
    saved_views.create_view(owner=agent, name="P1 and P2", query="severity=P1&severity=P2", now=now)
    team.members.add(agent)
    saved_views.create_view(owner=agent, name="Tier 2 backlog", query="team=tier-2", team=team, now=now)
    return cases


def _fits_the_screen(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_the_most_overdue_case_is_on_top_of_the_queue(live_server, page):
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    now = timezone.now()
    acme = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    carla = factories.ContactFactory(organisation=acme, name="Carla Customer")

    def open_case(title: str, severity: str, minutes_ago: int) -> Case:
        with time_machine.travel(now - dt.timedelta(minutes=minutes_ago), tick=False):
            return services.create_case(
                title=title,
                organisation=acme,
                requester=carla,
                severity=severity,
                actor=agent,
                now=timezone.now(),
            )

    fresh_p1 = open_case("Login fails for some users", "P1", minutes_ago=2)
    slow_p2 = open_case("Reports are slow", "P2", minutes_ago=20)
    outage = open_case("Outage: nobody can check out", "P1", minutes_ago=190)  # first response due 15 min in
    record_due_warnings_and_breaches(now=now)

    log_in(page, live_server.url, "alice")
    rows = page.locator("tr.q-row")
    keys = [rows.nth(i).get_attribute("data-key") for i in range(rows.count())]
    assert keys == [outage.key, fresh_p1.key, slow_p2.key]
    top = rows.first.locator("td.q-due")
    assert top.locator(".due-state").inner_text() == "Breached"
    assert top.locator(".due-target").inner_text() == "First response"
    assert top.locator(".due-count").inner_text().startswith("overdue 2h 5")
    # The other clocks are there on demand (loaded when the cell opens), without leaving the queue.
    top.locator("summary").click()
    top.locator(".due-clocks").get_by_text("Triage").wait_for()
    assert top.locator(".due-clocks").get_by_text("Resolution").is_visible()
    page.screenshot(path=str(SCREENSHOTS / "queue-urgent-first.png"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_laptop_screen_shows_25_cases_without_scrolling(live_server, page):
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    _backlog(40, agent=agent, now=timezone.now())
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, "alice")
    rows = page.locator("tr.q-row")
    assert rows.count() == 40
    height = page.evaluate("window.innerHeight")
    visible = page.evaluate(
        "h => [...document.querySelectorAll('tr.q-row')]"
        ".filter(r => r.getBoundingClientRect().bottom <= h).length",
        height,
    )
    page.screenshot(path=str(SCREENSHOTS / "queue-1440x900.png"))
    assert visible >= 25, visible
    # One line per case: every row is as tall as the first.
    heights = page.evaluate(
        "[...document.querySelectorAll('tr.q-row')].map(r => r.getBoundingClientRect().height)"
    )
    assert max(heights) <= heights[0] + 1, heights
    # The long title is cut on the line, whole in its tooltip.
    title = page.locator("tr.q-row td.q-title a").first
    assert title.get_attribute("title") in TITLES
    scroll_width, width = _fits_the_screen(page)
    assert scroll_width <= width


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_phone_shows_the_queue_as_cards_that_fit_the_screen(live_server, page):
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    _backlog(12, agent=agent, now=timezone.now())
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_server.url, "alice")
    page.locator("tr.q-row").first.wait_for()
    scroll_width, width = _fits_the_screen(page)
    page.screenshot(path=str(SCREENSHOTS / "queue-390x844.png"), full_page=True)
    assert scroll_width <= width, (scroll_width, width)
    card = page.locator("tr.q-row").first
    box = card.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= width
    # A card still says what is due, in words.
    assert card.locator(".due-state").inner_text() in {"Breached", "At risk", "On track"}
    # Ticking a case brings the action bar, which fits too.
    card.locator("input[name='keys']").check()
    assert page.locator("form#bulk-form").is_visible()
    scroll_width, width = _fits_the_screen(page)
    assert scroll_width <= width, (scroll_width, width)
    page.screenshot(path=str(SCREENSHOTS / "queue-390x844-ticked.png"))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_bulk_assignment_changes_two_cases_and_says_why_the_third_was_refused(live_server, page):
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    bob = factories.AgentFactory(username="bob", first_name="Bob", last_name="Builder")
    cases = _backlog(5, agent=agent, now=timezone.now())
    chosen = cases[:3]
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, "alice")

    bar = page.locator("form#bulk-form")
    assert not bar.is_visible()  # nothing ticked yet
    for case in chosen:
        page.get_by_label(f"Tick {case.key}").check()
    assert bar.is_visible()
    assert bar.locator(".q-bulk-count").inner_text() == "3 cases ticked"
    bar.get_by_label("Change").select_option("assign")
    bar.get_by_label("Assignee").select_option("me")
    page.screenshot(path=str(SCREENSHOTS / "queue-bulk-bar.png"))

    # Meanwhile Bob takes one of them: the page still shows the version Alice saw.
    taken = chosen[1]
    services.update_case(taken, assignee=bob, actor=bob, now=timezone.now())

    bar.get_by_role("button", name="Apply").click()
    page.get_by_role("heading", name="Assign to Alice Agent").wait_for()
    assert page.locator(".bulk-summary").inner_text() == "2 changed, 0 already so, 1 refused."
    refused = page.locator(".bulk-refused li")
    assert refused.count() == 1
    assert refused.first.get_attribute("data-key") == taken.key
    assert "was changed by someone else since you loaded it" in refused.first.inner_text()
    changed = page.locator(".bulk-changed li")
    assert [changed.nth(i).get_attribute("data-key") for i in range(changed.count())] == [
        chosen[0].key,
        chosen[2].key,
    ]
    page.screenshot(path=str(SCREENSHOTS / "queue-bulk-result.png"))
    assert Case.objects.get(pk=taken.pk).assignee == bob
    assert {Case.objects.get(pk=c.pk).assignee for c in (chosen[0], chosen[2])} == {agent}

    # Back to the queue, where the two are now Alice's.
    page.get_by_role("link", name="Back to the queue").first.click()
    mine = page.locator("tr.q-row", has_text="Alice Agent")
    assert mine.count() == 2


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_agent_saves_a_filtered_queue_as_a_team_view(live_server, page):
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    _backlog(8, agent=agent, now=timezone.now())
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, "alice")
    page.locator(".q-filters").get_by_label("P1", exact=True).check()
    page.locator(".q-filters").get_by_role("button", name="Apply").click()
    page.wait_for_url("**severity=P1**")
    p1_rows = page.locator("tr.q-row").count()

    page.get_by_text("Save this view").click()
    form = page.locator("form.q-save-form")
    form.get_by_label("Name").fill("Our P1s")
    form.get_by_label("Share with").select_option(label="Tier 2")
    page.screenshot(path=str(SCREENSHOTS / "queue-save-view.png"))
    form.get_by_role("button", name="Save view").click()
    page.locator(".messages").get_by_text("Saved the view “Our P1s”, shared with Tier 2.").wait_for()
    current = page.locator('.q-views a[aria-current="page"]')
    assert current.inner_text().startswith("Our P1s")
    assert current.locator(".q-team").inner_text() == "· Tier 2"
    assert current.locator(".q-count").inner_text().startswith(str(p1_rows))
    assert page.locator("tr.q-row").count() == p1_rows
