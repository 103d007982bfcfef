"""An agent answers a case with a macro in a real browser, and moves through the queue by keyboard.

Screenshots: var/screenshots/macro-flow-1440.png and macro-flow-390.png (the case page with the
macro inserted), macro-shortcuts-help.png (the shortcuts' help).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from cases import macros, services
from cases.models import EventKind, Macro, Status
from tests import factories
from tests.browser.helpers import expect_message, log_in

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"


def _case(title: str, *, organisation, requester, agent, team, now):
    case = services.create_case(
        title=title, organisation=organisation, requester=requester, severity="P2", actor=agent, now=now
    )
    services.transition(case, Status.TRIAGED, actor=agent, now=now, severity="P2", team=team)
    return services.transition(case, Status.IN_PROGRESS, actor=agent, now=now)


@pytest.fixture
def workspace(transactional_db):
    now = timezone.now()
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    manager = factories.ManagerFactory(username="maria", first_name="Maria", last_name="Manager")
    organisation = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    carla = factories.ContactFactory(
        organisation=organisation, name="Carla Customer", email="carla@acme.example"
    )
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")
    cases = [
        _case(title, organisation=organisation, requester=carla, agent=agent, team=team, now=now)
        for title in ("Checkout fails with 502", "Invoices show the wrong VAT", "SSO login loops")
    ]
    shared = macros.save_macro(
        Macro(),
        actor=manager,
        now=now,
        shared=True,
        name="Fixed — resolve",
        body="Hi {{requester_first_name}},\n\n{{case_key}} is fixed: please try again.\n\n{{agent_name}}",
        set_status=Status.RESOLVED,
        add_tags=["fixed"],
    )
    macros.save_macro(
        Macro(),
        actor=agent,
        now=now,
        shared=False,
        name="Ask for a HAR file",
        body="Could you send a HAR file?",
    )
    return {"cases": cases, "macro": shared}


@pytest.mark.browser
def test_agent_replies_with_a_macro(live_server, page, workspace):
    case = workspace["cases"][0]
    log_in(page, live_server.url, "alice")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{live_server.url}{case.get_absolute_url()}")

    # Without a click nothing is in the reply; the no-JavaScript form is replaced by one button per macro.
    reply = page.get_by_label("Public reply — e-mailed to carla@acme.example")
    assert reply.input_value() == ""
    assert page.locator("form.macro-apply-form").is_hidden()
    page.get_by_role("button", name="Insert macro Fixed — resolve into the reply").click()

    expected = f"Hi Carla,\n\n{case.key} is fixed: please try again.\n\nAlice Agent"
    assert reply.input_value() == expected
    assert page.get_by_label("Then set status").input_value() == "resolved"
    note = page.locator(".macro-note-text")
    assert "then set the status to resolved" in note.inner_text()
    assert "add the tags fixed" in note.inner_text()

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#reply").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "macro-flow-1440.png"), full_page=False)
    page.set_viewport_size({"width": 390, "height": 844})
    page.locator("#reply").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENSHOTS / "macro-flow-390.png"), full_page=False)
    assert page.evaluate("document.querySelector('.macro-picker').scrollWidth <= window.innerWidth")
    page.set_viewport_size({"width": 1440, "height": 900})

    # The agent adds a line, then sends: the reply, the macro's tag and its status in one submit.
    reply.press("End")
    reply.type("\nThanks for your patience.")
    page.get_by_role("button", name="Send reply to Carla Customer").click()
    expect_message(
        page, "Reply (macro “Fixed — resolve”) recorded and queued for delivery to carla@acme.example."
    )
    expect_message(page, "Macro “Fixed — resolve”: status set to resolved.")

    timeline = page.locator("ol.timeline")
    last_reply = timeline.locator("li.ev-public_reply").last
    assert "Thanks for your patience." in last_reply.inner_text()
    assert f"{case.key} is fixed: please try again." in last_reply.inner_text()
    assert (
        timeline.locator("li.ev-status_changed")
        .last.get_by_text("Status: In progress → Resolved")
        .is_visible()
    )
    assert timeline.locator("li.ev-tags_changed").last.get_by_text("Tags: added fixed").is_visible()
    case.refresh_from_db()
    assert case.status == Status.RESOLVED
    assert case.events.filter(kind=EventKind.PUBLIC_REPLY).count() == 1


@pytest.mark.browser
def test_keyboard_shortcuts_move_through_the_queue_and_never_fire_while_typing(live_server, page, workspace):
    log_in(page, live_server.url, "alice")  # lands on the queue, which remembers its order
    order = page.evaluate(
        "Array.from(document.querySelectorAll('main a[href]'))"
        ".map(a => (a.pathname.match(/^\\/cases\\/(CASE-\\d+)\\/$/) || [])[1]).filter(Boolean)"
        ".filter((k, i, all) => all.indexOf(k) === i)"
    )
    assert len(order) == 3
    page.goto(f"{live_server.url}/cases/{order[0]}/")

    # Typing a "j" in the reply box types it.
    page.keyboard.press("r")
    reply = page.get_by_label("Public reply — e-mailed to carla@acme.example")
    assert page.evaluate("document.activeElement.name") == "body"
    page.keyboard.type("jk?")
    assert reply.input_value() == "jk?"
    assert page.evaluate("location.pathname") == f"/cases/{order[0]}/"

    # Outside the fields: j is the next case of the queue, k the previous one.
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    page.wait_for_url(re.compile(f".*/cases/{order[1]}/$"))
    page.keyboard.press("n")
    page.wait_for_url(re.compile(f".*/cases/{order[2]}/$"))
    page.keyboard.press("j")
    page.get_by_text("This is the last case of the list you came from.").wait_for()
    page.keyboard.press("k")
    page.wait_for_url(re.compile(f".*/cases/{order[1]}/$"))

    # i goes to the internal note; ? lists the shortcuts.
    page.keyboard.press("i")
    assert page.evaluate("document.activeElement.id") == "note_body"
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("?")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    help_dialog.wait_for()
    assert "Write an internal note" in help_dialog.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "macro-shortcuts-help.png"))
    page.keyboard.press("Escape")
    assert help_dialog.is_hidden()

    # / goes to the search field (the queue's, when the page has none).
    page.keyboard.press("/")
    page.wait_for_url(re.compile(r".*/cases/.*"))
    page.wait_for_function("document.activeElement && document.activeElement.name === 'q'")


@pytest.mark.browser
def test_macros_page_and_case_head_fit_the_screen(live_server, page, workspace):
    log_in(page, live_server.url, "alice")
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.goto(f"{live_server.url}/cases/macros/")
        assert page.get_by_role("heading", name="Macros", level=1).is_visible()
        assert (
            page.locator("tr", has_text="Ask for a HAR file")
            .get_by_role("link", name=re.compile("Edit"))
            .count()
        )
        assert page.locator("tr", has_text="Fixed — resolve").get_by_text("managers change it").is_visible()
        page.screenshot(path=str(SCREENSHOTS / f"macros-page-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.goto(f"{live_server.url}{workspace['cases'][1].get_absolute_url()}")
        assert page.get_by_role("button", name="Assign to me").is_visible()
        page.screenshot(path=str(SCREENSHOTS / f"macro-case-head-{width}.png"))
    page.get_by_role("button", name="Assign to me").click()
    expect_message(page, "is now assigned to you.")
