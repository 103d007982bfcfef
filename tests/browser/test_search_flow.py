"""Case search in a real browser: an agent finds a case by its organisation's name (from the search box
in the navigation), by a tag and by a word that only a public reply holds; the page fits a phone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from cases import services
from tests import factories
from tests.browser.helpers import log_in

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def _results(page) -> list[str]:
    return page.locator("ol.case-results > li").evaluate_all("items => items.map(i => i.dataset.key)")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_agent_finds_a_case_by_organisation_tag_and_reply_word(live_server, page):
    now = timezone.now()
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    brightwater = factories.OrganisationFactory(name="Brightwater Analytics", tier="enterprise")
    ingrid = factories.ContactFactory(
        organisation=brightwater, name="Ingrid Halvorsen", email="ingrid@brightwater.example"
    )
    acme = factories.OrganisationFactory(name="Acme Corp", tier="business")
    carla = factories.ContactFactory(organisation=acme, name="Carla Customer", email="carla@acme.example")
    export = services.create_case(
        title="Nightly export stalls at eighty percent",
        description="The CSV export stops with a timeout since Tuesday.",
        organisation=brightwater,
        requester=ingrid,
        actor=agent,
        now=now,
        tags=["billing-sync"],
    )
    services.add_public_reply(
        export,
        body="We raised the quota of the zeppelin worker pool; please try again.",
        actor=agent,
        now=now,
    )
    other = services.create_case(
        title="Login loop after the one-time code",
        description="Users land on the login page again after the export of their settings.",
        organisation=acme,
        requester=carla,
        actor=agent,
        now=now,
        tags=["sso"],
    )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server.url, "alice")

    # From any page: the search box in the navigation, by the organisation's name.
    page.get_by_role("searchbox", name="Quick case search").fill("Brightwater Analytics")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/cases/search/\?q=Brightwater"))
    assert _results(page) == [export.key]
    row = page.locator(f'ol.case-results > li[data-key="{export.key}"]')
    assert "Brightwater Analytics" in row.inner_text()

    # On the page: by a tag, then by a word only the public reply holds (highlighted in the snippet).
    search_box = page.get_by_role("searchbox", name="Search cases")
    search_box.fill("billing-sync")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*q=billing-sync"))
    assert _results(page) == [export.key]

    search_box = page.get_by_role("searchbox", name="Search cases")
    search_box.fill("zeppelin")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*q=zeppelin"))
    assert _results(page) == [export.key]
    assert (
        page.locator(f'li[data-key="{export.key}"] .case-snippet mark').first.inner_text().lower()
        == "zeppelin"
    )
    page.screenshot(path=str(SCREENSHOTS / "search-flow-1440.png"), full_page=True)

    # A word of both cases finds both; the other customer's case is not hidden by the first search.
    page.get_by_role("searchbox", name="Search cases").fill("export")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*q=export"))
    assert sorted(_results(page)) == sorted([export.key, other.key])

    # The result list fits a phone without sideways scrolling.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SCREENSHOTS / "search-flow-390.png"), full_page=True)

    # Clicking a result opens the case.
    page.locator(f'li[data-key="{export.key}"] a.case-result-title').click()
    page.wait_for_url(re.compile(rf".*/cases/{export.key}/$"))
