"""A manager opens "Configuration changes" from the navigation and reads who changed what, with
the values before and after, on a laptop and on a phone."""

from __future__ import annotations

import re

import pytest

from escalations.models import EngineeringTeam, WebhookSubscription
from sla.models import SlaPolicy
from supportdesk.core import audit
from tests import factories
from tests.browser.helpers import log_in, screenshot_widths

pytestmark = pytest.mark.browser


def test_a_manager_reads_the_configuration_changes(live_server, page):
    manager = factories.ManagerFactory(username="maria", first_name="Maria", last_name="Manager")
    organisation = factories.OrganisationFactory(name="Globex Corporation", tier="standard")
    team = EngineeringTeam.objects.create(name="Payments", slug="payments")
    with audit.acting_as(manager):
        policy = SlaPolicy.objects.get(tier="enterprise", severity="P1")
        policy.first_response_minutes = 10
        policy.save()
        organisation.tier = "enterprise"
        organisation.save()
        hook = WebhookSubscription.objects.create(team=team, url="https://hooks.example.com/payments")
        hook.url = "https://hooks.example.com/payments/v2"
        hook.secret = "whsec_" + "B" * 43 + "="
        hook.save()

    log_in(page, live_server.url, "maria")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Configuration changes").click()
    page.wait_for_url(re.compile(r".*/config-changes/$"))
    assert page.get_by_role("heading", name="Configuration changes").is_visible()

    row = page.locator("tr", has_text="Globex Corporation").filter(has_text="changed")
    assert "Maria Manager" in row.inner_text()
    assert row.locator("del").inner_text() == "Standard"
    assert row.locator("ins").inner_text() == "Enterprise"
    hook_row = page.locator("tr", has_text="payments/v2").first
    assert "Signing secret" in hook_row.inner_text()
    assert hook.secret not in page.content()
    screenshot_widths(page, "config-changes", fits_width=True)

    page.get_by_label("Kind of object").select_option(label="SLA policies")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r".*kind=sla\.slapolicy.*"))
    rows = page.locator("table.audit-changes tbody tr")
    # Only SLA policies (a database reset between browser tests may have recorded the seeded
    # policies' creation too), the newest first: Maria's change.
    assert rows.count() >= 1
    assert all("SLA policies" in rows.nth(i).inner_text() for i in range(rows.count()))
    assert "Enterprise P1" in rows.first.inner_text()
    assert "Maria Manager" in rows.first.inner_text()
    assert rows.first.locator("ins").inner_text() == "10"
