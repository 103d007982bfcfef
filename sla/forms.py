"""Browser forms of the SLA pages: policies, calendars and the due-time preview."""

from __future__ import annotations

import datetime as dt
import re

from django import forms

from cases.models import Organisation, Severity, Tier

from .models import (
    BREACH_PERCENT,
    MAX_TARGET_MINUTES,
    BusinessCalendar,
    Recipient,
    SlaPolicy,
    Target,
    Weekday,
)
from .services import OpeningRangeInput, ThresholdInput

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")


def _minutes(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=1,
        max_value=MAX_TARGET_MINUTES,
        widget=forms.NumberInput(attrs={"class": "minutes", "inputmode": "numeric"}),
        help_text="minutes; empty = not measured",
    )


class PolicyForm(forms.Form):
    """One policy's terms; tier and severity identify the row and are not edited here."""

    policy_id = forms.IntegerField(widget=forms.HiddenInput)
    business_time = forms.BooleanField(label="Business hours", required=False)
    warning_percent = forms.IntegerField(
        label="Warn at %", min_value=1, max_value=99, widget=forms.NumberInput(attrs={"class": "percent"})
    )
    first_response_minutes = _minutes("First response")
    triage_minutes = _minutes("Triage")
    update_cadence_minutes = _minutes("Update cadence")
    resolution_minutes = _minutes("Resolution")

    @classmethod
    def initial_for(cls, policy: SlaPolicy) -> dict:
        return {
            "policy_id": policy.pk,
            "business_time": policy.business_time,
            "warning_percent": round(policy.warning_ratio * 100),
            "first_response_minutes": policy.first_response_minutes,
            "triage_minutes": policy.triage_minutes,
            "update_cadence_minutes": policy.update_cadence_minutes,
            "resolution_minutes": policy.resolution_minutes,
        }


PolicyFormSet = forms.formset_factory(
    PolicyForm, extra=0, max_num=len(Tier) * len(Severity), validate_max=True
)


class ThresholdForm(forms.Form):
    """One rung of a policy's warning ladder; a row left empty is ignored."""

    target = forms.ChoiceField(choices=[("", "—"), *Target.choices], required=False)
    percent = forms.IntegerField(
        label="At %",
        min_value=1,
        max_value=BREACH_PERCENT,
        required=False,
        widget=forms.NumberInput(attrs={"class": "percent", "inputmode": "numeric"}),
        help_text="share of the target used; 100 = the breach",
    )
    notify = forms.MultipleChoiceField(
        label="Tell", choices=Recipient.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    webhook = forms.BooleanField(label="Webhook", required=False, help_text="send to SLA webhook subscribers")

    def clean(self):
        data = super().clean()
        if bool(data.get("target")) != (data.get("percent") is not None) and not data.get("DELETE"):
            raise forms.ValidationError("Give both the target and the percentage, or leave the row empty.")
        return data

    @property
    def threshold(self) -> ThresholdInput | None:
        data = getattr(self, "cleaned_data", None) or {}
        if data.get("DELETE") or not data.get("target") or data.get("percent") is None:
            return None
        return ThresholdInput(
            target=data["target"],
            percent=data["percent"],
            notify=list(data.get("notify") or []),
            webhook=bool(data.get("webhook")),
        )

    @classmethod
    def initial_for(cls, policy: SlaPolicy) -> list[dict]:
        return [
            {"target": t.target, "percent": t.percent, "notify": list(t.notify), "webhook": t.webhook}
            for t in policy.thresholds.all()
        ]


ThresholdFormSet = forms.formset_factory(
    ThresholdForm, extra=3, can_delete=True, max_num=40, validate_max=True
)


def _parse_hours(text: str, weekday: int) -> list[OpeningRangeInput]:
    ranges = []
    for part in [p for p in re.split(r"[,;]", text) if p.strip()]:
        match = _RANGE.match(part)
        if not match:
            raise forms.ValidationError(f"“{part.strip()}” is not a range like 09:00-17:00.")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
            raise forms.ValidationError(f"“{part.strip()}” is not a range of valid times (00:00-24:00).")
        end = dt.time(0) if h2 == 24 else dt.time(h2, m2)
        ranges.append(OpeningRangeInput(weekday=weekday, start=dt.time(h1, m1), end=end))
    return ranges


def hours_text(ranges) -> str:
    parts = []
    for r in ranges:
        end = "24:00" if r.end == dt.time(0) else f"{r.end:%H:%M}"
        parts.append(f"{r.start:%H:%M}-{end}")
    return ", ".join(parts)


class CalendarForm(forms.Form):
    name = forms.CharField(max_length=100)
    time_zone = forms.CharField(
        max_length=64, help_text="IANA zone the opening hours are in, e.g. Europe/Berlin.", initial="UTC"
    )
    always_open = forms.BooleanField(label="24x7 (always open)", required=False)
    holiday_country = forms.CharField(
        max_length=2, required=False, label="Public holidays of", help_text="Country code, e.g. DE, US, GB."
    )
    holiday_subdivision = forms.CharField(
        max_length=10, required=False, label="Region", help_text="Optional, e.g. BY (Bavaria) for DE."
    )
    is_default = forms.BooleanField(
        label="Default calendar", required=False, help_text="Used by organisations without a calendar."
    )
    custom_holidays = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="One per line: 2026-12-24 Christmas Eve",
    )
    organisations = forms.ModelMultipleChoiceField(
        queryset=Organisation.objects.order_by("name"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text="Organisations whose business time counts in this calendar.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for day in Weekday:
            self.fields[f"hours_{day.value}"] = forms.CharField(
                label=day.label,
                required=False,
                help_text="e.g. 09:00-12:00, 13:00-17:00; empty = closed",
            )

    @property
    def hours_fields(self):
        return [self[f"hours_{day.value}"] for day in Weekday]

    @classmethod
    def initial_for(cls, calendar: BusinessCalendar) -> dict:
        initial = {
            "name": calendar.name,
            "time_zone": calendar.time_zone,
            "always_open": calendar.always_open,
            "holiday_country": calendar.holiday_country,
            "holiday_subdivision": calendar.holiday_subdivision,
            "is_default": calendar.is_default,
            "custom_holidays": "\n".join(
                f"{h.date:%Y-%m-%d} {h.name}".strip() for h in calendar.custom_holidays.all()
            ),
            "organisations": [link.organisation_id for link in calendar.organisations.all()],
        }
        hours = list(calendar.opening_hours.all())
        for day in Weekday:
            initial[f"hours_{day.value}"] = hours_text([h for h in hours if h.weekday == day.value])
        return initial

    def clean(self):
        data = super().clean()
        ranges: list[OpeningRangeInput] = []
        for day in Weekday:
            name = f"hours_{day.value}"
            try:
                ranges += _parse_hours(data.get(name, "") or "", day.value)
            except forms.ValidationError as exc:
                self.add_error(name, exc)
        data["opening_hours"] = ranges
        holidays = []
        for number, line in enumerate((data.get("custom_holidays") or "").splitlines(), start=1):
            if not line.strip():
                continue
            date_text, _, name = line.strip().partition(" ")
            try:
                holidays.append((dt.date.fromisoformat(date_text), name.strip()))
            except ValueError:
                self.add_error("custom_holidays", f"Line {number}: start with a date like 2026-12-24.")
        data["holiday_list"] = holidays
        return data


class PreviewForm(forms.Form):
    organisation = forms.ModelChoiceField(queryset=Organisation.objects.order_by("name"))
    severity = forms.ChoiceField(choices=Severity.choices)
    start = forms.CharField(
        label="Arrives at",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="Local time of the organisation's calendar.",
    )

    def clean_start(self) -> dt.datetime:
        text = self.cleaned_data["start"].strip()
        try:
            return dt.datetime.fromisoformat(text.replace("T", " "))
        except ValueError as exc:
            raise forms.ValidationError("Give a date and time, e.g. 2026-03-06 17:30.") from exc
