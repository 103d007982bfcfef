from django import forms
from django.contrib import admin
from django.core.validators import DomainNameValidator
from simple_history.admin import SimpleHistoryAdmin

from .models import Case, CaseEvent, Contact, Organisation, OrganisationDomain, Tag, Team, normalise_domain


class OrganisationDomainForm(forms.ModelForm):
    class Meta:
        model = OrganisationDomain
        fields = ["domain"]

    def clean_domain(self) -> str:
        # Normalised before the uniqueness check, which would otherwise let "Acme.example" past an
        # existing "acme.example" (and the database refuse it with an error page).
        domain = normalise_domain(self.cleaned_data.get("domain", ""))
        if "." not in domain:
            raise forms.ValidationError("Give a full domain such as example.com.")
        DomainNameValidator(message="Give a domain such as example.com (no @, no spaces).")(domain)
        return domain


class OrganisationDomainInline(admin.TabularInline):
    """The organisation's e-mail domains: mail from an unknown sender there opens its cases."""

    model = OrganisationDomain
    form = OrganisationDomainForm
    extra = 1
    fields = ("domain",)
    verbose_name = "e-mail domain"


@admin.register(Organisation)
class OrganisationAdmin(SimpleHistoryAdmin):
    list_display = ("name", "tier", "time_zone", "domains")
    list_filter = ("tier",)
    search_fields = ("name", "email_domains__domain")
    inlines = [OrganisationDomainInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("email_domains")

    @admin.display(description="E-mail domains")
    def domains(self, obj: Organisation) -> str:
        return ", ".join(d.domain for d in obj.email_domains.all())


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "organisation")
    search_fields = ("name", "email")
    list_select_related = ("organisation",)


@admin.register(Team)
class TeamAdmin(SimpleHistoryAdmin):
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
