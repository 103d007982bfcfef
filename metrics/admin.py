from django.contrib import admin

from .models import SurveyResponse


@admin.register(SurveyResponse)
class SurveyResponseAdmin(admin.ModelAdmin):
    """Read-only: answers come from customers, and the token (their credential) is never shown."""

    list_display = ("case", "sent_to", "sent_at", "rating", "answered_at")
    list_filter = ("rating",)
    list_select_related = ("case",)
    search_fields = ("sent_to",)
    date_hierarchy = "sent_at"
    fields = ("case", "sent_to", "sent_at", "rating", "comment", "answered_at")
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
