from django.contrib import admin

from .models import IncidentCase, MajorIncident


class IncidentCaseInline(admin.TabularInline):
    model = IncidentCase
    extra = 0
    raw_id_fields = ("case",)
    readonly_fields = ("case", "linked_at", "linked_by")
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # linked on the incident's page, through the service (each case's timeline)


@admin.register(MajorIncident)
class MajorIncidentAdmin(admin.ModelAdmin):
    list_display = ("title", "severity", "status", "commander", "declared_at", "next_update_due_at")
    list_filter = ("status", "severity")
    inlines = [IncidentCaseInline]
    # The cadence's instants move through incidents.services (a public update, set_cadence).
    readonly_fields = (
        "declared_by",
        "declared_at",
        "started_at",
        "resolved_at",
        "origin_case",
        "cadence_minutes",
        "next_update_due_at",
        "reminder_due_at",
    )
