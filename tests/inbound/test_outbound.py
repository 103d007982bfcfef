"""Mail SupportDesk sends about a case that came in by mail: from the case's mailbox, answered to the
signed reply address, continuing the customer's last mail; and marked automatic when a machine wrote
it. The customer's answer to it finds its way back to the case."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes, policy

import pytest
from django.core import mail

from cases import services as case_services
from cases.models import Case
from inbound import threads
from inbound.models import Mailbox
from supportdesk.core import outbox
from supportdesk.core.models import MailKind, OutboundMessage
from tests import factories
from tests.inbound.helpers import SUPPORT, T0, fresh, receive
from tests.outbox import deliver_mail

MIN = dt.timedelta(minutes=1)


@pytest.fixture
def mailed_case(mailbox, brightwave):
    """Tomás's first mail opened this case (his Gmail mail already answers another thread)."""
    first = receive(mailbox, fresh("gmail_reply.eml", subject="Login loop after entering the one-time code"))
    return Case.objects.get(pk=first.case_id), first


def _wire(message) -> dict[str, str]:
    parsed = message_from_bytes(message.message().as_bytes(), policy=policy.default)
    return {name: str(value) for name, value in parsed.items()}


def _reply(case, agent, body, *, now):
    event = case_services.add_public_reply(case, body=body, actor=agent, now=now)
    return OutboundMessage.objects.get(event_id=event.pk)


def test_a_reply_comes_from_the_mailbox_answers_to_the_case_and_continues_the_customers_mail(
    mailed_case, agent
):
    case, first = mailed_case
    row = _reply(case, agent, "Which Safari version exactly?", now=T0 + 10 * MIN)
    reply_address = threads.reply_address(SUPPORT, case.pk)
    assert row.from_email == "Acme Support <support@help.acme.example>"
    assert row.headers["Reply-To"] == reply_address
    assert row.in_reply_to == first.message_id
    # The customer's References (our earlier mail in his thread), then his mail.
    assert row.references.split() == ["<177244530012.4821.1029384756@help.acme.example>", first.message_id]

    assert deliver_mail(now=T0 + 10 * MIN) == 1
    [sent] = mail.outbox
    headers = _wire(sent)
    assert headers["From"] == "Acme Support <support@help.acme.example>"
    assert headers["Reply-To"] == reply_address
    assert headers["In-Reply-To"] == first.message_id
    assert headers["References"] == f"<177244530012.4821.1029384756@help.acme.example> {first.message_id}"
    assert headers["Message-ID"] == row.message_id
    assert headers["Subject"] == f"[{case.key}] Login loop after entering the one-time code"
    assert "Auto-Submitted" not in headers  # a person wrote it: out-of-office replies are welcome


def test_the_customers_answer_to_our_reply_lands_on_the_case_and_the_next_reply_follows_it(
    mailbox, mailed_case, agent
):
    case, first = mailed_case
    row = _reply(case, agent, "Which Safari version exactly?", now=T0 + 10 * MIN)
    deliver_mail(now=T0 + 10 * MIN)
    headers = _wire(mail.outbox[0])

    # His client answers to Reply-To, quoting our mail: To the reply address, In-Reply-To ours.
    answer = receive(
        mailbox,
        fresh(
            "gmail_reply.eml",
            to=headers["Reply-To"],
            in_reply_to=row.message_id,
            references=f"{first.message_id} {row.message_id}",
            subject=f"Re: {headers['Subject']}",
        ),
        now=T0 + 30 * MIN,
    )
    assert (answer.case_id, answer.threaded_by) == (case.pk, "token")

    second = _reply(case, agent, "Thanks, we can reproduce it.", now=T0 + 40 * MIN)
    assert second.in_reply_to == answer.message_id
    assert second.references.split() == [first.message_id, row.message_id, answer.message_id]


def test_a_case_without_mail_is_written_from_the_mailbox_of_its_team(mailbox, tomas, agent):
    tier3 = factories.TeamFactory(name="Tier 3", slug="tier-3")
    Mailbox.objects.create(
        name="tier3", address="tier3@help.acme.example", display_name="Acme Tier 3", team=tier3, mode="pipe"
    )
    case = case_services.create_case(
        title="Set up by phone",
        organisation=tomas.organisation,
        requester=tomas,
        team=tier3,
        actor=agent,
        now=T0,
    )
    row = _reply(case, agent, "As discussed on the phone ...", now=T0)
    assert row.from_email == "Acme Tier 3 <tier3@help.acme.example>"
    assert row.headers["Reply-To"] == threads.reply_address("tier3@help.acme.example", case.pk)
    assert (row.in_reply_to, row.references) == ("", "")


def test_without_any_mailbox_replies_come_from_the_default_address_with_no_reply_address(tomas, agent):
    case = case_services.create_case(
        title="Set up by phone", organisation=tomas.organisation, requester=tomas, actor=agent, now=T0
    )
    row = _reply(case, agent, "As discussed ...", now=T0)
    assert row.from_email == "SupportDesk <noreply@help.acme.example>"
    assert "Reply-To" not in row.headers


@pytest.mark.parametrize("kind", [MailKind.SURVEY, MailKind.NOTIFICATION, MailKind.CADENCE_REMINDER])
def test_mail_a_machine_writes_says_so(mailed_case, kind):
    case, _ = mailed_case
    outbox.enqueue(
        kind=kind,
        to=["tomas.ferreira@brightwave.example"],
        subject="How did we do?",
        body="...",
        case_id=case.pk,
        now=T0,
    )
    deliver_mail(now=T0)
    headers = _wire(mail.outbox[0])
    assert headers["Auto-Submitted"] == "auto-generated"
    assert headers["X-Auto-Response-Suppress"] == "All"
    if kind == MailKind.SURVEY:  # to the customer, who may answer it: from the case's mailbox
        assert headers["From"] == "Acme Support <support@help.acme.example>"
        assert headers["Reply-To"] == threads.reply_address(SUPPORT, case.pk)
    else:  # to staff: from SupportDesk itself
        assert headers["From"] == "SupportDesk <noreply@help.acme.example>"
        assert "Reply-To" not in headers
