from django.contrib import admin

from .models import ImportedCase, ImportJob


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ["id", "source_name", "format", "status", "created_at", "cases_created", "cases_rejected"]
    list_filter = ["status", "format"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request):
        return False  # imports start from the page or the command, which run them


@admin.register(ImportedCase)
class ImportedCaseAdmin(admin.ModelAdmin):
    list_display = ["source_key", "case", "source_format", "updates", "imported_at"]
    search_fields = ["source_key"]
    raw_id_fields = ["case", "job"]
    readonly_fields = [f.name for f in ImportedCase._meta.fields]
