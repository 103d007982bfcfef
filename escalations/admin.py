from django.contrib import admin, messages
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .models import (
    DeliveryStatus,
    EngineeringClock,
    EngineeringTarget,
    EngineeringTeam,
    EngineerScope,
    Escalation,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)


class EngineeringTargetInline(admin.TabularInline):
    """A team's internal targets per severity (managers also edit them on the team's targets page)."""

    model = EngineeringTarget
    extra = 0


@admin.register(EngineeringTeam)
class EngineeringTeamAdmin(SimpleHistoryAdmin):
    list_display = ("name", "slug", "min_quality_score", "calendar")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")
    inlines = [EngineeringTargetInline]


@admin.register(EngineeringClock)
class EngineeringClockAdmin(admin.ModelAdmin):
    """Read-only: the clocks are written by the escalation actions and the sweep only."""

    list_display = ("escalation", "kind", "state", "target_minutes", "due_at", "met_at", "breached_at")
    list_filter = ("kind", "state")
    raw_id_fields = ("escalation",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(EngineerScope)
class EngineerScopeAdmin(SimpleHistoryAdmin):
    list_display = ("user",)
    filter_horizontal = ("teams",)
    search_fields = ("user__username",)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(SimpleHistoryAdmin):
    list_display = ("__str__", "team", "url", "event_list", "active", "created_at")
    list_filter = ("active", "team")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "events":
            kwargs["help_text"] = (
                'A JSON list of event names, e.g. ["sla.breached"]; [] sends every escalation event of '
                "the team. SLA events (for every case) only when named; a subscription without a team "
                "receives only those. Names: " + ", ".join(WebhookEvent.values) + "."
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    @admin.display(description="events")
    def event_list(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.events) if obj.events else "every escalation event"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """Read-only: what was sent where, how often, and why it failed; "retry" sends it again."""

    list_display = (
        "delivery_id",
        "event",
        "subscription",
        "status",
        "attempts",
        "last_status_code",
        "created_at",
        "delivered_at",
        "next_attempt_at",
    )
    list_filter = ("status", "event")
    list_select_related = ("subscription", "subscription__team")
    search_fields = ("delivery_id",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Send the selected deliveries again")
    def retry(self, request, queryset):
        now = timezone.now()
        queued = sum(
            services.requeue_delivery(d, now=now) for d in queryset.exclude(status=DeliveryStatus.SUCCEEDED)
        )
        self.message_user(request, f"{queued} deliveries queued again.", messages.SUCCESS)


@admin.register(Escalation)
class EscalationAdmin(admin.ModelAdmin):
    """For looking things up; changes go through the app (they must reach the case timeline)."""

    list_display = ("__str__", "case", "team", "state", "quality_score", "bounce_count", "created_at")
    list_filter = ("state", "team")
    list_select_related = ("case", "team")
    search_fields = ("summary", "external_key")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
