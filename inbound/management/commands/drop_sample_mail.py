"""Drop a realistic customer mail into a Maildir mailbox (``make sample-mail``): beat's next poll
ingests it. ``--reply CASE-12`` writes the requester's answer to that case instead."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cases.models import Case
from inbound import samples
from inbound.models import Mailbox, MailboxMode


class Command(BaseCommand):
    help = "Drop a sample customer mail into a Maildir mailbox."

    def add_arguments(self, parser):
        parser.add_argument(
            "--mailbox", default="support", help="The Maildir mailbox's name (default support)."
        )
        parser.add_argument(
            "--reply", metavar="CASE-N", help="Answer this case (threaded by its reply address)."
        )

    def handle(self, *args, mailbox: str, reply: str | None = None, **options):
        found = Mailbox.objects.filter(name=mailbox, mode=MailboxMode.MAILDIR).first()
        if found is None:
            raise CommandError(f"No Maildir mailbox named {mailbox!r} (make run creates “support”).")
        now = timezone.now()
        if reply:
            pk = Case.pk_from_key(reply)
            case = Case.objects.filter(pk=pk).select_related("requester").first() if pk else None
            if case is None:
                raise CommandError(f"No case {reply}.")
            raw = samples.reply_mail(found, case, now=now)
            what = f"an answer from {case.requester.email} to {case.key}"
        else:
            index = found.messages.count()
            raw = samples.new_case_mail(found, index=index, now=now)
            what = f"a new mail from {samples.NEW_CASE_MAILS[index % len(samples.NEW_CASE_MAILS)]['from'][1]}"
        samples.drop(found, raw)
        self.stdout.write(
            f"Dropped {what} into {samples.maildir_path(found)}; beat ingests it within a minute."
        )
