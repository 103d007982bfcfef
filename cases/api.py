"""The REST API of cases: small input serializers, output serializers, and viewsets that call services.

Every write goes through ``cases.services``; domain errors become 400/409 in the project's
exception handler (``supportdesk.core.api``). Lists are keyset-paginated with
``cases.pagination.paginate`` (``{"next", "previous", "results"}``), never with OFFSET.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import django_filters
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import DateTimeField, Q, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, OperandHolder, SingleOperandHolder
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from supportdesk.core import logcontext
from supportdesk.core import selectors as core_selectors
from supportdesk.core.api import IsSupportStaff, ManagerCanWrite, RejectUnexpectedFields
from supportdesk.core.files import ALLOWED_CONTENT_TYPES, download_response
from supportdesk.core.idempotency import idempotent
from supportdesk.core.models import MailStatus
from supportdesk.core.parsers import BoundedJSONParser
from supportdesk.core.schema import FieldErrorsField

from . import lifecycle, organisations, selectors, services
from . import tags as tags_rule
from .filters import CaseFilter
from .models import (
    KEY_PREFIX,
    Case,
    CaseAttachment,
    CaseEvent,
    Contact,
    EventKind,
    Organisation,
    Severity,
    Status,
    Tag,
    Team,
)
from .pagination import InvalidCursor, paginate
from .permissions import can_see_case, can_see_internal_notes

# --- Permissions ----------------------------------------------------------------------------------


class ManagerCanWriteOrganisations(ManagerCanWrite):
    message = "Only managers can create or change organisations."


class CanSeeCase(BasePermission):
    """Per case: ``cases.permissions.can_see_case``, as the case page decides it."""

    message = "You may not see this case."

    def has_object_permission(self, request, view, obj) -> bool:
        return can_see_case(request.user, obj)


# --- Strict input fields --------------------------------------------------------------------------

# str.isdigit() also accepts "²", which int() refuses.
ASCII_NUMBER = re.compile(r"[0-9]{1,18}")


class StrictCharField(serializers.CharField):
    """A string and nothing else: DRF's CharField would quietly turn 12 into "12"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """An integer id (or its digits as a string); DRF's would accept 1.5 as 1."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not (
            isinstance(data, int) or (isinstance(data, str) and ASCII_NUMBER.fullmatch(data.strip()))
        ):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


class UsernameField(serializers.SlugRelatedField):
    """A staff member who may own a case, by username."""

    default_error_messages = {
        "does_not_exist": "There is no support agent with the username “{value}”.",
        "invalid": "Give a username.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="username", queryset=selectors.assignable_users(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class TeamSlugField(serializers.SlugRelatedField):
    default_error_messages = {
        "does_not_exist": "There is no team with the slug “{value}”.",
        "invalid": "Give a team slug.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Team.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


MAX_TAGS = tags_rule.MAX_PER_OBJECT


class TagListField(serializers.ListField):
    """Tag names -> the sorted list the services store (``"Login Bug"`` -> ``login-bug``), held to the
    tag rule (cases.tags). The serializer's context may carry ``current_tags``: the object's tags,
    accepted as they are (tags stored before the rule). Child errors (a blank or too long item)
    are one flat list here; ``per_item_errors`` keeps DRF's ``{index: [...]}`` instead."""

    # A cleaned name is never longer than the trimmed input, so this is the rule's length too.
    child = StrictCharField(max_length=tags_rule.MAX_LENGTH)
    per_item_errors = False

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_TAGS)
        super().__init__(**kwargs)

    def to_representation(self, data):
        # The browsable API renders the PATCH form from a case, whose ``tags`` is a manager.
        if hasattr(data, "all"):
            data = [tag.name for tag in data.all()]
        return super().to_representation(data)

    def run_child_validation(self, data):
        try:
            values = super().run_child_validation(data)
        except ValidationError as exc:
            # DRF reports child errors as {index: [...]}; a flat list is easier to show and to describe.
            detail = exc.detail
            if isinstance(detail, dict) and not self.per_item_errors:
                messages = [f"Tag {int(i) + 1}: {m}" for i, errs in detail.items() for m in errs]
                raise ValidationError(messages) from exc
            raise
        try:
            return tags_rule.normalise_all(values, keep=self.context.get("current_tags", ()))
        except tags_rule.InvalidTag as exc:
            raise ValidationError([exc.message], code=exc.code) from exc


# --- Output serializers ---------------------------------------------------------------------------


def _person_name(user) -> str:
    return user.get_full_name() or user.get_username()


class OrganisationSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "name", "tier"]
        read_only_fields = fields


class ContactSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "email"]
        read_only_fields = fields


class AssignableStaffSerializer(serializers.Serializer):
    username = serializers.CharField(read_only=True)
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return _person_name(user)


class TeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["slug", "name"]
        read_only_fields = fields


def _web_path(key: str) -> str:
    try:
        return reverse("cases:detail", args=[key])
    except NoReverseMatch:
        return f"/cases/{key}/"


class CaseSerializer(serializers.ModelSerializer):
    """A case as the API shows it (reads only: writes use the input serializers below)."""

    key = serializers.CharField(read_only=True, help_text="The human key, e.g. CASE-12.")
    url = serializers.HyperlinkedIdentityField(
        view_name="cases_api:case-detail", lookup_field="key", lookup_url_kwarg="key"
    )
    web_url = serializers.SerializerMethodField(help_text="The case's page in the browser.")
    organisation = OrganisationSummarySerializer(read_only=True)
    requester = ContactSummarySerializer(read_only=True)
    cc = ContactSummarySerializer(many=True, read_only=True)
    assignee = AssignableStaffSerializer(read_only=True, allow_null=True)
    team = TeamSerializer(read_only=True, allow_null=True)
    tags: serializers.SlugRelatedField[Tag] = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )
    allowed_transitions = serializers.SerializerMethodField(
        help_text="The statuses this case may be moved to next (POST …/transition/)."
    )
    follow_up_of = serializers.SerializerMethodField(
        help_text="The closed case this one follows up (the customer wrote again about it), or null."
    )

    class Meta:
        model = Case
        fields = [
            "key",
            "url",
            "web_url",
            "title",
            "description",
            "status",
            "severity",
            "severity_confirmed",
            "organisation",
            "requester",
            "cc",
            "assignee",
            "team",
            "product_area",
            "tags",
            "external_ref",
            "created_at",
            "updated_at",
            "first_response_at",
            "triaged_at",
            "first_resolved_at",
            "last_resolved_at",
            "closed_at",
            "reopen_count",
            "version",
            "allowed_transitions",
            "follow_up_of",
            "next_due_at",
            "next_due_target",
            "next_due_state",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "next_due_at": {
                "help_text": "The earliest due instant of the SLA clocks still to be met (breached ones at "
                "their past due instant); null when nothing is due (paused, no SLA, not open). "
                "`ordering=due` sorts by it."
            },
            "next_due_target": {
                "help_text": "The target of that clock (first_response, triage, ...), or ''."
            },
            "next_due_state": {"help_text": "breached, at_risk, on_track, paused or none."},
        }

    def get_follow_up_of(self, case: Case) -> str | None:
        return f"{KEY_PREFIX}{case.follow_up_of_id}" if case.follow_up_of_id else None

    def get_web_url(self, case: Case) -> str:
        path = _web_path(case.key)
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def get_allowed_transitions(self, case: Case) -> list[str]:
        return lifecycle.allowed_next(case.status)


class DeliverySerializer(serializers.Serializer):
    """The e-mail a public reply sent and where it stands (the outbox row)."""

    status = serializers.ChoiceField(
        choices=MailStatus.choices,
        help_text="queued, sending, retrying (an attempt failed; see next_attempt_at), sent, failed.",
    )
    to = serializers.ListField(child=serializers.CharField())
    cc = serializers.ListField(child=serializers.CharField())
    attempts = serializers.IntegerField()
    last_error = serializers.CharField(help_text="Why the last attempt failed; empty once sent.")
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True, help_text="When the mail server accepted it.")
    message_id = serializers.CharField()


class CaseAttachmentSerializer(serializers.ModelSerializer):
    """A file on a timeline event (a customer's mail, a public reply, an internal note)."""

    content_type = serializers.CharField(read_only=True, help_text="Checked against the file's content.")
    download_url = serializers.SerializerMethodField(
        help_text="GET it with the same credentials; always sent as a download."
    )

    class Meta:
        model = CaseAttachment
        fields = ["id", "name", "content_type", "size", "uploaded_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, attachment: CaseAttachment) -> str:
        path = reverse(
            "cases_api:case-attachment-download", args=[f"{KEY_PREFIX}{attachment.case_id}", attachment.pk]
        )
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class CaseEventSerializer(serializers.ModelSerializer):
    """A timeline event. Give the context ``deliveries`` (event id -> outbox row, one query for the
    page: ``supportdesk.core.selectors.deliveries_by_event``) to fill ``delivery``, and read events
    through ``selectors.case_timeline`` (their files prefetched)."""

    actor: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Null for the system."
    )
    old_value = serializers.JSONField(read_only=True, allow_null=True)
    new_value = serializers.JSONField(read_only=True, allow_null=True)
    delivery = serializers.SerializerMethodField(
        help_text="For a public reply: the delivery state of its e-mail. Null for other events."
    )
    attachments = CaseAttachmentSerializer(
        many=True,
        read_only=True,
        help_text="Files of a customer's mail, a public reply (sent with it) or an internal note.",
    )

    @extend_schema_field(DeliverySerializer(allow_null=True))
    def get_delivery(self, event: CaseEvent) -> dict | None:
        row = self.context.get("deliveries", {}).get(event.pk)
        return DeliverySerializer(row).data if row is not None else None

    class Meta:
        model = CaseEvent
        fields = [
            "id",
            "kind",
            "actor",
            "actor_name",
            "created_at",
            "field",
            "old_value",
            "new_value",
            "body",
            "is_public",
            "imported",
            "delivery",
            "attachments",
        ]
        read_only_fields = fields


def _deliveries(events) -> dict:
    return core_selectors.deliveries_by_event(
        event_ids=[e.pk for e in events if e.kind == EventKind.PUBLIC_REPLY]
    )


# --- Input serializers ----------------------------------------------------------------------------


_CASE_FIELD_HINTS = {
    "status": "The status changes with POST /api/cases/{key}/transition/ (its lifecycle rules apply).",
}


class CaseCreateSerializer(RejectUnexpectedFields, serializers.Serializer):
    represented_fields = CaseSerializer.Meta.fields
    field_hints = _CASE_FIELD_HINTS
    title = StrictCharField(max_length=300)
    description = StrictCharField(required=False, allow_blank=True, default="", max_length=100_000)
    organisation = StrictPrimaryKeyRelatedField(queryset=Organisation.objects.all())
    requester = StrictPrimaryKeyRelatedField(
        queryset=Contact.objects.all(), help_text="A contact id; the contact must belong to the organisation."
    )
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.P3)
    team = TeamSlugField(required=False, allow_null=True, default=None)
    assignee = UsernameField(required=False, allow_null=True, default=None)
    product_area = StrictCharField(required=False, allow_blank=True, default="", max_length=100)
    tags = TagListField(required=False, default=list)
    cc = StrictPrimaryKeyRelatedField(
        queryset=Contact.objects.all(), many=True, required=False, default=list, help_text="Contact ids."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        organisation = attrs["organisation"]
        errors: dict[str, list[str]] = {}
        if attrs["requester"].organisation_id != organisation.pk:
            errors["requester"] = [f"The requester must be a contact of {organisation.name}."]
        foreign = [c for c in attrs.get("cc", []) if c.organisation_id != organisation.pk]
        if foreign:
            errors["cc"] = [f"{c.email} is not a contact of {organisation.name}." for c in foreign]
        if errors:
            raise ValidationError(errors)
        return attrs


class CaseUpdateSerializer(RejectUnexpectedFields, serializers.Serializer):
    """Only the fields sent change; ``version`` (or the If-Match header) guards against lost updates.
    Any other key (read-only, such as ``organisation``, or unknown) is a 400 naming it."""

    represented_fields = CaseSerializer.Meta.fields
    field_hints = _CASE_FIELD_HINTS

    title = StrictCharField(max_length=300)
    description = StrictCharField(allow_blank=True, max_length=100_000)
    severity = serializers.ChoiceField(choices=Severity.choices)
    assignee = UsernameField(allow_null=True, help_text="A username, or null to unassign.")
    team = TeamSlugField(allow_null=True, help_text="A team slug, or null for no team.")
    product_area = StrictCharField(allow_blank=True, max_length=100)
    tags = TagListField(help_text="The complete new list of tags.")
    version = serializers.IntegerField(
        min_value=1, help_text="The version you loaded; a stale one is refused with 409."
    )


class CaseTransitionSerializer(serializers.Serializer):
    # A plain string, not an enum in the schema: the statuses already have one (StatusEnum).
    to = StrictCharField(help_text="The status to move the case to: " + ", ".join(Status.values) + ".")
    severity = serializers.ChoiceField(
        choices=Severity.choices,
        required=False,
        help_text="Confirms (or changes) the severity when triaging.",
    )
    assignee = UsernameField(required=False, help_text="Sets the owner when triaging.")
    team = TeamSlugField(required=False, help_text="Sets the owning team when triaging.")
    reason = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=5_000,
        help_text="Why the case is reopened: required with `to: reopened`, kept on the timeline.",
    )
    version = serializers.IntegerField(
        min_value=1, required=False, help_text="The version you loaded; a stale one is refused with 409."
    )

    def validate_to(self, value: str) -> str:
        if value not in Status.values:
            raise ValidationError(f"“{value}” is not a case status; use one of {', '.join(Status.values)}.")
        return value

    def validate(self, attrs):
        if lifecycle.needs_reason(attrs.get("to", "")):
            if not attrs.get("reason", "").strip():
                raise ValidationError({"reason": [lifecycle.REASON_MISSING]})
        else:
            attrs.pop("reason", None)
        return attrs


class CaseMessageSerializer(serializers.Serializer):
    body = StrictCharField(max_length=100_000)


class UploadListField(serializers.ListField):
    """Files as repeated multipart parts. Their content is checked by the services (one place, the
    same messages as the case page: each refused file by name); this only says what is not a file."""

    child = serializers.FileField(allow_empty_file=True)  # an empty file is refused by name later
    default_error_messages = {"max_length": "Attach at most {max_length} files at once."}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", services.MAX_ATTACHMENTS_PER_EVENT)
        super().__init__(**kwargs)

    def run_child_validation(self, data):
        try:
            return super().run_child_validation(data)
        except ValidationError as exc:
            # DRF reports child errors as {index: [...]}; a flat list is easier to show and to describe.
            detail = exc.detail
            if isinstance(detail, dict):
                messages = [f"File {int(i) + 1}: {m}" for i, errs in detail.items() for m in errs]
                raise ValidationError(messages) from exc
            raise


class CaseMessageUploadSerializer(CaseMessageSerializer):
    """A reply or note sent as multipart/form-data, with files (repeat the ``attachments`` part)."""

    attachments = UploadListField(
        required=False,
        default=list,
        help_text=(
            f"Up to {services.MAX_ATTACHMENTS_PER_EVENT} files, each size-limited and checked by content: "
            + ", ".join(ALLOWED_CONTENT_TYPES)
            + "."
        ),
    )


# --- Organisations and contacts -------------------------------------------------------------------


class OrganisationSerializer(RejectUnexpectedFields, serializers.ModelSerializer):
    """Parses the fields; the rules (a unique name, a known time zone) are the service's
    (``cases.organisations``), which the view calls."""

    name = StrictCharField(max_length=200)
    time_zone = StrictCharField(max_length=64, required=False)

    class Meta:
        model = Organisation
        fields = ["id", "name", "tier", "time_zone", "created_at"]
        read_only_fields = ["id", "created_at"]


class ContactSerializer(RejectUnexpectedFields, serializers.ModelSerializer):
    """Parses the fields; the rules (one contact per address and organisation, no moving) are the
    service's (``cases.organisations``), which the view calls."""

    organisation = StrictPrimaryKeyRelatedField(
        queryset=Organisation.objects.all(), help_text="Set when the contact is created; it cannot move."
    )
    name = StrictCharField(max_length=200)
    email = serializers.EmailField(max_length=254)

    class Meta:
        model = Contact
        fields = ["id", "organisation", "name", "email"]
        read_only_fields = ["id"]
        # The unique (organisation, email) rule is the service's, with a readable message.
        validators: list = []


# --- Error bodies, for the schema -----------------------------------------------------------------


class CasesErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")


class CasesConflictSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Who changed what; reload the case and try again.")
    code = serializers.ChoiceField(choices=[("conflict", "conflict")])


def _validation_error(name: str, fields: list[str]) -> type[serializers.Serializer]:
    """A 400 body: field name -> messages, plus ``detail``/``code`` for errors about the whole request."""
    attrs: dict[str, Any] = {
        "detail": serializers.CharField(required=False, help_text="A message about the request as a whole."),
        "code": serializers.CharField(required=False),
        "non_field_errors": serializers.ListField(child=serializers.CharField(), required=False),
        "__doc__": f"Validation errors for {name}: each field lists its messages.",
    }
    for field in fields:
        attrs[field] = FieldErrorsField(required=False)  # a list, or per item/sub-field
    return type(f"{name}ValidationErrorSerializer", (serializers.Serializer,), attrs)


CaseCreateError = _validation_error("CaseCreate", list(CaseCreateSerializer().fields))
CaseUpdateError = _validation_error("CaseUpdate", [*CaseUpdateSerializer().fields, "If-Match"])
TransitionError = _validation_error("CaseTransition", [*CaseTransitionSerializer().fields, "If-Match"])
MessageError = _validation_error("CaseMessage", ["body", "attachments"])
CaseListError = _validation_error("CaseList", [*CaseFilter.base_filters, "ordering", "cursor", "page_size"])
ListError = _validation_error("CasesListQuery", ["organisation", "tier", "q", "cursor", "page_size"])
OrganisationError = _validation_error("Organisation", ["name", "tier", "time_zone"])
ContactError = _validation_error("Contact", ["organisation", "name", "email"])

AUTH_ERRORS = {
    401: OpenApiResponse(
        CasesErrorSerializer, description="Not authenticated (send a session cookie or a token)."
    ),
    403: OpenApiResponse(CasesErrorSerializer, description="Only support agents and managers may use this."),
}
NOT_FOUND = {404: OpenApiResponse(CasesErrorSerializer, description="No such object (or a malformed key).")}
CONFLICT = {
    409: OpenApiResponse(
        CasesConflictSerializer, description="The case changed since the version you sent: reload and retry."
    )
}


def _bad_request(serializer, description: str = "Invalid input: messages per field.") -> dict:
    return {400: OpenApiResponse(serializer, description=description)}


# --- Pagination -----------------------------------------------------------------------------------


INVALID_CURSOR = "That page link is not valid any more; start from the first page."


class KeysetPagination(BasePagination):
    """``cases.pagination.paginate`` as a DRF paginator: ``{"next", "previous", "results"}``.

    The view says the ordering (``get_keyset_ordering()``); it must end with a unique column.
    """

    cursor_query_param = "cursor"
    page_size_query_param = "page_size"
    page_size = 50
    max_page_size = 200

    def _page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError({self.page_size_query_param: ["Give a whole number of at least 1."]})
        return min(size, self.max_page_size)

    def paginate_queryset(self, queryset: QuerySet, request, view=None) -> list:
        ordering = view.get_keyset_ordering()
        model = queryset.model
        datetime_fields = {
            spec.lstrip("-")
            for spec in ordering
            if isinstance(model._meta.get_field(spec.lstrip("-")), DateTimeField)
        }
        size = self._page_size(request)
        cursor = request.query_params.get(self.cursor_query_param) or None
        try:
            page = paginate(
                queryset, ordering=ordering, cursor=cursor, page_size=size, datetime_fields=datetime_fields
            )
        except InvalidCursor as exc:
            raise ValidationError({self.cursor_query_param: [str(exc)]}) from exc
        except (ValueError, TypeError, OverflowError, DjangoValidationError) as exc:
            # A hand-made cursor can decode to values of the wrong type (an id that is not a number,
            # a null date) which only the database query notices.
            if cursor is None:
                raise
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from exc
        self.request = request
        self.page = page
        return page.items

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, cursor)

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "next": self._link(self.page.next_cursor),
                "previous": self._link(self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page.",
                },
                "previous": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The previous page.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "An opaque position from a `next` or `previous` link.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page (default {self.page_size}, at most {self.max_page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]


class StaffAPIView:
    """What every endpoint here shares: support staff only, keyset pages."""

    # Typed as APIView declares them (a class, or classes combined with & | ~).
    permission_classes: Sequence[type[BasePermission] | OperandHolder | SingleOperandHolder] = [
        IsSupportStaff
    ]
    pagination_class: type[BasePagination] | None = KeysetPagination
    keyset_ordering: list[str] = ["id"]

    def get_keyset_ordering(self) -> list[str]:
        return self.keyset_ordering


# --- Cases ----------------------------------------------------------------------------------------


def _expected_version(request, body_version: int | None) -> int | None:
    """The version the client loaded: ``version`` in the body and/or ``If-Match: "7"``."""
    header = request.headers.get("If-Match")
    header_version = None
    if header and header.strip() != "*":
        raw = header.strip()
        if raw.startswith("W/"):
            raw = raw[2:]
        raw = raw.strip('"')
        if not ASCII_NUMBER.fullmatch(raw):
            raise ValidationError({"If-Match": ['Send the case version number, e.g. If-Match: "3".']})
        header_version = int(raw)
    if body_version is not None and header_version is not None and body_version != header_version:
        raise ValidationError({"version": ["The version in the body and in If-Match disagree."]})
    return body_version if body_version is not None else header_version


CASE_KEY_REGEX = r"[A-Za-z]+-\d+"
KEY_PARAMETER = OpenApiParameter(
    "key",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    description="The case key, e.g. CASE-12.",
    pattern=f"^{CASE_KEY_REGEX}$",
)
IF_MATCH = OpenApiParameter(
    "If-Match",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description='The case version you loaded (e.g. "3"); a stale one is refused with 409.',
)
ORDERING_PARAMETER = OpenApiParameter(
    "ordering",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    enum=list(selectors.QUEUE_ORDERINGS),
    description="Sort order (default `severity`): "
    + "; ".join(f"`{name}`: {label}" for name, (label, _) in selectors.QUEUE_ORDERINGS.items()),
)


@extend_schema_view(
    list=extend_schema(
        summary="List cases",
        description="The queue: filtered, sorted by `ordering`, keyset-paginated with `cursor`.",
        parameters=[ORDERING_PARAMETER],
        responses={200: CaseSerializer, **_bad_request(CaseListError), **AUTH_ERRORS},
    ),
    create=extend_schema(
        summary="Open a case",
        request=CaseCreateSerializer,
        responses={201: CaseSerializer, **_bad_request(CaseCreateError), **AUTH_ERRORS},
        examples=[
            OpenApiExample(
                "A P2 for tier 2",
                request_only=True,
                value={
                    "title": "Checkout fails with 502",
                    "description": "Since 09:00 every checkout returns 502.",
                    "organisation": 1,
                    "requester": 1,
                    "severity": "P2",
                    "team": "tier-2",
                    "tags": ["checkout"],
                },
            )
        ],
    ),
    retrieve=extend_schema(
        summary="Read a case",
        parameters=[KEY_PARAMETER],
        responses={200: CaseSerializer, **AUTH_ERRORS, **NOT_FOUND},
    ),
    partial_update=extend_schema(
        summary="Change a case",
        description="Only the fields sent change; each real change is recorded on the timeline.",
        parameters=[KEY_PARAMETER, IF_MATCH],
        request=CaseUpdateSerializer,
        responses={
            200: CaseSerializer,
            **_bad_request(CaseUpdateError),
            **AUTH_ERRORS,
            **NOT_FOUND,
            **CONFLICT,
        },
    ),
)
class CaseViewSet(StaffAPIView, viewsets.GenericViewSet):
    """Cases, addressed by key (``CASE-12``). PUT and DELETE are not offered: the timeline is the record."""

    permission_classes = [IsSupportStaff, CanSeeCase]
    lookup_field = "key"
    lookup_value_regex = CASE_KEY_REGEX
    filter_backends = [DjangoFilterBackend]
    filterset_class = CaseFilter
    serializer_class = CaseSerializer

    def get_queryset(self) -> QuerySet[Case]:
        # The list shows the CCs too, so they are prefetched like the selector's other relations.
        return selectors.case_list().prefetch_related("cc")

    def get_serializer_class(self):
        return {
            "create": CaseCreateSerializer,
            "partial_update": CaseUpdateSerializer,
            "transition": CaseTransitionSerializer,
            "replies": CaseMessageUploadSerializer,
            "notes": CaseMessageUploadSerializer,
            "events": CaseEventSerializer,
        }.get(self.action, CaseSerializer)

    def get_keyset_ordering(self) -> list[str]:
        if self.action == "events":
            return ["created_at", "id"]
        name = self.request.query_params.get("ordering") or selectors.DEFAULT_QUEUE_ORDERING
        if name not in selectors.QUEUE_ORDERINGS:
            choices = ", ".join(selectors.QUEUE_ORDERINGS)
            raise ValidationError({"ordering": [f"“{name}” is not a sort order; choose one of {choices}."]})
        return selectors.QUEUE_ORDERINGS[name][1]

    def get_object(self) -> Case:
        key = self.kwargs[self.lookup_field]
        case = selectors.case_by_key(key)
        if case is None:
            raise NotFound(f"There is no case {key}.")
        self.check_object_permissions(self.request, case)
        logcontext.bind(case_key=case.key)
        return case

    def _input(self, serializer_class, *, context: dict | None = None, **kwargs) -> dict:
        context = {**self.get_serializer_context(), **(context or {})}
        serializer = serializer_class(data=self.request.data, context=context, **kwargs)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _case_response(self, case: Case, *, status_code: int = status.HTTP_200_OK) -> Response:
        case = selectors.case_detail(pk=case.pk)
        data = CaseSerializer(case, context=self.get_serializer_context()).data
        headers = {"ETag": f'"{case.version}"'}
        if status_code == status.HTTP_201_CREATED:
            # str(): the serializer's url is DRF's Hyperlink, a str subclass that WSGI servers
            # checking header types strictly (wsgiref, so runserver) refuse with a 500.
            headers["Location"] = str(data["url"])
        return Response(data, status=status_code, headers=headers)

    def list(self, request):
        # Checked before the query so a bad sort order is a 400 whatever the filters say.
        self.get_keyset_ordering()
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(
            CaseSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @idempotent
    def create(self, request):
        data = self._input(CaseCreateSerializer)
        case = services.create_case(actor=request.user, now=timezone.now(), **data)
        return self._case_response(case, status_code=status.HTTP_201_CREATED)

    def retrieve(self, request, key: str | None = None):
        case = self.get_object()
        data = CaseSerializer(case, context=self.get_serializer_context()).data
        return Response(data, headers={"ETag": f'"{case.version}"'})

    def partial_update(self, request, key: str | None = None):
        case = self.get_object()
        current_tags = [t.name for t in case.tags.all()]
        data = self._input(CaseUpdateSerializer, partial=True, context={"current_tags": current_tags})
        expected = _expected_version(request, data.pop("version", None))
        case = services.update_case(
            case, actor=request.user, now=timezone.now(), expected_version=expected, **data
        )
        return self._case_response(case)

    @extend_schema(
        summary="A case's timeline",
        description=(
            "Every event, oldest first, internal notes included (staff only), each with its files "
            "(`attachments`, with a `download_url`)."
        ),
        parameters=[KEY_PARAMETER],
        responses={
            200: CaseEventSerializer(many=True),
            **_bad_request(ListError, "A bad cursor or page size."),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request, key: str | None = None):
        case = self.get_object()
        timeline = selectors.case_timeline(
            case=case, include_internal=can_see_internal_notes(request.user, case)
        )
        page = self.paginate_queryset(timeline)
        return self.get_paginated_response(
            CaseEventSerializer(page, many=True, context=self._event_context(page)).data
        )

    def _event_context(self, events) -> dict:
        return {**self.get_serializer_context(), "deliveries": _deliveries(events)}

    @extend_schema(
        summary="Reply to the customer",
        description=(
            "Recorded on the timeline; its e-mail to the requester (and CCs) is queued and sent by a worker: "
            "`delivery.status` says where it stands (queued, retrying, sent, failed). Send JSON, or "
            "multipart/form-data with files in `attachments` (repeat the part per file): they are "
            "checked, kept on the reply and sent with its e-mail. A refused file is a 400 naming it "
            "under `attachments`."
        ),
        parameters=[KEY_PARAMETER],
        request={
            "application/json": CaseMessageSerializer,
            "multipart/form-data": CaseMessageUploadSerializer,
        },
        responses={201: CaseEventSerializer, **_bad_request(MessageError), **AUTH_ERRORS, **NOT_FOUND},
    )
    @idempotent
    @action(
        detail=True,
        methods=["post"],
        filter_backends=[],
        parser_classes=[BoundedJSONParser, MultiPartParser, FormParser],
    )
    def replies(self, request, key: str | None = None):
        case = self.get_object()
        data = self._input(CaseMessageUploadSerializer)
        event = services.add_public_reply(
            case,
            body=data["body"],
            attachments=data["attachments"],
            actor=request.user,
            now=timezone.now(),
        )
        data = CaseEventSerializer(event, context=self._event_context([event])).data
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Write an internal note",
        description=(
            "For staff only: never e-mailed, never shown to the customer. Send JSON, or "
            "multipart/form-data with files in `attachments` (as internal as the note)."
        ),
        parameters=[KEY_PARAMETER],
        request={
            "application/json": CaseMessageSerializer,
            "multipart/form-data": CaseMessageUploadSerializer,
        },
        responses={201: CaseEventSerializer, **_bad_request(MessageError), **AUTH_ERRORS, **NOT_FOUND},
    )
    @idempotent
    @action(
        detail=True,
        methods=["post"],
        filter_backends=[],
        parser_classes=[BoundedJSONParser, MultiPartParser, FormParser],
    )
    def notes(self, request, key: str | None = None):
        case = self.get_object()
        data = self._input(CaseMessageUploadSerializer)
        event = services.add_internal_note(
            case,
            body=data["body"],
            attachments=data["attachments"],
            actor=request.user,
            now=timezone.now(),
        )
        return Response(
            CaseEventSerializer(event, context=self._event_context([event])).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Download a file of the timeline",
        description=(
            "A file of a customer's mail, a public reply or an internal note (the latter only for "
            "those who may read internal notes); always `Content-Disposition: attachment`, with the "
            "type checked at upload."
        ),
        parameters=[
            KEY_PARAMETER,
            OpenApiParameter(
                "attachment_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The file's id."
            ),
        ],
        responses={
            # The file's own (verified) content type: an image, a PDF, a log.
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, with its verified content type."
            ),
            **AUTH_ERRORS,
            404: OpenApiResponse(
                CasesErrorSerializer, description="No such case, or no such file on it that you may see."
            ),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"attachments/(?P<attachment_id>\d+)",
        url_name="attachment-download",
        filter_backends=[],
    )
    def attachment_download(self, request, key: str | None = None, attachment_id: str | None = None):
        assert attachment_id is not None  # the route always captures it
        case = self.get_object()
        item = selectors.case_attachment(
            case=case,
            attachment_id=int(attachment_id),
            include_internal=can_see_internal_notes(request.user, case),
        )
        if item is None:
            raise NotFound("There is no such file on this case.")
        return download_response(item.file, name=item.name, content_type=item.content_type)

    @extend_schema(
        summary="Move a case along its lifecycle",
        description=(
            "Triaging needs a confirmed severity (`severity`) and an owner (`assignee` or `team`). "
            "An illegal move is a 400 with the reason under `to`."
        ),
        parameters=[KEY_PARAMETER, IF_MATCH],
        request=CaseTransitionSerializer,
        responses={
            200: CaseSerializer,
            **_bad_request(TransitionError, "Invalid input or an illegal transition (message under `to`)."),
            **AUTH_ERRORS,
            **NOT_FOUND,
            **CONFLICT,
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def transition(self, request, key: str | None = None):
        case = self.get_object()
        data = self._input(CaseTransitionSerializer)
        expected = _expected_version(request, data.pop("version", None))
        case = services.transition(
            case,
            data.pop("to"),
            actor=request.user,
            now=timezone.now(),
            expected_version=expected,
            **data,
        )
        return self._case_response(case)


# --- Organisations, contacts, teams, staff --------------------------------------------------------


class OrganisationFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="filter_text", label="Name contains")

    class Meta:
        model = Organisation
        fields = ["tier"]

    def filter_text(self, queryset, name, value):
        return queryset.filter(name__icontains=value.strip()) if value.strip() else queryset


@extend_schema_view(
    list=extend_schema(
        summary="List organisations",
        responses={200: OrganisationSerializer, **_bad_request(ListError), **AUTH_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Read an organisation", responses={200: OrganisationSerializer, **AUTH_ERRORS, **NOT_FOUND}
    ),
    create=extend_schema(
        summary="Add an organisation (managers)",
        responses={201: OrganisationSerializer, **_bad_request(OrganisationError), **AUTH_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change an organisation (managers)",
        responses={
            200: OrganisationSerializer,
            **_bad_request(OrganisationError),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
    ),
)
class OrganisationViewSet(
    StaffAPIView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Customer organisations: every agent reads them, managers add and change them."""

    permission_classes = [IsSupportStaff, ManagerCanWriteOrganisations]
    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_regex = r"\d+"
    queryset = Organisation.objects.all()
    serializer_class = OrganisationSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = OrganisationFilter
    keyset_ordering = ["name", "id"]

    def perform_create(self, serializer):
        serializer.instance = organisations.create_organisation(
            actor=self.request.user, now=timezone.now(), **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = organisations.update_organisation(
            serializer.instance, actor=self.request.user, now=timezone.now(), **serializer.validated_data
        )


class ContactFilter(django_filters.FilterSet):
    organisation = django_filters.ModelChoiceFilter(queryset=Organisation.objects.all())
    q = django_filters.CharFilter(method="filter_text", label="Name or e-mail contains")

    class Meta:
        model = Contact
        fields: list[str] = []

    def filter_text(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(email__icontains=value))


@extend_schema_view(
    list=extend_schema(
        summary="List contacts", responses={200: ContactSerializer, **_bad_request(ListError), **AUTH_ERRORS}
    ),
    retrieve=extend_schema(
        summary="Read a contact", responses={200: ContactSerializer, **AUTH_ERRORS, **NOT_FOUND}
    ),
    create=extend_schema(
        summary="Add a contact",
        responses={201: ContactSerializer, **_bad_request(ContactError), **AUTH_ERRORS},
    ),
    partial_update=extend_schema(
        summary="Change a contact",
        responses={200: ContactSerializer, **_bad_request(ContactError), **AUTH_ERRORS, **NOT_FOUND},
    ),
)
class ContactViewSet(
    StaffAPIView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """People at customer organisations (requesters and CCs); records, not logins."""

    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_regex = r"\d+"
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filter_backends = [DjangoFilterBackend]
    filterset_class = ContactFilter
    keyset_ordering = ["name", "id"]

    def perform_create(self, serializer):
        serializer.instance = organisations.create_contact(
            actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = organisations.update_contact(
            serializer.instance, actor=self.request.user, **serializer.validated_data
        )


@extend_schema_view(
    list=extend_schema(
        summary="List teams", responses={200: TeamSerializer, **_bad_request(ListError), **AUTH_ERRORS}
    )
)
class TeamViewSet(StaffAPIView, mixins.ListModelMixin, viewsets.GenericViewSet):
    """The teams (queues) a case can belong to; referred to by slug."""

    queryset = Team.objects.all()
    serializer_class = TeamSerializer
    filter_backends: list = []
    keyset_ordering = ["name", "id"]


@extend_schema_view(
    list=extend_schema(
        summary="List assignable staff",
        description="Agents, managers and admins who may own a case; refer to them by username.",
        responses={200: AssignableStaffSerializer, **_bad_request(ListError), **AUTH_ERRORS},
    )
)
class StaffViewSet(StaffAPIView, mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = AssignableStaffSerializer
    filter_backends: list = []
    keyset_ordering = ["username", "id"]

    def get_queryset(self):
        return selectors.assignable_users()
