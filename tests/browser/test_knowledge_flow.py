"""Knowledge at work in a real browser: an agent resolves a case with a suggested runbook and drafts an
article from it; a manager publishes that draft."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from cases import services as case_services
from cases.models import CaseEvent, Status
from knowledge import services
from knowledge.models import Article, ArticleCaseLink, Kind
from tests import factories
from tests.browser.helpers import expect_message, log_in

SCREENSHOT = Path(settings.BASE_DIR) / "var" / "screenshots" / "knowledge-flow.png"


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_agent_resolves_with_a_suggested_runbook_and_a_manager_publishes_the_new_article(live_server, page):
    now = timezone.now()
    agent = factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    manager = factories.ManagerFactory(username="maria", first_name="Maria", last_name="Manager")
    organisation = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    contact = factories.ContactFactory(
        organisation=organisation, name="Carla Customer", email="carla@acme.example"
    )
    case = case_services.create_case(
        title="SSO login fails after certificate rotation",
        description="Since this morning every SSO login fails with an invalid signature error.",
        organisation=organisation,
        requester=contact,
        severity="P2",
        product_area="identity",
        actor=agent,
        now=now,
    )
    runbook = services.create_draft(
        title="SSO signature errors after a certificate rotation",
        body_markdown="1. Check the IdP certificate fingerprint.\n2. Re-import the IdP metadata.",
        kind=Kind.RUNBOOK,
        product_area="identity",
        actor=agent,
        now=now,
    )
    services.publish(runbook, actor=manager, now=now)
    guide = services.create_draft(
        title="Upload a new SSO certificate",
        body_markdown="Go to Settings > SSO and upload the new certificate.",
        product_area="identity",
        actor=agent,
        now=now,
    )
    services.publish(guide, actor=manager, now=now)

    # The agent opens the case and sees the runbook suggested.
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}{case.get_absolute_url()}")
    box = page.locator("section.kb-case")
    suggestion = box.locator(f'.kb-suggestion[data-slug="{runbook.slug}"]')
    suggestion.get_by_role("link", name=runbook.title).wait_for()
    assert "Runbook" in suggestion.inner_text()
    # A runbook is internal: it offers no "Insert into reply".
    assert suggestion.locator("a.kb-insert").count() == 0

    # The customer-facing guide goes into the reply with one click.
    box.locator(f'.kb-suggestion[data-slug="{guide.slug}"] a.kb-insert').click()
    reply = page.get_by_label("Public reply — e-mailed to carla@acme.example")
    assert reply.input_value() == "Go to Settings > SSO and upload the new certificate."
    page.get_by_role("button", name="Send reply to Carla Customer").click()
    expect_message(page, "Reply recorded and queued for delivery to carla@acme.example.")

    # Link the runbook as used to resolve the case.
    box = page.locator("section.kb-case")
    box.locator(f'.kb-suggestion[data-slug="{runbook.slug}"]').get_by_role(
        "button", name=re.compile("used to resolve")
    ).click()
    expect_message(page, "as used to resolve it")
    assert page.locator("section.kb-case .kb-linked").get_by_text(runbook.title).is_visible()
    assert page.locator(".timeline").get_by_text(re.compile("Article linked", re.IGNORECASE)).count() >= 1

    # Resolve the case.
    page.get_by_label("New status").select_option("resolved")
    page.get_by_role("button", name="Change status").click()
    expect_message(page, "is now resolved.")

    # Write down the fix: a draft article created from the case, prefilled with the resolution.
    page.locator("section.kb-case").get_by_label("Write down how this case was solved").select_option(
        "article"
    )
    page.get_by_role("button", name="Create article from case").click()
    page.wait_for_url(re.compile(r".*/knowledge/[-a-z0-9]+/edit/$"))
    body = page.get_by_label("Body (Markdown)")
    assert "Go to Settings > SSO and upload the new certificate." in body.input_value()
    page.get_by_label("Title").fill("Fix SSO logins after a certificate rotation")
    page.get_by_role("button", name="Save as a new revision").click()
    expect_message(page, "Saved as revision 2.")
    draft = Article.objects.get(created_from_case=case)
    assert draft.status == "draft"

    # A manager finds the draft and publishes it.
    log_in(page, live_server.url, "maria")
    page.goto(f"{live_server.url}/knowledge/?status=draft")
    page.get_by_role("link", name="Fix SSO logins after a certificate rotation").click()
    page.get_by_role("button", name="Publish", exact=True).click()
    expect_message(page, "Published")
    assert page.locator(".pill.good").first.inner_text() == "Published"
    page.locator("dl.fields").get_by_role("link", name=case.key).wait_for()  # linked back: "created from"
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    draft.refresh_from_db()
    case.refresh_from_db()
    assert (draft.status, draft.published_by) == ("published", manager)
    assert case.status == Status.RESOLVED
    assert set(ArticleCaseLink.objects.filter(case=case).values_list("article__slug", "relation")) == {
        (runbook.slug, "used_to_resolve"),
        (draft.slug, "created_from"),
    }
    assert CaseEvent.objects.filter(case=case, kind="article_linked").count() == 2
