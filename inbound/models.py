"""Mailboxes SupportDesk reads, and every mail it received from them.

A mail is a row here before anything else happens to it (``InboundMessage``, unique per mailbox and
Message-ID: the same mail fetched twice, by two workers or two beats, is recorded once), with its
raw bytes on the default storage. What became of it is its status: ``ingested`` onto a case, or
``ignored``/``refused``/``failed`` with the reason, so nothing received is ever lost.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cases.models import Organisation, Severity, Team


class MailboxMode(models.TextChoices):
    IMAP = "imap", "IMAP polling"
    MAILDIR = "maildir", "Maildir folder (polled)"
    PIPE = "pipe", "Pipe from the mail server (manage.py ingest_email)"
    PROVIDER = "provider", "E-mail provider webhook (inbound)"


POLLED_MODES = (MailboxMode.IMAP, MailboxMode.MAILDIR)


class ImapSecurity(models.TextChoices):
    SSL = "ssl", "TLS (IMAPS, port 993)"
    STARTTLS = "starttls", "STARTTLS (port 143)"
    PLAIN = "plain", "None (local test servers only)"


class Mailbox(models.Model):
    """An address customers write to (support@...), the team its new cases go to, and how its mail
    arrives."""

    name = models.SlugField(max_length=50, unique=True, help_text="Short name, e.g. support.")
    address = models.EmailField(unique=True, help_text="The address customers write to.")
    display_name = models.CharField(max_length=100, blank=True, help_text="Shown as the sender of replies.")
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mailboxes",
        help_text="New cases from this mailbox go to this team.",
    )
    default_severity = models.CharField(max_length=2, choices=Severity.choices, default=Severity.P3)
    default_organisation = models.ForeignKey(
        Organisation,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="For senders whose domain belongs to no organisation; without one, such mail is "
        "kept as refused (an unknown sender).",
    )
    mode = models.CharField(max_length=16, choices=MailboxMode.choices, default=MailboxMode.IMAP)
    is_active = models.BooleanField(default=True)

    imap_host = models.CharField(max_length=253, blank=True)
    imap_port = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: 993 for TLS, else 143.")
    imap_security = models.CharField(max_length=16, choices=ImapSecurity.choices, default=ImapSecurity.SSL)
    imap_username = models.CharField(max_length=200, blank=True)
    imap_password = models.CharField(max_length=200, blank=True)
    imap_folder = models.CharField(max_length=200, default="INBOX")
    processed_folder = models.CharField(
        max_length=200, default="SupportDesk/Processed", help_text="Where mail goes once it is recorded."
    )
    maildir_path = models.CharField(
        max_length=500, blank=True, help_text="Maildir mode: the folder, relative to var/ or absolute."
    )

    # Polling: a lease so that two workers (or two beats) never poll one mailbox at once.
    poll_lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_poll_error = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mailboxes"

    def __str__(self) -> str:
        return f"{self.name} <{self.address}>"

    @property
    def from_header(self) -> str:
        from email.utils import formataddr

        return formataddr((self.display_name, self.address)) if self.display_name else self.address


class InboundStatus(models.TextChoices):
    RECEIVED = "received", "Received, not processed yet"
    INGESTED = "ingested", "On a case"
    IGNORED = "ignored", "Ignored (auto-reply, bounce, own mail)"
    REFUSED = "refused", "Refused (too big, rate limit, unknown sender)"
    FAILED = "failed", "Failed (kept to retry)"


class InboundMessage(models.Model):
    """One received mail, whatever became of it."""

    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="messages")
    # The mail's Message-ID, or a digest of its bytes when it has none.
    message_id = models.CharField(max_length=255)
    via = models.CharField(max_length=16, help_text="imap, maildir, pipe or provider.")
    status = models.CharField(max_length=16, choices=InboundStatus.choices, default=InboundStatus.RECEIVED)
    reason = models.TextField(blank=True, help_text="Why it was ignored, refused or failed.")
    raw = models.FileField(max_length=300, blank=True, help_text="The mail as received (.eml).")
    size = models.PositiveBigIntegerField(default=0)
    from_address = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=500, blank=True)
    in_reply_to = models.CharField(max_length=255, blank=True)
    references = models.TextField(blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Plain integers like the outbox's: the case and the timeline event the mail became.
    case_id = models.BigIntegerField(null=True, blank=True)
    event_id = models.BigIntegerField(null=True, blank=True)
    threaded_by = models.CharField(max_length=32, blank=True, help_text="How the case was found.")

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["mailbox", "message_id"], name="inbound_once_per_mailbox")
        ]
        indexes = [
            # Threading by In-Reply-To/References against what customers sent before.
            models.Index(fields=["message_id"], name="inbound_message_id_idx"),
            # The customer's last mail on a case (the parent of the next reply).
            models.Index(
                fields=["case_id", "-received_at"],
                condition=models.Q(case_id__isnull=False),
                name="inbound_case_idx",
            ),
            # The per-sender rate limit, and the admins' list of what needs attention.
            models.Index(fields=["from_address", "received_at"], name="inbound_sender_idx"),
            # The admins' received-mail list (newest first) and each mailbox's counts by status.
            models.Index(fields=["-received_at", "-id"], name="inbound_received_idx"),
            models.Index(fields=["mailbox", "status", "-received_at"], name="inbound_mailbox_status_idx"),
            models.Index(
                fields=["status", "received_at"],
                condition=models.Q(status__in=["received", "failed"]),
                name="inbound_attention_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} ({self.get_status_display()})"


def raw_path(mailbox_id: int, digest: str) -> str:
    """Where a received mail's bytes are kept: fixed by its key, so a mail fetched twice is one file."""
    return f"inbound/{mailbox_id}/{digest[:2]}/{digest}.eml"


INBOUND_MAX_BYTES_DEFAULT = 25 * 1024 * 1024


def max_bytes() -> int:
    return int(getattr(settings, "INBOUND_MAX_BYTES", INBOUND_MAX_BYTES_DEFAULT))
