"""The admins' mailbox form (the browser page and the Django admin use the same one)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from cases.models import Organisation, Team

from . import mailboxes
from .models import InboundStatus, Mailbox

KEEP_PASSWORD_HELP = "Leave empty to keep the stored password."  # noqa: S105 (a help text)


class MailboxForm(forms.ModelForm):
    # Not a model field of the form (an empty entry must not overwrite the stored password), and
    # never rendered with its value: the stored password stays on the server.
    imap_password = forms.CharField(
        label="IMAP password",
        required=False,
        strip=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )

    class Meta:
        model = Mailbox
        fields = [
            "name",
            "address",
            "display_name",
            "team",
            "default_severity",
            "default_organisation",
            "mode",
            "is_active",
            "imap_host",
            "imap_port",
            "imap_security",
            "imap_username",
            "imap_folder",
            "processed_folder",
            "maildir_path",
        ]
        labels = {
            "imap_host": "IMAP server",
            "imap_port": "Port",
            "imap_security": "Connection security",
            "imap_username": "User name",
            "imap_folder": "Folder to read",
            "maildir_path": "Maildir folder",
            "default_organisation": "Default organisation",
            "is_active": "Active (receives and polls mail)",
        }
        help_texts = {
            "processed_folder": "IMAP and Maildir: where mail goes once it is recorded.",
        }

    field_order = [
        "name",
        "address",
        "display_name",
        "team",
        "default_severity",
        "default_organisation",
        "mode",
        "is_active",
        "imap_host",
        "imap_port",
        "imap_security",
        "imap_username",
        "imap_password",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = Team.objects.order_by("name")
        self.fields["team"].empty_label = "No team"
        self.fields["default_organisation"].queryset = Organisation.objects.order_by("name")
        self.fields["default_organisation"].empty_label = "None: refuse unknown senders"
        stored = bool(self.instance.pk and self.instance.imap_password)
        if self.is_bound and self.data.get("imap_password"):
            # A refused form comes back without it (it is never sent back to the browser).
            help_text = "Type the password again: it is not sent back to the browser."
        elif stored:
            help_text = f"A password is stored. {KEEP_PASSWORD_HELP}"
        else:
            help_text = "Needed in IMAP mode."
        self.fields["imap_password"].help_text = help_text
        self.fields[
            "maildir_path"
        ].help_text = f"Maildir mode: relative to var/ or absolute; empty: {mailboxes.default_maildir()}."

    def _post_clean(self) -> None:
        """The model's field checks (ModelForm), then the mailbox rules of inbound.mailboxes."""
        stored = self.instance.imap_password
        password = self.cleaned_data.get("imap_password") or ""
        super()._post_clean()  # type: ignore[misc]  # ModelForm's private hook: not in the stubs
        # Empty keeps the stored password, whether or not a subclass (the Django admin's) lists the
        # field in Meta.fields and construct_instance copied the empty entry.
        self.instance.imap_password = password or stored
        mailboxes.normalise(self.instance)
        try:
            mailboxes.validate_mailbox(self.instance)
        except ValidationError as exc:
            self._update_errors(exc)  # type: ignore[attr-defined]  # ModelForm's, not in the stubs

    def validate_unique(self) -> None:
        # inbound.mailboxes.validate_mailbox checks names and addresses (case-insensitively).
        return None

    def save(self, commit: bool = True) -> Mailbox:
        mailbox = super().save(commit=False)
        return mailboxes.mailbox_save(mailbox) if commit else mailbox


ATTENTION_CHOICES = [
    ("", "Needs attention"),
    (InboundStatus.FAILED, "Failed"),
    (InboundStatus.REFUSED, "Refused"),
    (InboundStatus.IGNORED, "Ignored"),
    (InboundStatus.RECEIVED, "Not processed yet"),
]


class ReceivedMailFilter(forms.Form):
    status = forms.ChoiceField(choices=ATTENTION_CHOICES, required=False, label="Status")
    mailbox = forms.ModelChoiceField(
        queryset=Mailbox.objects.order_by("name"),
        required=False,
        empty_label="All mailboxes",
        label="Mailbox",
    )
