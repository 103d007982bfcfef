"""Forms of the platform pages (the preferences page)."""

from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.core.exceptions import ValidationError

from .models import validate_time_zone


@cache
def zone_names() -> tuple[str, ...]:
    """The IANA zone names people can choose, sorted (computed once per process)."""
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "Factory"}))


class PreferencesForm(forms.Form):
    time_zone = forms.CharField(
        max_length=64,
        required=False,
        label="Time zone",
        help_text="An IANA name such as Europe/Berlin or America/New_York. Empty: pages follow your "
        "browser's zone and notifications use the site's.",
        widget=forms.TextInput(attrs={"list": "zone-names", "autocomplete": "off", "spellcheck": "false"}),
    )
    email_notifications = forms.BooleanField(
        required=False,
        label="E-mail me my notifications",
        help_text="SLA warnings and breaches and review reminders addressed to you; a team's mailbox still "
        "gets its own.",
    )
    sla_warnings = forms.BooleanField(
        required=False,
        label="Tell me when an SLA target is at risk",
        help_text="In the app and by e-mail. Breaches are always notified.",
    )

    def clean_time_zone(self) -> str:
        value = self.cleaned_data["time_zone"].strip()
        if value:
            try:
                validate_time_zone(value)
            except ValidationError:
                raise ValidationError(
                    f"“{value}” is not a time zone name we know. Use an IANA name such as Europe/Berlin."
                ) from None
        return value
