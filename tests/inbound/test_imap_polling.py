"""Polling an IMAP mailbox, against a real IMAP server (a private dovecot per test, tests/dovecot.py):
each mail is recorded once and only then moved to the processed folder; a poll is bounded in mails,
time and bytes; a server without MOVE, TLS and STARTTLS work; the connection check says what is
wrong without ever showing the password."""

from __future__ import annotations

import logging

import pytest
from django.core.files.storage import default_storage

from cases.models import Case, EventKind, OrganisationDomain
from cases.signals import case_event_recorded
from inbound import imap, polling
from inbound.models import InboundMessage, InboundStatus, Mailbox
from inbound.services import receive
from tests.dovecot import PASSWORD, WITHOUT_MOVE, customer_mail

pytestmark = pytest.mark.django_db

PROCESSED = "SupportDesk.Processed"  # "SupportDesk/Processed" on a Maildir++ dovecot ("." between levels)


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def acme(organisation):
    OrganisationDomain.objects.create(organisation=organisation, domain="acme.example")
    return organisation


def _mailbox(server, **overrides) -> Mailbox:
    return Mailbox.objects.create(
        name="support", address="support@help.acme.example", **server.mailbox_fields(**overrides)
    )


def _mails(count: int, *, start: int = 1) -> list[bytes]:
    return [
        customer_mail(
            subject=f"Export number {n} fails",
            body=f"Export {n} stops at 99 %.\n\nCarla",
            message_id=f"<export-{n}@mail.acme.example>",
        )
        for n in range(start, start + count)
    ]


def test_a_poll_records_each_mail_once_then_moves_it_unread_to_the_processed_folder(dovecot, acme, now):
    mails = _mails(3)
    for raw in mails:
        dovecot.deliver(raw)
    mailbox = _mailbox(dovecot)

    result = polling.poll(mailbox.pk, now=now)

    assert (result.polled, result.fetched, result.recorded, result.error) == (True, 3, 3, "")
    records = InboundMessage.objects.order_by("message_id")
    assert [r.message_id for r in records] == [f"<export-{n}@mail.acme.example>" for n in (1, 2, 3)]
    assert {r.status for r in records} == {InboundStatus.INGESTED}
    assert {r.via for r in records} == {"imap"}
    assert Case.objects.filter(title__startswith="Export number").count() == 3
    assert dovecot.messages("INBOX") == []
    assert sorted(dovecot.messages(PROCESSED)) == sorted(mails)  # byte for byte
    assert all(b"\\Seen" not in flags for flags in dovecot.flags(PROCESSED))  # fetched with PEEK
    # The kept .eml is the mail as the server had it.
    with default_storage.open(records[0].raw.name, "rb") as kept:
        assert kept.read() == mails[0]

    again = polling.poll(mailbox.pk, now=now)
    assert (again.fetched, again.recorded) == (0, 0)
    assert InboundMessage.objects.count() == 3


def test_a_mail_recorded_before_a_crash_or_delivered_twice_is_recorded_once_and_still_moved(
    dovecot, acme, now
):
    first, second = _mails(2)
    mailbox = _mailbox(dovecot)
    # A poller recorded the first mail and died before moving it; the mail server then delivered
    # the second one twice.
    receive(mailbox, first, now=now, via="imap")
    for raw in (first, second, second):
        dovecot.deliver(raw)

    fetched, recorded = imap.poll_imap(mailbox, now=now, limit=50, budget_seconds=60)

    assert (fetched, recorded) == (3, 1)
    assert InboundMessage.objects.count() == 2
    assert Case.objects.filter(title__startswith="Export number").count() == 2
    events = [c.events.filter(kind=EventKind.CUSTOMER_MESSAGE).count() for c in Case.objects.all()]
    assert events == [1, 1]
    assert dovecot.messages("INBOX") == []
    assert len(dovecot.messages(PROCESSED)) == 3


def test_a_poll_takes_the_oldest_mails_up_to_its_limit_and_stops_when_its_time_is_up(dovecot, acme, now):
    for raw in _mails(5):
        dovecot.deliver(raw)
    mailbox = _mailbox(dovecot)

    assert imap.poll_imap(mailbox, now=now, limit=2, budget_seconds=60) == (2, 2)
    assert set(InboundMessage.objects.values_list("message_id", flat=True)) == {
        "<export-1@mail.acme.example>",
        "<export-2@mail.acme.example>",
    }
    assert len(dovecot.messages("INBOX")) == 3

    # No time left: nothing is fetched, nothing leaves the folder.
    assert imap.poll_imap(mailbox, now=now, limit=50, budget_seconds=0) == (0, 0)
    assert len(dovecot.messages("INBOX")) == 3

    assert imap.poll_imap(mailbox, now=now, limit=50, budget_seconds=60) == (3, 3)
    assert InboundMessage.objects.count() == 5


def test_a_mail_too_big_is_refused_without_downloading_it_and_stays_on_the_server(
    dovecot, acme, now, settings
):
    settings.INBOUND_MAX_BYTES = 20_000
    big = customer_mail(
        subject="Full server log attached",
        body="log line that repeats\n" * 5_000,  # ~110 kB
        message_id="<big-log@mail.acme.example>",
    )
    (small,) = _mails(1)
    dovecot.deliver(big)
    dovecot.deliver(small)
    mailbox = _mailbox(dovecot)

    assert imap.poll_imap(mailbox, now=now, limit=50, budget_seconds=60) == (2, 2)

    refused = InboundMessage.objects.get(message_id="<big-log@mail.acme.example>")
    assert refused.status == InboundStatus.REFUSED
    assert refused.size == len(big)
    assert f"{len(big):,} bytes" in refused.reason
    assert "20,000" in refused.reason
    assert refused.subject == "Full server log attached"
    assert refused.from_address == "carla@acme.example"
    with default_storage.open(refused.raw.name, "rb") as kept:
        head = kept.read()
    assert b"Subject: Full server log attached" in head
    assert b"log line that repeats" not in head  # only the header was fetched and kept
    assert not Case.objects.filter(title="Full server log attached").exists()
    assert InboundMessage.objects.get(message_id="<export-1@mail.acme.example>").status == "ingested"
    # The mail itself is not lost: it is in the processed folder, whole.
    assert big in dovecot.messages(PROCESSED)


def test_a_server_without_move_gets_copy_delete_and_expunge(make_dovecot, acme, now):
    server = make_dovecot(capabilities=WITHOUT_MOVE)
    mails = _mails(3)
    for raw in mails:
        server.deliver(raw)
    mailbox = _mailbox(server)

    assert imap.poll_imap(mailbox, now=now, limit=50, budget_seconds=60) == (3, 3)

    assert server.messages("INBOX") == []  # expunged, not merely flagged \Deleted
    assert sorted(server.messages(PROCESSED)) == sorted(mails)
    assert all(b"\\Deleted" not in flags for flags in server.flags(PROCESSED))


def test_mail_a_person_moves_away_while_the_poll_runs_does_not_fail_the_poll(dovecot, acme, now):
    mails = _mails(3)
    for raw in mails:
        dovecot.deliver(raw)
    mailbox = _mailbox(dovecot)
    person = dovecot.client()  # someone's mail client on the same mailbox
    person.create_folder("Elsewhere")
    person.select_folder("INBOX")
    moved = []

    def meanwhile(sender, *, event, **kwargs):
        # While the first mail of the batch is being recorded, the person moves the last one away.
        if event.kind == EventKind.CUSTOMER_MESSAGE and not moved:
            uid = max(person.search("ALL"))
            person.move([uid], "Elsewhere")
            moved.append(uid)

    case_event_recorded.connect(meanwhile)
    try:
        fetched, recorded = imap.poll_imap(mailbox, now=now, limit=50, budget_seconds=60)
    finally:
        case_event_recorded.disconnect(meanwhile)
        person.logout()

    assert moved
    assert (fetched, recorded) == (3, 3)  # the last one had been fetched before it went
    assert dovecot.messages("INBOX") == []
    assert sorted(dovecot.messages(PROCESSED)) == sorted(mails[:2])
    assert dovecot.messages("Elsewhere") == [mails[2]]
    assert InboundMessage.objects.filter(status=InboundStatus.INGESTED).count() == 3


def test_a_mail_that_cannot_be_recorded_stays_in_the_folder_unread(dovecot, acme, now, settings, tmp_path):
    (raw,) = _mails(1)
    dovecot.deliver(raw)
    mailbox = _mailbox(dovecot)
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    settings.MEDIA_ROOT = not_a_folder  # the storage cannot take the .eml

    result = polling.poll(mailbox.pk, now=now)

    assert result.polled
    assert "Error" in result.error  # the storage's exception, shown on the mailbox
    mailbox.refresh_from_db()
    assert mailbox.last_poll_error == result.error
    assert InboundMessage.objects.count() == 0
    assert dovecot.messages("INBOX") == [raw]
    assert all(b"\\Seen" not in flags for flags in dovecot.flags("INBOX"))

    settings.MEDIA_ROOT = tmp_path / "media"
    assert polling.poll(mailbox.pk, now=now).recorded == 1
    assert dovecot.messages("INBOX") == []


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_and_starttls_verify_the_server_certificate(make_dovecot, acme, now, monkeypatch, security):
    server = make_dovecot(tls=True)
    port = server.tls_port if security == "ssl" else server.port
    mailbox = _mailbox(server, imap_host="localhost", imap_port=port, imap_security=security)
    (raw,) = _mails(1)
    server.deliver(raw)

    # The certificate is nobody's: refused, and nothing was fetched.
    untrusted = imap.check_connection(mailbox)
    assert untrusted.startswith("Could not use localhost:")
    assert "certificate" in untrusted
    assert polling.poll(mailbox.pk, now=now).error

    # An operator trusts a private CA the usual OpenSSL way.
    monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))
    assert imap.check_connection(mailbox).startswith("Connected to localhost:")
    assert imap.poll_imap(mailbox, now=now, limit=50, budget_seconds=60) == (1, 1)
    assert server.messages("INBOX") == []


def test_starttls_is_never_skipped_when_the_server_does_not_offer_it(dovecot, acme):
    mailbox = _mailbox(dovecot, imap_security="starttls")

    result = imap.check_connection(mailbox)

    assert result.startswith("Could not use")
    assert "STARTTLS" in result


def test_the_connection_check_says_what_is_there_or_what_is_wrong_and_never_shows_the_password(
    dovecot, acme, now, caplog
):
    caplog.set_level(logging.DEBUG)  # imapclient logs every command at DEBUG
    for raw in _mails(2):
        dovecot.deliver(raw)
    mailbox = _mailbox(dovecot)

    ok = imap.check_connection(mailbox)
    assert ok.startswith(f"Connected to 127.0.0.1:{dovecot.port} (unencrypted)")
    assert "INBOX holds 2 mail(s), 2 unseen" in ok
    assert f"{PROCESSED} (will be created by the first poll) with MOVE" in ok
    polling.poll(mailbox.pk, now=now)
    assert f"{PROCESSED} (exists)" in imap.check_connection(mailbox)

    mailbox.imap_password = "wrong-" + PASSWORD
    wrong = imap.check_connection(mailbox)
    assert wrong.startswith("Could not use")
    assert "refused the login" in wrong
    assert "Authentication failed" in wrong

    mailbox.imap_password = PASSWORD
    mailbox.imap_folder = "Support/Incoming"
    assert "there is no folder Support.Incoming" in imap.check_connection(mailbox)

    mailbox.imap_folder = "INBOX"
    mailbox.processed_folder = "inbox"
    assert "the processed folder must not be the folder polled (INBOX)" in imap.check_connection(mailbox)

    mailbox.imap_port = _closed_port()
    assert "connection was refused" in imap.check_connection(mailbox)

    shown = ok + wrong + caplog.text
    assert PASSWORD not in shown
    assert "LOGIN" in caplog.text  # the client did log its commands, with the login redacted


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed
