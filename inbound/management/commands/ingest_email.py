"""The mail server's pipe transport: ``manage.py ingest_email --mailbox support < message.eml``.

Exit status (sysexits.h, what a mail transport agent reads): 0 when the mail is recorded (whatever
became of it: on a case, ignored, refused, or failed and kept for an admin to retry) or was recorded
before (a duplicate delivery); 67 (EX_NOUSER, the server bounces it) for an unknown mailbox;
75 (EX_TEMPFAIL, the server keeps the mail and tries again) when it could not be recorded at all or
the mailbox is switched off for now; 65 (EX_DATAERR) for an empty message, 66 (EX_NOINPUT) for a
--file that cannot be read.

The whole message is always read from standard input, even one over ``INBOUND_MAX_BYTES`` (only its
beginning is kept): a pipe transport that cannot write all of its mail sees a failed delivery.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand
from django.utils import timezone

from inbound.models import Mailbox, max_bytes
from inbound.services import receive

EX_DATAERR = 65
EX_NOINPUT = 66
EX_NOUSER = 67
EX_TEMPFAIL = 75
CHUNK = 1024 * 1024


def read_bounded(stream, limit: int) -> tuple[bytes, int]:
    """The first ``limit`` bytes of ``stream`` and its whole size (the rest is read and dropped)."""
    raw = stream.read(limit)
    size = len(raw)
    while chunk := stream.read(CHUNK):
        size += len(chunk)
    return raw, size


class Command(BaseCommand):
    help = "Ingest one e-mail (RFC 5322 message on standard input) into a mailbox."

    def add_arguments(self, parser):
        parser.add_argument("--mailbox", required=True, help="The mailbox's name (or address).")
        parser.add_argument("--file", help="Read the message from this file instead of standard input.")

    def handle(self, *args, mailbox: str, file: str | None = None, **options):
        found = (
            Mailbox.objects.filter(name=mailbox).first()
            or Mailbox.objects.filter(address__iexact=mailbox).first()
        )
        if found is None:
            self.stderr.write(f"No mailbox named {mailbox!r}.")
            sys.exit(EX_NOUSER)
        if not found.is_active:
            self.stderr.write(f"Mailbox {found.name} is not active; the mail server keeps the mail.")
            sys.exit(EX_TEMPFAIL)
        # Keep at most one byte more than the limit: enough to know a mail is too big.
        limit = max_bytes() + 1
        try:
            if file:
                with open(file, "rb") as handle:
                    raw, size = read_bounded(handle, limit)
            else:
                raw, size = read_bounded(sys.stdin.buffer, limit)
        except OSError as exc:
            self.stderr.write(f"Cannot read the message: {exc}")
            sys.exit(EX_NOINPUT)
        if not raw.strip():
            self.stderr.write("No message on standard input.")
            sys.exit(EX_DATAERR)
        try:
            result = receive(found, raw, now=timezone.now(), via="pipe", declared_size=size)
        except Exception as exc:
            self.stderr.write(f"Could not record the mail: {exc}")
            sys.exit(EX_TEMPFAIL)
        message = result.message
        where = f" on case CASE-{message.case_id}" if message.case_id else ""
        prefix = "" if result.created else "already recorded: "
        self.stdout.write(f"{prefix}{message.message_id} {message.status}{where} {message.reason}".rstrip())
