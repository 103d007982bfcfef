"""Which case a received mail lands on (inbound.threads, through the ingestion service): the signed
reply address, then In-Reply-To/References, then ``[CASE-n]`` from a contact of that case; anything
else opens a new case."""

from __future__ import annotations

import pytest

from cases import services as case_services
from cases.models import Case, EventKind
from inbound import threads
from supportdesk.core.models import OutboundMessage
from tests import factories
from tests.inbound.helpers import SUPPORT, T0, fresh, open_case, organisation_with_domains, receive


def _sent_reply(case, agent, body="Could you try build 2026.03.1?") -> OutboundMessage:
    event = case_services.add_public_reply(case, body=body, actor=agent, now=T0)
    return OutboundMessage.objects.get(event_id=event.pk)


def _customer_messages(case) -> int:
    return case.events.filter(kind=EventKind.CUSTOMER_MESSAGE).count()


def _untagged(name: str, **headers):
    """A reply with no threading headers of its own and a subject without a case key."""
    headers.setdefault("in_reply_to", None)
    headers.setdefault("references", None)
    headers.setdefault("subject", "Re: Login loop after entering the one-time code")
    return fresh(name, **headers)


# --- 1. the signed reply address ------------------------------------------------------------------


def test_the_signed_reply_address_threads_whoever_writes_to_it(mailbox, tomas):
    case = open_case(tomas)
    address = threads.reply_address(SUPPORT, case.pk)
    # A colleague the customer forwarded our mail to answers it: the address is the proof.
    record = receive(
        mailbox,
        _untagged(
            "gmail_reply.eml", to=f"Acme Support <{address}>", from_="Ana Costa <ana@brightwave.example>"
        ),
    )
    assert (record.status, record.case_id, record.threaded_by) == ("ingested", case.pk, "token")
    assert _customer_messages(case) == 1


@pytest.mark.parametrize("header", ["cc", "delivered_to", "x_original_to"])
def test_the_reply_address_is_found_wherever_the_mail_was_delivered(mailbox, tomas, header):
    case = open_case(tomas)
    record = receive(
        mailbox, _untagged("gmail_reply.eml", **{header: threads.reply_address(SUPPORT, case.pk)})
    )
    assert (record.case_id, record.threaded_by) == (case.pk, "token")


def test_the_reply_address_is_read_whatever_its_letter_case(mailbox, tomas):
    case = open_case(tomas)
    address = threads.reply_address(SUPPORT, case.pk).upper()
    record = receive(mailbox, _untagged("gmail_reply.eml", to=address))
    assert (record.case_id, record.threaded_by) == (case.pk, "token")


def test_a_forged_signature_does_not_thread(mailbox, tomas):
    case = open_case(tomas)
    other = open_case(tomas, title="Another case")
    forged = [
        f"support+case-{case.pk}-{'0' * 16}@help.acme.example",  # a guessed signature
        # a genuine signature, of another case
        threads.reply_address(SUPPORT, other.pk).replace(f"case-{other.pk}-", f"case-{case.pk}-"),
    ]
    for address in forged:
        record = receive(mailbox, _untagged("gmail_reply.eml", to=address))
        assert record.threaded_by == "new_case"
        assert record.case_id not in (case.pk, other.pk)
    assert _customer_messages(case) == 0


def test_a_reply_address_signed_with_the_previous_secret_key_still_threads(mailbox, tomas, settings):
    case = open_case(tomas)
    old_address = threads.reply_address(SUPPORT, case.pk)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-rotated-secret-key-for-the-test"
    assert threads.reply_address(SUPPORT, case.pk) != old_address
    record = receive(mailbox, _untagged("gmail_reply.eml", to=old_address))
    assert (record.case_id, record.threaded_by) == (case.pk, "token")

    settings.SECRET_KEY_FALLBACKS = []  # the old key retired: the address is no proof any more
    record = receive(mailbox, _untagged("gmail_reply.eml", to=old_address))
    assert record.threaded_by == "new_case"


# --- 2. In-Reply-To / References ---------------------------------------------------------------------


def test_in_reply_to_a_mail_we_sent_threads_onto_its_case(mailbox, tomas, agent):
    case = open_case(tomas)
    sent = _sent_reply(case, agent)
    raw = _untagged("outlook_desktop_reply.eml", in_reply_to=sent.message_id, references=sent.message_id)
    record = receive(mailbox, raw)
    assert (record.status, record.case_id, record.threaded_by) == ("ingested", case.pk, "headers")
    assert record.in_reply_to == sent.message_id


def test_references_alone_thread_onto_the_case_we_wrote_from(mailbox, tomas, agent):
    case = open_case(tomas)
    sent = _sent_reply(case, agent)
    raw = _untagged("gmail_reply.eml", references=f"{sent.message_id} <unknown.1@elsewhere.example>")
    record = receive(mailbox, raw)
    assert (record.case_id, record.threaded_by) == (case.pk, "headers")


def test_references_to_an_earlier_customer_mail_thread_onto_its_case(mailbox, db):
    organisation_with_domains("Lakeside Logistics", "lakeside-logistics.example")
    first = receive(mailbox, fresh("exchange_html_only.eml"))
    assert first.threaded_by == "new_case"
    # Priya adds something in answer to her own mail: no mail of ours in the thread yet.
    second = receive(
        mailbox,
        fresh(
            "exchange_html_only.eml",
            in_reply_to=first.message_id,
            references=first.message_id,
            subject="RE: Scanners in Dock 7 cannot sync since this morning",
        ),
    )
    assert (second.case_id, second.threaded_by) == (first.case_id, "headers")
    assert Case.objects.count() == 1


def test_the_direct_parent_wins_over_older_references_and_the_newest_reference_over_the_oldest(
    mailbox, tomas, agent
):
    older = open_case(tomas, title="Older case")
    newer = open_case(tomas, title="Newer case")
    old_sent, new_sent = _sent_reply(older, agent), _sent_reply(newer, agent)

    by_parent = receive(
        mailbox, _untagged("gmail_reply.eml", in_reply_to=new_sent.message_id, references=old_sent.message_id)
    )
    assert by_parent.case_id == newer.pk
    by_newest = receive(
        mailbox, _untagged("gmail_reply.eml", references=f"{old_sent.message_id} {new_sent.message_id}")
    )
    assert by_newest.case_id == newer.pk


# --- 3. [CASE-n] from a contact of the case ---------------------------------------------------------


def test_the_case_tag_threads_a_mail_from_the_requester(mailbox, tomas):
    case = open_case(tomas)
    record = receive(mailbox, _untagged("gmail_reply.eml", subject=f"Re: [{case.key}] Login loop"))
    assert (record.status, record.case_id, record.threaded_by) == ("ingested", case.pk, "subject")


def test_the_case_tag_threads_a_mail_from_a_cc_contact_in_any_letter_case(mailbox, brightwave, tomas):
    ana = factories.ContactFactory(organisation=brightwave, name="Ana Costa", email="ana@brightwave.example")
    case = open_case(ana, cc=[tomas])
    subject = f"Re: [{case.key.lower()}] Login loop"  # Outlook and friends keep it; some lower it
    record = receive(
        mailbox, _untagged("gmail_reply.eml", subject=subject, from_="TOMAS.FERREIRA@Brightwave.example")
    )
    assert (record.case_id, record.threaded_by) == (case.pk, "subject")


def test_the_same_tag_from_a_stranger_opens_a_new_case(mailbox, renee):
    mailbox.default_organisation = factories.OrganisationFactory(name="Unknown senders")
    mailbox.save()
    case = open_case(renee, title="Checkout fails with 502")
    spoofed = fresh(
        "spoofed_case_tag.eml", subject=f"Re: [{case.key}] Checkout fails with 502 - new bank details"
    )
    record = receive(mailbox, spoofed)
    assert (record.status, record.threaded_by) == ("ingested", "new_case")
    assert record.case_id != case.pk
    new = Case.objects.get(pk=record.case_id)
    assert (new.organisation.name, new.requester.email) == (
        "Unknown senders",
        "billing-dept@freemail-inbox.example",
    )
    assert _customer_messages(case) == 0  # nothing was written into the customer's case


def test_the_tag_from_a_colleague_who_is_no_contact_of_the_case_opens_a_new_case(mailbox, tomas):
    case = open_case(tomas)
    raw = _untagged(
        "gmail_reply.eml", subject=f"Re: [{case.key}] Login loop", from_="Ana <ana@brightwave.example>"
    )
    record = receive(mailbox, raw)
    assert record.threaded_by == "new_case"
    assert Case.objects.get(pk=record.case_id).organisation == tomas.organisation  # by domain


# --- the order of the rules ---------------------------------------------------------------------------


def test_the_reply_address_wins_over_the_headers_and_the_tag(mailbox, tomas, agent):
    by_token, by_headers, by_tag = (open_case(tomas, title=t) for t in ("token", "headers", "tag"))
    sent = _sent_reply(by_headers, agent)
    raw = _untagged(
        "gmail_reply.eml",
        to=threads.reply_address(SUPPORT, by_token.pk),
        in_reply_to=sent.message_id,
        subject=f"Re: [{by_tag.key}] ...",
    )
    assert receive(mailbox, raw).case_id == by_token.pk


def test_the_headers_win_over_the_tag(mailbox, tomas, agent):
    by_headers, by_tag = open_case(tomas, title="headers"), open_case(tomas, title="tag")
    sent = _sent_reply(by_headers, agent)
    raw = _untagged("gmail_reply.eml", in_reply_to=sent.message_id, subject=f"Re: [{by_tag.key}] ...")
    record = receive(mailbox, raw)
    assert (record.case_id, record.threaded_by) == (by_headers.pk, "headers")


def test_a_reply_address_of_a_case_that_does_not_exist_falls_through_to_the_next_rule(mailbox, tomas, agent):
    case = open_case(tomas)
    sent = _sent_reply(case, agent)
    raw = _untagged(
        "gmail_reply.eml", to=threads.reply_address(SUPPORT, case.pk + 1000), in_reply_to=sent.message_id
    )
    record = receive(mailbox, raw)
    assert (record.case_id, record.threaded_by) == (case.pk, "headers")
