"""What a received mail becomes (inbound.services): a new case or a customer message on one, moving the
case's lifecycle and telling its owner; or, for auto-replies, bounces, our own mail, a flood or an
oversize mail, nothing but a kept record with the reason. Nothing received is lost."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from cases import services as case_services
from cases.models import Case, CaseAttachment, CaseEvent, Contact, EventKind, Status
from inbound import services, threads
from inbound.models import InboundMessage, InboundStatus, Mailbox, MailboxMode
from sla.models import ClockState, SlaClock, Target
from supportdesk.core import outbox
from supportdesk.core.models import MailKind, MailStatus, Notification, OutboundMessage
from supportdesk.core.roles import Role
from tests import factories
from tests.inbound.eml import eml
from tests.inbound.helpers import SUPPORT, T0, fresh, open_case, organisation_with_domains, receive
from tests.sla.factories import SlaPolicyFactory

MIN = dt.timedelta(minutes=1)
SUBJECT = "Login loop after entering the one-time code"


def _new_mail(**headers) -> bytes:
    """Tomás's Gmail mail as a first mail: no threading headers, no case key."""
    headers.setdefault("in_reply_to", None)
    headers.setdefault("references", None)
    headers.setdefault("subject", SUBJECT)
    return fresh("gmail_reply.eml", **headers)


def _tagged(case, name="gmail_reply.eml", **headers) -> bytes:
    """A reply that finds ``case`` by its tag only (the sender must be a contact of the case)."""
    headers.setdefault("in_reply_to", None)
    headers.setdefault("references", None)
    return fresh(name, subject=f"Re: [{case.key}] {case.title}", **headers)


def _customer_messages(case):
    return list(case.events.filter(kind=EventKind.CUSTOMER_MESSAGE))


# --- a new case from a mail that matches none ----------------------------------------------------


def test_an_unmatched_mail_opens_a_new_case_for_the_senders_domain(mailbox, brightwave, team):
    record = receive(mailbox, _new_mail())
    assert (record.status, record.threaded_by, record.reason) == ("ingested", "new_case", "")
    case = Case.objects.get(pk=record.case_id)
    assert (case.status, case.title, case.organisation) == (Status.NEW, SUBJECT, brightwave)
    assert (case.team, case.severity) == (team, "P2")  # from the mailbox
    assert (case.requester.name, case.requester.email) == (
        "Tomás Ferreira",
        "tomas.ferreira@brightwave.example",
    )
    assert case.requester.organisation == brightwave
    assert case.description.startswith("Hi Alice,\n\nthe new build fixed the login loop on Chrome")
    assert "we deployed build 2026.03.1" not in case.description  # the quoted history
    created = case.events.get(kind=EventKind.CREATED)
    assert (created.actor, created.created_at) == (None, T0)
    [message] = _customer_messages(case)
    assert message.pk == record.event_id


def test_the_requester_is_the_existing_contact_whatever_the_letter_case(mailbox, brightwave):
    known = factories.ContactFactory(
        organisation=brightwave, name="T. Ferreira", email="Tomas.Ferreira@Brightwave.Example"
    )
    record = receive(mailbox, _new_mail())
    assert Case.objects.get(pk=record.case_id).requester == known
    assert Contact.objects.filter(email__iexact="tomas.ferreira@brightwave.example").count() == 1


def test_a_known_contact_gets_the_case_in_their_own_organisation(mailbox):
    # A contact entered by hand at an organisation that has no e-mail domain: the mailbox's default
    # organisation must not take the case (it would even be refused: the requester is not theirs).
    own = factories.OrganisationFactory(name="Brightwave (manual)")
    known = factories.ContactFactory(organisation=own, email="tomas.ferreira@brightwave.example")
    mailbox.default_organisation = factories.OrganisationFactory(name="Unknown senders")
    mailbox.save()
    record = receive(mailbox, _new_mail())
    assert record.status == "ingested", record.reason
    case = Case.objects.get(pk=record.case_id)
    assert (case.organisation, case.requester) == (own, known)


@pytest.mark.parametrize("sender", ["tomas@brightwave.example", "tomas@eu.mail.brightwave.example"])
def test_the_organisation_is_found_by_the_domain_or_a_parent_domain(mailbox, brightwave, sender):
    record = receive(mailbox, _new_mail(from_=f"Tomás <{sender}>"))
    case = Case.objects.get(pk=record.case_id)
    assert case.organisation == brightwave
    assert case.requester.email == sender


def test_the_most_specific_domain_wins(mailbox, brightwave):
    emea = organisation_with_domains("Brightwave EMEA", "eu.brightwave.example")
    record = receive(mailbox, _new_mail(from_="Tomás <tomas@mail.eu.brightwave.example>"))
    assert Case.objects.get(pk=record.case_id).organisation == emea


def test_a_sender_of_no_known_domain_goes_to_the_mailboxs_default_organisation(mailbox):
    fallback = factories.OrganisationFactory(name="Unknown senders")
    mailbox.default_organisation = fallback
    mailbox.save()
    record = receive(mailbox, _new_mail())
    case = Case.objects.get(pk=record.case_id)
    assert (case.organisation, case.requester.organisation) == (fallback, fallback)


def test_without_domain_or_default_organisation_the_mail_is_refused_with_the_reason(mailbox):
    raw = _new_mail()
    record = receive(mailbox, raw)
    assert record.status == InboundStatus.REFUSED
    assert record.reason == (
        "No organisation has the e-mail domain brightwave.example, and mailbox support has no default "
        "organisation."
    )
    assert not Case.objects.exists()
    assert not Contact.objects.exists()
    assert services.read_raw(record) == raw  # kept, for an admin to act on


def test_a_mailbox_without_team_opens_unassigned_cases_and_a_subjectless_mail_gets_a_title(
    mailbox, brightwave
):
    mailbox.team = None
    mailbox.default_severity = "P4"
    mailbox.save()
    record = receive(mailbox, _new_mail(subject=None))
    case = Case.objects.get(pk=record.case_id)
    assert (case.team, case.severity, case.title) == (None, "P4", "(no subject)")


# --- the customer message and the lifecycle --------------------------------------------------------


def test_the_customer_message_is_public_from_nobody_on_staff_and_names_the_sender(mailbox, db):
    org = organisation_with_domains("Bergbau Sachsen", "bergbau-sachsen.example")
    record = receive(mailbox, fresh("rfc2047_headers.eml"))
    [event] = _customer_messages(Case.objects.get(pk=record.case_id))
    assert (event.is_public, event.actor, event.created_at) == (True, None, T0)
    assert event.actor_name == "Jörg Müller <joerg.mueller@bergbau-sachsen.example>"
    assert (
        event.body
        == "Guten Tag,\n\nder Export bricht bei Dateien über 2 GB ab. Bitte melden Sie sich.\n\nJörg Müller"
    )
    assert event.new_value["from"] == "joerg.mueller@bergbau-sachsen.example"
    assert event.new_value["cc"] == ["anja.braeuer@bergbau-sachsen.example"]
    assert event.new_value["message_id"] == record.message_id
    assert event.new_value["subject"] == "Fehler beim Export – Größe der Datei überschreitet 2 GB – dringend"
    anja = Contact.objects.get(email="anja.braeuer@bergbau-sachsen.example")
    assert (anja.organisation, anja.name) == (org, "Bräuer, Anja")  # the Cc's RFC 2047 name


def test_cc_addresses_are_kept_on_the_case_but_never_our_own(mailbox, tomas):
    case = open_case(tomas)
    reply_address = threads.reply_address(SUPPORT, case.pk)
    cc = f"Ana Costa <ana@brightwave.example>, Acme Support <{SUPPORT}>, {reply_address}"
    receive(mailbox, _tagged(case, cc=cc))
    assert list(case.cc.values_list("name", "email")) == [("Ana Costa", "ana@brightwave.example")]
    assert not Contact.objects.filter(email__endswith="@help.acme.example").exists()


def test_a_colleague_writing_to_the_reply_address_is_added_to_the_cc(mailbox, tomas):
    case = open_case(tomas)
    raw = fresh(
        "gmail_reply.eml",
        to=threads.reply_address(SUPPORT, case.pk),
        from_="Ana Costa <ana@brightwave.example>",
        in_reply_to=None,
        references=None,
    )
    receive(mailbox, raw)
    assert list(case.cc.values_list("email", flat=True)) == ["ana@brightwave.example"]
    assert case.cc.get().organisation == tomas.organisation


def test_the_contacts_one_mail_adds_are_bounded(mailbox, tomas):
    case = open_case(tomas)
    cc = ", ".join(f"person{i}@brightwave.example" for i in range(services.MAX_CC_PER_MAIL + 5))
    record = receive(mailbox, _tagged(case, cc=cc))
    assert case.cc.count() == services.MAX_CC_PER_MAIL
    event = CaseEvent.objects.get(pk=record.event_id)
    assert len(event.new_value["cc_not_added"]) == 5


@pytest.fixture
def business_p2_24x7(db):
    """Business P2 around the clock: first response 1 h, triage 2 h, update every 4 h, resolve in 24 h."""
    return SlaPolicyFactory(
        tier="business",
        severity="P2",
        business_time=False,
        first_response_minutes=60,
        triage_minutes=120,
        update_cadence_minutes=240,
        resolution_minutes=1440,
    )


def test_a_customer_answer_moves_waiting_on_customer_to_in_progress_and_resumes_the_clocks(
    mailbox, tomas, agent, business_p2_24x7
):
    case = open_case(tomas, severity="P2", assignee=agent, actor=agent)
    case = case_services.transition(case, "triaged", severity="P2", actor=agent, now=T0 + 5 * MIN)
    case = case_services.transition(case, "in_progress", actor=agent, now=T0 + 5 * MIN)
    case = case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + 30 * MIN)
    assert SlaClock.objects.get(case=case, target=Target.RESOLUTION).state == ClockState.PAUSED

    receive(mailbox, _tagged(case), now=T0 + 300 * MIN)

    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS
    status_change = case.events.filter(kind=EventKind.STATUS_CHANGED).last()
    assert (status_change.old_value, status_change.new_value, status_change.actor) == (
        "waiting_on_customer",
        "in_progress",
        None,
    )
    resolution = SlaClock.objects.get(case=case, target=Target.RESOLUTION)
    assert resolution.state == ClockState.RUNNING
    assert resolution.paused_total == 270 * MIN  # paused from +30 min to +5 h
    assert resolution.due_at == T0 + (24 * 60 + 270) * MIN
    cadence = SlaClock.objects.get(case=case, target=Target.UPDATE_CADENCE, run=1)
    assert (cadence.state, cadence.due_at) == (ClockState.RUNNING, T0 + (240 + 270) * MIN)


@pytest.mark.parametrize("status", ["new", "in_progress", "waiting_on_engineering"])
def test_in_any_other_open_status_the_message_is_recorded_and_the_status_stays(mailbox, tomas, agent, status):
    case = open_case(tomas, assignee=agent)
    for step in {"new": [], "in_progress": ["triaged", "in_progress"]}.get(
        status, ["triaged", "in_progress", "waiting_on_engineering"]
    ):
        case = case_services.transition(case, step, severity="P2", actor=agent, now=T0)
    receive(mailbox, _tagged(case), now=T0 + MIN)
    case.refresh_from_db()
    assert case.status == status
    assert len(_customer_messages(case)) == 1


def test_a_customer_answer_reopens_a_resolved_case(mailbox, tomas, agent):
    case = open_case(tomas, assignee=agent)
    case = case_services.transition(case, "resolved", actor=agent, now=T0 + 60 * MIN)
    record = receive(mailbox, _tagged(case), now=T0 + 120 * MIN)
    case.refresh_from_db()
    assert (case.status, case.reopen_count) == (Status.REOPENED, 1)
    reopened = case.events.get(kind=EventKind.REOPENED)
    assert (reopened.old_value, reopened.actor) == ("resolved", None)
    # The customer's mail is the reason: it comes first on the timeline.
    assert reopened.pk > record.event_id


def test_a_customer_answer_to_a_closed_case_opens_a_linked_follow_up(mailbox, tomas, agent, team):
    case = open_case(tomas, assignee=agent, team=team, severity="P1", product_area="auth", tags=["sso"])
    case = case_services.transition(case, "resolved", actor=agent, now=T0)
    assert case_services.auto_close_resolved(now=T0 + dt.timedelta(days=8), days=7) == 1

    record = receive(mailbox, _tagged(case), now=T0 + dt.timedelta(days=9))

    case.refresh_from_db()
    assert case.status == Status.CLOSED  # a closed case stays closed
    follow_up = Case.objects.get(pk=record.case_id)
    assert follow_up.pk != case.pk
    assert follow_up.follow_up_of == case
    assert (follow_up.status, follow_up.requester, follow_up.organisation) == (
        Status.NEW,
        tomas,
        case.organisation,
    )
    assert (follow_up.team, follow_up.severity, follow_up.product_area) == (team, "P1", "auth")
    assert list(follow_up.tags.values_list("name", flat=True)) == ["sso"]
    assert _customer_messages(case) == []
    assert [e.pk for e in _customer_messages(follow_up)] == [record.event_id]
    assert case.events.get(kind=EventKind.FOLLOW_UP_OPENED).new_value == follow_up.key
    assert follow_up.events.get(kind=EventKind.FOLLOW_UP_OPENED).new_value == case.key


def test_more_mail_about_a_closed_case_joins_its_follow_up_instead_of_opening_another(mailbox, tomas, agent):
    case = open_case(tomas, assignee=agent)
    case = case_services.transition(case, "resolved", actor=agent, now=T0)
    case_services.auto_close_resolved(now=T0 + dt.timedelta(days=8), days=7)

    first = receive(mailbox, _tagged(case), now=T0 + dt.timedelta(days=9))
    # "Forgot the attachment": the customer answers the old thread again, minutes later.
    second = receive(mailbox, _tagged(case), now=T0 + dt.timedelta(days=9, minutes=5))

    assert second.case_id == first.case_id != case.pk
    assert case.follow_ups.count() == 1
    assert len(_customer_messages(Case.objects.get(pk=first.case_id))) == 2

    # Once the follow-up is closed too, the next mail opens a new one.
    follow_up = Case.objects.get(pk=first.case_id)
    follow_up = case_services.transition(follow_up, "resolved", actor=agent, now=T0 + dt.timedelta(days=10))
    case_services.auto_close_resolved(now=T0 + dt.timedelta(days=18), days=7)
    third = receive(mailbox, _tagged(case), now=T0 + dt.timedelta(days=19))
    assert third.case_id not in (case.pk, follow_up.pk)
    assert case.follow_ups.count() == 2


def _told(kind="customer_wrote"):
    return sorted(n.recipient.username for n in Notification.objects.filter(kind=kind))


def test_the_assignee_is_told_about_the_customers_mail(mailbox, tomas, agent, other_agent, team):
    team.members.add(other_agent)
    case = open_case(tomas, assignee=agent, team=team)
    receive(mailbox, _tagged(case))
    assert _told() == ["alice"]
    notification = Notification.objects.get(kind="customer_wrote")
    assert notification.title == f"{case.key}: Tomás Ferreira wrote"
    assert notification.url == case.get_absolute_url()
    assert notification.body.startswith("Hi Alice,")


def test_without_assignee_the_team_is_told_and_without_team_the_managers(
    mailbox, tomas, agent, other_agent, team, manager
):
    team.members.add(agent, other_agent)
    with_team = open_case(tomas, team=team)
    receive(mailbox, _tagged(with_team))
    assert _told() == ["alice", "bob"]

    Notification.objects.all().delete()
    ownerless = open_case(tomas)
    receive(mailbox, _tagged(ownerless))
    assert _told() == ["maria"]


# --- loops and junk ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("autoreply_out_of_office.eml", "Auto-Submitted: auto-replied"),
        ("autoreply_x_autoreply.eml", "X-Autoreply"),
        ("exchange_automatic_reply.eml", "X-Auto-Response-Suppress"),
        ("precedence_bulk.eml", "Precedence: bulk"),
        ("mailing_list.eml", "Precedence: list"),
        ("read_receipt.eml", "disposition-notification"),
    ],
)
def test_machines_and_lists_create_nothing_and_are_kept_as_ignored(mailbox, agent, name, reason):
    # The out-of-office comes from the case's own requester, in reply to our mail: still nothing.
    carla = factories.ContactFactory(email="carla@acme.example")
    case = open_case(carla, assignee=agent)
    case = case_services.transition(case, "triaged", severity="P3", actor=agent, now=T0)
    case = case_services.transition(case, "in_progress", actor=agent, now=T0)
    case = case_services.transition(case, "waiting_on_customer", actor=agent, now=T0)
    sent = OutboundMessage.objects.get(
        event_id=case_services.add_public_reply(case, body="Any news?", actor=agent, now=T0).pk
    )
    events_before = CaseEvent.objects.count()
    mailbox.default_organisation = factories.OrganisationFactory(name="Unknown senders")
    mailbox.save()

    record = receive(mailbox, fresh(name, ours=sent.message_id))

    assert record.status == InboundStatus.IGNORED
    assert reason in record.reason
    assert record.case_id is None
    assert CaseEvent.objects.count() == events_before
    assert Case.objects.count() == 1
    case.refresh_from_db()
    assert case.status == Status.WAITING_ON_CUSTOMER
    assert not Notification.objects.filter(kind="customer_wrote").exists()
    assert services.read_raw(record)  # kept


@pytest.fixture
def sent_reply(tomas, agent):
    case = open_case(tomas, assignee=agent)
    event = case_services.add_public_reply(case, body="Please try build 2026.03.1", actor=agent, now=T0)
    return OutboundMessage.objects.get(event_id=event.pk)


@pytest.mark.parametrize(
    ("name", "diagnostic"),
    [
        ("bounce_postfix_dsn.eml", "carla.old@acme.example: 5.1.1 smtp; 550 5.1.1"),
        ("bounce_exchange_ndr.eml", "priya.raman.old@lakeside-logistics.example: 5.1.10"),
    ],
)
def test_a_bounce_marks_our_mail_failed_tells_the_owner_and_creates_nothing(
    mailbox, sent_reply, name, diagnostic
):
    events_before = CaseEvent.objects.count()
    record = receive(mailbox, fresh(name, ours=sent_reply.message_id), now=T0 + 2 * MIN)
    assert record.status == InboundStatus.IGNORED
    assert record.reason.startswith("Bounce (delivery status notification): 1 of our mail(s) marked failed.")
    assert diagnostic in record.reason
    sent_reply.refresh_from_db()
    assert sent_reply.status == MailStatus.FAILED
    assert sent_reply.last_error.startswith(f"Bounced: {diagnostic}")
    assert _told("reply_not_delivered") == ["alice"]
    assert CaseEvent.objects.count() == events_before
    assert Case.objects.count() == 1


def test_a_delay_warning_leaves_our_mail_alone(mailbox, sent_reply):
    record = receive(mailbox, fresh("bounce_postfix_delayed.eml", ours=sent_reply.message_id))
    assert record.status == InboundStatus.IGNORED
    sent_reply.refresh_from_db()
    assert sent_reply.status == MailStatus.QUEUED
    assert not Notification.objects.exists()


def test_a_bounce_for_a_mail_we_never_sent_changes_nothing(mailbox, sent_reply):
    record = receive(mailbox, fresh("bounce_postfix_dsn.eml"))  # the fixture's own stand-in Message-ID
    assert record.status == InboundStatus.IGNORED
    assert "0 of our mail(s) marked failed" in record.reason
    sent_reply.refresh_from_db()
    assert sent_reply.status == MailStatus.QUEUED


@pytest.mark.parametrize(
    "sender",
    [
        f"Acme Support <{SUPPORT}>",  # the mailbox itself
        "SupportDesk <noreply@help.acme.example>",  # DEFAULT_FROM_EMAIL
        "Billing <billing@help.acme.example>",  # another mailbox
        "reply-address",
    ],
)
def test_mail_from_our_own_addresses_is_ignored(mailbox, brightwave, tomas, sender):
    Mailbox.objects.create(name="billing", address="billing@help.acme.example", mode=MailboxMode.PIPE)
    case = open_case(tomas)
    if sender == "reply-address":
        sender = threads.reply_address(SUPPORT, case.pk)
    record = receive(mailbox, _tagged(case, from_=sender))
    assert record.status == InboundStatus.IGNORED
    assert "own address" in record.reason
    assert _customer_messages(case) == []
    assert Case.objects.count() == 1


def test_a_flood_from_one_sender_is_refused_and_kept_until_the_hour_has_passed(mailbox, brightwave, settings):
    settings.INBOUND_SENDER_LIMIT_PER_HOUR = 3
    accepted = [receive(mailbox, _new_mail(), now=T0 + i * 10 * MIN) for i in range(3)]
    assert [r.status for r in accepted] == ["ingested"] * 3
    raw = _new_mail()
    refused = receive(mailbox, raw, now=T0 + 30 * MIN)
    assert refused.status == InboundStatus.REFUSED
    assert (
        refused.reason == "tomas.ferreira@brightwave.example sent more than 3 mails in an hour (rate limit)."
    )
    assert refused.case_id is None
    assert services.read_raw(refused) == raw
    # Another sender is not held up by it.
    other = receive(mailbox, _new_mail(from_="Ana <ana@brightwave.example>"), now=T0 + 31 * MIN)
    assert other.status == "ingested"
    # An hour after the first mail, the sender is below the limit again.
    assert receive(mailbox, _new_mail(), now=T0 + 61 * MIN).status == "ingested"


def test_an_oversize_mail_is_refused_with_its_headers_kept(mailbox, northwind, settings):
    settings.INBOUND_MAX_BYTES = 4000
    raw = fresh("outlook_desktop_reply.eml")
    record = receive(mailbox, raw)
    assert record.status == InboundStatus.REFUSED
    assert record.reason == (
        f"The mail is {len(raw):,} bytes; this mailbox accepts at most 4,000 (only its headers were kept)."
    )
    assert (record.size, record.from_address, record.subject) == (
        len(raw),
        "renee.obrien@northwind-traders.example",
        "RE: [CASE-1042] Invoice export shows wrong totals",
    )
    kept = services.read_raw(record)
    assert kept == raw[: raw.index(b"\r\n\r\n")]
    assert b"%PDF" not in kept
    assert not Case.objects.exists()


def _files(root) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


def test_a_mail_whose_processing_fails_is_kept_rolled_back_entirely_and_retried_once_fixed(
    mailbox, northwind, manager, settings, monkeypatch
):
    def notifications_down(*args, **kwargs):
        raise RuntimeError("the notification store is unavailable")

    monkeypatch.setattr(services, "_notify_owners", notifications_down)
    record = receive(mailbox, fresh("outlook_desktop_reply.eml"))

    assert record.status == InboundStatus.FAILED
    assert record.reason == "RuntimeError: the notification store is unavailable"
    assert (record.attempts, record.case_id, record.event_id) == (1, None, None)
    # Nothing of the attempt stays: no case, contact, event or attachment row, no attachment file.
    assert not Case.objects.exists()
    assert not Contact.objects.exists()
    assert not CaseEvent.objects.exists()
    assert not CaseAttachment.objects.exists()
    assert [p.name for p in _files(settings.MEDIA_ROOT)] == [Path(record.raw.name).name]  # only the .eml

    monkeypatch.undo()
    retried = services.retry(record, now=T0 + 5 * MIN)
    assert (retried.status, retried.attempts, retried.reason) == (InboundStatus.INGESTED, 2, "")
    case = Case.objects.get(pk=retried.case_id)
    assert case.attachments.count() == 2
    assert _told() == ["maria"]  # the new case has no assignee and its team no members
    # Retrying what is already ingested does nothing.
    again = services.retry(retried, now=T0 + 6 * MIN)
    assert (again.status, again.attempts) == (InboundStatus.INGESTED, 2)
    assert Case.objects.count() == 1


def test_the_same_mail_received_twice_is_recorded_and_ingested_once(mailbox, brightwave):
    raw = _new_mail()
    first = services.receive(mailbox, raw, now=T0, via="imap")
    second = services.receive(mailbox, raw, now=T0 + MIN, via="maildir")
    assert (first.created, second.created) == (True, False)
    assert second.message.pk == first.message.pk
    assert InboundMessage.objects.count() == 1
    assert Case.objects.count() == 1
    assert CaseEvent.objects.filter(kind=EventKind.CUSTOMER_MESSAGE).count() == 1


def test_a_mail_recorded_but_never_processed_is_processed_when_it_comes_again(
    mailbox, brightwave, monkeypatch
):
    raw = _new_mail()
    # A record left unprocessed (written by a version that committed it before processing, or kept
    # by a path that does not process): recording it again processes it.
    with monkeypatch.context() as m:
        m.setattr(services, "_attempt", lambda record, raw, **kwargs: None)
        stranded = services.receive(mailbox, raw, now=T0, via="maildir").message
    assert stranded.status == InboundStatus.RECEIVED

    again = services.receive(mailbox, raw, now=T0 + MIN, via="maildir")  # still in the folder
    assert again.created is False
    assert again.message.pk == stranded.pk
    assert again.message.status == InboundStatus.INGESTED
    assert Case.objects.count() == 1


def test_a_mail_without_message_id_received_twice_is_recorded_once(mailbox, db):
    organisation_with_domains("Hafenwerft", "hafenwerft.example")
    raw = eml("no_message_id.eml")
    assert services.receive(mailbox, raw, now=T0, via="pipe").created
    assert not services.receive(mailbox, raw, now=T0, via="pipe").created
    [record] = InboundMessage.objects.all()
    assert record.message_id.startswith("<sha256-")
    assert Case.objects.count() == 1


def test_a_mail_sent_to_two_of_our_mailboxes_is_one_customer_message(mailbox, brightwave):
    billing = Mailbox.objects.create(
        name="billing", address="billing@help.acme.example", mode=MailboxMode.PIPE
    )
    raw = _new_mail(cc="billing@help.acme.example")
    first = receive(mailbox, raw)
    second = receive(billing, raw)
    assert (first.status, second.status) == ("ingested", "ignored")
    assert second.reason == f"The same mail is already on CASE-{first.case_id} (received by mailbox support)."
    assert Case.objects.count() == 1
    assert CaseEvent.objects.filter(kind=EventKind.CUSTOMER_MESSAGE).count() == 1


# --- attachments ---------------------------------------------------------------------------------------


def test_allowed_attachments_are_stored_on_the_case_with_their_checked_type(mailbox, northwind):
    raw = fresh("outlook_desktop_reply.eml")
    record = receive(mailbox, raw)
    case = Case.objects.get(pk=record.case_id)
    stored = list(case.attachments.order_by("name"))
    assert [(a.name, a.content_type, a.size, a.event_id) for a in stored] == [
        ("Invoice_2026-0117.pdf", "application/pdf", 629, record.event_id),
        ("image001.png", "image/png", 83, record.event_id),
    ]
    assert all(a.uploaded_by is None and a.uploaded_at == T0 and a.is_public for a in stored)
    with stored[0].file.open("rb") as file:
        assert file.read().startswith(b"%PDF-1.4")
    assert "refused_attachments" not in CaseEvent.objects.get(pk=record.event_id).new_value


def test_refused_attachments_are_listed_with_the_reason_and_the_mail_is_still_ingested(
    mailbox, northwind, settings
):
    settings.ATTACHMENT_MAX_BYTES = 500  # the 629-byte PDF is too big, the 83-byte screenshot is not
    raw = fresh("outlook_desktop_reply.eml").replace(
        b'Content-Type: image/png; name="image001.png"',
        b'Content-Type: application/x-msdownload; name="image001.png"',
    )
    record = receive(mailbox, raw)
    assert record.status == InboundStatus.INGESTED
    event = CaseEvent.objects.get(pk=record.event_id)
    refused = {item["name"]: item["reason"] for item in event.new_value["refused_attachments"]}
    assert refused["Invoice_2026-0117.pdf"] == "The file is 629 bytes; attachments may be at most 500 bytes."
    assert refused["image001.png"].startswith("Files of type “application/x-msdownload” are not accepted")
    assert not CaseAttachment.objects.exists()


def test_an_attachment_whose_content_is_not_its_type_is_refused(mailbox, northwind):
    raw = fresh("outlook_desktop_reply.eml").replace(
        b'Content-Type: application/pdf; name="Invoice_2026-0117.pdf"',
        b'Content-Type: image/png; name="Invoice_2026-0117.pdf"',
    )
    record = receive(mailbox, raw)
    event = CaseEvent.objects.get(pk=record.event_id)
    assert event.new_value["refused_attachments"] == [
        {"name": "Invoice_2026-0117.pdf", "reason": "The file's content is not image/png as its type claims."}
    ]
    assert list(CaseAttachment.objects.values_list("name", flat=True)) == ["image001.png"]


def test_the_files_one_mail_may_bring_are_bounded(mailbox, brightwave):
    message = EmailMessage()
    message["From"] = "Tomás Ferreira <tomas.ferreira@brightwave.example>"
    message["To"] = SUPPORT
    message["Subject"] = "All our logs"
    message["Message-ID"] = "<many-files.1@brightwave.example>"
    message.set_content("Here are the logs of every host.")
    for number in range(1, 101):
        message.add_attachment(
            f"host {number}: ok\n".encode(), maintype="text", subtype="plain", filename=f"host{number}.log"
        )
    record = receive(mailbox, message.as_bytes())
    assert record.status == InboundStatus.INGESTED
    assert CaseAttachment.objects.count() == services.MAX_ATTACHMENTS_PER_MAIL
    refused = CaseEvent.objects.get(pk=record.event_id).new_value["refused_attachments"]
    assert len(refused) == services.MAX_ATTACHMENTS_PER_MAIL + 1
    assert refused[0] == {"name": "host21.log", "reason": "More than 20 files in one mail."}
    assert refused[-1] == {"name": "60 more files", "reason": "More than 20 files in one mail."}


def test_a_staff_members_answer_to_a_notification_is_not_the_customers_words(mailbox, tomas):
    case = open_case(tomas)
    staff = factories.UserFactory(email="sofia@support.example")
    staff.groups.add(Group.objects.get(name=Role.AGENT))
    notification = outbox.enqueue(
        kind=MailKind.NOTIFICATION,
        to=[staff.email],
        subject=f"[{case.key}] assigned to you",
        body="You were assigned.",
        case_id=case.pk,
        now=timezone.now(),
    )
    raw = fresh(
        "gmail_reply.eml",
        from_=f"Sofia <{staff.email}>",
        in_reply_to=notification.message_id,
        references=notification.message_id,
    )
    record = receive(mailbox, raw)

    assert record.status == InboundStatus.IGNORED
    assert "SupportDesk user" in record.reason
    assert not case.events.filter(kind=EventKind.CUSTOMER_MESSAGE).exists()
    assert Case.objects.count() == 1
