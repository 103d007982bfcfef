"""Forms of the browser UI. They validate input only; every change still goes through cases.services.

People and teams are chosen by username and slug, so no database id appears in a page or a URL.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms

from supportdesk.core.files import human_size, max_attachment_bytes

from . import lifecycle, selectors
from . import tags as tags_rule
from .models import MACRO_STATUSES, Case, Contact, Organisation, Severity, Status, Team
from .placeholders import check_placeholders
from .services import MAX_ATTACHMENTS_PER_EVENT


def staff_label(user) -> str:
    return user.get_full_name() or user.get_username()


class StaffChoiceField(forms.ModelChoiceField):
    """An agent, manager or admin, by username, labelled with their full name."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(queryset=selectors.assignable_users(), to_field_name="username", **kwargs)

    def label_from_instance(self, obj) -> str:
        return staff_label(obj)


class TeamChoiceField(forms.ModelChoiceField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(queryset=Team.objects.all(), to_field_name="slug", **kwargs)


class TagsField(forms.Field):
    """Comma-separated tags -> the sorted list of tag names the services store (rule: cases.tags).
    ``keep``: the object's current tags, accepted as they are (tags stored before the rule).
    A text input, but not a CharField: its value is a list, not a string."""

    def __init__(self, *, keep: Iterable[str] = (), **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "Comma-separated, e.g. billing, outage")
        super().__init__(**kwargs)
        self.keep = list(keep)

    def to_python(self, value: Any) -> list[str]:
        text = "" if value in self.empty_values else str(value).strip()
        return sorted({n for n in (tags_rule.clean(p) for p in tags_rule.split(text)) if n})

    def validate(self, value: list[str]) -> None:
        if self.required and not value:
            raise forms.ValidationError(self.error_messages["required"], code="required")
        try:
            tags_rule.normalise_all(value, keep=self.keep)
        except tags_rule.InvalidTag as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


def _severity_choices() -> list[tuple[str, str]]:
    return list(Severity.choices)


class MultipleFileInput(forms.FileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one ``<input type=file multiple>``: a list, empty when none was chosen.
    Only the upload itself is checked here; the content checks are the services' (one place)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        return [super(MultipleFileField, self).clean(f, initial) for f in files if f]


def _attachments_help() -> str:
    return (
        f"Optional: up to {MAX_ATTACHMENTS_PER_EVENT} files of at most {human_size(max_attachment_bytes())} "
        "each — logs (text, JSON, gzip, zip), screenshots (PNG, JPEG) or PDF."
    )


class ReplyForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=50_000)
    attachments = MultipleFileField(label="Attach files — sent with the reply")
    # "Send reply and set status": the reply is sent, then the case moves (if the lifecycle allows).
    # Any status is accepted so an illegal one reaches the lifecycle and gets its reason.
    status = forms.ChoiceField(label="Then set status", choices=[("", ""), *Status.choices], required=False)
    # The macro whose text was inserted (by the picker's script): its tags and team are applied too.
    macro = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)

    def __init__(self, *args, case: Case, **kwargs):
        kwargs.setdefault("auto_id", "reply_%s")
        super().__init__(*args, **kwargs)
        self.fields["body"].label = f"Public reply — e-mailed to {case.requester.email}"
        self.fields["body"].error_messages["required"] = "A reply cannot be empty."
        self.fields["attachments"].help_text = _attachments_help()
        labels = dict(Status.choices)
        # Reopening needs a reason (the status form asks for it), so it is not offered here.
        self.quick_statuses = [
            s for s in lifecycle.allowed_next(case.status) if not lifecycle.needs_reason(s)
        ]
        self.fields["status"].widget.choices = [
            ("", "— keep the status —"),
            *((s, labels[s]) for s in self.quick_statuses),
        ]


class NoteForm(forms.Form):
    body = forms.CharField(
        label="Internal note — never shown to the customer",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=50_000,
        error_messages={"required": "A note cannot be empty."},
    )
    attachments = MultipleFileField(label="Attach files — internal, like the note")

    def __init__(self, *args, case: Case | None = None, **kwargs):
        kwargs.setdefault("auto_id", "note_%s")
        super().__init__(*args, **kwargs)
        self.fields["attachments"].help_text = _attachments_help()


class TransitionForm(forms.Form):
    """Move the case to one of the statuses the lifecycle allows next.

    ``to`` accepts any status so that an illegal one reaches the lifecycle and gets its message;
    the select offers only the allowed ones. Severity and owner apply when triaging.
    """

    to = forms.ChoiceField(label="New status", choices=Status.choices)
    severity = forms.ChoiceField(
        label="Confirm severity", choices=[("", "— choose —"), *Severity.choices], required=False
    )
    assignee = StaffChoiceField(label="Assignee", empty_label="— keep —")
    team = TeamChoiceField(label="Team", empty_label="— keep —")
    reason = forms.CharField(
        label="Why is it reopened?",
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        max_length=5_000,
        help_text="Recorded on the timeline with the reopen (internal).",
    )
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, case: Case, **kwargs):
        kwargs.setdefault("auto_id", "tr_%s")
        kwargs.setdefault(
            "initial",
            {
                "severity": case.severity,
                "assignee": case.assignee.get_username() if case.assignee else None,
                "team": case.team.slug if case.team else None,
                "version": case.version,
            },
        )
        super().__init__(*args, **kwargs)
        self.allowed = lifecycle.allowed_next(case.status)
        labels = dict(Status.choices)
        # No status is preselected: changing the status is always a deliberate choice.
        self.fields["to"].widget.choices = [("", "— choose —"), *((s, labels[s]) for s in self.allowed)]
        self.offers_triage = Status.TRIAGED in self.allowed
        self.offers_reopen = Status.REOPENED in self.allowed
        if not self.offers_triage:
            for name in ("severity", "assignee", "team"):
                del self.fields[name]

    def clean(self):
        data = super().clean()
        if lifecycle.needs_reason(data.get("to", "")) and not data.get("reason", "").strip():
            self.add_error("reason", lifecycle.REASON_MISSING)
        return data

    def service_kwargs(self) -> dict:
        """The arguments for services.transition: triage details only when triaging, the reason
        only when reopening."""
        data = self.cleaned_data
        kwargs: dict = {"expected_version": data["version"]}
        if lifecycle.needs_reason(data["to"]):
            kwargs["reason"] = data["reason"].strip()
        if data["to"] == Status.TRIAGED and self.offers_triage:
            kwargs["severity"] = data.get("severity") or None
            kwargs["assignee"] = data.get("assignee")
            kwargs["team"] = data.get("team")
        return kwargs


class CaseFieldsForm(forms.Form):
    """Edit a case's fields; the hidden version makes a stale form fail with a conflict."""

    title = forms.CharField(label="Title", max_length=300)
    severity = forms.ChoiceField(label="Severity", choices=_severity_choices)
    assignee = StaffChoiceField(label="Assignee", empty_label="Unassigned")
    team = TeamChoiceField(label="Team", empty_label="No team")
    product_area = forms.CharField(label="Product area", max_length=100, required=False)
    tags = TagsField(label="Tags")
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args, case: Case, **kwargs):
        kwargs.setdefault("auto_id", "edit_%s")
        kwargs.setdefault(
            "initial",
            {
                "title": case.title,
                "severity": case.severity,
                "assignee": case.assignee.get_username() if case.assignee else None,
                "team": case.team.slug if case.team else None,
                "product_area": case.product_area,
                "tags": ", ".join(t.name for t in case.tags.all()),
                "version": case.version,
            },
        )
        super().__init__(*args, **kwargs)
        tags_field = self.fields["tags"]
        assert isinstance(tags_field, TagsField)
        tags_field.keep = [t.name for t in case.tags.all()]

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "expected_version": data["version"],
            "title": data["title"],
            "severity": data["severity"],
            "assignee": data["assignee"],
            "team": data["team"],
            "product_area": data["product_area"],
            "tags": data["tags"],
        }


class OrganisationChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Organisation) -> str:
        return f"{obj.name} ({obj.get_tier_display()})"


class CaseCreateForm(forms.Form):
    organisation = OrganisationChoiceField(
        label="Organisation", queryset=Organisation.objects.all(), empty_label="— choose —"
    )
    requester = forms.ModelChoiceField(
        label="Requester",
        queryset=Contact.objects.select_related("organisation").order_by("organisation__name", "name"),
        required=False,
        empty_label="— choose, or add a new contact below —",
        help_text="The contact who reported the problem; public replies are e-mailed to them.",
    )
    new_contact_name = forms.CharField(label="New contact: name", max_length=200, required=False)
    new_contact_email = forms.EmailField(label="New contact: e-mail", required=False)
    title = forms.CharField(label="Title", max_length=300)
    description = forms.CharField(
        label="Description", widget=forms.Textarea(attrs={"rows": 6}), required=False, max_length=50_000
    )
    severity = forms.ChoiceField(label="Severity", choices=_severity_choices, initial=Severity.P3)
    team = TeamChoiceField(label="Team", empty_label="No team")
    assignee = StaffChoiceField(label="Assignee", empty_label="Unassigned")
    product_area = forms.CharField(label="Product area", max_length=100, required=False)
    tags = TagsField(label="Tags")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Group the requesters by organisation so the right person is easy to find.
        requester = self.fields["requester"]
        assert isinstance(requester, forms.ModelChoiceField)
        assert requester.queryset is not None
        groups: dict[str, list[tuple[int, str]]] = {}
        for contact in requester.queryset:
            groups.setdefault(contact.organisation.name, []).append(
                (contact.pk, f"{contact.name} <{contact.email}>")
            )
        requester.choices = [("", requester.empty_label), *groups.items()]

    def clean(self):
        data = super().clean()
        organisation = data.get("organisation")
        requester = data.get("requester")
        name = data.get("new_contact_name", "").strip()
        email = data.get("new_contact_email", "")
        wants_new = bool(name or email)
        if requester and wants_new:
            self.add_error("requester", "Choose an existing requester or add a new contact, not both.")
        elif wants_new:
            if not name:
                self.add_error("new_contact_name", "Give the new contact's name.")
            if not email and "new_contact_email" not in self.errors:
                self.add_error("new_contact_email", "Give the new contact's e-mail address.")
            if (
                organisation
                and email
                and Contact.objects.filter(organisation=organisation, email__iexact=email).exists()
            ):
                self.add_error(
                    "new_contact_email",
                    f"{organisation.name} already has a contact with this e-mail: choose them as requester.",
                )
        elif not requester and "requester" not in self.errors:
            self.add_error("requester", "Choose the requester, or add a new contact.")
        if organisation and requester and requester.organisation_id != organisation.pk:
            self.add_error(
                "requester",
                f"{requester.name} belongs to {requester.organisation.name}, not {organisation.name}.",
            )
        return data


class MacroForm(forms.Form):
    """A macro's text and actions; saved through ``cases.macros.save_macro`` (which checks again)."""

    name = forms.CharField(label="Name", max_length=100)
    body = forms.CharField(
        label="Reply text",
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        max_length=50_000,
        help_text="Sent to the customer as a public reply. Leave it empty for a macro of actions only.",
    )
    shared = forms.BooleanField(
        label="Shared with every agent",
        required=False,
        help_text="Only managers create and change shared macros.",
    )
    set_status = forms.ChoiceField(label="Then set status", required=False)
    add_tags = TagsField(label="Add tags")
    set_team = TeamChoiceField(label="Set team", empty_label="— keep —")

    def __init__(self, *args, can_share: bool, **kwargs):
        kwargs.setdefault("auto_id", "macro_%s")
        super().__init__(*args, **kwargs)
        # A macro's own tags from before the tag rule stay acceptable when it is edited.
        tags_field = self.fields["add_tags"]
        assert isinstance(tags_field, TagsField)
        tags_field.keep = [tags_rule.clean(n) for n in tags_rule.split(self.initial.get("add_tags", ""))]
        status_field = self.fields["set_status"]
        assert isinstance(status_field, forms.ChoiceField)
        status_field.choices = [("", "— keep the status —"), *MACRO_STATUSES]
        if not can_share:
            self.fields["shared"].disabled = True
            self.fields["shared"].help_text = "Only managers create and change shared macros."

    def clean_body(self) -> str:
        body = self.cleaned_data.get("body", "")
        check_placeholders(body)
        return body

    def clean(self):
        data = super().clean()
        has_content = (
            data.get("body", "").strip()
            or data.get("set_status")
            or data.get("add_tags")
            or data.get("set_team")
        )
        if not has_content and "body" not in self.errors:
            self.add_error("body", "Write the reply, or choose at least one action.")
        return data
