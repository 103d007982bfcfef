from __future__ import annotations

from django import forms

from cases.models import Severity
from cases.selectors import assignable_users

from . import services
from .models import CADENCE_CHOICES, DEFAULT_CADENCE_MINUTES


def _minutes(m: int) -> str:
    if m % 60 == 0:
        hours = m // 60
        return f"every {hours} hour{'s' if hours > 1 else ''}"
    return f"every {m} minutes"


def _cadence_choices(*, default: bool) -> list[tuple[str, str]]:
    choices = [(str(m), _minutes(m)) for m in CADENCE_CHOICES]
    if default:
        defaults = ", ".join(
            f"{s} {_minutes(m).removeprefix('every ')}" for s, m in DEFAULT_CADENCE_MINUTES.items()
        )
        choices.insert(0, ("", f"The severity's default ({defaults})"))
    return choices


class DeclareForm(forms.Form):
    title = forms.CharField(max_length=services.MAX_TITLE, help_text="What is broken, as customers see it.")
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.P1)
    product_area = forms.CharField(max_length=100, required=False, label="Affected product area")
    commander = forms.ModelChoiceField(queryset=assignable_users(), label="Incident commander")
    cadence_minutes = forms.TypedChoiceField(
        choices=_cadence_choices(default=True),
        coerce=int,
        empty_value=None,
        required=False,
        label="Customer updates",
        help_text="How often customers hear from you; the commander is reminded when an update is overdue.",
    )
    case = forms.CharField(required=False, widget=forms.HiddenInput)


class CadenceForm(forms.Form):
    cadence_minutes = forms.TypedChoiceField(
        choices=_cadence_choices(default=False), coerce=int, label="Customer updates"
    )


class LinkForm(forms.Form):
    keys = forms.CharField(
        label="Cases to link",
        max_length=10_000,
        help_text="Case keys separated by spaces or commas, e.g. CASE-12, CASE-40.",
    )

    def __init__(self, data=None, *args, **kwargs):
        # The suggestions tick several keys (one ``keys`` value each); the text field gives one.
        if data is not None and hasattr(data, "getlist") and len(data.getlist("keys")) > 1:
            data = data.copy()
            data["keys"] = " ".join(data.getlist("keys"))
        super().__init__(data, *args, **kwargs)

    def clean_keys(self) -> list[str]:
        keys = [k.strip().upper() for k in self.cleaned_data["keys"].replace(",", " ").split() if k.strip()]
        if not keys:
            raise forms.ValidationError("Give at least one case key.")
        if len(keys) > 500:
            raise forms.ValidationError("Link at most 500 cases at once.")
        return list(dict.fromkeys(keys))


class UpdateForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}), max_length=services.MAX_BODY, label="Update"
    )
    public = forms.TypedChoiceField(
        choices=[("true", "Public: post to every linked case"), ("false", "Internal: keep on the incident")],
        coerce=lambda v: v == "true",
        initial="true",
        widget=forms.RadioSelect,
        label="Who sees it",
    )


class ResolveForm(forms.Form):
    closing_message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        max_length=services.MAX_BODY,
        help_text="Posted to every linked case before it is resolved (leave empty to post nothing).",
    )
    resolve_cases = forms.BooleanField(required=False, initial=True, label="Resolve every linked case too")
