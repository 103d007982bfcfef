"""The dashboard's period and filters, read from the query string (GET forms, bookmarkable).

Dates are local calendar days in the viewer's time zone (``tz``, by default the zone the
middleware activated for the viewer); ``end`` is inclusive. A preset ("last 30 days") wins over
typed dates so that a bookmarked preset keeps moving with today.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.utils import timezone

from cases.forms import staff_label
from cases.models import Organisation, Severity, Team, Tier
from cases.selectors import assignable_users
from sla.models import Target
from supportdesk.core import bounds

from . import catalogue, selectors

PRESETS = {"7": "Last 7 days", "30": "Last 30 days", "90": "Last 90 days", "all": "Whole history"}
DEFAULT_PRESET = "30"
#: The preset of the whole history: the local day of the first case to today, with no previous period.
WHOLE_HISTORY = "all"
# Far-away years cannot be turned into instants (and the previous period must exist too).
EARLIEST, LATEST = dt.date(1970, 1, 1), dt.date(2200, 12, 31)
FILTERS = ("team", "tier", "severity", "organisation", "assignee")


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class StaffField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return staff_label(obj)


class OrganisationField(forms.ModelChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.name


class PeriodForm(forms.Form):
    """Period (local dates or a preset) and the dashboard filters.

    ``cleaned_data`` gains ``period`` and ``previous`` (aware instants for the selectors; ``previous``
    is None for the whole history, ``whole_history`` says so), periods of any length,
    ``filters`` (only those set) and ``params`` (the canonical query string values, with explicit
    dates, for the links of every figure).
    """

    preset = forms.ChoiceField(choices=[("", "Custom"), *PRESETS.items()], required=False)
    start = bounds.FormDateField(label="From", required=False, widget=DateInput())
    end = bounds.FormDateField(label="To (inclusive)", required=False, widget=DateInput())
    tz = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)
    team = forms.ModelChoiceField(queryset=Team.objects.order_by("name"), required=False, empty_label="Any")
    tier = forms.ChoiceField(choices=[("", "Any"), *Tier.choices], required=False)
    severity = forms.ChoiceField(choices=[("", "Any"), *((s, s) for s in Severity.values)], required=False)
    organisation = OrganisationField(
        queryset=Organisation.objects.order_by("name").only("id", "name"), required=False, empty_label="Any"
    )
    assignee = StaffField(queryset=assignable_users(), required=False, empty_label="Anyone")

    def __init__(self, data=None, *, viewer_tz: str | None = None, today: dt.date | None = None, **kwargs):
        super().__init__(data, **kwargs)
        self.viewer_tz = viewer_tz or timezone.get_current_timezone_name()
        self._today = today

    def clean_tz(self) -> str:
        value = (self.cleaned_data.get("tz") or "").strip() or self.viewer_tz
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise forms.ValidationError(f"“{value}” is not a time zone.") from exc
        return value

    def today(self, tz: str) -> dt.date:
        return self._today or timezone.now().astimezone(ZoneInfo(tz)).date()

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        tz = data.get("tz")
        if tz is None or any(name in self.errors for name in ("start", "end", "preset")):
            return data
        preset, first, last = data.get("preset"), data.get("start"), data.get("end")
        if preset == WHOLE_HISTORY:
            last = self.today(tz)
            first = min(selectors.whole_history(tz=tz, now=timezone.now())[0], last)
        elif preset or (first is None and last is None):
            preset = preset or DEFAULT_PRESET
            last = self.today(tz)
            first = last - dt.timedelta(days=int(preset) - 1)
            data["preset"] = preset
        elif first is None or last is None:
            self.add_error("start" if first is None else "end", "Give both dates, or pick a preset.")
            return data
        if not (EARLIEST <= first <= LATEST and EARLIEST <= last <= LATEST):
            self.add_error(
                "start" if not EARLIEST <= first <= LATEST else "end", "Pick a date between 1970 and 2200."
            )
            return data
        if last < first:
            self.add_error("end", "The period must not end before it starts.")
            return data
        data["start"], data["end"] = first, last
        data["whole_history"] = preset == WHOLE_HISTORY
        data["period"] = selectors.local_period(first, last, tz)
        # Nothing comes before the first case: the whole history has no previous period.
        data["previous"] = None if data["whole_history"] else selectors.previous_period(first, last, tz)
        data["filters"] = {name: data[name] for name in FILTERS if data.get(name) not in (None, "")}
        data["params"] = params_of(data)
        return data


def params_of(data: dict[str, Any]) -> dict[str, str]:
    """Query string values for the period and filters (explicit dates, or the whole-history preset,
    which keeps meaning "to today"; the objects by id)."""
    if data.get("whole_history"):
        params = {"preset": WHOLE_HISTORY, "tz": data["tz"]}
    else:
        params = {"start": data["start"].isoformat(), "end": data["end"].isoformat(), "tz": data["tz"]}
    for name in FILTERS:
        value = data.get(name)
        if value not in (None, ""):
            params[name] = str(getattr(value, "pk", value))
    return params


class DrilldownForm(PeriodForm):
    """A figure of the dashboard: ``metric``, and ``part`` / ``target`` / ``bucket`` where it has them."""

    metric = forms.ChoiceField(choices=[(key, m.label) for key, m in catalogue.METRICS.items()])
    part = forms.CharField(required=False, max_length=20)
    target = forms.ChoiceField(choices=[("", "All targets"), *Target.choices], required=False)
    bucket = forms.ChoiceField(
        choices=[("", "All ages"), *((b, b) for b, _, _ in selectors.AGE_BUCKETS)], required=False
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        metric, part = data.get("metric"), data.get("part") or ""
        if metric and part and part not in catalogue.METRICS[metric].part_codes:
            self.add_error("part", f"{catalogue.METRICS[metric].label} has no part “{part}”.")
        if "params" in data and metric:
            extra = {
                "metric": metric,
                "part": part,
                "target": data.get("target"),
                "bucket": data.get("bucket"),
            }
            data["params"] = {**data["params"], **{k: v for k, v in extra.items() if v}}
        return data
