"""The demo's support mailbox (``make run``): a Maildir folder under var/ that beat polls, with two
customer mails waiting in it and a customer's answer to a case that waits on the customer."""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.utils import timezone

from cases.models import Team
from inbound import samples
from inbound.models import Mailbox, MailboxMode

DEMO_ADDRESS = "help@support.example"


class Command(BaseCommand):
    help = "Create the demo Maildir mailbox and drop sample customer mails into it (once)."

    def handle(self, *args, **options):
        if Mailbox.objects.filter(name="support").exists():
            self.stdout.write("The demo mailbox exists; nothing to do (make sample-mail drops another mail).")
            return
        mailbox = Mailbox.objects.create(
            name="support",
            address=DEMO_ADDRESS,
            display_name="SupportDesk Demo Support",
            team=Team.objects.filter(slug="tier-1").first(),
            mode=MailboxMode.MAILDIR,
            maildir_path="mailboxes/support",
        )
        now = timezone.now()
        for index in range(len(samples.NEW_CASE_MAILS)):
            samples.drop(mailbox, samples.new_case_mail(mailbox, index=index, now=now))
        case = samples.waiting_case()
        if case is not None:
            samples.drop(mailbox, samples.reply_mail(mailbox, case, now=now))
        self.stdout.write(
            self.style.SUCCESS(
                f"Mailbox {mailbox.address} reads {samples.maildir_path(mailbox)}; beat ingests the "
                f"{len(samples.NEW_CASE_MAILS) + (case is not None)} sample mails within a minute."
            )
        )
