"""Mailbox configuration and the admins' view of received mail.

One place for the rules that the admins' pages, the REST API and the Django admin all obey (what a
mailbox needs in each mode, unique addresses, a password that is never shown), for the actions on
a mailbox (test the IMAP connection, poll now) and on a received mail (retry), and for the reads
their lists need, with the counts computed in the query.

Who: configuration is the operators' (DOMAIN.md: the admin role, which superusers hold). The raw
.eml of a mail is also for the support staff who may see the case it is on: agents and managers
work every organisation's cases.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import PurePath

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from cases.models import Case
from cases.permissions import can_see_case
from supportdesk.core.errors import Conflict, DomainError
from supportdesk.core.roles import is_admin, is_agent

from . import services
from .models import POLLED_MODES, InboundMessage, InboundStatus, Mailbox, MailboxMode

logger = logging.getLogger(__name__)

# Shown on the admins' "received mail" page: what did not become (part of) a case.
ATTENTION_STATUSES = (InboundStatus.FAILED, InboundStatus.REFUSED, InboundStatus.IGNORED)
# What an admin may process again: failed, or recorded and never processed (a worker died).
RETRYABLE_STATUSES = (InboundStatus.FAILED, InboundStatus.RECEIVED)
# The mailbox list counts refused mail over this window (refusals are normal: spam, rate limits).
REFUSED_WINDOW = dt.timedelta(days=7)


class QueueUnavailable(DomainError):
    """The task queue could not be reached: nothing was queued."""

    status_code = 503
    code = "unavailable"


# --- Who may -----------------------------------------------------------------------------------


def can_configure(user) -> bool:
    """Mailboxes, received mail and retries are the admins' (superusers are admins)."""
    return is_admin(user)


def can_download_raw(user, record: InboundMessage) -> bool:
    """Admins, and the support staff who may see the case the mail is on."""
    if is_admin(user):
        return True
    if record.case_id is None or not is_agent(user):
        return False
    case = Case.objects.filter(pk=record.case_id).first()
    return case is not None and can_see_case(user, case)


def default_maildir(name: str = "NAME") -> str:
    """Where a Maildir mailbox without a path is read (shown in the form's help)."""
    from django.conf import settings

    from .polling import maildir_path

    path = maildir_path(Mailbox(name=name))
    try:
        return f"var/{path.relative_to(settings.VAR_DIR)}"
    except ValueError:
        return str(path)


# --- Rules -------------------------------------------------------------------------------------


def normalise(mailbox: Mailbox) -> None:
    mailbox.name = (mailbox.name or "").strip()
    mailbox.address = (mailbox.address or "").strip().lower()
    mailbox.display_name = (mailbox.display_name or "").strip()
    mailbox.imap_host = (mailbox.imap_host or "").strip()
    mailbox.imap_username = (mailbox.imap_username or "").strip()
    mailbox.imap_folder = (mailbox.imap_folder or "").strip()
    mailbox.processed_folder = (mailbox.processed_folder or "").strip()
    mailbox.maildir_path = (mailbox.maildir_path or "").strip()


def validate_mailbox(mailbox: Mailbox) -> None:
    """Raise ValidationError({field: [messages]}) unless the mailbox can work in its mode."""
    errors: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    others = Mailbox.objects.exclude(pk=mailbox.pk) if mailbox.pk else Mailbox.objects.all()
    if mailbox.name and others.filter(name=mailbox.name).exists():
        refuse("name", f"Another mailbox is already named “{mailbox.name}”.")
    local = mailbox.address.partition("@")[0]
    if "+" in local:
        refuse(
            "address",
            "Give the address without a +tag: SupportDesk adds +case-… to it in the reply address of "
            "its mails, and mail to any +tag arrives at the address itself.",
        )
    if mailbox.address and others.filter(address__iexact=mailbox.address).exists():
        refuse("address", f"Another mailbox already has the address {mailbox.address}.")

    if mailbox.mode == MailboxMode.IMAP:
        if not mailbox.imap_host:
            refuse("imap_host", "An IMAP mailbox needs the server's host name, e.g. imap.example.com.")
        elif "://" in mailbox.imap_host or any(c.isspace() for c in mailbox.imap_host):
            refuse("imap_host", "Give the host name only (e.g. imap.example.com), without imap:// or spaces.")
        if not mailbox.imap_username:
            refuse("imap_username", "An IMAP mailbox needs the user name it logs in with.")
        if not mailbox.imap_password:
            refuse("imap_password", "An IMAP mailbox needs the password it logs in with.")
        if not mailbox.imap_folder:
            refuse("imap_folder", "Name the folder to read, usually INBOX.")
    if mailbox.imap_port is not None and not 1 <= mailbox.imap_port <= 65535:
        refuse("imap_port", "A port is a number from 1 to 65535 (993 for TLS, 143 for STARTTLS).")
    if mailbox.mode in POLLED_MODES:
        if not mailbox.processed_folder:
            refuse("processed_folder", "Name the folder that read mail is moved to.")
        elif mailbox.mode == MailboxMode.IMAP and mailbox.processed_folder == mailbox.imap_folder:
            refuse("processed_folder", "Read mail must be moved out of the folder that is read.")
    if mailbox.mode == MailboxMode.MAILDIR and ".." in PurePath(mailbox.maildir_path).parts:
        refuse("maildir_path", "Give the folder without “..” (relative to var/, or an absolute path).")
    if errors:
        raise ValidationError(errors)


# --- Writes ------------------------------------------------------------------------------------


def mailbox_save(mailbox: Mailbox, *, password: str | None = None) -> Mailbox:
    """Create or change a mailbox once it is valid for its mode. ``password``: the new IMAP
    password; None keeps the stored one."""
    if password is not None:
        mailbox.imap_password = password
    normalise(mailbox)
    # Field checks (lengths, choices, e-mail syntax) from the model; uniqueness is ours (above).
    mailbox.full_clean(validate_unique=False, validate_constraints=False)
    validate_mailbox(mailbox)
    try:
        with transaction.atomic():
            mailbox.save()
    except IntegrityError as exc:  # the same name or address, saved meanwhile by someone else
        raise ValidationError({"address": ["Another mailbox has just taken this name or address."]}) from exc
    return mailbox


def mailbox_delete(mailbox: Mailbox) -> None:
    """Delete a mailbox that never received mail; one that did keeps its mail and can only be
    made inactive."""
    received = mailbox.messages.count()
    if received:
        raise Conflict(
            f"Mailbox {mailbox.name} has received {received} mail(s), which are kept; make it inactive "
            "instead of deleting it."
        )
    mailbox.delete()


@dataclass(frozen=True)
class ConnectionResult:
    ok: bool
    detail: str


def mailbox_test_connection(mailbox: Mailbox) -> ConnectionResult:
    """Log in to an IMAP mailbox's server and say what happened (nothing is read or moved)."""
    if mailbox.mode != MailboxMode.IMAP:
        raise DomainError(
            f"Only IMAP mailboxes connect to a server; {mailbox.name} receives mail by "
            f"{mailbox.get_mode_display()}.",
            field="mode",
        )
    try:
        from .imap import check_connection
    except ImportError:
        return ConnectionResult(False, "IMAP support is not installed in this version of SupportDesk.")
    try:
        detail = check_connection(mailbox)
    except Exception as exc:  # a refused login, an unknown host, a timeout: all are answers here
        logger.info("IMAP connection test of mailbox %s failed: %s", mailbox.name, exc)
        return ConnectionResult(False, f"{type(exc).__name__}: {exc}"[:1000])
    return ConnectionResult(True, str(detail or "Connected and logged in."))


def mailbox_poll_now(mailbox: Mailbox) -> None:
    """Queue a poll of an active IMAP or Maildir mailbox now (the poll's lease keeps it single)."""
    if mailbox.mode not in POLLED_MODES:
        raise DomainError(
            f"Mailbox {mailbox.name} receives mail by {mailbox.get_mode_display()}; nothing to poll.",
            field="mode",
        )
    if not mailbox.is_active:
        raise DomainError(f"Mailbox {mailbox.name} is not active; activate it first.", field="is_active")
    from .tasks import poll_mailbox

    def send() -> None:
        poll_mailbox.delay(mailbox.pk)

    try:
        transaction.on_commit(send)
    except Exception as exc:  # the broker is down (outside a transaction on_commit runs at once)
        logger.warning("Could not queue a poll of mailbox %s: %s", mailbox.name, exc)
        raise QueueUnavailable(
            "The task queue cannot be reached, so no poll was queued; beat polls every mailbox "
            "again once it is back."
        ) from exc


def inbound_retry(record: InboundMessage, *, now: dt.datetime) -> InboundMessage:
    """Process a failed (or never processed) mail again; the outcome is on the returned record."""
    if record.status not in RETRYABLE_STATUSES:
        raise DomainError(
            f"Only failed mails can be retried; this one is {record.get_status_display().lower()}.",
            field="status",
        )
    return services.retry(record, now=now)


# --- Reads -------------------------------------------------------------------------------------


def _count(statuses, *, since: dt.datetime | None = None):
    rows = InboundMessage.objects.filter(mailbox=OuterRef("pk"), status__in=statuses)
    if since is not None:
        rows = rows.filter(received_at__gte=since)
    counted = rows.order_by().values("mailbox").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def mailbox_list(*, now: dt.datetime) -> QuerySet[Mailbox]:
    """Every mailbox with its team, its failed mails and its mails refused in the last week."""
    return (
        Mailbox.objects.select_related("team", "default_organisation")
        .annotate(
            failed_count=_count([InboundStatus.FAILED]),
            refused_count=_count([InboundStatus.REFUSED], since=now - REFUSED_WINDOW),
        )
        .order_by("name")
    )


def mailbox_with_counts(pk: int, *, now: dt.datetime) -> Mailbox:
    return mailbox_list(now=now).get(pk=pk)


def received_mail(*, statuses=ATTENTION_STATUSES, mailbox: Mailbox | None = None) -> QuerySet[InboundMessage]:
    """Received mail in the given states, newest first, with its mailbox."""
    rows = InboundMessage.objects.filter(status__in=list(statuses)).select_related("mailbox")
    if mailbox is not None:
        rows = rows.filter(mailbox=mailbox)
    return rows.order_by("-received_at", "-id")
