"""The two local ways in: the mail server's pipe (``manage.py ingest_email``, whose exit status the
mail server acts on) and a Maildir folder polled under a lease."""

from __future__ import annotations

import datetime as dt
import io
import mailbox as stdlib_mailbox
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from cases.models import Case
from inbound import polling, services, tasks
from inbound.management.commands import ingest_email
from inbound.models import InboundMessage, InboundStatus, MailboxMode
from tests.inbound.eml import eml
from tests.inbound.helpers import T0, fresh, organisation_with_domains

MIN = dt.timedelta(minutes=1)


def _pipe(monkeypatch, raw: bytes, *args: str) -> tuple[int, str, str]:
    """Run the command as the mail server does, with ``raw`` on standard input: (exit status,
    stdout, stderr)."""
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("ingest_email", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code)
    return code, out.getvalue(), err.getvalue()


# --- the pipe command --------------------------------------------------------------------------------


def test_a_piped_mail_is_ingested_and_the_server_told_so(monkeypatch, mailbox, brightwave, travel):
    raw = fresh("gmail_reply.eml", message_id="<piped.1@mail.gmail.example>")
    code, out, _ = _pipe(monkeypatch, raw, "--mailbox", "support")
    assert code == 0
    record = InboundMessage.objects.get()
    assert (record.via, record.status, record.received_at) == ("pipe", InboundStatus.INGESTED, T0)
    assert out.strip() == f"<piped.1@mail.gmail.example> ingested on case CASE-{record.case_id}"


def test_the_mailbox_can_be_named_by_its_address(monkeypatch, mailbox, brightwave):
    code, _, _ = _pipe(monkeypatch, fresh("gmail_reply.eml"), "--mailbox", "Support@Help.Acme.Example")
    assert code == 0
    assert InboundMessage.objects.get().mailbox == mailbox


def test_a_duplicate_delivery_succeeds_without_a_second_record(monkeypatch, mailbox, brightwave):
    raw = fresh("gmail_reply.eml", message_id="<piped.2@mail.gmail.example>")
    assert _pipe(monkeypatch, raw, "--mailbox", "support")[0] == 0
    code, out, _ = _pipe(monkeypatch, raw, "--mailbox", "support")
    assert code == 0  # the server must not retry, nor bounce
    assert out.startswith("already recorded: <piped.2@mail.gmail.example> ingested")
    assert InboundMessage.objects.count() == 1
    assert Case.objects.count() == 1


def test_an_unknown_mailbox_is_no_such_user(monkeypatch, mailbox):
    code, _, err = _pipe(monkeypatch, fresh("gmail_reply.eml"), "--mailbox", "sales")
    assert code == ingest_email.EX_NOUSER == 67  # the server bounces it: nobody reads that address
    assert "No mailbox named 'sales'" in err
    assert not InboundMessage.objects.exists()


def test_a_mailbox_switched_off_makes_the_server_keep_the_mail(monkeypatch, mailbox):
    mailbox.is_active = False
    mailbox.save()
    code, _, _ = _pipe(monkeypatch, fresh("gmail_reply.eml"), "--mailbox", "support")
    assert code == ingest_email.EX_TEMPFAIL == 75
    assert not InboundMessage.objects.exists()


def test_a_mail_that_cannot_be_recorded_is_a_temporary_failure(monkeypatch, mailbox):
    def storage_down(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr("inbound.services.default_storage.save", storage_down)
    code, _, err = _pipe(monkeypatch, fresh("gmail_reply.eml"), "--mailbox", "support")
    assert code == ingest_email.EX_TEMPFAIL  # the server keeps it and tries again: nothing lost
    assert "No space left on device" in err
    assert not InboundMessage.objects.exists()


def test_a_mail_that_fails_to_process_is_recorded_so_the_server_is_done_with_it(monkeypatch, mailbox):
    code, out, _ = _pipe(monkeypatch, fresh("gmail_reply.eml"), "--mailbox", "support")
    # No organisation for brightwave.example: refused, but recorded and kept for an admin.
    assert code == 0
    assert " refused No organisation has the e-mail domain brightwave.example" in out


@pytest.mark.parametrize(("raw", "status"), [(b"", 65), (b"\r\n\r\n  \n", 65)])
def test_an_empty_message_is_a_data_error(monkeypatch, mailbox, raw, status):
    assert _pipe(monkeypatch, raw, "--mailbox", "support")[0] == status
    assert not InboundMessage.objects.exists()


def test_the_message_can_come_from_a_file(monkeypatch, mailbox, brightwave, tmp_path):
    path = tmp_path / "message.eml"
    path.write_bytes(fresh("gmail_reply.eml"))
    code, _, _ = _pipe(monkeypatch, b"", "--mailbox", "support", "--file", str(path))
    assert code == 0
    assert InboundMessage.objects.get().status == InboundStatus.INGESTED
    missing = _pipe(monkeypatch, b"", "--mailbox", "support", "--file", str(tmp_path / "nope.eml"))
    assert missing[0] == ingest_email.EX_NOINPUT == 66


def test_an_oversize_mail_is_read_to_its_end_and_refused_with_its_real_size(monkeypatch, mailbox, settings):
    settings.INBOUND_MAX_BYTES = 4000
    raw = fresh("outlook_desktop_reply.eml")
    stream = io.BytesIO(raw)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stream))
    call_command("ingest_email", "--mailbox", "support", stdout=io.StringIO())
    assert stream.tell() == len(raw)  # all of it was read: the server sees a finished delivery
    record = InboundMessage.objects.get()
    assert record.status == InboundStatus.REFUSED
    assert record.size == len(raw)
    assert f"The mail is {len(raw):,} bytes" in record.reason


# --- Maildir polling -----------------------------------------------------------------------------------


@pytest.fixture
def maildir(mailbox, tmp_path):
    mailbox.mode = MailboxMode.MAILDIR
    mailbox.maildir_path = str(tmp_path / "Maildir")
    mailbox.save()
    return stdlib_mailbox.Maildir(mailbox.maildir_path, factory=None, create=True)


def _processed(maildir) -> stdlib_mailbox.Maildir:
    return maildir.get_folder("SupportDesk.Processed")


def test_mails_in_new_are_ingested_and_moved_to_the_processed_folder(mailbox, maildir, brightwave):
    organisation_with_domains("Hafenwerft", "hafenwerft.example")
    maildir.add(fresh("gmail_reply.eml"))
    maildir.add(eml("no_message_id.eml"))
    assert len(list((Path(mailbox.maildir_path) / "new").iterdir())) == 2  # as the mail server delivers

    result = polling.poll(mailbox.pk, now=T0)

    assert (result.polled, result.fetched, result.recorded, result.error) == (True, 2, 2, "")
    assert maildir.keys() == []
    assert len(_processed(maildir)) == 2
    assert sorted(InboundMessage.objects.values_list("via", "status")) == [("maildir", "ingested")] * 2
    assert Case.objects.count() == 2
    mailbox.refresh_from_db()
    assert (mailbox.poll_lease_until, mailbox.last_polled_at, mailbox.last_poll_error) == (None, T0, "")
    # Run it twice: the second poll finds nothing and changes nothing.
    again = polling.poll(mailbox.pk, now=T0 + MIN)
    assert (again.polled, again.fetched, again.recorded) == (True, 0, 0)
    assert InboundMessage.objects.count() == 2


def test_a_mail_delivered_twice_into_the_folder_is_recorded_once(mailbox, maildir, brightwave):
    raw = fresh("gmail_reply.eml")
    maildir.add(raw)
    maildir.add(raw)
    result = polling.poll(mailbox.pk, now=T0)
    assert (result.fetched, result.recorded) == (2, 1)
    assert InboundMessage.objects.count() == 1
    assert maildir.keys() == []


def test_the_default_folder_is_under_var(mailbox, settings, tmp_path):
    mailbox.mode = MailboxMode.MAILDIR
    mailbox.maildir_path = ""
    assert polling.maildir_path(mailbox) == settings.VAR_DIR / "mailboxes" / "support"
    mailbox.maildir_path = "inboxes/support"
    assert polling.maildir_path(mailbox) == settings.VAR_DIR / "inboxes" / "support"


def test_a_poll_holding_the_lease_keeps_a_second_poll_out_until_the_lease_ends(mailbox, maildir, brightwave):
    maildir.add(fresh("gmail_reply.eml"))
    first = polling.claim(mailbox.pk, now=T0)  # a worker is polling (or died polling)
    assert first is not None

    second = polling.poll(mailbox.pk, now=T0 + MIN)
    assert (second.polled, second.fetched) == (False, 0)
    assert len(maildir) == 1
    assert not InboundMessage.objects.exists()

    after_lease = T0 + polling.lease() + dt.timedelta(seconds=1)
    third = polling.poll(mailbox.pk, now=after_lease)  # the holder is gone: the lease ran out
    assert (third.polled, third.recorded) == (True, 1)


def test_a_poll_whose_lease_ran_out_does_not_release_the_next_polls_lease(mailbox, maildir):
    slow = polling.claim(mailbox.pk, now=T0)
    took_over = polling.claim(mailbox.pk, now=T0 + polling.lease() + MIN)
    assert took_over is not None
    polling.release(slow, now=T0 + polling.lease() + 2 * MIN, error="")  # the slow poll finishes
    assert polling.claim(mailbox.pk, now=T0 + polling.lease() + 3 * MIN) is None  # still held
    polling.release(took_over, now=T0 + polling.lease() + 4 * MIN, error="")
    assert polling.claim(mailbox.pk, now=T0 + polling.lease() + 5 * MIN) is not None


def test_a_mail_that_cannot_be_recorded_stays_in_the_folder_and_does_not_hold_up_the_others(
    mailbox, maildir, brightwave, monkeypatch
):
    def receive(mailbox_, raw, **kwargs):
        if b"Dock crane" in raw:
            raise OSError("storage unavailable")
        return services.receive(mailbox_, raw, **kwargs)

    monkeypatch.setattr(polling, "receive", receive)
    stuck = maildir.add(eml("no_message_id.eml"))
    maildir.add(fresh("gmail_reply.eml"))

    result = polling.poll(mailbox.pk, now=T0)

    assert (result.polled, result.fetched, result.recorded) == (True, 2, 1)
    assert maildir.keys() == [stuck]  # kept for the next poll
    assert "1 of 2 mail(s) could not be recorded" in result.error
    assert "OSError: storage unavailable" in result.error
    mailbox.refresh_from_db()
    assert mailbox.last_poll_error == result.error
    assert mailbox.poll_lease_until is None

    monkeypatch.undo()
    assert polling.poll(mailbox.pk, now=T0 + MIN).recorded == 1  # the storage is back
    assert maildir.keys() == []


def test_only_active_polled_mailboxes_are_polled(mailbox, maildir):
    assert list(polling.pollable()) == [mailbox]
    mailbox.is_active = False
    mailbox.save()
    assert polling.poll(mailbox.pk, now=T0).polled is False
    mailbox.is_active, mailbox.mode = True, MailboxMode.PIPE
    mailbox.save()
    assert list(polling.pollable()) == []


def test_the_beat_tasks_poll_each_mailbox_and_the_lease_holds_until_the_clock_passes_it(
    mailbox, maildir, brightwave, travel
):
    maildir.add(fresh("gmail_reply.eml"))
    held = polling.claim(mailbox.pk, now=timezone.now())  # another worker is on it
    assert held is not None
    assert tasks.poll_mailbox(mailbox.pk) == {"mailbox": str(mailbox.pk), "polled": False, "fetched": 0}

    travel.shift(polling.lease() - dt.timedelta(seconds=1))
    assert tasks.poll_mailbox(mailbox.pk)["polled"] is False  # not a second early

    travel.shift(dt.timedelta(seconds=2))
    assert tasks.poll_mailbox(mailbox.pk) == {"mailbox": "support", "polled": True, "fetched": 1}
    record = InboundMessage.objects.get()
    assert record.received_at == T0 + polling.lease() + dt.timedelta(seconds=1)
    mailbox.refresh_from_db()
    assert mailbox.last_polled_at == record.received_at


def test_a_poll_stopped_by_the_task_time_limit_leaves_the_rest_in_the_folder(
    mailbox, maildir, brightwave, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    def receive(mailbox_, raw, **kwargs):
        raise SoftTimeLimitExceeded()  # the worker's soft time limit strikes during the first mail

    monkeypatch.setattr(polling, "receive", receive)
    mails = {maildir.add(eml("no_message_id.eml")), maildir.add(fresh("gmail_reply.eml"))}

    result = polling.poll(mailbox.pk, now=T0)

    # The poll stops there instead of going on past its time; both mails wait for the next poll.
    assert "SoftTimeLimitExceeded" in result.error
    assert (result.fetched, result.recorded) == (0, 0)
    assert set(maildir.keys()) == mails
    mailbox.refresh_from_db()
    assert mailbox.poll_lease_until is None
