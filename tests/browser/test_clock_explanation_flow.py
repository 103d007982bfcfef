"""An agent asks a clock on the case page why it is due then, and reads the arithmetic: the office
hours it counted and the pause, on a laptop and on a phone."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from cases import services as case_services
from cases.models import Status
from tests import factories
from tests.browser.helpers import log_in, screenshot_widths
from tests.sla.factories import BusinessCalendarFactory, OrganisationCalendarFactory

pytestmark = pytest.mark.browser


def test_an_agent_reads_why_the_resolution_is_due_then(live_server, page):
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    office = BusinessCalendarFactory(name="Berlin office", time_zone="Europe/Berlin")
    globex = factories.OrganisationFactory(name="Globex", tier="business", time_zone="Europe/Berlin")
    OrganisationCalendarFactory(organisation=globex, calendar=office)
    requester = factories.ContactFactory(organisation=globex, name="Gus Globex", email="gus@globex.example")
    start = timezone.now() - dt.timedelta(days=2)
    case = case_services.create_case(
        title="Exports time out",
        organisation=globex,
        requester=requester,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=start,
    )
    case_services.transition(case, Status.TRIAGED, actor=agent, now=start, severity="P2")
    case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=start)
    case_services.transition(case, Status.WAITING_ON_CUSTOMER, actor=agent, now=start + dt.timedelta(hours=1))
    case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=start + dt.timedelta(hours=3))

    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/cases/{case.key}/")
    page.get_by_role("link", name="Why is Resolution due then?").click()
    page.wait_for_url(re.compile(r".*/sla/clocks/\d+/$"))
    assert page.get_by_role("heading", name=re.compile(rf"Why {case.key}.s resolution is due")).is_visible()
    assert "Berlin office" in page.locator("#facts").locator("..").inner_text()
    assert page.locator("#pause-table tbody tr").count() == 1
    assert page.locator("#span-table tbody tr").count() >= 1
    screenshot_widths(page, "clock-explanation", fits_width=True)
