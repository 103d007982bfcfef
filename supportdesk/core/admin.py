from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils import timezone
from rest_framework.authtoken.models import TokenProxy
from simple_history.admin import SimpleHistoryAdmin

from . import outbox
from .models import ApiToken, Heartbeat, MailStatus, Notification, OutboundMessage, StaffProfile, WorkerPing


@admin.register(StaffProfile)
class StaffProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "time_zone")
    search_fields = ("user__username", "user__email")


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("recipient", "kind", "title", "created_at", "read_at")
    list_filter = ("kind",)
    search_fields = ("title", "recipient__username")


@admin.register(OutboundMessage)
class OutboundMessageAdmin(admin.ModelAdmin):
    """The outbox, read-only: what was sent, what is waiting, what failed and why."""

    list_display = ("id", "kind", "status", "subject", "recipients", "attempts", "created_at", "sent_at")
    list_filter = ("status", "kind")
    search_fields = ("subject", "message_id", "to", "dedupe_key")
    date_hierarchy = "created_at"
    actions = ["retry_now"]
    readonly_fields = [f.name for f in OutboundMessage._meta.fields]

    @admin.display(description="To")
    def recipients(self, obj: OutboundMessage) -> str:
        return ", ".join(obj.to)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        # A delivery's record is never edited (its page is read-only); those who may change the
        # outbox may use "retry now" on the list.
        return obj is None and super().has_change_permission(request)

    @admin.action(
        description="Retry now (failed mails, with a fresh set of attempts)", permissions=["change"]
    )
    def retry_now(self, request, queryset) -> None:
        ids = list(queryset.filter(status=MailStatus.FAILED).values_list("pk", flat=True))
        count = outbox.retry_now(ids=ids, now=timezone.now())
        skipped = queryset.count() - count
        self.message_user(request, f"{count} mail(s) queued to be sent again.", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} not failed, left as they are.", messages.WARNING)


admin.site.register(WorkerPing)
admin.site.register(Heartbeat)


# The old plaintext tokens (converted by core migration 0006) are no longer used: not in the admin.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)


@admin.register(ApiToken)
class ApiTokenAdmin(SimpleHistoryAdmin):
    """Everyone's API tokens: seen and revoked (deleted) here, made on the tokens page or with
    ``manage.py create_api_token`` (a key is shown once, to whoever makes it). The digest is never
    shown; the first characters of the key tell the tokens apart."""

    list_display = ("user", "name", "token_key", "created", "expiry", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("user__username", "name", "token_key")
    list_filter = ("expiry",)
    fields = ("user", "name", "token_key", "created", "expiry", "last_used_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# The users' admin as Django ships it, plus the history of each person's roles (groups) and flags.
User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(SimpleHistoryAdmin, DjangoUserAdmin):
    pass
