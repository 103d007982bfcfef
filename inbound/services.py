"""One ingestion service for every way mail comes in (IMAP, Maildir, the pipe command, provider
webhooks): ``receive`` records a mail exactly once, ``process`` turns it into a case's timeline.

``receive`` writes the raw bytes to the default storage under a path fixed by the mail's key, then
inserts the ``InboundMessage`` row; the unique (mailbox, Message-ID) constraint decides between two
workers that fetched the same mail, and only the one whose insert won processes it. A poller removes
a mail from its source only after ``receive`` returned, so a crash in between fetches it again and
the constraint makes that a no-op.

``process`` runs in one transaction: the mail lands on a case (or opens one) with its attachments,
the case moves through its lifecycle, the owner is told, and the record says ``ingested``; or, when
anything fails, nothing of that is written and the record says ``failed`` with the reason, for an
admin to retry.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from email.message import EmailMessage

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from cases import services as case_services
from cases.delivery import case_owners
from cases.models import Case, CaseAttachment, CaseEvent, Contact, Organisation, OrganisationDomain
from supportdesk.core import outbox
from supportdesk.core.files import check_attachment, removed_on_error, safe_name
from supportdesk.core.services import notify

from . import parse, threads
from .models import InboundMessage, InboundStatus, Mailbox, max_bytes, raw_path

logger = logging.getLogger(__name__)

CUSTOMER_WROTE = "customer_wrote"
REASON_LIMIT = 2000
MAX_ATTACHMENTS_PER_MAIL = 20
MAX_CC_PER_MAIL = 20  # contacts a mail may add to a case (a mail to 500 people is not 500 contacts)
REFERENCES_KEPT = 20  # the thread's root and the most recent ones, as the outbox continues them
NO_SUBJECT = "(no subject)"


@dataclass(frozen=True)
class Received:
    message: InboundMessage
    created: bool  # False: the mail was already recorded (a duplicate fetch); nothing was done


def sender_limit_per_hour() -> int:
    return int(getattr(settings, "INBOUND_SENDER_LIMIT_PER_HOUR", 30))


def _head(raw: bytes, limit: int = 256 * 1024) -> bytes:
    """The header block of a mail (what is kept of one that is too big to accept)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    return raw[: end if 0 <= end < limit else limit]


def _key(raw: bytes, kept: bytes) -> tuple[str, EmailMessage]:
    headers = parse.headers_from_bytes(kept)
    return parse.key_for(raw, parse.first_message_id(headers)), headers


def recorded(mailbox: Mailbox, raw: bytes) -> InboundMessage | None:
    """The mailbox's record of this mail under its own key, if it was received already."""
    key, _ = _key(raw, _head(raw) if len(raw) > max_bytes() else raw)
    return InboundMessage.objects.filter(mailbox=mailbox, message_id=key).first()


def receive(
    mailbox: Mailbox,
    raw: bytes,
    *,
    now: dt.datetime,
    via: str,
    declared_size: int | None = None,
    refused: str = "",
    key_suffix: str = "",
) -> Received:
    """Record one received mail (once per mailbox and Message-ID) and process it.

    ``declared_size``: the mail's real size when ``raw`` is only its beginning (IMAP's RFC822.SIZE
    for a mail whose header alone was fetched; the pipe command stops keeping at the limit); it
    decides "too big" with ``raw``'s length. ``refused``: keep the mail refused with this reason,
    without processing it (a provider's mail for no known address); ``key_suffix`` then records it
    beside, not instead of, the same mail delivered to a known address.
    """
    size = max(len(raw), declared_size or 0)
    too_big = size > max_bytes()
    kept = _head(raw) if too_big else raw
    key, headers = _key(raw, kept)
    if key_suffix:
        key = key[: 255 - len(key_suffix)] + key_suffix
    existing = InboundMessage.objects.filter(mailbox=mailbox, message_id=key).first()
    if existing is not None:
        return Received(_process_if_stranded(existing, now=now, raw=raw), created=False)
    name = raw_path(mailbox.pk, parse.digest(key))
    saved = None
    if not default_storage.exists(name):
        saved = name = default_storage.save(name, ContentFile(kept))
    record = InboundMessage(
        mailbox=mailbox,
        message_id=key,
        via=via,
        raw=name,
        size=size,
        from_address=parse.sender(headers)[1],
        subject=parse.header(headers, "Subject")[:500],
        received_at=now,
    )
    if refused or too_big:
        record.status = InboundStatus.REFUSED
        record.reason = (
            refused[:REASON_LIMIT]
            if refused
            else (
                f"The mail is {size:,} bytes; this mailbox accepts at most {max_bytes():,} "
                "(only its headers were kept)."
            )
        )
        record.processed_at = now
    # The record and what the mail becomes commit together (one transaction, the processing in a
    # savepoint): a failure in processing keeps the record as failed; a process killed before the
    # commit leaves nothing, and the source (IMAP, Maildir, the mail server's pipe, the provider)
    # still has the mail, since it lets go of it only after this returned.
    with transaction.atomic():
        try:
            with transaction.atomic():
                record.save()
        except IntegrityError:  # another worker recorded it between our check and our insert
            winner = InboundMessage.objects.get(mailbox=mailbox, message_id=key)
            if saved and saved != winner.raw.name:  # both saved the file; storage renamed ours
                default_storage.delete(saved)
            return Received(winner, created=False)
        if record.status == InboundStatus.RECEIVED:
            record.mailbox = mailbox
            _attempt(record, raw, now=now)
    return Received(record, created=True)


def _process_if_stranded(record: InboundMessage, *, now: dt.datetime, raw: bytes) -> InboundMessage:
    """A mail recorded but never processed (the process died in between, so its source still had it
    and gave it again) is processed now. One being processed by another worker right now is not
    done twice: ``process`` claims the row first."""
    if record.status != InboundStatus.RECEIVED:
        return record
    return process(record, now=now, raw=raw)


def read_raw(record: InboundMessage) -> bytes:
    with default_storage.open(record.raw.name, "rb") as file:
        data: bytes = file.read()  # opened in binary mode
        return data


def process(record: InboundMessage, *, now: dt.datetime, raw: bytes | None = None) -> InboundMessage:
    """Turn a recorded mail into its case entry (or its ignored/refused outcome); a failure is kept
    on the record with its reason and rolls back everything else, the attachment files it had
    written included."""
    with transaction.atomic():
        # Locked while still to process: a second worker waits here, then finds it done.
        claimed = (
            InboundMessage.objects.select_for_update()
            .select_related("mailbox")
            .filter(pk=record.pk, status__in=[InboundStatus.RECEIVED, InboundStatus.FAILED])
            .first()
        )
        if claimed is None:
            record.refresh_from_db()
            return record
        _attempt(claimed, raw if raw is not None else read_raw(claimed), now=now)
    return claimed


def _attempt(record: InboundMessage, raw: bytes, *, now: dt.datetime) -> None:
    """One processing attempt of a locked (or just inserted) record, in a savepoint of the caller's
    transaction: on success the record says what the mail became; on failure everything the attempt
    wrote is rolled back (its attachment files deleted) and the record says failed, with the reason."""
    record.attempts += 1
    try:
        # The attachment files an attempt wrote go again when it fails (files.removed_on_error).
        with removed_on_error() as written, transaction.atomic():
            _process(record, raw, now=now, written=written)
            record.processed_at = now
            record.save()
    except Exception as error:
        logger.exception("Inbound mail %s could not be processed", record.pk)
        record.status = InboundStatus.FAILED
        record.reason = f"{type(error).__name__}: {error}"[:REASON_LIMIT]
        record.processed_at = now
        InboundMessage.objects.filter(pk=record.pk).update(
            status=record.status, reason=record.reason, processed_at=now, attempts=record.attempts
        )


def retry(record: InboundMessage, *, now: dt.datetime) -> InboundMessage:
    """An admin's retry of a failed (or never processed) mail: the same processing, again."""
    return process(record, now=now)


def _outcome(record: InboundMessage, status: str, reason: str) -> None:
    record.status = status
    record.reason = reason[:REASON_LIMIT]


def _kept_references(references: list[str]) -> list[str]:
    if len(references) <= REFERENCES_KEPT:
        return references
    return references[:1] + references[-(REFERENCES_KEPT - 1) :]


def _process(record: InboundMessage, raw: bytes, *, now: dt.datetime, written: list[str]) -> None:
    mail = parse.parse(raw)
    record.from_address = mail.from_address
    record.subject = mail.subject
    record.in_reply_to = (mail.in_reply_to or [""])[0][:255]
    record.references = " ".join(_kept_references(mail.references))
    mailbox = record.mailbox

    if mail.bounce is not None:
        failed = outbox.mark_bounced(message_ids=mail.bounce.message_ids, reason=mail.bounce.reason, now=now)
        _outcome(
            record,
            InboundStatus.IGNORED,
            f"Bounce (delivery status notification): {failed} of our mail(s) marked failed. "
            f"{mail.bounce.reason}".strip(),
        )
        return
    if not mail.from_address:
        _outcome(record, InboundStatus.REFUSED, "The mail has no sender address.")
        return
    if threads.is_own_address(mail.from_address):
        _outcome(
            record, InboundStatus.IGNORED, f"From SupportDesk's own address {mail.from_address} (a loop)."
        )
        return
    if mail.auto_reason:
        _outcome(record, InboundStatus.IGNORED, f"Sent automatically ({mail.auto_reason}); not answered.")
        return
    if threads.is_staff_address(mail.from_address):
        # Staff answer on the case page (a reply or a note, chosen on purpose); a mail from them,
        # e.g. an answer to a notification, must not become the customer's words.
        _outcome(
            record,
            InboundStatus.IGNORED,
            f"From {mail.from_address}, a SupportDesk user: staff write on the case page, not by mail.",
        )
        return
    twin = (
        InboundMessage.objects.filter(message_id=record.message_id, case_id__isnull=False)
        .exclude(pk=record.pk)
        .select_related("mailbox")
        .first()
    )
    if twin is not None:  # sent to two of our mailboxes (To: support, Cc: billing): one message
        _outcome(
            record,
            InboundStatus.IGNORED,
            f"The same mail is already on CASE-{twin.case_id} (received by mailbox {twin.mailbox.name}).",
        )
        return
    recent = (
        InboundMessage.objects.filter(
            from_address=mail.from_address, received_at__gt=now - dt.timedelta(hours=1)
        )
        .exclude(pk=record.pk)
        .exclude(status=InboundStatus.REFUSED)
        .count()
    )
    if recent >= sender_limit_per_hour():
        _outcome(
            record,
            InboundStatus.REFUSED,
            f"{mail.from_address} sent more than {sender_limit_per_hour()} mails in an hour (rate limit).",
        )
        return

    match = threads.find_case(mail, mailbox=mailbox)
    details = {
        "from": mail.from_address,
        "to": mail.to,
        "cc": mail.cc,
        "subject": mail.subject,
        "message_id": record.message_id,
        "inbound_id": record.pk,
        "html_only": mail.html_only,
    }
    if match is not None:
        case = match.case
        sender = contact_for(mail.from_address, mail.from_name, organisation=case.organisation)
        record.threaded_by = match.rule
        body = mail.visible_text
    else:
        known = known_contact(mail.from_address, mailbox=mailbox)
        organisation = known.organisation if known else organisation_for(mail.from_address, mailbox=mailbox)
        if organisation is None:
            domain = mail.from_address.rpartition("@")[2]
            _outcome(
                record,
                InboundStatus.REFUSED,
                f"No organisation has the e-mail domain {domain}, and mailbox {mailbox.name} has no "
                "default organisation.",
            )
            return
        sender = known or contact_for(mail.from_address, mail.from_name, organisation=organisation)
        case = case_services.create_case(
            title=(mail.subject or NO_SUBJECT)[:300],
            description=mail.visible_text,
            organisation=organisation,
            requester=sender,
            actor=None,
            now=now,
            severity=mailbox.default_severity,
            team=mailbox.team,
        )
        record.threaded_by = "new_case"
        body = mail.visible_text
    own = threads.own_addresses()
    cc_addresses = [
        address
        for address in mail.cc
        if address != mail.from_address and not threads.is_own_address(address, own=own)
    ]
    if len(cc_addresses) > MAX_CC_PER_MAIL:
        details["cc_not_added"] = cc_addresses[MAX_CC_PER_MAIL:]
    cc = [
        contact_for(address, mail.names.get(address, ""), organisation=case.organisation)
        for address in cc_addresses[:MAX_CC_PER_MAIL]
    ]
    stored, refused = _check_attachments(mail.attachments)
    if refused:
        details["refused_attachments"] = refused
    case, event = case_services.add_customer_message(
        case, body=body or "(empty message)", sender=sender, now=now, cc=cc, details=details
    )
    for attachment in stored:
        written.append(save_attachment(case, event, attachment, now=now).file.name)
    _notify_owners(case, event, sender=sender, now=now, record=record)
    record.case_id = case.pk
    record.event_id = event.pk
    _outcome(record, InboundStatus.INGESTED, "")


# A file of a mail to store: (name, content type, bytes).
StoredFile = tuple[str, str, bytes]


def _check_attachments(
    attachments: list[parse.Attachment],
) -> tuple[list[StoredFile], list[dict[str, str]]]:
    """(files to store, files refused with the reason). At most MAX_ATTACHMENTS_PER_MAIL are
    looked at; as many more are named as refused, the rest counted in one entry."""
    stored: list[StoredFile] = []
    refused: list[dict[str, str]] = []
    too_many = f"More than {MAX_ATTACHMENTS_PER_MAIL} files in one mail."
    for index, attachment in enumerate(attachments):
        name = safe_name(attachment.name, default=f"attachment-{index + 1}")
        if index >= 2 * MAX_ATTACHMENTS_PER_MAIL:
            refused.append({"name": f"{len(attachments) - index} more files", "reason": too_many})
            break
        if index >= MAX_ATTACHMENTS_PER_MAIL:
            refused.append({"name": name, "reason": too_many})
            continue
        file = ContentFile(attachment.data, name=name)
        try:
            checked = check_attachment(file, declared_type=attachment.content_type, size=len(attachment.data))
        except ValidationError as error:
            refused.append({"name": name, "reason": " ".join(error.messages)})
            continue
        stored.append((name, checked.content_type, attachment.data))
    return stored, refused


def save_attachment(
    case: Case, event: CaseEvent, attachment: StoredFile, *, now: dt.datetime
) -> CaseAttachment:
    name, content_type, data = attachment
    row = CaseAttachment(
        case=case, event=event, name=name, content_type=content_type, size=len(data), uploaded_at=now
    )
    row.file.save(name, ContentFile(data), save=False)
    row.save()
    return row


def _notify_owners(
    case: Case, event: CaseEvent, *, sender: Contact, now: dt.datetime, record: InboundMessage
) -> None:
    case = Case.objects.select_related("assignee", "team").get(pk=case.pk)
    title = f"{case.key}: {sender.name or sender.email} wrote"
    for person in case_owners(case):
        notify(
            recipient=person,
            kind=CUSTOMER_WROTE,
            title=title,
            body=event.body[:500],
            url=case.get_absolute_url(),
            now=now,
            dedupe_key=f"inbound:{record.pk}",
        )


def organisation_for(address: str, *, mailbox: Mailbox) -> Organisation | None:
    """The sender's organisation: the one with the address's domain (or a parent domain), else the
    mailbox's default organisation."""
    domain = address.rpartition("@")[2].lower()
    candidates = []
    parts = domain.split(".")
    for i in range(len(parts) - 1):
        candidates.append(".".join(parts[i:]))
    found = {
        d.domain: d.organisation
        for d in OrganisationDomain.objects.filter(domain__in=candidates).select_related("organisation")
    }
    for candidate in candidates:  # the most specific domain first
        if candidate in found:
            return found[candidate]
    return mailbox.default_organisation


def known_contact(address: str, *, mailbox: Mailbox) -> Contact | None:
    """The contact who already has this address (case-insensitive): a new case from them belongs to
    their organisation, whatever the domain says. With one contact per organisation for the
    address, the one of the domain's organisation, else the oldest."""
    contacts = list(
        Contact.objects.filter(email__iexact=address.strip()).select_related("organisation").order_by("pk")
    )
    if len(contacts) <= 1:
        return contacts[0] if contacts else None
    by_domain = organisation_for(address, mailbox=mailbox)
    return next((c for c in contacts if c.organisation_id == getattr(by_domain, "pk", None)), contacts[0])


def contact_for(address: str, name: str, *, organisation: Organisation) -> Contact:
    """The contact with this address (case-insensitive) in the organisation, else one elsewhere, else
    a new contact in the organisation."""
    address = address.strip().lower()
    contacts = Contact.objects.filter(email__iexact=address)
    contact = (
        contacts.filter(organisation=organisation).order_by("pk").first() or contacts.order_by("pk").first()
    )
    if contact is not None:
        return contact
    display = (name or address.partition("@")[0]).strip()[:200] or address
    try:
        with transaction.atomic():
            return Contact.objects.create(organisation=organisation, name=display, email=address)
    except IntegrityError:
        return Contact.objects.get(organisation=organisation, email__iexact=address)
