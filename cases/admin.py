from django import forms
from django.contrib import admin
from django.core.validators import DomainNameValidator
from django.db import models
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from supportdesk.core.errors import DomainError

from . import organisations
from .models import Case, CaseEvent, Contact, Organisation, OrganisationDomain, Tag, Team, normalise_domain


def _form_error(form: forms.ModelForm, exc: DomainError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _take_saved(obj: models.Model, saved: models.Model) -> None:
    """The admin's instance becomes the row the service wrote (its inlines and log need the id)."""
    for field in obj._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


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


class OrganisationForm(forms.ModelForm):
    """The rules are the service's (``cases.organisations.check_organisation``)."""

    class Meta:
        model = Organisation
        fields = ["name", "tier", "time_zone"]

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                organisations.check_organisation(
                    name=data["name"],
                    tier=data["tier"],
                    time_zone=data["time_zone"],
                    organisation=self.instance,
                )
            except DomainError as exc:
                _form_error(self, exc)
        return data

    def validate_unique(self) -> None:
        pass  # the service's check above, which also ignores letter case


@admin.register(Organisation)
class OrganisationAdmin(SimpleHistoryAdmin):
    """Organisations are saved by the service, which records the change (and a tier change's effect
    on the metrics); the e-mail domains are the inline's."""

    form = OrganisationForm
    list_display = ("name", "tier", "time_zone", "domains")
    list_filter = ("tier",)
    search_fields = ("name", "email_domains__domain")
    inlines = [OrganisationDomainInline]

    def save_model(self, request, obj, form, change):
        values = {name: form.cleaned_data[name] for name in ("name", "tier", "time_zone")}
        if change:
            saved = organisations.update_organisation(obj, actor=request.user, now=timezone.now(), **values)
        else:
            saved = organisations.create_organisation(actor=request.user, now=timezone.now(), **values)
        _take_saved(obj, saved)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("email_domains")

    @admin.display(description="E-mail domains")
    def domains(self, obj: Organisation) -> str:
        return ", ".join(d.domain for d in obj.email_domains.all())


class ContactForm(forms.ModelForm):
    """The rules are the service's (``cases.organisations.check_contact``)."""

    class Meta:
        model = Contact
        fields = ["organisation", "name", "email"]

    def clean(self):
        data = super().clean()
        if not self.errors:
            try:
                organisations.check_contact(
                    organisation=data.get("organisation") or self.instance.organisation,
                    name=data["name"],
                    email=data["email"],
                    contact=self.instance,
                )
            except DomainError as exc:
                _form_error(self, exc)
        return data

    def validate_unique(self) -> None:
        pass  # the service's check above, which also ignores letter case


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactForm
    list_display = ("name", "email", "organisation")
    search_fields = ("name", "email")
    list_select_related = ("organisation",)

    def get_readonly_fields(self, request, obj=None):
        return ("organisation",) if obj is not None else ()  # a contact never moves

    def save_model(self, request, obj, form, change):
        if change:
            saved = organisations.update_contact(
                obj, actor=request.user, name=form.cleaned_data["name"], email=form.cleaned_data["email"]
            )
        else:
            saved = organisations.create_contact(
                organisation=form.cleaned_data["organisation"],
                name=form.cleaned_data["name"],
                email=form.cleaned_data["email"],
                actor=request.user,
            )
        _take_saved(obj, saved)


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
