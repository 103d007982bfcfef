from __future__ import annotations

from django import forms

from cases.models import Severity
from cases.selectors import assignable_users

from . import services


class DeclareForm(forms.Form):
    title = forms.CharField(max_length=services.MAX_TITLE, help_text="What is broken, as customers see it.")
    severity = forms.ChoiceField(choices=Severity.choices, initial=Severity.P1)
    product_area = forms.CharField(max_length=100, required=False, label="Affected product area")
    commander = forms.ModelChoiceField(queryset=assignable_users(), label="Incident commander")
    case = forms.CharField(required=False, widget=forms.HiddenInput)


class LinkForm(forms.Form):
    keys = forms.CharField(
        label="Cases to link",
        max_length=5000,
        help_text="Case keys separated by spaces or commas, e.g. CASE-12, CASE-40.",
    )

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
