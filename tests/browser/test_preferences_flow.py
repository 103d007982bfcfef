"""A person picks their time zone on the preferences page and reads times in it; a page they may not
open answers a styled 403 with the reason and the navigation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.browser.helpers import expect_message, log_in

SHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_agent_chooses_a_zone_and_meets_a_styled_403(live_server, page, agent):
    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in(page, live_server.url, "alice")
    page.get_by_role("link", name="Preferences").click()
    page.wait_for_url(re.compile(r".*/preferences/$"))

    page.get_by_label("Time zone").fill("Mars/Olympus_Mons")
    page.get_by_role("button", name="Save preferences").click()
    page.get_by_text("is not a time zone name we know").wait_for()
    page.screenshot(path=str(SHOTS / "preferences-error.png"), full_page=True)

    page.get_by_label("Time zone").fill("Asia/Tokyo")
    page.get_by_label("Tell me when an SLA target is at risk").uncheck()
    page.get_by_role("button", name="Save preferences").click()
    expect_message(page, "Preferences saved.")
    assert re.search(r"now is \d{1,2} \w{3} \d{4} \d{2}:\d{2} JST", page.locator("#zone-now").inner_text())
    assert not page.get_by_label("Tell me when an SLA target is at risk").is_checked()
    page.screenshot(path=str(SHOTS / "preferences-saved.png"), full_page=True)

    page.goto(f"{live_server.url}/metrics/")  # managers only
    page.get_by_role("heading", name="You can't open this page").wait_for()
    assert "The dashboards are for support managers." in page.locator("[data-reason]").inner_text()
    assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Queue").is_visible()
    page.screenshot(path=str(SHOTS / "error-403.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SHOTS / "error-403-390.png"), full_page=True)
