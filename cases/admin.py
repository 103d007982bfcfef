from django.contrib import admin

from .models import Case, CaseEvent, Contact, Organisation, Tag, Team


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("name", "tier", "time_zone")
    list_filter = ("tier",)
    search_fields = ("name",)


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "organisation")
    search_fields = ("name", "email")
    list_select_related = ("organisation",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "email")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("members",)


admin.site.register(Tag)


class ReadOnlyEventInline(admin.TabularInline):
    model = CaseEvent
    fields = ("created_at", "kind", "actor_name", "field", "old_value", "new_value", "body")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "id")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    """Read-only in the admin: every change to a case goes through the services (and the timeline)."""

    list_display = ("id", "title", "organisation", "severity", "status", "assignee", "created_at")
    list_filter = ("status", "severity", "organisation__tier")
    search_fields = ("title",)
    list_select_related = ("organisation", "assignee")
    inlines = [ReadOnlyEventInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
