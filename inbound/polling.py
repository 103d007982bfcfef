"""Polling the mailboxes that SupportDesk fetches from (IMAP servers and Maildir folders).

Beat runs ``mail.poll_mailboxes`` every ``INBOUND_POLL_SECONDS``; it hands each active polled mailbox
to ``mail.poll_mailbox``. A poll first takes the mailbox's lease with a conditional UPDATE, so two
workers (or the tasks of two beats) never poll one mailbox at the same time; a worker that dies
holding it loses it when the lease ends. Even without the lease a mail would be recorded once: the
unique (mailbox, Message-ID) of ``InboundMessage`` decides.

A poll is bounded: at most ``INBOUND_POLL_BATCH`` mails and ``INBOUND_POLL_BUDGET_SECONDS``; the
next poll carries on. A mail leaves its source (moved to the processed folder) only after it was
recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import mailbox as stdlib_mailbox
import time
from dataclasses import dataclass
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db.models import Q

from .models import POLLED_MODES, Mailbox, MailboxMode
from .services import receive

logger = logging.getLogger(__name__)


def poll_batch() -> int:
    return int(getattr(settings, "INBOUND_POLL_BATCH", 200))


def poll_budget_seconds() -> float:
    return float(getattr(settings, "INBOUND_POLL_BUDGET_SECONDS", 45))


def lease() -> dt.timedelta:
    return dt.timedelta(seconds=int(getattr(settings, "INBOUND_POLL_LEASE_SECONDS", 300)))


@dataclass(frozen=True)
class PollResult:
    mailbox: str
    polled: bool  # False: another worker holds the mailbox, or it is not polled
    fetched: int = 0
    recorded: int = 0
    error: str = ""


def pollable():
    return Mailbox.objects.filter(is_active=True, mode__in=POLLED_MODES)


def claim(mailbox_id: int, *, now: dt.datetime) -> Mailbox | None:
    """Take the mailbox's lease (until ``now`` + the lease), or None when another poll holds it."""
    claimed = (
        pollable()
        .filter(pk=mailbox_id)
        .filter(Q(poll_lease_until__isnull=True) | Q(poll_lease_until__lte=now))
        .update(poll_lease_until=now + lease())
    )
    return Mailbox.objects.get(pk=mailbox_id) if claimed == 1 else None


def release(mailbox: Mailbox, *, now: dt.datetime, error: str) -> None:
    """Give the lease back, unless it ran out and another poll took it meanwhile (then only that
    poll may release it)."""
    Mailbox.objects.filter(pk=mailbox.pk, poll_lease_until=mailbox.poll_lease_until).update(
        poll_lease_until=None, last_polled_at=now, last_poll_error=error
    )


def poll(mailbox_id: int, *, now: dt.datetime) -> PollResult:
    """Fetch what is new in one mailbox and ingest it; returns what happened."""
    mailbox = claim(mailbox_id, now=now)
    if mailbox is None:
        return PollResult(mailbox=str(mailbox_id), polled=False)
    fetched = recorded = 0
    error = ""
    try:
        if mailbox.mode == MailboxMode.MAILDIR:
            fetched, recorded = poll_maildir(mailbox, now=now)
        else:
            from .imap import poll_imap

            fetched, recorded = poll_imap(
                mailbox, now=now, limit=poll_batch(), budget_seconds=poll_budget_seconds()
            )
    except UnrecordedMail as exc:  # the rest of the poll went through
        fetched, recorded = exc.fetched, exc.recorded
        error = str(exc)[:2000]
        logger.warning("Polling mailbox %s: %s", mailbox.name, error)
    except Exception as exc:  # a server that is down, a wrong password: shown on the mailbox
        error = f"{type(exc).__name__}: {exc}"[:2000]
        logger.warning("Polling mailbox %s failed: %s", mailbox.name, error)
    release(mailbox, now=now, error=error)
    return PollResult(mailbox=mailbox.name, polled=True, fetched=fetched, recorded=recorded, error=error)


def maildir_path(mailbox: Mailbox) -> Path:
    path = Path(mailbox.maildir_path or f"mailboxes/{mailbox.name}")
    return path if path.is_absolute() else Path(settings.VAR_DIR) / path


def _maildir_folder_name(name: str) -> str:
    # Maildir++ folder names use "." between levels, which the stdlib adds as a prefix itself.
    return ".".join(part for part in name.replace("/", ".").split(".") if part) or "Processed"


class UnrecordedMail(Exception):
    """Some mails of a poll could not be recorded; they stay where they are for the next poll."""

    def __init__(self, message: str, *, fetched: int, recorded: int) -> None:
        super().__init__(message)
        self.fetched = fetched
        self.recorded = recorded


def poll_maildir(mailbox: Mailbox, *, now: dt.datetime) -> tuple[int, int]:
    """Ingest the mails of a Maildir folder (new/ and cur/) and move each to its processed folder.

    A mail that cannot be recorded (the database or the storage is down, a mail that breaks
    recording) stays in the folder for the next poll, and the others are still ingested: one such
    mail must not hold up the mailbox. The poll then reports the failure on the mailbox.
    """
    path = maildir_path(mailbox)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = stdlib_mailbox.Maildir(path, factory=None, create=True)
    processed = folder.add_folder(_maildir_folder_name(mailbox.processed_folder))
    started = time.monotonic()
    fetched = recorded = 0
    failures: list[str] = []
    for key in sorted(folder.iterkeys())[: poll_batch()]:
        if time.monotonic() - started > poll_budget_seconds():
            break
        try:
            raw = folder.get_bytes(key)
        except KeyError:  # another process took it meanwhile
            continue
        fetched += 1
        try:
            if receive(mailbox, raw, now=now, via="maildir").created:
                recorded += 1
        except SoftTimeLimitExceeded:
            raise  # the task's time is up: stop here, this mail and the rest stay for the next poll
        except Exception as exc:
            logger.exception("Mail %s of mailbox %s could not be recorded", key, mailbox.name)
            failures.append(f"{key}: {type(exc).__name__}: {exc}")
            continue
        processed.add(raw)
        folder.discard(key)
    if failures:
        raise UnrecordedMail(
            f"{len(failures)} of {fetched} mail(s) could not be recorded and stay in the folder "
            f"({recorded} recorded): " + "; ".join(failures),
            fetched=fetched,
            recorded=recorded,
        )
    return fetched, recorded
