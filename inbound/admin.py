"""Django admin for mail: mailboxes (the password is never shown), and received mail, read-only,
with a retry and the .eml."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from cases.models import KEY_PREFIX
from supportdesk.core.errors import DomainError

from . import mailboxes
from .forms import MailboxForm
from .models import InboundMessage, Mailbox


@admin.register(Mailbox)
class MailboxAdmin(admin.ModelAdmin):
    form = MailboxForm
    list_display = ("name", "address", "mode", "team", "is_active", "last_polled_at", "poll_error")
    list_filter = ("mode", "is_active", "team")
    search_fields = ("name", "address", "display_name", "imap_host")
    list_select_related = ("team",)
    readonly_fields = ("last_polled_at", "last_poll_error")
    actions = ["test_connection", "poll_now"]
    fieldsets = (
        (None, {"fields": ("name", "address", "display_name", "is_active")}),
        ("Routing", {"fields": ("team", "default_severity", "default_organisation")}),
        ("How mail arrives", {"fields": ("mode",)}),
        (
            "IMAP",
            {
                "fields": (
                    "imap_host",
                    "imap_port",
                    "imap_security",
                    "imap_username",
                    "imap_password",
                    "imap_folder",
                )
            },
        ),
        ("Polling (IMAP and Maildir)", {"fields": ("processed_folder", "maildir_path")}),
        ("Last poll", {"fields": ("last_polled_at", "last_poll_error")}),
    )

    @admin.display(description="Poll error")
    def poll_error(self, obj: Mailbox) -> str:
        return (obj.last_poll_error[:80] + "…") if len(obj.last_poll_error) > 80 else obj.last_poll_error

    def save_model(self, request, obj: Mailbox, form, change: bool) -> None:
        mailboxes.mailbox_save(obj)

    def delete_model(self, request, obj: Mailbox) -> None:
        mailboxes.mailbox_delete(obj)

    def has_delete_permission(self, request, obj: Mailbox | None = None) -> bool:
        # A mailbox that received mail keeps it (PROTECT): it can be made inactive, not deleted.
        if obj is not None and obj.messages.exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for mailbox in queryset:
            try:
                mailboxes.mailbox_delete(mailbox)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.ERROR)

    @admin.action(description="Test the IMAP connection", permissions=["change"])
    def test_connection(self, request, queryset) -> None:
        for mailbox in queryset:
            try:
                result = mailboxes.mailbox_test_connection(mailbox)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
                continue
            level = messages.SUCCESS if result.ok else messages.ERROR
            self.message_user(request, f"{mailbox.name}: {result.detail}", level)

    @admin.action(description="Poll now (IMAP and Maildir)", permissions=["change"])
    def poll_now(self, request, queryset) -> None:
        for mailbox in queryset:
            try:
                mailboxes.mailbox_poll_now(mailbox)
            except DomainError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                self.message_user(request, f"A poll of {mailbox.name} is queued.", messages.SUCCESS)


@admin.register(InboundMessage)
class InboundMessageAdmin(admin.ModelAdmin):
    """Every received mail, read-only: what became of it and why; failed ones can be retried."""

    list_display = ("received_at", "mailbox", "via", "status", "from_address", "subject", "case_link", "eml")
    list_filter = ("status", "via", "mailbox")
    search_fields = ("message_id", "from_address", "subject")
    date_hierarchy = "received_at"
    list_select_related = ("mailbox",)
    actions = ["retry"]
    readonly_fields = [*(f.name for f in InboundMessage._meta.fields), "case_link", "eml"]
    show_full_result_count = False

    @admin.display(description="Case")
    def case_link(self, obj: InboundMessage) -> str:
        if not obj.case_id:
            return "—"
        key = f"{KEY_PREFIX}{obj.case_id}"
        return format_html('<a href="{}">{}</a>', reverse("cases:detail", args=[key]), key)

    @admin.display(description=".eml")
    def eml(self, obj: InboundMessage) -> str:
        if not obj.raw:
            return "—"
        return format_html('<a href="{}">Download</a>', reverse("inbound:raw", args=[obj.pk]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # nothing received is ever lost

    def has_change_permission(self, request, obj=None) -> bool:
        # The record itself is never edited (its page is read-only); those who may change received
        # mail may use "retry" on the list.
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Retry (failed mails)", permissions=["change"])
    def retry(self, request, queryset) -> None:
        now = timezone.now()
        done = skipped = 0
        for record in queryset.select_related("mailbox"):
            try:
                record = mailboxes.inbound_retry(record, now=now)
            except DomainError:
                skipped += 1
                continue
            done += 1
            if record.status == "failed":
                self.message_user(
                    request, f"{record.message_id}: failed again: {record.reason}", messages.ERROR
                )
        self.message_user(request, f"{done} mail(s) processed again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} not failed, left as they are.", messages.WARNING)
