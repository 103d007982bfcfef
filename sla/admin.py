"""Admins edit calendars, policies (with their warning ladders), team leads and the duty rota here
too; clocks are read-only (they move with their case)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import F
from django.forms.models import BaseInlineFormSet
from simple_history.admin import SimpleHistoryAdmin

from .models import (
    BusinessCalendar,
    ClockRung,
    CustomHoliday,
    DutyShift,
    OpeningHours,
    OrganisationCalendar,
    Recipient,
    SlaClock,
    SlaPolicy,
    TeamLead,
    WarningThreshold,
)
from .services import (
    OpeningRangeInput,
    ThresholdInput,
    default_change_errors,
    ladder_errors,
    unset_other_defaults,
    validate_calendar,
)


class OpeningHoursFormSet(BaseInlineFormSet):
    """Refuses overlapping or reversed ranges, and a business calendar without any."""

    def clean(self):
        super().clean()
        calendar = self.instance
        hours = [
            OpeningRangeInput(f.cleaned_data["weekday"], f.cleaned_data["start"], f.cleaned_data["end"])
            for f in self.forms
            if f.cleaned_data
            and not f.cleaned_data.get("DELETE")
            and f.cleaned_data.get("weekday") is not None
        ]
        errors = validate_calendar(
            time_zone=calendar.time_zone,
            always_open=calendar.always_open,
            holiday_country="",
            holiday_subdivision="",
            opening_hours=hours,
            custom_holidays=[],
            year=2000,
        )
        if errors.get("opening_hours"):
            raise forms.ValidationError(errors["opening_hours"])


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    formset = OpeningHoursFormSet
    extra = 0


class CustomHolidayInline(admin.TabularInline):
    model = CustomHoliday
    extra = 0


class OrganisationCalendarInline(admin.TabularInline):
    model = OrganisationCalendar
    extra = 0
    autocomplete_fields = ("organisation",)


class BusinessCalendarForm(forms.ModelForm):
    class Meta:
        model = BusinessCalendar
        fields = ["name", "time_zone", "always_open", "holiday_country", "holiday_subdivision", "is_default"]

    def clean(self):
        data = super().clean()
        # The one-default rule is the service's (sla.services): the default stays the default until
        # another calendar is made it. Here, before the instance takes the form's values.
        stored = self.instance if self.instance.pk is not None else None
        for field, messages in default_change_errors(stored, is_default=bool(data.get("is_default"))).items():
            self.add_error(field, messages)
        return data

    def _get_validation_exclusions(self):
        # "One default" is kept by save_model, which unsets the previous default in the same
        # transaction; checking the constraint first would refuse every change of default.
        return super()._get_validation_exclusions() | {"is_default"}


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(SimpleHistoryAdmin):
    form = BusinessCalendarForm
    list_display = ("name", "time_zone", "always_open", "holiday_country", "is_default", "updated_at")
    search_fields = ("name",)
    inlines = [OpeningHoursInline, CustomHolidayInline, OrganisationCalendarInline]

    def save_model(self, request, obj, form, change):
        if obj.is_default:
            unset_other_defaults(obj)  # the admin's transaction (ModelAdmin's changeform is atomic)
        if change:
            # Cached copies of the calendar are keyed by its version (see sla/calendars.py).
            obj.version = F("version") + 1
        super().save_model(request, obj, form, change)
        obj.refresh_from_db()


class WarningThresholdForm(forms.ModelForm):
    notify = forms.MultipleChoiceField(
        choices=Recipient.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Resolved when the rung fires.",
    )

    class Meta:
        model = WarningThreshold
        fields = ["target", "percent", "notify", "webhook"]


class WarningThresholdFormSet(BaseInlineFormSet):
    """The ladder's rules are the service's (``sla.services.ladder_errors``)."""

    def clean(self):
        super().clean()
        rungs = [
            ThresholdInput(
                f.cleaned_data["target"],
                f.cleaned_data["percent"],
                list(f.cleaned_data.get("notify") or []),
                bool(f.cleaned_data.get("webhook")),
            )
            for f in self.forms
            if f.cleaned_data
            and not f.cleaned_data.get("DELETE")
            and f.cleaned_data.get("target")
            and f.cleaned_data.get("percent") is not None
        ]
        errors = ladder_errors(rungs)
        if errors:
            raise forms.ValidationError(errors)


class WarningThresholdInline(admin.TabularInline):
    model = WarningThreshold
    form = WarningThresholdForm
    formset = WarningThresholdFormSet
    extra = 0
    verbose_name = "warning ladder rung"
    verbose_name_plural = (
        "warning ladder (100 % is the breach; a target without rungs below 100 % warns once)"
    )


@admin.register(SlaPolicy)
class SlaPolicyAdmin(SimpleHistoryAdmin):
    list_display = (
        "tier",
        "severity",
        "business_time",
        "warning_ratio",
        "first_response_minutes",
        "triage_minutes",
        "update_cadence_minutes",
        "resolution_minutes",
    )
    list_filter = ("tier", "severity", "business_time")
    inlines = [WarningThresholdInline]


@admin.register(TeamLead)
class TeamLeadAdmin(SimpleHistoryAdmin):
    """Who the ladder's "team lead" rung tells for each support team (none: the managers)."""

    list_display = ("team", "user")
    autocomplete_fields = ("user",)
    list_select_related = ("team", "user")


@admin.register(DutyShift)
class DutyShiftAdmin(SimpleHistoryAdmin):
    """The duty rota: the ladder's "duty manager" rung tells whoever's shift covers the moment it
    fires (none: the managers)."""

    list_display = ("user", "starts_at", "ends_at")
    list_filter = ("user",)
    date_hierarchy = "starts_at"
    autocomplete_fields = ("user",)
    list_select_related = ("user",)


class ClockRungInline(admin.TabularInline):
    model = ClockRung
    fields = ("ratio", "warn_at", "warned_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "further warning rungs"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SlaClock)
class SlaClockAdmin(admin.ModelAdmin):
    list_display = (
        "case",
        "target",
        "run",
        "state",
        "started_at",
        "due_at",
        "warned_at",
        "breached_at",
        "met_at",
    )
    list_filter = ("state", "target")
    search_fields = ("case__id",)
    list_select_related = ("case",)
    raw_id_fields = ("case", "policy")
    inlines = [ClockRungInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
