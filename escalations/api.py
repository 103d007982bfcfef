"""The escalations REST API: engineering lists, reads and acts on escalations; support submits,
answers and withdraws them.

Engineers see only escalations that reached engineering, of the teams in their scope (others are
404), and only the engineering actions; support staff see every escalation and only the support
actions (the other side's actions are 403). Every write goes through ``escalations.services``;
domain errors become 400/409 in the project's exception handler. Lists are keyset pages.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from cases import selectors as case_selectors
from cases.api import KeysetPagination, StrictCharField
from cases.models import Case, CaseEvent, Organisation, Severity, Tier
from cases.permissions import can_see_case
from supportdesk.core import bounds
from supportdesk.core.api import RejectUnexpectedFields
from supportdesk.core.files import download_response
from supportdesk.core.idempotency import idempotent
from supportdesk.core.parsers import BoundedJSONParser
from supportdesk.core.schema import FieldErrorsField

from . import clocks, permissions, selectors, services
from .models import EngineeringClock, EngineeringTeam, Escalation, EscalationAttachment, InfoRequest
from .states import EscalationState, Side

# --- Permissions ------------------------------------------------------------------------------------


class EscalationAccess(BasePermission):
    """Support staff and engineers read; each side takes only its own actions (``permissions``)."""

    message = "Only support staff and engineers can use the escalations API."

    def has_permission(self, request, view) -> bool:
        side = permissions.side_of_action(view.action)
        if side is None:
            return permissions.may_read(request.user)
        self.message = permissions.refusal(side)
        return permissions.has_side(request.user, side)


# --- Output serializers -----------------------------------------------------------------------------


def _username(user) -> str | None:
    return user.get_username() if user is not None else None


class EngineeringTeamSerializer(serializers.ModelSerializer):
    class Meta:
        model = EngineeringTeam
        fields = ["slug", "name", "min_quality_score"]
        read_only_fields = fields


class InfoRequestSerializer(serializers.ModelSerializer):
    asked_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    answered_by: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = InfoRequest
        fields = ["id", "questions", "asked_by", "asked_at", "answer", "answered_by", "answered_at"]
        read_only_fields = fields


class EscalationAttachmentSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField(help_text="GET it with the same credentials.")

    class Meta:
        model = EscalationAttachment
        fields = ["id", "name", "content_type", "size", "uploaded_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, attachment: EscalationAttachment) -> str:
        path = reverse(
            "escalations_api:escalation-attachment-download", args=[attachment.escalation_id, attachment.pk]
        )
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class AttachedEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseEvent
        fields = ["id", "kind", "created_at", "actor_name", "body", "is_public"]
        read_only_fields = fields


class EscalationCaseSerializer(serializers.Serializer):
    """What engineering learns about the case: its headline and the entries support attached."""

    key = serializers.CharField(read_only=True)
    title = serializers.CharField(read_only=True)
    description = serializers.CharField(read_only=True)
    status = serializers.CharField(read_only=True)
    severity = serializers.CharField(read_only=True)
    organisation = serializers.CharField(source="organisation.name", read_only=True)
    tier = serializers.CharField(source="organisation.tier", read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    attached_events = serializers.SerializerMethodField(
        help_text="Timeline entries support chose to share; no other internal note is ever included."
    )

    @extend_schema_field(AttachedEventSerializer(many=True))
    def get_attached_events(self, case) -> list[dict]:
        events = self.context.get("attached_events", [])
        # many=True makes a ListSerializer, whose data is a list; the stubs type it as one object's.
        return AttachedEventSerializer(events, many=True).data  # type: ignore[return-value]


def _web_path(name: str, pk: int) -> str:
    try:
        return reverse(name, args=[pk])
    except NoReverseMatch:
        return ""


class EscalationListSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True, help_text="ESC-<id>.")
    url = serializers.HyperlinkedIdentityField(view_name="escalations_api:escalation-detail")
    web_url = serializers.SerializerMethodField(help_text="The read-only page in the browser.")
    team = EngineeringTeamSerializer(read_only=True)
    case = serializers.CharField(source="case.key", read_only=True, help_text="The case key, e.g. CASE-12.")
    organisation = serializers.CharField(source="case.organisation.name", read_only=True)
    # Not a URLField: "" (not linked yet) is no URI, and the schema must say what is sent.
    external_url = serializers.CharField(
        read_only=True, help_text="The linked ticket's http(s) URL, or an empty string while none is linked."
    )

    class Meta:
        model = Escalation
        fields = [
            "id",
            "key",
            "url",
            "web_url",
            "state",
            "team",
            "component",
            "summary",
            "severity",
            "tier",
            "case",
            "organisation",
            "quality_score",
            "bounce_count",
            "external_key",
            "external_url",
            "created_at",
            "updated_at",
            "submitted_at",
            "acknowledged_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_web_url(self, escalation: Escalation) -> str:
        path = _web_path("escalations:engineer-view", escalation.pk)
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None and path else path


class OverrideSerializer(serializers.Serializer):
    by = serializers.CharField(allow_null=True, read_only=True)
    reason = serializers.CharField(read_only=True)
    at = serializers.DateTimeField(read_only=True)


class EngineeringClockSerializer(serializers.ModelSerializer):
    """One engineering clock: the team's internal target and where it stands."""

    state_words = serializers.SerializerMethodField(help_text="The state as the pages say it.")
    used_seconds = serializers.SerializerMethodField(
        help_text="Business seconds counted before the current running stretch (all of it once stopped)."
    )
    paused_seconds = serializers.SerializerMethodField(help_text="Business seconds paused in needs_info.")

    class Meta:
        model = EngineeringClock
        fields = [
            "kind",
            "target_minutes",
            "state",
            "state_words",
            "started_at",
            "warn_at",
            "due_at",
            "paused_since",
            "met_at",
            "warned_at",
            "breached_at",
            "used_seconds",
            "paused_seconds",
        ]
        read_only_fields = fields

    def get_state_words(self, clock: EngineeringClock) -> str:
        return clocks.state_in_words(clock, now=self.context.get("now") or timezone.now())

    def get_used_seconds(self, clock: EngineeringClock) -> float:
        return clock.used.total_seconds()

    def get_paused_seconds(self, clock: EngineeringClock) -> float:
        return clock.paused_total.total_seconds()


class EscalationDetailSerializer(EscalationListSerializer):
    quality_missing = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What the package lacks, per rubric criterion.",
    )
    override = serializers.SerializerMethodField(help_text="Set when a manager submitted below the minimum.")
    info_requests = InfoRequestSerializer(many=True, read_only=True)
    attachments = EscalationAttachmentSerializer(many=True, read_only=True)
    case_summary = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField(help_text="The actions you may take now.")
    engineering_clocks = serializers.SerializerMethodField(
        help_text="The team's internal targets for this escalation (none when the team sets none)."
    )
    revenue_at_risk = serializers.DecimalField(
        max_digits=14, decimal_places=2, read_only=True, allow_null=True
    )

    class Meta(EscalationListSerializer.Meta):
        fields = [
            *EscalationListSerializer.Meta.fields,
            *(f for f in services.PACKAGE_FIELDS if f not in EscalationListSerializer.Meta.fields),
            "quality_missing",
            "override",
            "fix_version",
            "resolution",
            "decline_reason",
            "withdraw_reason",
            "info_requests",
            "attachments",
            "case_summary",
            "allowed_actions",
            "engineering_clocks",
        ]
        read_only_fields = fields

    @extend_schema_field(EngineeringClockSerializer(many=True))
    def get_engineering_clocks(self, escalation: Escalation) -> list[dict[str, Any]]:
        rows = selectors.escalation_clocks(escalation)
        return list(EngineeringClockSerializer(rows, many=True, context=self.context).data)

    @extend_schema_field(OverrideSerializer(allow_null=True))
    def get_override(self, escalation: Escalation) -> dict | None:
        if escalation.override_at is None:
            return None
        return OverrideSerializer(
            {
                "by": _username(escalation.override_by),
                "reason": escalation.override_reason,
                "at": escalation.override_at,
            }
        ).data

    @extend_schema_field(EscalationCaseSerializer)
    def get_case_summary(self, escalation: Escalation) -> dict:
        events = getattr(escalation, selectors.ATTACHED_EVENTS, None)
        if events is None:
            events = list(escalation.attached_events.order_by("created_at", "id"))
        context = {**self.context, "attached_events": events}
        return EscalationCaseSerializer(escalation.case, context=context).data

    def get_allowed_actions(self, escalation: Escalation) -> list[str]:
        request = self.context.get("request")
        user = getattr(request, "user", None)
        side = permissions.side_of_user(user)
        return permissions.actions_for(user, escalation, side=side) if side else []


# --- Input serializers ------------------------------------------------------------------------------


class SubmitSerializer(serializers.Serializer):
    override_reason = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=5_000,
        help_text="Managers only: why the package goes to engineering below the team's minimum quality.",
    )


class AnswerSerializer(serializers.Serializer):
    answer = StrictCharField(max_length=50_000, help_text="The answer to engineering's open questions.")


class WithdrawSerializer(serializers.Serializer):
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=5_000)


class QuestionsSerializer(serializers.Serializer):
    questions = StrictCharField(max_length=50_000, help_text="What engineering needs to know.")


class ResolveSerializer(serializers.Serializer):
    resolution = StrictCharField(max_length=50_000, help_text="What was wrong and what was done.")
    fix_version = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=100,
        help_text="The release with the fix, if any.",
    )


class DeclineSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=5_000, help_text="Why engineering will not act on it.")


class LinkSerializer(serializers.Serializer):
    external_key = StrictCharField(
        required=False, allow_blank=True, default="", max_length=100, help_text="E.g. a Jira key: PAY-123."
    )
    external_url = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=500,
        help_text="An http(s) link to the ticket.",
    )

    def validate(self, attrs):
        if not attrs.get("external_key", "").strip() and not attrs.get("external_url", "").strip():
            raise ValidationError({"external_key": ["Give the external ticket's key or URL."]})
        return attrs


class EscalationCreateSerializer(RejectUnexpectedFields, serializers.ModelSerializer):
    """A new draft: the case, the engineering team and whatever of the package is known yet."""

    case = StrictCharField(max_length=40, help_text="The case key, e.g. CASE-12.")
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=EngineeringTeam.objects.all(), help_text="The engineering team's slug."
    )
    first_seen_at = bounds.DateTimeField(required=False, allow_null=True)
    last_seen_at = bounds.DateTimeField(required=False, allow_null=True)
    attached_events = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**31 - 1),
        required=False,
        max_length=200,
        help_text="Ids of the case's timeline entries to share with engineering.",
    )

    class Meta:
        model = Escalation
        fields = ["case", "team", *services.PACKAGE_FIELDS, "attached_events"]
        # Defaults to the case's tier and severity; the one open escalation per team is the service's rule.
        extra_kwargs = {"tier": {"required": False}, "severity": {"required": False}}
        validators: list = []

    def validate_case(self, value: str) -> Case:
        case = case_selectors.case_by_key(value)
        request = self.context.get("request")
        if case is None or (request is not None and not can_see_case(request.user, case)):
            raise ValidationError(f"There is no case {value}.")
        return case


class AttachmentUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="Text, JSON, PNG, JPEG, PDF, zip or gzip; checked by content.")


# --- Filters --------------------------------------------------------------------------------------


class EscalationFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=EscalationState.choices, label="State")
    team = django_filters.ModelChoiceFilter(
        queryset=EngineeringTeam.objects.all(), to_field_name="slug", label="Engineering team (slug)"
    )
    component = django_filters.CharFilter(field_name="component", label="Component")
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, label="Severity")
    tier = django_filters.ChoiceFilter(choices=Tier.choices, label="Customer tier")
    organisation = django_filters.ModelChoiceFilter(
        field_name="case__organisation", queryset=Organisation.objects.all(), label="Organisation id"
    )
    case = django_filters.CharFilter(method="filter_case", label="Case key, e.g. CASE-12")
    submitted_after = bounds.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = bounds.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="lt")
    has_external_key = django_filters.BooleanFilter(
        method="filter_has_external_key", label="Has an external key"
    )

    class Meta:
        model = Escalation
        fields: list[str] = []

    def filter_case(self, queryset, name, value):
        pk = Case.pk_from_key(value)
        return queryset.filter(case_id=pk) if pk is not None else queryset.none()

    def filter_has_external_key(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.exclude(external_key="") if value else queryset.filter(external_key="")


# The list's sort orders: a name -> a keyset ordering ending in a unique field.
ORDERINGS: dict[str, tuple[str, list[str]]] = {
    "newest": ("Newest first", ["-created_at", "-id"]),
    "oldest": ("Oldest first", ["created_at", "id"]),
    "updated": ("Recently changed", ["-updated_at", "-id"]),
    "severity": ("Severity, then oldest", ["severity", "created_at", "id"]),
}
DEFAULT_ORDERING = "newest"


# --- Schema pieces --------------------------------------------------------------------------------


class EscalationErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")


class EscalationConflictSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="Which escalation is already open; withdraw or finish it first.")
    code = serializers.ChoiceField(choices=[("conflict", "conflict")])


def _validation_error(name: str, fields: list[str]) -> type[serializers.Serializer]:
    """A 400 body: field name -> messages, plus ``detail``/``code`` for a refused action as a whole."""
    attrs: dict = {
        "detail": serializers.CharField(required=False, help_text="Why the request was refused."),
        "code": serializers.CharField(required=False, help_text="`illegal_transition` for a state refusal."),
        "non_field_errors": serializers.ListField(child=serializers.CharField(), required=False),
        "__doc__": f"Validation errors for {name}: each field lists its messages.",
    }
    for field in fields:
        attrs[field] = FieldErrorsField(required=False)  # a list, or per item/sub-field
    return type(f"{name}ValidationErrorSerializer", (serializers.Serializer,), attrs)


ListError = _validation_error(
    "EscalationList", [*EscalationFilter.base_filters, "ordering", "cursor", "page_size"]
)
ActionError = _validation_error("EscalationAction", ["state"])
SubmitError = _validation_error("EscalationSubmit", ["state", "quality_score", "override_reason"])
AnswerError = _validation_error("EscalationAnswer", ["state", "answer"])
WithdrawError = _validation_error("EscalationWithdraw", ["state", "reason"])
QuestionsError = _validation_error("EscalationQuestions", ["state", "questions"])
ResolveError = _validation_error("EscalationResolve", ["state", "resolution", "fix_version"])
DeclineError = _validation_error("EscalationDecline", ["state", "reason"])
LinkError = _validation_error("EscalationLink", ["state", "external_key", "external_url"])
UploadError = _validation_error("EscalationUpload", ["state", "file"])
CreateError = _validation_error(
    "EscalationCreate", ["case", "team", *services.PACKAGE_FIELDS, "attached_events"]
)

AUTH = {
    401: OpenApiResponse(
        EscalationErrorSerializer, description="Not authenticated (send a token or a session cookie)."
    )
}
FORBIDDEN_READ = {
    403: OpenApiResponse(EscalationErrorSerializer, description="Only support staff and engineers.")
}
FORBIDDEN_ENGINEERING = {
    403: OpenApiResponse(
        EscalationErrorSerializer, description="Only engineers take this action (support staff get 403)."
    )
}
FORBIDDEN_SUPPORT = {
    403: OpenApiResponse(
        EscalationErrorSerializer, description="Only support agents and managers take this action."
    )
}
NOT_FOUND = {
    404: OpenApiResponse(
        EscalationErrorSerializer,
        description="No such escalation, or not one you may see (outside your team scope, a draft).",
    )
}
CONFLICT = {
    409: OpenApiResponse(
        EscalationConflictSerializer,
        description="Another escalation to the same team is already open on this case.",
    )
}
ID_PARAMETER = OpenApiParameter(
    "id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The escalation id."
)
ORDERING_PARAMETER = OpenApiParameter(
    "ordering",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    required=False,
    enum=list(ORDERINGS),
    description=f"Sort order (default `{DEFAULT_ORDERING}`): "
    + "; ".join(f"`{name}`: {label}" for name, (label, _) in ORDERINGS.items()),
)


def _bad_request(serializer, description: str) -> dict:
    return {400: OpenApiResponse(serializer, description=description)}


def _action_schema(*, summary: str, description: str, request, error, side: str, conflict: bool = False):
    forbidden = FORBIDDEN_ENGINEERING if side == Side.ENGINEERING else FORBIDDEN_SUPPORT
    responses = {
        200: EscalationDetailSerializer,
        **_bad_request(
            error, "Invalid input, or the action is not allowed in the current state (under `state`)."
        ),
        **AUTH,
        **forbidden,
        **NOT_FOUND,
    }
    if conflict:
        responses.update(CONFLICT)
    return extend_schema(
        summary=summary,
        description=description,
        request=request,
        responses=responses,
        parameters=[ID_PARAMETER],
    )


# --- Views ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List escalations",
        description=(
            "Engineers see escalations that reached engineering (no drafts), of the teams in their scope; "
            "support staff see all. Filtered, sorted by `ordering`, keyset-paginated with `cursor`."
        ),
        parameters=[ORDERING_PARAMETER],
        responses={
            200: EscalationListSerializer,
            **_bad_request(ListError, "A bad filter, sort order or cursor."),
            **AUTH,
            **FORBIDDEN_READ,
        },
    ),
    retrieve=extend_schema(
        summary="Read an escalation",
        description="The package, its files and questions, and the case summary support chose to share.",
        parameters=[ID_PARAMETER],
        responses={200: EscalationDetailSerializer, **AUTH, **FORBIDDEN_READ, **NOT_FOUND},
    ),
)
class EscalationViewSet(viewsets.GenericViewSet):
    permission_classes = [EscalationAccess]
    pagination_class = KeysetPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = EscalationFilter
    serializer_class = EscalationDetailSerializer
    lookup_value_regex = r"\d+"
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]

    def get_queryset(self) -> QuerySet[Escalation]:
        return selectors.escalation_list(self.request.user)

    def get_keyset_ordering(self) -> list[str]:
        name = self.request.query_params.get("ordering") or DEFAULT_ORDERING
        if name not in ORDERINGS:
            raise ValidationError(
                {"ordering": [f"“{name}” is not a sort order; choose one of {', '.join(ORDERINGS)}."]}
            )
        return ORDERINGS[name][1]

    def get_serializer_class(self):
        return {
            "list": EscalationListSerializer,
            "submit": SubmitSerializer,
            "answer": AnswerSerializer,
            "withdraw": WithdrawSerializer,
            "request_info": QuestionsSerializer,
            "resolve": ResolveSerializer,
            "decline": DeclineSerializer,
            "link": LinkSerializer,
            "attachments": AttachmentUploadSerializer,
            "create": EscalationCreateSerializer,
        }.get(self.action, EscalationDetailSerializer)

    def get_object(self) -> Escalation:
        escalation = selectors.escalation_detail(self.request.user, pk=int(self.kwargs["pk"]))
        if escalation is None:
            raise NotFound(f"There is no escalation ESC-{self.kwargs['pk']} you may see.")
        return escalation

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _detail(self, escalation: Escalation, *, status_code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.escalation_detail(self.request.user, pk=escalation.pk)
        return Response(
            EscalationDetailSerializer(fresh, context=self.get_serializer_context()).data, status=status_code
        )

    def list(self, request):
        self.get_keyset_ordering()
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(
            EscalationListSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    @extend_schema(
        summary="Draft an escalation (support)",
        description=(
            "A draft package for `team` on `case`, scored against the rubric; tier and severity default "
            "to the case's. Submit it with `submit` once it is complete enough. A case that is resolved "
            "or closed, or that already has an open escalation to the team, is a 400."
        ),
        request=EscalationCreateSerializer,
        responses={
            201: EscalationDetailSerializer,
            **_bad_request(
                CreateError, "Invalid input, an unknown case or team, or the case cannot escalate."
            ),
            **AUTH,
            **FORBIDDEN_SUPPORT,
        },
    )
    @idempotent
    def create(self, request):
        if not permissions.has_side(request.user, Side.SUPPORT):
            self.permission_denied(request, message="Only support agents and managers can draft escalations.")
        data = self._input(EscalationCreateSerializer)
        escalation = services.create_draft(
            case=data.pop("case"),
            team=data.pop("team"),
            attached_events=data.pop("attached_events", ()),
            actor=request.user,
            now=timezone.now(),
            **data,
        )
        response = self._detail(escalation, status_code=status.HTTP_201_CREATED)
        response["Location"] = str(response.data["url"])
        return response

    def retrieve(self, request, pk: str | None = None):
        return Response(
            EscalationDetailSerializer(self.get_object(), context=self.get_serializer_context()).data
        )

    # --- Engineering actions

    @_action_schema(
        summary="Acknowledge",
        description="Engineering has seen the package and owns it (`submitted` → `acknowledged`).",
        request=None,
        error=ActionError,
        side=Side.ENGINEERING,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def acknowledge(self, request, pk: str | None = None):
        escalation = services.acknowledge(self.get_object(), actor=request.user, now=timezone.now())
        return self._detail(escalation)

    @_action_schema(
        summary="Ask support for more information",
        description=(
            "A bounce: the escalation goes to `needs_info` with the questions, and the case owner is told. "
            "Support's answer puts it back to `submitted`."
        ),
        request=QuestionsSerializer,
        error=QuestionsError,
        side=Side.ENGINEERING,
    )
    @action(detail=True, methods=["post"], url_path="request-info", filter_backends=[])
    def request_info(self, request, pk: str | None = None):
        data = self._input(QuestionsSerializer)
        escalation = services.request_info(
            self.get_object(), questions=data["questions"], actor=request.user, now=timezone.now()
        )
        return self._detail(escalation)

    @_action_schema(
        summary="Start work",
        description="`acknowledged` → `in_progress`.",
        request=None,
        error=ActionError,
        side=Side.ENGINEERING,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def start(self, request, pk: str | None = None):
        escalation = services.start(self.get_object(), actor=request.user, now=timezone.now())
        return self._detail(escalation)

    @_action_schema(
        summary="Resolve",
        description=(
            "`in_progress` → `resolved` with the resolution and the fix version; the case goes back to "
            "`in_progress` when nothing else is open with engineering, and its owner is told."
        ),
        request=ResolveSerializer,
        error=ResolveError,
        side=Side.ENGINEERING,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def resolve(self, request, pk: str | None = None):
        data = self._input(ResolveSerializer)
        escalation = services.resolve(self.get_object(), actor=request.user, now=timezone.now(), **data)
        return self._detail(escalation)

    @_action_schema(
        summary="Decline",
        description="Engineering will not act on it, and says why; the case goes back to support.",
        request=DeclineSerializer,
        error=DeclineError,
        side=Side.ENGINEERING,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def decline(self, request, pk: str | None = None):
        data = self._input(DeclineSerializer)
        escalation = services.decline(
            self.get_object(), reason=data["reason"], actor=request.user, now=timezone.now()
        )
        return self._detail(escalation)

    @_action_schema(
        summary="Link engineering's ticket",
        description="Record the external ticket (e.g. a Jira key and URL). Not a state change.",
        request=LinkSerializer,
        error=LinkError,
        side=Side.ENGINEERING,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def link(self, request, pk: str | None = None):
        data = self._input(LinkSerializer)
        escalation = services.link(self.get_object(), actor=request.user, now=timezone.now(), **data)
        return self._detail(escalation)

    # --- Support actions

    @_action_schema(
        summary="Submit to engineering",
        description=(
            "`draft` → `submitted`; the case moves to `waiting_on_engineering`. Below the team's minimum "
            "quality only a manager may submit, with `override_reason`."
        ),
        request=SubmitSerializer,
        error=SubmitError,
        side=Side.SUPPORT,
        conflict=True,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def submit(self, request, pk: str | None = None):
        data = self._input(SubmitSerializer)
        escalation = services.submit(
            self.get_object(), actor=request.user, now=timezone.now(), override_reason=data["override_reason"]
        )
        return self._detail(escalation)

    @_action_schema(
        summary="Answer engineering's questions",
        description="`needs_info` → `submitted`.",
        request=AnswerSerializer,
        error=AnswerError,
        side=Side.SUPPORT,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def answer(self, request, pk: str | None = None):
        data = self._input(AnswerSerializer)
        escalation = services.answer_info_request(
            self.get_object(), answer=data["answer"], actor=request.user, now=timezone.now()
        )
        return self._detail(escalation)

    @_action_schema(
        summary="Withdraw",
        description=(
            "Support takes the escalation back; the case returns to `in_progress` when nothing else is "
            "open with engineering."
        ),
        request=WithdrawSerializer,
        error=WithdrawError,
        side=Side.SUPPORT,
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def withdraw(self, request, pk: str | None = None):
        data = self._input(WithdrawSerializer)
        escalation = services.withdraw(
            self.get_object(), actor=request.user, now=timezone.now(), reason=data["reason"]
        )
        return self._detail(escalation)

    # --- Files

    @extend_schema(
        summary="Attach a file (support)",
        description="Multipart upload, size-limited; the content must match an allowed type.",
        parameters=[ID_PARAMETER],
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={
            201: EscalationAttachmentSerializer,
            **_bad_request(
                UploadError, "Too big, empty, a type not allowed, or the escalation is not editable."
            ),
            **AUTH,
            **FORBIDDEN_SUPPORT,
            **NOT_FOUND,
        },
    )
    @idempotent
    @action(detail=True, methods=["post"], filter_backends=[], parser_classes=[MultiPartParser, FormParser])
    def attachments(self, request, pk: str | None = None):
        if not permissions.has_side(request.user, Side.SUPPORT):
            self.permission_denied(request, message="Only support agents and managers can attach files.")
        data = self._input(AttachmentUploadSerializer)
        attachment = services.add_attachment(
            self.get_object(), upload=data["file"], actor=request.user, now=timezone.now()
        )
        return Response(
            EscalationAttachmentSerializer(attachment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Download a file",
        parameters=[
            ID_PARAMETER,
            OpenApiParameter(
                "attachment_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The file's id."
            ),
        ],
        responses={
            # The file's own (verified) content type: an image, a PDF, a log.
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, with its verified content type."
            ),
            **AUTH,
            **FORBIDDEN_READ,
            **NOT_FOUND,
        },
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"attachments/(?P<attachment_id>\d+)",
        url_name="attachment-download",
        filter_backends=[],
    )
    def attachment_download(self, request, pk: str | None = None, attachment_id: str | None = None):
        assert attachment_id is not None  # the route always captures it
        escalation = self.get_object()
        item = next((a for a in escalation.attachments.all() if a.pk == int(attachment_id)), None)
        if item is None:
            raise NotFound("There is no such file on this escalation.")
        return download_response(item.file, name=item.name, content_type=item.content_type)
