"""The customer's side of the conversation, end to end, on real servers: mail delivered to a real
IMAP mailbox (a private dovecot, tests/dovecot.py) is polled by real Celery workers and beat on
PostgreSQL and Redis; the agent's reply goes out through a real SMTP server (aiosmtpd).

* a customer's mail becomes a case; the agent's reply carries the threading headers and the case's
  signed reply address; the customer's answer to it lands on the same case, moves it from
  waiting_on_customer to in_progress and resumes its SLA clocks; a bounce of a later reply marks
  that reply failed and opens nothing;
* two workers and two beats polling one mailbox ingest every mail exactly once.

(SMTP down, the reply retried and delivered, the timeline going queued -> retrying -> sent:
test_outbox_smtp.py.)
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.utils import format_datetime, make_msgid
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from cases import services as case_services
from cases.models import Case, CaseEvent, EventKind, OrganisationDomain, Status
from inbound import threads
from inbound.models import InboundMessage, InboundStatus, Mailbox
from sla.models import ClockState, SlaClock, SlaPolicy, Target
from supportdesk.celery import app as celery_app
from supportdesk.core.models import MailStatus, Notification, OutboundMessage
from tests.dovecot import customer_mail

from .smtp import delivery_state
from .stack import SECRET_KEY, service_env, wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

SUPPORT = "support@help.acme.example"
FROM_SUPPORT = f"Acme Support <{SUPPORT}>"
PROCESSED = "SupportDesk.Processed"  # "SupportDesk/Processed" on dovecot's Maildir++ ("." between levels)
BEAT = ["celery", "-A", "supportdesk", "beat", "--loglevel=INFO"]


def worker_command(name: str) -> list[str]:
    # Without -Q a worker takes every product queue (mail.* tasks run on "mail").
    return ["celery", "-A", "supportdesk", "worker", "--loglevel=INFO", "--concurrency=2", "-n", f"{name}@%h"]


def _env(var_dir: Path, smtp, **extra: str) -> dict[str, str]:
    var_dir.mkdir(parents=True, exist_ok=True)
    return service_env(
        var_dir,
        **smtp.env(),
        DEFAULT_FROM_EMAIL=FROM_SUPPORT,
        DATABASE_CONN_MAX_AGE="0",
        INBOUND_POLL_SECONDS="1",  # beat hands the mailbox to a worker every second
        INBOUND_IMAP_TIMEOUT="10",
        **extra,
    )


def _workers_answering(*names: str) -> bool:
    replies = celery_app.control.ping(timeout=1.0) or []
    hosts = {host.split("@")[0] for reply in replies for host in reply}
    return set(names) <= hosts


@pytest.fixture
def acme(organisation):
    OrganisationDomain.objects.create(organisation=organisation, domain="acme.example")
    return organisation


@pytest.fixture
def mailbox(dovecot, team, acme) -> Mailbox:
    return Mailbox.objects.create(
        name="support",
        address=SUPPORT,
        display_name="Acme Support",
        team=team,
        default_severity="P2",
        **dovecot.mailbox_fields(),
    )


def _ingested(message_id: str) -> InboundMessage | None:
    return InboundMessage.objects.filter(message_id=message_id).exclude(status=InboundStatus.RECEIVED).first()


def _live_clocks(case: Case, *targets: str) -> list[SlaClock]:
    """The case's clocks of these targets that still run or are paused (not met or cancelled)."""
    live = [ClockState.RUNNING, ClockState.PAUSED]
    return list(
        SlaClock.objects.filter(case=case, target__in=targets, state__in=live).order_by("target", "run")
    )


def _dsn(*, returned: email.message.EmailMessage, recipient: str, diagnostic: str, status: str) -> bytes:
    """A delivery status notification (RFC 3464) as Postfix writes one: a report for the sender,
    the per-recipient status, and the headers of the mail that could not be delivered."""
    boundary = "4F1C2A0B3.1733164800/mx.acme.example"
    headers = returned.as_bytes(policy=email.policy.SMTP).split(b"\r\n\r\n", 1)[0].decode()
    now = format_datetime(timezone.now())
    text = f"""\
From: MAILER-DAEMON@mx.acme.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {SUPPORT}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Content-Transfer-Encoding: 8bit
Message-Id: <20261202174000.4F1C2A0B3@mx.acme.example>
Date: {now}

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.acme.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<{recipient}>: host mailstore.acme.example[10.0.0.7] said: {diagnostic}
    (in reply to RCPT TO command)

--{boundary}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.acme.example
X-Postfix-Queue-ID: 4F1C2A0B3
X-Postfix-Sender: rfc822; {SUPPORT}
Arrival-Date: {now}

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: {status}
Remote-MTA: dns; mailstore.acme.example
Diagnostic-Code: smtp; {diagnostic}

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

{headers}

--{boundary}--
"""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def test_a_customer_conversation_by_mail_through_imap_and_smtp(
    dovecot, smtp, processes, tmp_path, mailbox, acme, agent, settings
):
    settings.DEFAULT_FROM_EMAIL = FROM_SUPPORT
    settings.SECRET_KEY = SECRET_KEY  # this process signs the reply address the worker checks
    assert SlaPolicy.objects.filter(tier=acme.tier, severity="P2").exists()  # the seeded defaults
    processes.start("worker", worker_command("inbound-w1"), _env(tmp_path / "worker", smtp))
    processes.start("beat", BEAT, _env(tmp_path / "beat", smtp))
    wait_for(lambda: _workers_answering("inbound-w1"), timeout=90, what="the worker", processes=processes)
    client = Client()
    client.force_login(agent)

    # --- the customer writes to support@: the poll makes it a case -----------------------------------
    first_id = "<5f2e1c0a-export@mail.acme.example>"
    first = customer_mail(
        subject="Nightly export stops at 99 %",
        body="Hello,\n\nsince Monday the nightly export stops at 99 % and never finishes.\n\nCarla",
        message_id=first_id,
    )
    dovecot.deliver(first)
    record = wait_for(
        lambda: _ingested(first_id), timeout=60, what="the poll to ingest the mail", processes=processes
    )
    assert (record.status, record.via, record.threaded_by) == (InboundStatus.INGESTED, "imap", "new_case")
    case = Case.objects.get(pk=record.case_id)
    assert case.title == "Nightly export stops at 99 %"
    assert (case.status, case.severity, case.team_id) == (Status.NEW, "P2", mailbox.team_id)
    assert (case.organisation_id, case.requester.email) == (acme.pk, "carla@acme.example")
    message = case.events.get(kind=EventKind.CUSTOMER_MESSAGE)
    assert "never finishes" in message.body
    assert wait_for(lambda: dovecot.messages(PROCESSED), timeout=30, what="the mail in the processed folder")
    assert dovecot.messages(PROCESSED) == [first]
    assert dovecot.messages("INBOX") == []

    # --- the agent answers: the reply reaches the SMTP server, threaded -----------------------------
    now = timezone.now()
    case = case_services.transition(case, Status.TRIAGED, actor=agent, now=now, severity="P2", assignee=agent)
    case = case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=now)
    asked = case_services.add_public_reply(
        case, body="Could you restart the export service and tell us?", actor=agent, now=timezone.now()
    )
    reply = OutboundMessage.objects.get(event_id=asked.pk)
    sent = wait_for(
        lambda: smtp.inbox.by_message_id(reply.message_id),
        timeout=60,
        what="the reply at the SMTP server",
        processes=processes,
    )
    reply_address = threads.reply_address(SUPPORT, case.pk)
    assert sent["Message-ID"] == reply.message_id
    assert sent["In-Reply-To"] == first_id
    assert sent["References"].split() == [first_id]
    assert sent["Reply-To"] == reply_address
    assert sent["From"] == FROM_SUPPORT
    assert sent["To"] == "carla@acme.example"
    assert sent["Subject"] == f"[{case.key}] Nightly export stops at 99 %"
    assert sent["Auto-Submitted"] is None  # a person wrote it
    case = case_services.transition(case, Status.WAITING_ON_CUSTOMER, actor=agent, now=timezone.now())
    paused = _live_clocks(case, Target.RESOLUTION, Target.UPDATE_CADENCE)
    assert paused
    assert {c.state for c in paused} == {ClockState.PAUSED}

    # --- the customer answers the reply: same case, back in progress, clocks running again ----------
    answer_id = make_msgid(domain="mail.acme.example")
    answer = customer_mail(
        subject=f"Re: {sent['Subject']}",
        body=(
            "Restarted it, the export finished this time. Thanks!\n\n"
            f"On {sent['Date']}, Acme Support <{SUPPORT}> wrote:\n"
            "> Could you restart the export service and tell us?\n"
        ),
        message_id=answer_id,
        to=f"Acme Support <{sent['Reply-To']}>",
        in_reply_to=sent["Message-ID"],
        references=f"{sent['References']} {sent['Message-ID']}",
    )
    dovecot.deliver(answer)
    answered = wait_for(
        lambda: _ingested(answer_id), timeout=60, what="the answer to be ingested", processes=processes
    )
    assert (answered.status, answered.case_id, answered.threaded_by) == (
        InboundStatus.INGESTED,
        case.pk,
        "token",
    )
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS
    moved = case.events.filter(kind=EventKind.STATUS_CHANGED).last()
    assert (moved.old_value, moved.new_value, moved.actor_id) == (
        Status.WAITING_ON_CUSTOMER,
        Status.IN_PROGRESS,
        None,
    )
    said = case.events.filter(kind=EventKind.CUSTOMER_MESSAGE).last()
    assert "the export finished this time" in said.body
    assert "> Could you restart" not in said.body  # the quoted reply is not repeated on the timeline
    resumed = _live_clocks(case, Target.RESOLUTION, Target.UPDATE_CADENCE)
    assert [(c.target, c.run) for c in resumed] == [(c.target, c.run) for c in paused]
    for clock in resumed:
        assert clock.state == ClockState.RUNNING
        assert clock.paused_at is None
        assert clock.paused_total > dt.timedelta(0)
        assert len(clock.pauses) == 1
        assert clock.due_at > next(p for p in paused if p.pk == clock.pk).due_at  # moved by the pause
    assert Case.objects.count() == 1

    # --- a later reply bounces: it is marked failed with the reason, and nothing else happens -------
    followed = case_services.add_public_reply(
        case, body="Great. Please send us the export log of tonight.", actor=agent, now=timezone.now()
    )
    second = OutboundMessage.objects.get(event_id=followed.pk)
    bounced = wait_for(
        lambda: smtp.inbox.by_message_id(second.message_id),
        timeout=60,
        what="the second reply at the SMTP server",
        processes=processes,
    )
    assert OutboundMessage.objects.get(pk=second.pk).status == MailStatus.SENT
    dsn = _dsn(
        returned=bounced,
        recipient="carla@acme.example",
        diagnostic="552 5.2.2 <carla@acme.example>: Mailbox full",
        status="5.2.2",
    )
    dovecot.deliver(dsn)
    notice = wait_for(
        lambda: _ingested("<20261202174000.4F1C2A0B3@mx.acme.example>"),
        timeout=60,
        what="the bounce to be read",
        processes=processes,
    )
    assert notice.status == InboundStatus.IGNORED
    assert notice.case_id is None
    second.refresh_from_db()
    assert second.status == MailStatus.FAILED
    assert "552 5.2.2" in second.last_error
    assert "Mailbox full" in second.last_error
    assert OutboundMessage.objects.get(pk=reply.pk).status == MailStatus.SENT  # only the bounced one
    assert delivery_state(client, case, "export log of tonight") == "failed"
    assert delivery_state(client, case, "restart the export service") == "sent"
    assert Notification.objects.filter(recipient=agent, kind="reply_not_delivered").count() == 1
    assert Case.objects.count() == 1
    assert case.events.filter(kind=EventKind.CUSTOMER_MESSAGE).count() == 2
    assert len(dovecot.messages(PROCESSED)) == 3
    assert dovecot.messages("INBOX") == []


def _polls_run_by(processes, name: str) -> int:
    """How many mail.poll_mailbox tasks the worker ``name`` ran (from its log)."""
    log = (processes.log_dir / f"{name}.log").read_text(errors="replace")
    return sum(1 for line in log.splitlines() if "Task mail.poll_mailbox[" in line and "succeeded" in line)


@pytest.mark.parametrize(
    "lease_seconds",
    [
        pytest.param("300", id="with-the-lease"),
        # A lease of 0 lets polls of the mailbox overlap (as when a slow poll outlives its lease):
        # the unique (mailbox, Message-ID) record alone must then keep every mail to one case.
        pytest.param("0", id="polls-overlapping"),
    ],
)
def test_two_workers_and_two_beats_polling_one_mailbox_ingest_each_mail_once(
    dovecot, smtp, processes, tmp_path, mailbox, acme, lease_seconds
):
    # Small polls, so that the mail is spread over many of them.
    env = {"INBOUND_POLL_BATCH": "3", "INBOUND_POLL_LEASE_SECONDS": lease_seconds}
    workers = tmp_path / "workers"  # one var/ (and media storage) for both workers, as in production
    processes.start("worker1", worker_command("inbound-w1"), _env(workers, smtp, **env))
    processes.start("worker2", worker_command("inbound-w2"), _env(workers, smtp, **env))
    processes.start("beat1", BEAT, _env(tmp_path / "beat1", smtp, **env))
    processes.start("beat2", BEAT, _env(tmp_path / "beat2", smtp, **env))
    wait_for(
        lambda: _workers_answering("inbound-w1", "inbound-w2"),
        timeout=90,
        what="both workers",
        processes=processes,
    )
    started = timezone.now()
    wait_for(
        lambda: Mailbox.objects.filter(pk=mailbox.pk, last_polled_at__gt=started).exists(),
        timeout=60,
        what="the beats' polls to run",
        processes=processes,
    )

    count = 20
    ids = [f"<order-{n:02d}.{make_msgid(domain='shop.acme.example')[1:-1]}>" for n in range(count)]
    for n, message_id in enumerate(ids):
        raw = customer_mail(
            subject=f"Order {n:02d} was charged twice",
            body=f"Order {n:02d} appears twice on our invoice.",
            message_id=message_id,
            sender=f"Buyer {n:02d} <buyer{n:02d}@acme.example>",
        )
        dovecot.deliver(raw)
        if n == 7:  # the mail server delivers one mail twice
            dovecot.deliver(raw)
        # Beyond the beats' polls, extra ones (the beats' tasks alternate between the workers
        # in a fixed pattern; these make both workers poll while mail arrives).
        celery_app.send_task("mail.poll_mailbox", args=[mailbox.pk])

    def processed_ids() -> list[str]:
        parsed = (
            email.message_from_bytes(raw, policy=email.policy.default) for raw in dovecot.messages(PROCESSED)
        )
        return [str(mail["Message-ID"]).strip() for mail in parsed]

    wait_for(
        lambda: not dovecot.messages("INBOX") and set(processed_ids()) == set(ids),
        timeout=120,
        what="every mail to reach the processed folder",
        processes=processes,
    )
    if lease_seconds != "0":
        assert len(processed_ids()) == count + 1  # the copy delivered twice, too
    # (Overlapping polls may both move one mail: the server then keeps two copies of it.)
    done = timezone.now()
    # Let both beats poll again (more than once each): nothing more may happen.
    wait_for(
        lambda: Mailbox.objects.filter(
            pk=mailbox.pk, last_polled_at__gt=done + dt.timedelta(seconds=2)
        ).exists(),
        timeout=60,
        what="more polls after the last mail",
        processes=processes,
    )

    records = InboundMessage.objects.filter(mailbox=mailbox)
    assert sorted(records.values_list("message_id", flat=True)) == sorted(ids)
    assert set(records.values_list("status", flat=True)) == {InboundStatus.INGESTED}
    case_ids = list(records.values_list("case_id", flat=True))
    assert len(set(case_ids)) == count
    assert Case.objects.count() == count
    messages = CaseEvent.objects.filter(kind=EventKind.CUSTOMER_MESSAGE)
    assert messages.count() == count
    assert sorted(messages.values_list("case_id", flat=True)) == sorted(case_ids)
    assert Mailbox.objects.get(pk=mailbox.pk).last_poll_error == ""
    assert _polls_run_by(processes, "worker1") > 0
    assert _polls_run_by(processes, "worker2") > 0
