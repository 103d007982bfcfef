"""An admin configures a mailbox and deals with received mail in a real browser, at a laptop's and a
phone's width: the form's errors, the mode-dependent fields, the lists, a retry and the .eml.

Screenshots go to var/screenshots/mail-*.png (looked at when the pages change).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from cases.models import OrganisationDomain
from inbound.models import InboundStatus, Mailbox
from tests import factories
from tests.browser.helpers import expect_message, log_in
from tests.inbound.mail_admin import customer_mail, stored_message

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
WIDTHS = {"desktop": (1440, 900), "phone": (390, 844)}


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"mail-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")  # noqa: T201


def _no_sideways_scrolling(page) -> None:
    """The page itself never scrolls sideways (wide tables scroll inside their own box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate(
        """() => [...document.querySelectorAll("body *")]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5)
            .map((el) => el.tagName + "." + el.className + " " + el.getBoundingClientRect().right)"""
    )
    assert overflow <= 1, f"the page is {overflow}px wider than the window: {wide}"


@pytest.fixture
def mail_data(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")
    organisation = factories.OrganisationFactory(name="Acme Corp")
    OrganisationDomain.objects.create(organisation=organisation, domain="acme.example")
    provider = Mailbox.objects.create(
        name="support", address="support@help.example", mode="provider", team=team
    )
    imap = Mailbox.objects.create(
        name="billing",
        address="billing@help.example",
        display_name="Example Billing",
        mode="imap",
        imap_host="imap.help.example",
        imap_username="billing@help.example",
        imap_password="s3cret-imap-password",
        last_polled_at=timezone.now(),
        last_poll_error="LoginError: [AUTHENTICATIONFAILED] Invalid credentials (Failure)",
        team=team,
    )
    failed = stored_message(
        provider,
        status=InboundStatus.FAILED,
        reason="OperationalError: database is locked",
        raw=customer_mail(subject="Checkout is down since 09:00"),
        subject="Checkout is down since 09:00",
    )
    stored_message(
        imap,
        status=InboundStatus.REFUSED,
        reason="No organisation has the e-mail domain gmail.com, and mailbox billing has no default "
        "organisation.",
        from_address="someone.with.a.long.address@gmail.com",
        subject="Invoice 2026-0042 looks wrong, please check the VAT line for the German entity",
    )
    stored_message(
        provider,
        status=InboundStatus.IGNORED,
        reason="Sent automatically (Auto-Submitted: auto-replied); not answered.",
        from_address="out-of-office@acme.example",
        subject="Automatic reply: Checkout is down",
    )
    return {"failed": failed, "imap": imap}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
@pytest.mark.parametrize("width", list(WIDTHS))
def test_an_admin_configures_a_mailbox_and_retries_a_failed_mail(live_server, browser, mail_data, width):
    factories.AdminFactory(username="root-admin")
    w, h = WIDTHS[width]
    context = browser.new_context(viewport={"width": w, "height": h}, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "root-admin")
        page.goto(f"{live_server.url}/inbound/mailboxes/")
        page.get_by_role("heading", name="Mailboxes").wait_for()
        assert page.get_by_role("navigation", name="Main").get_by_role("link", name="Mail").count() == 1
        assert "Invalid credentials" in page.locator("#mailboxes").inner_text()
        _shot(page, f"mailboxes-{width}")
        _no_sideways_scrolling(page)

        # A new IMAP mailbox: the IMAP fields appear with the mode; a missing host is a form error.
        page.get_by_role("link", name="New mailbox").click()
        page.locator("#id_name").fill("sales")
        page.locator("#id_address").fill("sales@help.example")
        page.get_by_label("Mode").select_option("pipe")
        assert page.get_by_label("IMAP server").is_hidden()
        assert "manage.py ingest_email --mailbox" in page.locator(".mode-help:visible").inner_text()
        page.get_by_label("Mode").select_option("provider")
        assert "/inbound/provider/postmark/inbound/" in page.locator(".mode-help:visible").inner_text()
        _no_sideways_scrolling(page)
        _shot(page, f"mailbox-form-provider-{width}")
        page.get_by_label("Mode").select_option("imap")
        page.get_by_label("IMAP server").wait_for()
        page.get_by_label("User name").fill("sales@help.example")
        page.get_by_label("IMAP password").fill("another-secret")
        page.get_by_role("button", name="Create mailbox").click()
        page.get_by_text("The mailbox was not saved").wait_for()
        assert "needs the server's host name" in page.locator(".field.has-error").first.inner_text()
        _no_sideways_scrolling(page)
        _shot(page, f"mailbox-form-errors-{width}")
        page.get_by_label("IMAP server").fill("imap.help.example")
        page.get_by_label("IMAP password").fill("another-secret")  # never sent back to the browser
        page.get_by_role("button", name="Create mailbox").click()
        expect_message(page, "Mailbox sales <sales@help.example> created.")
        assert Mailbox.objects.get(name="sales").imap_password == "another-secret"

        # Test the connection (the IMAP module may not be installed in this version: said so).
        page.locator(f"#mailbox-{mail_data['imap'].pk}").get_by_role(
            "button", name=re.compile("Test")
        ).click()
        page.locator(".messages").wait_for()

        # Received mail: the failed one, retried onto a case; the .eml downloads.
        page.get_by_role("link", name="Received mail").first.click()
        page.get_by_role("heading", name="Received mail").wait_for()
        _no_sideways_scrolling(page)
        _shot(page, f"received-{width}")
        failed = mail_data["failed"]
        row = page.locator(f"#message-{failed.pk}")
        with page.expect_download() as download:
            row.get_by_role("link", name=re.compile(r"\.eml")).click()
        assert download.value.suggested_filename == f"mail-{failed.pk}.eml"
        row.get_by_role("button", name=re.compile("Retry")).click()
        expect_message(page, "is now on CASE-")
        failed.refresh_from_db()
        assert failed.status == InboundStatus.INGESTED
        assert page.locator(f"#message-{failed.pk}").count() == 0
    finally:
        context.close()
