"""A customer's mail with a screenshot arrives; the agent sees it, as the customer's, with its file,
answers with a file of their own, and watches the reply get delivered."""

from __future__ import annotations

import re
import struct
import zlib
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from cases.models import Case, CaseAttachment, OrganisationDomain
from inbound import services as inbound
from inbound.models import InboundStatus, Mailbox
from tests import factories
from tests.browser.helpers import expect_message, log_in
from tests.outbox import deliver_mail

SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
FIX_LOG = b"2025-03-03 09:14:02 INFO checkout: retry budget raised to 5\n"


def tiny_png() -> bytes:
    """A real 2x2 PNG (the content check reads its signature; browsers can show it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xd0\x30\x30" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def customer_mail(png: bytes) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Carla Customer <carla@acme.example>"
    mail["To"] = "Acme Support <support@supportdesk.example>"
    mail["Cc"] = "Dan Ops <dan@acme.example>"
    mail["Subject"] = "Checkout returns 502 since this morning"
    mail["Message-ID"] = "<checkout-502@mail.acme.example>"
    mail["Date"] = "Mon, 03 Mar 2025 09:02:00 +0100"
    mail.set_content("Hello,\n\nevery checkout fails with a 502 since 09:00. Screenshot attached.\n\nCarla\n")
    mail.add_attachment(png, maintype="image", subtype="png", filename="checkout-error.png")
    mail.add_attachment(
        b"MZ\x90\x00\x03", maintype="application", subtype="x-msdownload", filename="invoice.exe"
    )
    return mail.as_bytes()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)  # the live server runs in another thread
def test_customer_mail_with_a_file_is_answered_with_a_file_and_sent(
    live_server, page, settings, tmp_path, mailoutbox
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    factories.AgentFactory(username="alice", first_name="Alice", last_name="Agent")
    organisation = factories.OrganisationFactory(name="Acme Corp", tier="enterprise")
    OrganisationDomain.objects.create(organisation=organisation, domain="acme.example")
    team = factories.TeamFactory(name="Tier 2", slug="tier-2")
    mailbox = Mailbox.objects.create(
        name="support",
        address="support@supportdesk.example",
        display_name="Acme Support",
        team=team,
        mode="pipe",
    )
    png = tiny_png()

    received = inbound.receive(mailbox, customer_mail(png), now=timezone.now(), via="pipe")
    record = received.message
    assert record.status == InboundStatus.INGESTED, record.reason
    case = Case.objects.get(pk=record.case_id)

    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}{case.get_absolute_url()}")

    # The customer's mail: its own label and colour, who wrote and who was copied, the screenshot.
    mail_entry = page.locator("ol.timeline > li[data-kind=customer_message]")
    mail_entry.wait_for()
    assert mail_entry.locator(".ev-label").inner_text() == "Customer"
    text = mail_entry.inner_text()
    assert "Carla Customer <carla@acme.example>" in text
    assert "dan@acme.example" in text
    assert "every checkout fails with a 502" in text
    colour = mail_entry.evaluate("el => getComputedStyle(el).borderLeftColor")
    reply_colour_css = page.evaluate(
        "() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    )
    assert colour not in ("rgb(36, 86, 200)", reply_colour_css)  # not the staff reply's blue
    assert "Refused attachment" in text
    assert "invoice.exe — Files of type “application/x-msdownload” are not accepted" in text
    link = mail_entry.get_by_role("link", name="checkout-error.png")
    assert "image/png" in mail_entry.locator(".ev-files").inner_text()
    download = page.request.get(f"{live_server.url}{link.get_attribute('href')}")
    assert download.status == 200
    assert download.headers["content-disposition"] == 'attachment; filename="checkout-error.png"'
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.body() == png

    for width, name in (
        (1440, "attachments-customer-mail-1440.png"),
        (390, "attachments-customer-mail-390.png"),
    ):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(_screenshot(name)), full_page=True)
        page.locator("ol.timeline").screenshot(
            path=str(_screenshot(name.replace("-mail-", "-mail-timeline-")))
        )
    page.set_viewport_size({"width": 1440, "height": 900})

    # A file that is not accepted is a form error, and the typed text stays.
    reply_box = page.get_by_label("Public reply — e-mailed to carla@acme.example")
    reply_box.fill("We raised the retry budget; the log is attached.")
    files = page.get_by_label("Attach files — sent with the reply")
    files.set_input_files(
        [{"name": "fix.exe", "mimeType": "application/x-msdownload", "buffer": b"MZ\x90\x00"}]
    )
    page.get_by_role("button", name="Send reply to Carla Customer").click()
    expect_message(page, "The reply was not sent: fix.exe:")
    assert "are not accepted" in page.locator("#reply .field-files").inner_text()
    assert reply_box.input_value() == "We raised the retry budget; the log is attached."
    page.locator("#reply").screenshot(path=str(_screenshot("attachments-refused-1440.png")))

    # The reply, with a file.
    files.set_input_files([{"name": "fix.log", "mimeType": "text/plain", "buffer": FIX_LOG}])
    page.get_by_role("button", name="Send reply to Carla Customer").click()
    expect_message(page, "Reply with 1 file recorded and queued for delivery to carla@acme.example.")
    reply = page.locator("ol.timeline > li[data-kind=public_reply]")
    assert "Queued for delivery" in reply.inner_text()
    assert reply.get_by_role("link", name="fix.log").is_visible()

    # The mail worker sends it; the page then says so.
    assert deliver_mail() == 1
    page.reload()
    delivery = page.locator("ol.timeline > li[data-kind=public_reply] .ev-delivery")
    assert delivery.get_attribute("data-delivery") == "sent"
    assert delivery.inner_text().startswith("Sent to carla@acme.example")
    [sent] = mailoutbox
    assert sent.attachments == [("fix.log", FIX_LOG.decode(), "text/plain")]
    assert CaseAttachment.objects.filter(case=case).count() == 2

    for width, name in ((1440, "attachments-reply-sent-1440.png"), (390, "attachments-reply-sent-390.png")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(_screenshot(name)), full_page=True)
        page.locator("ol.timeline").screenshot(
            path=str(_screenshot(name.replace("-sent-", "-sent-timeline-")))
        )
    assert re.search(r"Customer\s", page.locator("ol.timeline").inner_text())


def _screenshot(name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS / name
