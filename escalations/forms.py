"""Forms of the escalation pages. They validate input only; every change goes through escalations.services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import slugify

from cases.models import Case, CaseEvent, EventKind, Severity, Tier
from sla.models import BusinessCalendar
from supportdesk.core import bounds
from supportdesk.core.roles import Role
from supportdesk.core.templatetags.supportdesk import WHEN_FORMAT

from . import prefill
from .models import EngineeringTeam, EngineerScope, Escalation
from .quality import MAX_SCORE
from .services import PACKAGE_FIELDS

DATETIME_FORMAT = "%Y-%m-%dT%H:%M"

# Every field of the form, as the services name them (plus the team and the shared timeline entries).
PACKAGE_FORM_FIELDS = ["team", *PACKAGE_FIELDS, "attached_events"]

WORKAROUND_CHOICES = [("", "Unknown"), ("yes", "Yes"), ("no", "No")]


class TeamChoiceField(forms.ModelChoiceField):
    def __init__(self, **kwargs):
        super().__init__(queryset=EngineeringTeam.objects.all(), to_field_name="slug", **kwargs)

    def label_from_instance(self, obj: EngineeringTeam) -> str:
        return f"{obj.name} (minimum quality {obj.min_quality_score})"


# The timeline entries an agent may share with engineering: the conversation and the notes.
SHAREABLE_KINDS = (EventKind.CUSTOMER_MESSAGE, EventKind.PUBLIC_REPLY, EventKind.INTERNAL_NOTE)
EVENT_LABELS: dict[str, str] = {
    EventKind.CUSTOMER_MESSAGE: "Customer message",
    EventKind.INTERNAL_NOTE: "Internal note",
    EventKind.PUBLIC_REPLY: "Public reply",
}


class EventChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj: CaseEvent) -> str:
        what = EVENT_LABELS.get(obj.kind, obj.kind.replace("_", " ").capitalize())
        text = " ".join(obj.body.split())
        if len(text) > 120:
            text = text[:119] + "…"
        when = date_format(timezone.localtime(obj.created_at), WHEN_FORMAT)  # the viewer's zone
        return f"{when} · {what} · {obj.actor_name}: {text}"


def _text(label: str, *, rows: int = 3, help_text: str = "", placeholder: str = "") -> forms.CharField:
    attrs: dict[str, Any] = {"rows": rows}
    if placeholder:
        attrs["placeholder"] = placeholder
    return forms.CharField(
        label=label,
        required=False,
        max_length=50_000,
        widget=forms.Textarea(attrs=attrs),
        help_text=help_text,
    )


def _datetime(label: str, help_text: str = "") -> forms.DateTimeField:
    return bounds.FormDateTimeField(
        label=label,
        required=False,
        input_formats=[DATETIME_FORMAT, "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_FORMAT),
        help_text=help_text,
    )


class PackageForm(forms.Form):
    """The escalation package; the same names are scored live by ``escalations:score``."""

    team = TeamChoiceField(label="Engineering team", empty_label="— choose —")
    component = forms.CharField(label="Component", max_length=100, required=False)
    summary = forms.CharField(label="Summary", max_length=300)
    steps_to_reproduce = _text(
        "Steps to reproduce", rows=5, help_text="A numbered list: 1. …, 2. …", placeholder="1. \n2. "
    )
    expected_behaviour = _text("Expected behaviour")
    actual_behaviour = _text("Actual behaviour")
    product_version = forms.CharField(label="Product version", max_length=100, required=False)
    region = forms.CharField(label="Region", max_length=100, required=False)
    tenant = forms.CharField(label="Tenant", max_length=200, required=False)
    environment = _text(
        "Other environment facts", rows=3, help_text="Deployment, OS, browser, … one per line."
    )
    request_ids = _text("Request / correlation IDs", help_text="One per line.")
    first_seen_at = _datetime("First seen", "In your time zone.")
    last_seen_at = _datetime("Last seen")
    log_excerpts = _text("Log excerpts", rows=5)
    users_affected = forms.IntegerField(label="Users affected", min_value=0, required=False)
    tier = forms.ChoiceField(label="Customer tier", choices=Tier.choices)
    revenue_at_risk = forms.DecimalField(
        label="Revenue at risk", min_value=0, max_digits=14, decimal_places=2, required=False
    )
    workaround_available = forms.TypedChoiceField(
        label="Workaround available?",
        choices=WORKAROUND_CHOICES,
        required=False,
        coerce=lambda v: v == "yes",
        empty_value=None,
    )
    workaround = _text("Workaround", rows=2)
    hypotheses = _text(
        "Hypotheses tested and results", rows=4, help_text="What you tried and what it showed."
    )
    severity = forms.ChoiceField(label="Severity", choices=Severity.choices)
    severity_rationale = _text("Severity rationale", rows=2)
    attached_events = EventChoiceField(
        label="Timeline entries to show engineering",
        queryset=CaseEvent.objects.none(),
        required=False,
        help_text=(
            "Pick the customer's messages and the replies or notes that show the problem: engineering "
            "sees only the entries you tick (an internal note only if ticked)."
        ),
    )

    def __init__(self, *args, case: Case, escalation: Escalation | None = None, **kwargs):
        kwargs.setdefault("auto_id", "esc_%s")
        # What the form filled in from the case (field names), for the page to say so.
        self.prefilled: list[str] = []
        events = CaseEvent.objects.filter(case=case, kind__in=SHAREABLE_KINDS).order_by("created_at", "id")
        if escalation is not None:
            kwargs.setdefault("initial", _initial_from(escalation))
        elif not args and kwargs.get("data") is None and "initial" not in kwargs:
            messages = events.filter(kind=EventKind.CUSTOMER_MESSAGE).values_list("body", flat=True)
            found = prefill.parse([case.description, *messages]).as_initial()
            if "tenant" not in found:
                found["tenant"] = case.organisation.name
            self.prefilled = list(found)
            kwargs["initial"] = {
                "summary": case.title,
                "tier": case.organisation.tier,
                "severity": case.severity,
                **found,
            }
        super().__init__(*args, **kwargs)
        self.case = case
        self.escalation = escalation
        events_field = self.fields["attached_events"]
        assert isinstance(events_field, EventChoiceField)
        events_field.queryset = events
        if escalation is not None and escalation.state != "draft":
            # Engineering already has it: the team cannot change any more.
            self.fields["team"].disabled = True
        self.fields["component"].widget.attrs["list"] = "esc-components"

    @property
    def prefilled_labels(self) -> list[str]:
        return [str(self.fields[name].label) for name in self.prefilled if name in self.fields]

    def service_kwargs(self) -> dict:
        data = dict(self.cleaned_data)
        for name in ("component", "product_version", "region", "tenant", "environment", "summary"):
            data[name] = (data.get(name) or "").strip()
        return data


def _initial_from(escalation: Escalation) -> dict:
    initial = {
        name: getattr(escalation, name)
        for name in PACKAGE_FORM_FIELDS
        if name not in {"team", "attached_events"}
    }
    initial["team"] = escalation.team.slug
    initial["attached_events"] = [e.pk for e in escalation.attached_events.all()]
    flag = escalation.workaround_available
    initial["workaround_available"] = "" if flag is None else ("yes" if flag else "no")
    return initial


class SubmitForm(forms.Form):
    override_reason = forms.CharField(
        label="Override reason (managers, below the team's minimum)",
        required=False,
        max_length=5_000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AnswerForm(forms.Form):
    answer = forms.CharField(
        label="Your answer to engineering",
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Write the answer to engineering's questions."},
    )


class WithdrawForm(forms.Form):
    reason = forms.CharField(label="Why withdraw?", required=False, max_length=5_000)


class AttachmentForm(forms.Form):
    file = forms.FileField(
        label="Attach a file", help_text="Logs (text, JSON, gzip, zip), screenshots (PNG, JPEG) or PDF."
    )


# --- Engineering's actions on the engineer's page ------------------------------------------------


class EngineeringActionForm(forms.Form):
    """An engineering action; ``seen`` carries the version (``updated_at``) the page showed."""

    seen = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, escalation: Escalation | None = None, **kwargs):
        if escalation is not None and not args and "data" not in kwargs:
            kwargs.setdefault("initial", {"seen": escalation.updated_at.isoformat()})
        super().__init__(*args, **kwargs)

    def clean_seen(self) -> dt.datetime | None:
        value = (self.cleaned_data.get("seen") or "").strip()
        if not value:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise forms.ValidationError("The page was out of date: reload it and try again.") from None
        return parsed if parsed.tzinfo else None

    def service_kwargs(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k != "seen"}
        data["expected_updated_at"] = self.cleaned_data.get("seen")
        return data


class AcknowledgeForm(EngineeringActionForm):
    pass


class StartForm(EngineeringActionForm):
    pass


class QuestionsForm(EngineeringActionForm):
    questions = forms.CharField(
        label="Questions for support",
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the questions for support."},
    )


class LinkForm(EngineeringActionForm):
    external_key = forms.CharField(
        label="Ticket key", max_length=100, required=False, help_text="E.g. a Jira key: PAY-123."
    )
    external_url = forms.CharField(label="Ticket URL", max_length=500, required=False)

    def clean(self):
        data = super().clean()
        if not (data.get("external_key") or "").strip() and not (data.get("external_url") or "").strip():
            raise forms.ValidationError("Give the engineering ticket's key or URL.")
        return data


class ResolveForm(EngineeringActionForm):
    resolution = forms.CharField(
        label="Resolution",
        max_length=50_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What was wrong and what was done.",
        error_messages={"required": "Describe the resolution."},
    )
    fix_version = forms.CharField(label="Fixed in version", max_length=100, required=False)


class DeclineForm(EngineeringActionForm):
    reason = forms.CharField(
        label="Why decline?",
        max_length=5_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why the escalation is declined."},
    )


# The engineer page's forms by action name (as in ``states.ACTIONS``), with their form prefix.
ENGINEERING_FORMS: dict[str, type[EngineeringActionForm]] = {
    "acknowledge": AcknowledgeForm,
    "request_info": QuestionsForm,
    "start": StartForm,
    "link": LinkForm,
    "resolve": ResolveForm,
    "decline": DeclineForm,
}


# --- Engineering teams (managers) ------------------------------------------------------------------


class EngineerChoiceField(forms.ModelMultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def label_from_instance(self, obj) -> str:
        name = obj.get_full_name() or obj.get_username()
        label = f"{name} ({obj.get_username()})" if name != obj.get_username() else name
        return label if obj.is_active else f"{label} — inactive"


class TeamForm(forms.ModelForm):
    """An engineering team as a manager edits it; saved through ``services.save_team``."""

    members = EngineerChoiceField(
        label="Engineers",
        queryset=get_user_model().objects.none(),
        required=False,
        help_text=(
            "They see, act on and are told about this team's escalations. An engineer in no team "
            "sees every team's escalations; once in a team, only their teams'."
        ),
    )

    class Meta:
        model = EngineeringTeam
        fields = ["name", "slug", "components", "min_quality_score"]
        labels = {"min_quality_score": "Minimum quality score", "components": "Scope: components"}
        widgets = {"components": forms.Textarea(attrs={"rows": 4, "placeholder": "checkout-api\nbilling"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["members"].queryset = (
            get_user_model()
            .objects.filter(groups__name=Role.ENGINEER)
            .distinct()
            .order_by("-is_active", "username")
        )
        self.fields["min_quality_score"].widget.attrs.update({"min": 0, "max": MAX_SCORE})
        if self.instance.pk:
            # The API filters and webhooks name teams by slug: it stays once the team exists.
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = "Used by the API and webhooks; it cannot change."
            self.initial.setdefault(
                "members",
                list(EngineerScope.objects.filter(teams=self.instance).values_list("user_id", flat=True)),
            )
        else:
            self.fields["slug"].required = False
            self.fields["slug"].help_text = "Used by the API and webhooks; from the name when left empty."

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not data.get("slug") and data.get("name"):
            data["slug"] = slugify(data["name"])
            if not data["slug"]:
                self.add_error("slug", "Give a slug: the name has no letters or digits to make one from.")
        return data

    def service_kwargs(self) -> dict:
        data = {name: self.cleaned_data[name] for name in ("name", "components", "min_quality_score")}
        if not self.instance.pk:
            data["slug"] = self.cleaned_data["slug"]
        data["members"] = list(self.cleaned_data["members"])
        return data


class TargetsForm(forms.Form):
    """A team's engineering targets, one row per severity, and its calendar (``clocks.save_targets``)."""

    calendar: forms.ModelChoiceField[BusinessCalendar] = forms.ModelChoiceField(
        queryset=BusinessCalendar.objects.none(),
        required=False,
        empty_label="The default calendar",
        help_text="The business hours the targets count in.",
    )

    def __init__(self, *args, team: EngineeringTeam, **kwargs):
        from .models import EngineeringTarget

        super().__init__(*args, **kwargs)
        self.fields["calendar"].queryset = BusinessCalendar.objects.order_by("name")  # type: ignore[attr-defined]
        self.initial.setdefault("calendar", team.calendar_id)
        current = {t.severity: t for t in EngineeringTarget.objects.filter(team=team)}
        self.rows = []
        for severity, label in Severity.choices:
            row = current.get(severity)
            names = []
            for kind, kind_label in (
                ("acknowledge", "Acknowledge"),
                ("first_response", "First response"),
                ("resolve", "Resolve"),
            ):
                name = f"{severity}_{kind}_minutes"
                self.fields[name] = forms.IntegerField(
                    label=f"{label}: {kind_label.lower()} (minutes)", required=False, min_value=1
                )
                self.initial.setdefault(name, getattr(row, f"{kind}_minutes") if row else None)
                names.append(name)
            ratio = f"{severity}_warning_ratio"
            self.fields[ratio] = forms.FloatField(
                label=f"{label}: warn at (share)", required=False, min_value=0.0, max_value=1.0
            )
            self.initial.setdefault(ratio, row.warning_ratio if row else 0.75)
            names.append(ratio)
            self.rows.append((severity, label, [self[n] for n in names]))

    def service_kwargs(self) -> dict:
        targets = {}
        for severity in Severity.values:
            values = {
                f"{kind}_minutes": self.cleaned_data.get(f"{severity}_{kind}_minutes")
                for kind in ("acknowledge", "first_response", "resolve")
            }
            ratio = self.cleaned_data.get(f"{severity}_warning_ratio")
            values["warning_ratio"] = 0.75 if ratio is None else ratio
            targets[severity] = values
        return {"targets": targets, "calendar": self.cleaned_data.get("calendar")}
