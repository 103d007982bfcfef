"""The outbox: every e-mail SupportDesk sends is a row first, and a delivery after.

* ``enqueue`` writes the row inside the caller's transaction (a reply and its e-mail commit together,
  or neither does) and, on commit, hands its id to the ``mail.send_outbound`` task.
* ``send_one`` (that task) and ``send_due`` (the ``mail.send_due`` beat task, every minute) send it.
  ``send_due`` picks up whatever is due: retries, and mails whose dispatch was lost (a broker outage
  at commit, a worker killed mid-task), so nothing written is ever lost.
* A worker claims a row with a conditional UPDATE (``queued``/``retrying``, or ``sending`` with an
  expired lease, and due -> ``sending``); only the process whose UPDATE changed the row sends it, so
  two workers never send the same row twice. The claim's attempt number fences the result: a worker
  whose lease ran out cannot overwrite what the next one recorded.
* A mail is ``sent`` only once the SMTP server accepted it. A failure is retried with exponential
  backoff up to ``MAIL_MAX_ATTEMPTS``; a permanent refusal (5xx for every recipient or for the
  content) or the last attempt marks it ``failed`` with the reason, and ``delivery_failed`` is sent
  so the product can tell someone (cases notifies the case owner of a failed reply).

A worker killed after the server accepted a mail but before the row says so sends it again after the
lease: delivery is at least once in that one case, with the same Message-ID, which receivers use to
drop the duplicate.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import make_msgid, parseaddr

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, transaction
from django.db.models import F
from django.dispatch import Signal

from .models import UNSENT_STATUSES, MailKind, MailStatus, OutboundMessage

logger = logging.getLogger(__name__)

# Sent (inside the transaction that records it) when a message is marked failed for good, with
# ``message`` (the OutboundMessage) and ``now``. Receivers must not raise; errors are logged.
delivery_failed = Signal()

# Everything but a person's reply is sent by the machine: RFC 3834 says so in a header, so that
# auto-responders (out-of-office, ticket systems) do not answer it and start a mail loop.
AUTOMATIC_KINDS = frozenset(MailKind) - {MailKind.REPLY}
SUBJECT_LIMIT = 400
ERROR_LIMIT = 1000
REFERENCES_LIMIT = 20

# C0 and C1 control characters (CR, LF, TAB, NUL, ...) and the Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def header_text(value: str, *, limit: int | None = None) -> str:
    """``value`` as one line that is safe in a mail header: control characters and runs of
    whitespace become one space (a title with CR/LF must never break, or inject into, a mail)."""
    text = " ".join(_CONTROL.sub(" ", str(value)).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _addresses(values: Iterable[str], *, exclude: Iterable[str] = ()) -> list[str]:
    seen = {a.lower() for a in exclude}
    result = []
    for value in values:
        address = header_text(value or "")
        if address and address.lower() not in seen:
            seen.add(address.lower())
            result.append(address)
    return result


def message_id_domain() -> str:
    configured = getattr(settings, "MAIL_MESSAGE_ID_DOMAIN", "")
    if configured:
        return configured
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    return address.rpartition("@")[2] or "supportdesk.invalid"


# --- threading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thread:
    """The threading headers of a new mail: the parent's Message-ID and the chain before it."""

    in_reply_to: str = ""
    references: tuple[str, ...] = ()

    @classmethod
    def after(cls, message_id: str, references: Sequence[str] = ()) -> Thread:
        chain = [r for r in references if r != message_id] + [message_id]
        if len(chain) > REFERENCES_LIMIT:  # keep the thread's root and the most recent ones
            chain = chain[:1] + chain[-(REFERENCES_LIMIT - 1) :]
        return cls(in_reply_to=message_id, references=tuple(chain))


# A source returns the Thread a new reply on the case should continue, or None when it knows none.
ThreadSource = Callable[[int], Thread | None]
_preferred_sources: list[ThreadSource] = []


_discarding: ContextVar[bool] = ContextVar("outbox_discarding", default=False)


@contextmanager
def discarding() -> Iterator[None]:
    """Write no mail inside the block: ``enqueue`` answers None (as for a duplicate) and
    ``enqueue_many`` 0. For the demo load, whose customers are made up and must never get mail."""
    token = _discarding.set(True)
    try:
        yield
    finally:
        _discarding.reset(token)


def register_thread_source(source: ThreadSource) -> None:
    """Let another part of the product (inbound mail: "the customer's last mail") decide first."""
    if source not in _preferred_sources:
        _preferred_sources.append(source)


def _last_outbound_reply(case_id: int) -> Thread | None:
    parent = (
        OutboundMessage.objects.filter(case_id=case_id, kind=MailKind.REPLY)
        .order_by("-created_at", "-id")
        .values_list("message_id", "references")
        .first()
    )
    if parent is None:
        return None
    message_id, references = parent
    return Thread.after(message_id, references.split())


def reply_thread(*, case_id: int) -> Thread:
    """What a new reply on a case answers: the first registered source that knows (the customer's
    last mail, once inbound mail exists), else SupportDesk's previous reply on the case, else none
    (also inside ``discarding()``, where no mail is written)."""
    if _discarding.get():
        return Thread()
    for source in (*_preferred_sources, _last_outbound_reply):
        thread = source(case_id)
        if thread is not None:
            return thread
    return Thread()


# --- the sender of a case's mails -------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    """Who a mail about a case comes from, and where the customer's answer should go (a per-case,
    signed reply address: inbound mail threads an answer to it onto the case)."""

    from_email: str
    reply_to: str = ""


SenderSource = Callable[[int], Sender | None]
_sender_sources: list[SenderSource] = []

# The kinds of mail that go to the customer, and that the customer answers.
CUSTOMER_KINDS = frozenset({MailKind.REPLY, MailKind.SURVEY})


def register_sender_source(source: SenderSource) -> None:
    """Let another part of the product (inbound mail: the case's mailbox) say who a case's mail is from."""
    if source not in _sender_sources:
        _sender_sources.append(source)


def case_sender(case_id: int) -> Sender | None:
    for source in _sender_sources:
        sender = source(case_id)
        if sender is not None:
            return sender
    return None


# --- enqueueing --------------------------------------------------------------------------------


def build(
    *,
    kind: str,
    to: Iterable[str],
    subject: str,
    body: str,
    now: dt.datetime,
    cc: Iterable[str] = (),
    html_body: str = "",
    headers: dict[str, str] | None = None,
    from_email: str | None = None,
    case_id: int | None = None,
    event_id: int | None = None,
    dedupe_key: str | None = None,
    thread: Thread | None = None,
    attachments: Sequence[dict[str, str]] = (),
) -> OutboundMessage:
    """An unsaved outbox row with safe headers and its Message-ID; ``enqueue`` or ``enqueue_many`` it.

    A mail to the customer about a case (a reply, a survey) comes from the case's sender (its
    mailbox, with the signed reply address as Reply-To) unless ``from_email`` is given.
    """
    if kind not in MailKind.values:
        raise ValueError(f"Unknown kind of mail: {kind!r}")
    to_list = _addresses(to)
    if not to_list:
        raise ValueError("A mail needs at least one recipient.")
    thread = thread or Thread()
    headers = dict(headers or {})
    if from_email is None and case_id is not None and kind in CUSTOMER_KINDS:
        sender = case_sender(case_id)
        if sender is not None:
            from_email = sender.from_email
            if sender.reply_to:
                headers.setdefault("Reply-To", sender.reply_to)
    return OutboundMessage(
        kind=kind,
        to=to_list,
        cc=_addresses(cc, exclude=to_list),
        from_email=header_text(from_email or settings.DEFAULT_FROM_EMAIL),
        subject=header_text(subject, limit=SUBJECT_LIMIT),
        body=body,
        html_body=html_body,
        headers={header_text(k): header_text(v) for k, v in headers.items() if header_text(k)},
        message_id=make_msgid(domain=message_id_domain()),
        in_reply_to=thread.in_reply_to,
        references=" ".join(thread.references),
        status=MailStatus.QUEUED,
        next_attempt_at=now,
        created_at=now,
        case_id=case_id,
        event_id=event_id,
        dedupe_key=dedupe_key,
        attachments=[dict(a) for a in attachments],
    )


def enqueue(*, now: dt.datetime, **fields) -> OutboundMessage | None:
    """Write one mail to the outbox in the caller's transaction and send it after commit.

    Takes ``build``'s arguments. With a ``dedupe_key`` the mail is written at most once: a second
    enqueue with the same key returns None and sends nothing. Inside ``discarding()`` nothing is
    written.
    """
    if _discarding.get():
        return None
    message = build(now=now, **fields)
    if message.dedupe_key is None:
        message.save()
    else:
        try:
            with transaction.atomic():
                message.save()
        except IntegrityError:
            if OutboundMessage.objects.filter(dedupe_key=message.dedupe_key).exists():
                return None
            raise
    _dispatch_on_commit([message.message_id])
    return message


def enqueue_many(messages: Sequence[OutboundMessage]) -> int:
    """Write ``build``'s rows in one INSERT (those whose dedupe key exists are skipped); send on commit."""
    if not messages or _discarding.get():
        return 0
    keys = [m.dedupe_key for m in messages if m.dedupe_key is not None]
    existing = set(
        OutboundMessage.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True)
        if keys
        else ()
    )
    new = [m for m in messages if m.dedupe_key is None or m.dedupe_key not in existing]
    # The unique key still decides between two concurrent writers; the loser's row is dropped.
    OutboundMessage.objects.bulk_create(new, ignore_conflicts=True)
    _dispatch_on_commit([m.message_id for m in new])
    return len(new)


def _dispatch_on_commit(message_ids: list[str]) -> None:
    if message_ids:
        transaction.on_commit(lambda: dispatch(message_ids))


#: How a committed mail is handed to the workers (``mail.send_outbound``'s ``delay``), set by
#: ``CoreConfig.ready``; this module does not import the tasks module that imports it.
_hand_to_worker: Callable[[int], object] | None = None


def set_dispatcher(hand_to_worker: Callable[[int], object]) -> None:
    """Say how ``dispatch`` hands one mail (its id) to the workers."""
    global _hand_to_worker
    _hand_to_worker = hand_to_worker


def dispatch(message_ids: Sequence[str]) -> int:
    """Hand committed mails to the workers; returns how many the broker took. One that it does not
    take (the broker is down, or no dispatcher is set) is still in the outbox, due: ``send_due``
    sends it."""
    if _hand_to_worker is None:
        return 0
    pks = list(OutboundMessage.objects.filter(message_id__in=message_ids).values_list("pk", flat=True))
    handed = 0
    for pk in pks:
        try:
            _hand_to_worker(pk)
        except Exception:  # the broker is unreachable: stop trying, the beat sweep takes over
            logger.warning("Could not hand %d mail(s) to the broker; mail.send_due will send them", len(pks))
            break
        handed += 1
    return handed


def retry_now(*, ids: Iterable[int], now: dt.datetime) -> int:
    """Give failed mails a fresh set of attempts, starting now; returns how many were requeued."""
    with transaction.atomic():
        rows = OutboundMessage.objects.filter(pk__in=list(ids), status=MailStatus.FAILED)
        message_ids = list(rows.values_list("message_id", flat=True))
        changed = rows.update(status=MailStatus.QUEUED, attempts=0, next_attempt_at=now)
        _dispatch_on_commit(message_ids)
    return changed


# --- sending -----------------------------------------------------------------------------------


def max_attempts() -> int:
    return max(1, int(getattr(settings, "MAIL_MAX_ATTEMPTS", 8)))


def backoff(attempts: int) -> dt.timedelta:
    """The wait after the ``attempts``-th failed attempt: base x 3^(n-1), capped."""
    base = int(getattr(settings, "MAIL_RETRY_BASE_SECONDS", 180))
    cap = int(getattr(settings, "MAIL_RETRY_MAX_SECONDS", 8 * 3600))
    return dt.timedelta(seconds=min(base * 3 ** max(attempts - 1, 0), cap))


def _lease() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "MAIL_SENDING_LEASE_SECONDS", 600)))


def due(*, now: dt.datetime):
    """Mails the sender may send at ``now``: a range scan of the partial index on unsent rows."""
    return OutboundMessage.objects.filter(status__in=UNSENT_STATUSES, next_attempt_at__lte=now)


def claim(outbound_id: int, *, now: dt.datetime) -> OutboundMessage | None:
    """Take one due mail for this process (the row is then ``sending`` until the lease ends), or None
    when it is not due or another process took it first."""
    claimed = (
        due(now=now)
        .filter(pk=outbound_id)
        .update(status=MailStatus.SENDING, attempts=F("attempts") + 1, next_attempt_at=now + _lease())
    )
    if claimed != 1:
        return None
    return OutboundMessage.objects.get(pk=outbound_id)


def email_for(message: OutboundMessage) -> EmailMultiAlternatives:
    """The mail as it goes on the wire, with its stable Message-ID and threading headers."""
    headers = dict(message.headers)
    headers["Message-ID"] = message.message_id
    if message.in_reply_to:
        headers["In-Reply-To"] = message.in_reply_to
    if message.references:
        headers["References"] = message.references
    if message.kind in AUTOMATIC_KINDS:
        headers["Auto-Submitted"] = "auto-generated"
        headers["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office replies to this
    email = EmailMultiAlternatives(
        subject=header_text(message.subject),
        body=message.body,
        from_email=message.from_email,
        to=list(message.to),
        cc=list(message.cc),
        headers=headers,
    )
    if message.html_body:
        email.attach_alternative(message.html_body, "text/html")
    for attachment in message.attachments:
        with default_storage.open(attachment["path"], "rb") as file:
            email.attach(header_text(attachment["name"]), file.read(), attachment["content_type"])
    return email


class _Connection:
    """One SMTP connection reused across a batch, opened on first use and dropped after an error."""

    def __init__(self) -> None:
        self._backend: BaseEmailBackend | None = None

    def send(self, email: EmailMultiAlternatives) -> int:
        if self._backend is None:
            backend = get_connection(fail_silently=False)
            backend.open()
            self._backend = backend
        try:
            return self._backend.send_messages([email]) or 0
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:  # a connection that is already broken; nothing to report
                logger.debug("Closing the SMTP connection failed", exc_info=True)


class NotAccepted(Exception):
    """The mail backend returned without error but did not accept the mail."""


def _is_permanent(error: Exception) -> bool:
    """Refusals that another attempt cannot change (5xx for every recipient, or for the content).
    Authentication and sender errors are configuration, fixed by an operator: those are retried."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def _describe(error: Exception) -> str:
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        parts = [
            f"{address}: {code} {reply.decode(errors='replace') if isinstance(reply, bytes) else reply}"
            for address, (code, reply) in error.recipients.items()
        ]
        text = "Recipients refused: " + "; ".join(parts)
    elif isinstance(error, smtplib.SMTPResponseException):
        reply = error.smtp_error
        reply = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
        text = f"{type(error).__name__}: {error.smtp_code} {reply}"
    elif isinstance(error, TimeoutError):
        text = f"Timed out after {settings.EMAIL_TIMEOUT:g} s"
    else:
        text = f"{type(error).__name__}: {error}"
    return header_text(text, limit=ERROR_LIMIT)


def _deliver(message: OutboundMessage, *, now: dt.datetime, connection: _Connection) -> str:
    try:
        if connection.send(email_for(message)) != 1:
            raise NotAccepted("The mail server accepted nothing.")
    except Exception as error:
        return _record_failure(message, error, now=now)
    _claimed_row(message).update(status=MailStatus.SENT, sent_at=now, next_attempt_at=None, last_error="")
    return MailStatus.SENT


def _claimed_row(message: OutboundMessage):
    """The row as long as this process's claim holds (same attempt, still ``sending``)."""
    return OutboundMessage.objects.filter(pk=message.pk, status=MailStatus.SENDING, attempts=message.attempts)


def _record_failure(message: OutboundMessage, error: Exception, *, now: dt.datetime) -> str:
    reason = _describe(error)
    if not _is_permanent(error) and message.attempts < max_attempts():
        retry_at = now + backoff(message.attempts)
        _claimed_row(message).update(status=MailStatus.RETRYING, last_error=reason, next_attempt_at=retry_at)
        logger.info(
            "Mail %s attempt %d failed, retrying at %s: %s", message.pk, message.attempts, retry_at, reason
        )
        return MailStatus.RETRYING
    with transaction.atomic():
        if _claimed_row(message).update(status=MailStatus.FAILED, last_error=reason, next_attempt_at=None):
            message.status, message.last_error, message.next_attempt_at = MailStatus.FAILED, reason, None
            for receiver, result in delivery_failed.send_robust(
                sender=OutboundMessage, message=message, now=now
            ):
                if isinstance(result, Exception):
                    logger.error("A delivery_failed receiver (%s) raised: %r", receiver, result)
    logger.warning("Mail %s failed for good after %d attempt(s): %s", message.pk, message.attempts, reason)
    return MailStatus.FAILED


def mark_bounced(*, message_ids: Iterable[str], reason: str, now: dt.datetime) -> int:
    """A bounce (a delivery status notification) came back for these sent mails: they are failed,
    with the bounce's reason, and ``delivery_failed`` tells the product. Returns how many changed."""
    reason = header_text(f"Bounced: {reason}" if reason else "Bounced", limit=ERROR_LIMIT)
    changed = 0
    with transaction.atomic():
        for message in OutboundMessage.objects.select_for_update().filter(
            message_id__in=list(message_ids), status__in=[*UNSENT_STATUSES, MailStatus.SENT]
        ):
            message.status, message.last_error, message.next_attempt_at = MailStatus.FAILED, reason, None
            message.save(update_fields=["status", "last_error", "next_attempt_at"])
            changed += 1
            for receiver, result in delivery_failed.send_robust(
                sender=OutboundMessage, message=message, now=now
            ):
                if isinstance(result, Exception):
                    logger.error("A delivery_failed receiver (%s) raised: %r", receiver, result)
    return changed


def send_one(*, outbound_id: int, now: dt.datetime) -> str:
    """Send one mail if it is due and nobody else holds it; returns the outcome (``skipped`` when
    there was nothing for this process to do). Safe to run twice and on two workers at once."""
    message = claim(outbound_id, now=now)
    if message is None:
        return "skipped"
    return deliver(message, now=now)


def deliver(message: OutboundMessage, *, now: dt.datetime) -> str:
    """Send a mail this process claimed (``claim``) over a connection of its own; returns the outcome.
    The result is written only while the claim holds: a worker whose lease ran out changes nothing."""
    connection = _Connection()
    try:
        return _deliver(message, now=now, connection=connection)
    finally:
        connection.close()


def send_due(*, now: dt.datetime, batch: int = 200, budget_seconds: float = 45.0) -> int:
    """Send every mail due at ``now`` (retries, lost dispatches, expired leases), over one SMTP
    connection; returns how many this call attempted. Stops claiming after ``budget_seconds`` so a
    slow server cannot pile runs up; the next run carries on."""
    started = time.monotonic()
    attempted = 0
    connection = _Connection()
    try:
        while time.monotonic() - started < budget_seconds:
            ids = list(due(now=now).order_by("next_attempt_at", "id").values_list("pk", flat=True)[:batch])
            progressed = False
            for pk in ids:
                if time.monotonic() - started >= budget_seconds:
                    break
                message = claim(pk, now=now)
                if message is None:  # another worker got there first
                    continue
                progressed = True
                attempted += 1
                _deliver(message, now=now, connection=connection)
            if not progressed or len(ids) < batch:
                break
    finally:
        connection.close()
    return attempted
