"""The mail server's pipe transport: ``manage.py ingest_email --mailbox support < message.eml``.

Exit status (what a mail transport agent reads): 0 when the mail is recorded (whatever became of
it: on a case, ignored, refused, or failed and kept for an admin to retry), 67 (EX_NOUSER) for an
unknown mailbox, 75 (EX_TEMPFAIL, the server keeps the mail and tries again) when it could not be
recorded at all.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from inbound.models import Mailbox, max_bytes
from inbound.services import receive

EX_NOUSER = 67
EX_TEMPFAIL = 75


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
            raise CommandError(f"Mailbox {found.name} is not active.")
        # Read one byte more than the limit: enough to know a mail is too big without holding it all.
        limit = max_bytes() + 1
        if file:
            with open(file, "rb") as handle:
                raw = handle.read(limit)
        else:
            raw = sys.stdin.buffer.read(limit)
        if not raw.strip():
            raise CommandError("No message on standard input.")
        try:
            result = receive(found, raw, now=timezone.now(), via="pipe")
        except Exception as exc:
            self.stderr.write(f"Could not record the mail: {exc}")
            sys.exit(EX_TEMPFAIL)
        message = result.message
        where = f" on case CASE-{message.case_id}" if message.case_id else ""
        prefix = "" if result.created else "already recorded: "
        self.stdout.write(f"{prefix}{message.message_id} {message.status}{where} {message.reason}".rstrip())
