"""The outbox: every mail is a row first, sent once by a worker, retried with backoff, never lost."""

from __future__ import annotations

import datetime as dt
import re
import smtplib
from email import message_from_bytes

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Status
from supportdesk.core import outbox, tasks
from supportdesk.core.models import MailKind, MailStatus, Notification, OutboundMessage
from tests.outbox import SwitchableBackend, deliver_mail

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _mail_settings(settings):
    settings.EMAIL_BACKEND = "tests.outbox.SwitchableBackend"
    settings.DEFAULT_FROM_EMAIL = "Acme Support <support@help.acme.example>"
    settings.MAIL_MESSAGE_ID_DOMAIN = ""
    settings.MAIL_MAX_ATTEMPTS = 8
    settings.MAIL_RETRY_BASE_SECONDS = 180
    settings.MAIL_RETRY_MAX_SECONDS = 8 * 3600
    settings.MAIL_SENDING_LEASE_SECONDS = 600
    SwitchableBackend.failure = None
    yield
    SwitchableBackend.failure = None


@pytest.fixture
def travel():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def dispatched(monkeypatch):
    """The ids handed to the broker (``mail.send_outbound.delay``), instead of a broker."""
    ids: list[int] = []
    monkeypatch.setattr(tasks.send_outbound, "delay", ids.append)
    return ids


@pytest.fixture
def case(organisation, contact, agent, travel):
    return case_services.create_case(
        title="Checkout fails with 502",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=T0,
    )


def _reply(case, agent, body="We are looking into it.", *, now=T0):
    event = case_services.add_public_reply(case, body=body, actor=agent, now=now)
    return OutboundMessage.objects.get(event_id=event.pk)


def _headers(message) -> dict[str, str]:
    return dict(message_from_bytes(message.message().as_bytes()).items())


# --- enqueue and send ----------------------------------------------------------------------------


def test_a_reply_is_written_with_its_event_and_sent_by_the_task_after_commit(
    case, agent, dispatched, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        row = _reply(case, agent)
        assert dispatched == []  # nothing leaves before the reply is committed
    assert dispatched == [row.pk]
    assert mail.outbox == []
    assert row.status == MailStatus.QUEUED

    assert tasks.send_outbound(row.pk) == MailStatus.SENT

    row.refresh_from_db()
    assert (row.status, row.attempts, row.sent_at, row.last_error) == (MailStatus.SENT, 1, T0, "")
    [message] = mail.outbox
    assert message.to == ["carla@acme.example"]
    assert message.from_email == "Acme Support <support@help.acme.example>"
    assert message.subject == f"[{case.key}] Checkout fails with 502"
    headers = _headers(message)
    assert headers["Message-ID"] == row.message_id
    assert row.message_id.endswith("@help.acme.example>")  # DEFAULT_FROM_EMAIL's domain
    assert headers["X-SupportDesk-Case"] == case.key
    assert "Auto-Submitted" not in headers  # a person wrote it
    # Running the task again (a redelivered message) sends nothing more.
    assert tasks.send_outbound(row.pk) == "skipped"
    assert len(mail.outbox) == 1


def test_a_rolled_back_reply_leaves_no_mail_behind(
    case, agent, dispatched, django_capture_on_commit_callbacks
):
    def failing_request():
        with transaction.atomic():
            _reply(case, agent)
            raise RuntimeError("the request failed after the reply")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        failing_request()
    assert dispatched == []
    assert not OutboundMessage.objects.exists()


def test_message_id_domain_setting_wins(case, agent, settings):
    settings.MAIL_MESSAGE_ID_DOMAIN = "mail.support.example"
    assert _reply(case, agent).message_id.endswith("@mail.support.example>")


def test_a_mail_the_broker_did_not_take_is_sent_by_the_minute_sweep(
    case, agent, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(tasks.send_outbound, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        row = _reply(case, agent)  # the reply itself succeeds
    row.refresh_from_db()
    assert row.status == MailStatus.QUEUED
    assert tasks.send_due() == 1
    assert tasks.send_due() == 0  # run it twice: nothing is sent twice
    assert len(mail.outbox) == 1
    row.refresh_from_db()
    assert row.status == MailStatus.SENT


def test_a_dedupe_key_writes_a_mail_once(db, travel, dispatched, django_capture_on_commit_callbacks):
    fields = {"kind": MailKind.NOTIFICATION, "to": ["a@x.example"], "subject": "s", "body": "b"}
    with django_capture_on_commit_callbacks(execute=True):
        first = outbox.enqueue(now=T0, dedupe_key="once", **fields)
        assert outbox.enqueue(now=T0, dedupe_key="once", **fields) is None
        assert outbox.enqueue_many([outbox.build(now=T0, dedupe_key="once", **fields)]) == 0
    assert list(OutboundMessage.objects.values_list("pk", flat=True)) == [first.pk]
    assert dispatched == [first.pk]


def test_a_mail_needs_a_recipient(db):
    with pytest.raises(ValueError, match="recipient"):
        outbox.build(kind=MailKind.NOTIFICATION, to=["", "  "], subject="s", body="b", now=T0)


def test_smtp_connections_time_out(settings):
    from django.core.mail import get_connection

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert get_connection().timeout == 20


# --- claims: two workers never send the same row ------------------------------------------------


def test_two_workers_claiming_one_row_send_it_once(case, agent):
    row = _reply(case, agent)
    assert outbox.claim(row.pk, now=T0) is not None
    assert outbox.claim(row.pk, now=T0) is None  # the second conditional UPDATE changed nothing
    assert outbox.send_one(outbound_id=row.pk, now=T0) == "skipped"
    assert outbox.send_due(now=T0) == 0
    assert mail.outbox == []


def test_the_task_and_the_sweep_racing_on_a_row_send_it_once(case, agent):
    row = _reply(case, agent)
    assert outbox.send_due(now=T0) == 1
    assert outbox.send_one(outbound_id=row.pk, now=T0) == "skipped"
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_threads_racing_on_one_row_send_it_once(case, agent):
    """Each thread has its own database connection; only one UPDATE can win."""
    import threading

    from django.db import connection as conn

    row = _reply(case, agent)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        try:
            results.append(outbox.send_one(outbound_id=row.pk, now=T0))
        finally:
            conn.close()

    if conn.vendor == "sqlite" and conn.is_in_memory_db():
        pytest.skip("threads cannot share SQLite's in-memory test database")
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["sent", "skipped", "skipped", "skipped"]
    assert len(mail.outbox) == 1


def test_a_claim_left_by_a_killed_worker_is_sent_after_the_lease(case, agent, travel):
    row = _reply(case, agent)
    assert outbox.claim(row.pk, now=T0) is not None  # ... and the worker dies here
    travel.shift(dt.timedelta(minutes=9))
    assert tasks.send_due() == 0  # still held
    travel.shift(dt.timedelta(minutes=2))
    assert tasks.send_due() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts) == (MailStatus.SENT, 2)
    assert len(mail.outbox) == 1


def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_next_claim(case, agent):
    row = _reply(case, agent)
    slow = outbox.claim(row.pk, now=T0)
    later = T0 + dt.timedelta(minutes=11)
    assert outbox.send_due(now=later) == 1  # the next worker sent it
    SwitchableBackend.failure = ConnectionRefusedError(111, "Connection refused")
    # The slow worker finally fails: its result is fenced off by the attempt number.
    assert outbox.deliver(slow, now=later) == MailStatus.RETRYING
    row.refresh_from_db()
    assert row.status == MailStatus.SENT


# --- failures, retries, backoff ------------------------------------------------------------------


def test_smtp_down_retries_with_backoff_then_delivers(case, agent, travel, client):
    row = _reply(case, agent)
    SwitchableBackend.failure = ConnectionRefusedError(111, "Connection refused")

    assert tasks.send_outbound(row.pk) == MailStatus.RETRYING
    row.refresh_from_db()
    assert row.status == MailStatus.RETRYING
    assert row.attempts == 1
    assert row.next_attempt_at == T0 + dt.timedelta(minutes=3)
    assert "Connection refused" in row.last_error
    assert row.sent_at is None

    travel.shift(dt.timedelta(minutes=2))
    assert tasks.send_due() == 0  # not due yet
    travel.shift(dt.timedelta(minutes=1))
    assert tasks.send_due() == 1  # second attempt, still down
    row.refresh_from_db()
    assert (row.attempts, row.next_attempt_at) == (2, T0 + dt.timedelta(minutes=3 + 9))

    SwitchableBackend.failure = None  # the server is back
    travel.shift(dt.timedelta(minutes=9))
    assert tasks.send_due() == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (MailStatus.SENT, 3, "")
    assert row.sent_at == T0 + dt.timedelta(minutes=12)
    assert len(mail.outbox) == 1
    assert not Notification.objects.filter(kind="reply_not_delivered").exists()


def test_backoff_spans_about_a_day_over_the_attempts():
    waits = [outbox.backoff(n) for n in range(1, 8)]
    assert waits[0] == dt.timedelta(minutes=3)
    assert waits == sorted(waits)
    assert dt.timedelta(hours=18) < sum(waits, dt.timedelta()) < dt.timedelta(hours=30)


def test_after_the_last_attempt_the_reply_fails_and_its_owner_is_told(case, agent, manager, travel):
    row = _reply(case, agent)
    SwitchableBackend.failure = smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    for attempt in range(1, 9):
        assert tasks.send_due() == 1, attempt
        row.refresh_from_db()
        if attempt < 8:
            assert row.status == MailStatus.RETRYING
            travel.move_to(row.next_attempt_at)
    assert (row.status, row.attempts, row.next_attempt_at) == (MailStatus.FAILED, 8, None)
    assert "Connection unexpectedly closed" in row.last_error
    travel.shift(dt.timedelta(days=2))
    assert tasks.send_due() == 0  # failed for good: nobody sends it again by itself

    [note] = Notification.objects.filter(kind="reply_not_delivered")
    assert note.recipient == agent  # the assignee, not the managers
    assert case.key in note.title
    assert "carla@acme.example" in note.title
    assert note.url == case.get_absolute_url()
    assert "Connection unexpectedly closed" in note.body


def test_a_permanent_refusal_fails_at_once_and_tells_the_team(
    organisation, contact, agent, other_agent, team, travel
):
    team.members.add(agent, other_agent)
    case = case_services.create_case(
        title="Unassigned", organisation=organisation, requester=contact, team=team, actor=agent, now=T0
    )
    row = _reply(case, agent)
    SwitchableBackend.failure = smtplib.SMTPRecipientsRefused(
        {"carla@acme.example": (550, b"5.1.1 No such user")}
    )
    assert tasks.send_outbound(row.pk) == MailStatus.FAILED
    row.refresh_from_db()
    assert row.attempts == 1
    assert "550 5.1.1 No such user" in row.last_error
    recipients = Notification.objects.filter(kind="reply_not_delivered").values_list("recipient", flat=True)
    assert sorted(recipients) == sorted([agent.pk, other_agent.pk])


def test_a_failed_reply_on_a_case_nobody_owns_tells_the_managers(
    organisation, contact, agent, manager, travel
):
    case = case_services.create_case(
        title="Nobody's", organisation=organisation, requester=contact, actor=agent, now=T0
    )
    row = _reply(case, agent)
    SwitchableBackend.failure = smtplib.SMTPDataError(554, b"Message rejected")
    assert tasks.send_outbound(row.pk) == MailStatus.FAILED
    assert list(
        Notification.objects.filter(kind="reply_not_delivered").values_list("recipient", flat=True)
    ) == [manager.pk]


def test_a_failed_notification_mail_tells_nobody(db, travel):
    row = outbox.enqueue(kind=MailKind.NOTIFICATION, to=["a@x.example"], subject="s", body="b", now=T0)
    SwitchableBackend.failure = smtplib.SMTPDataError(554, b"Message rejected")
    assert tasks.send_outbound(row.pk) == MailStatus.FAILED
    assert not Notification.objects.exists()


def test_a_backend_that_accepts_nothing_is_not_reported_as_sent(case, agent, monkeypatch):
    row = _reply(case, agent)
    monkeypatch.setattr(SwitchableBackend, "send_messages", lambda self, messages: 0)
    assert outbox.send_one(outbound_id=row.pk, now=T0) == MailStatus.RETRYING
    row.refresh_from_db()
    assert row.sent_at is None
    assert "accepted nothing" in row.last_error


# --- headers ------------------------------------------------------------------------------------


def test_a_title_with_line_breaks_cannot_break_or_inject_into_any_mail(organisation, contact, agent, travel):
    case = case_services.create_case(
        title="Export broken\r\nBcc: attacker@evil.example\x0b\t\u2028again",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=T0,
    )
    _reply(case, agent)
    case_services.transition(case, Status.RESOLVED, actor=agent, now=T0)  # the CSAT invitation
    assert deliver_mail() == 2
    assert OutboundMessage.objects.filter(status=MailStatus.SENT).count() == 2
    subjects = sorted(m.subject for m in mail.outbox)
    assert subjects == [
        f"[{case.key}] Export broken Bcc: attacker@evil.example again",
        f"[{case.key}] How did we do? Export broken Bcc: attacker@evil.example again",
    ]
    for message in mail.outbox:
        head = message.message().as_bytes().split(b"\n\n", 1)[0]
        assert b"\nBcc:" not in head
        assert message.recipients() == ["carla@acme.example"]


def test_automatic_mails_say_so_and_replies_do_not(case, agent):
    _reply(case, agent)
    case_services.transition(case, Status.RESOLVED, actor=agent, now=T0)
    outbox.enqueue(kind=MailKind.NOTIFICATION, to=["alice@support.example"], subject="n", body="b", now=T0)
    deliver_mail()
    by_kind = {
        row.kind: _headers(next(m for m in mail.outbox if _headers(m)["Message-ID"] == row.message_id))
        for row in OutboundMessage.objects.all()
    }
    assert set(by_kind) == {MailKind.REPLY, MailKind.SURVEY, MailKind.NOTIFICATION}
    assert "Auto-Submitted" not in by_kind[MailKind.REPLY]
    for kind in (MailKind.SURVEY, MailKind.NOTIFICATION):
        assert by_kind[kind]["Auto-Submitted"] == "auto-generated"
        assert by_kind[kind]["X-Auto-Response-Suppress"] == "All"


def test_replies_thread_on_the_previous_reply_of_the_case(case, agent, organisation, contact):
    first = _reply(case, agent, "one")
    second = _reply(case, agent, "two", now=T0 + dt.timedelta(minutes=1))
    third = _reply(case, agent, "three", now=T0 + dt.timedelta(minutes=2))
    other_case = case_services.create_case(
        title="Other", organisation=organisation, requester=contact, actor=agent, now=T0
    )
    unrelated = _reply(other_case, agent, "elsewhere", now=T0 + dt.timedelta(minutes=3))
    deliver_mail()

    headers = {_headers(m)["Message-ID"]: _headers(m) for m in mail.outbox}
    assert "In-Reply-To" not in headers[first.message_id]
    assert headers[second.message_id]["In-Reply-To"] == first.message_id
    assert headers[second.message_id]["References"] == first.message_id
    assert headers[third.message_id]["In-Reply-To"] == second.message_id
    assert headers[third.message_id]["References"].split() == [first.message_id, second.message_id]
    assert "In-Reply-To" not in headers[unrelated.message_id]


def test_a_registered_thread_source_comes_first(case, agent, monkeypatch):
    """How inbound mail will make a reply answer the customer's last mail."""
    customer = outbox.Thread.after("<customer-2@acme.example>", ["<customer-1@acme.example>"])
    monkeypatch.setattr(outbox, "_preferred_sources", [])
    outbox.register_thread_source(lambda case_id: customer if case_id == case.pk else None)
    _reply(case, agent, "one")
    row = _reply(case, agent, "two")
    assert row.in_reply_to == "<customer-2@acme.example>"
    assert row.references.split() == ["<customer-1@acme.example>", "<customer-2@acme.example>"]


def test_long_reference_chains_keep_the_root_and_the_latest():
    chain = [f"<m{i}@x>" for i in range(30)]
    thread = outbox.Thread.after("<m30@x>", chain)
    assert len(thread.references) == outbox.REFERENCES_LIMIT
    assert thread.references[0] == "<m0@x>"
    assert thread.references[-1] == "<m30@x>"


# --- what staff see ------------------------------------------------------------------------------


def _set_states(rows):
    sent, retrying, failed, _queued = rows
    OutboundMessage.objects.filter(pk=sent.pk).update(status=MailStatus.SENT, sent_at=T0, attempts=1)
    OutboundMessage.objects.filter(pk=retrying.pk).update(
        status=MailStatus.RETRYING,
        attempts=2,
        last_error="ConnectionRefusedError: refused",
        next_attempt_at=T0,
    )
    OutboundMessage.objects.filter(pk=failed.pk).update(
        status=MailStatus.FAILED, attempts=8, last_error="Recipients refused: 550 No such user"
    )


def test_the_case_page_shows_each_replys_delivery_state_in_one_query(
    case, agent, client, django_assert_num_queries
):
    client.force_login(agent)
    _reply(case, agent, "reply 0")
    with CaptureQueriesContext(transaction.get_connection()) as one_reply:
        client.get(case.get_absolute_url())
    _set_states([_reply(case, agent, f"reply {i}") for i in range(1, 4)] + [None])  # reply 0 stays queued
    with django_assert_num_queries(len(one_reply.captured_queries)):
        html = client.get(case.get_absolute_url()).content.decode()
    states = re.findall(r'data-delivery="([a-z]+)"', html)
    assert sorted(states) == ["failed", "queued", "retrying", "sent"]
    assert "Not delivered</strong> to carla@acme.example after 8 attempts" in html
    assert "Recipients refused: 550 No such user" in html
    assert "Retrying</strong>: attempt 2 failed" in html
    assert "Sent</strong> to carla@acme.example" in html
    assert "Queued for delivery</strong>" in html
    assert "sent to the customer" not in html


def test_the_timeline_api_gives_each_reply_its_delivery(case, agent):
    _reply(case, agent)
    case_services.add_internal_note(case, body="note", actor=agent, now=T0)
    api = APIClient()
    api.force_authenticate(agent)
    deliver_mail()
    events = api.get(f"/api/cases/{case.key}/events/").json()["results"]
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["internal_note"]["delivery"] is None
    delivery = by_kind["public_reply"]["delivery"]
    assert delivery["status"] == "sent"
    assert delivery["to"] == ["carla@acme.example"]
    assert delivery["sent_at"] is not None
    assert delivery["message_id"].startswith("<")


def test_admins_see_the_outbox_and_retry_failed_mails(case, agent, admin_user, client, dispatched, travel):
    sent = _reply(case, agent, "fine")
    failed = _reply(case, agent, "bounced")
    OutboundMessage.objects.filter(pk=sent.pk).update(status=MailStatus.SENT, sent_at=T0)
    OutboundMessage.objects.filter(pk=failed.pk).update(
        status=MailStatus.FAILED, attempts=8, last_error="550"
    )
    client.force_login(admin_user)
    changelist = reverse("admin:core_outboundmessage_changelist")
    assert client.get(changelist).status_code == 200
    page = client.get(reverse("admin:core_outboundmessage_change", args=[failed.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # read-only

    response = client.post(
        changelist, {"action": "retry_now", "_selected_action": [sent.pk, failed.pk]}, follow=True
    )
    assert response.status_code == 200
    assert "1 mail(s) queued to be sent again." in response.content.decode()
    failed.refresh_from_db()
    sent.refresh_from_db()
    assert (failed.status, failed.attempts) == (MailStatus.QUEUED, 0)
    assert sent.status == MailStatus.SENT
    assert tasks.send_outbound(failed.pk) == MailStatus.SENT
