"""The major-incidents REST API (``/api/incidents/``): list, read (with the linked cases, the
updates, the cadence and the figures), declare, link cases, post an update, change the cadence,
resolve, and the suggested cases.

The same rules as the pages (``incidents.permissions``): support staff see, declare, link and post;
resolving and the cadence are the commander's or a manager's (403 for others); engineers and
customers get 403. Every write goes through ``incidents.services``; domain errors are 400 in the
project's exception handler. The list is a keyset page, newest first.
"""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.urls import reverse
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
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response

from cases import selectors as case_selectors
from cases.api import KeysetPagination, StrictCharField
from cases.models import KEY_PREFIX as CASE_KEY_PREFIX
from cases.models import Case, Severity
from cases.permissions import can_see_case
from supportdesk.core.api import IsSupportStaff, RejectUnexpectedFields
from supportdesk.core.idempotency import idempotent
from supportdesk.core.parsers import BoundedJSONParser
from supportdesk.core.schema import FieldErrorsField

from . import permissions, selectors, services
from .models import CADENCE_CHOICES, IncidentStatus, MajorIncident

KEY_REGEX = r"[Ii][Nn][Cc]-\d{1,18}"
MAX_CASES = 500

# --- Output ---------------------------------------------------------------------------------------


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


class IncidentSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True, help_text="INC-<id>.")
    url = serializers.SerializerMethodField(help_text="This incident in the API.")
    web_url = serializers.SerializerMethodField(help_text="The incident's page in the browser.")
    commander = serializers.SlugRelatedField(slug_field="username", read_only=True)
    declared_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    origin_case = serializers.SerializerMethodField(help_text="The case it was declared from, if any.")
    case_count = serializers.IntegerField(read_only=True, help_text="Linked cases.")
    update_overdue = serializers.SerializerMethodField(help_text="Its next public update is overdue now.")

    class Meta:
        model = MajorIncident
        fields = [
            "key",
            "url",
            "web_url",
            "title",
            "severity",
            "product_area",
            "status",
            "commander",
            "declared_by",
            "declared_at",
            "started_at",
            "resolved_at",
            "origin_case",
            "cadence_minutes",
            "next_update_due_at",
            "update_overdue",
            "case_count",
        ]
        read_only_fields = fields

    def get_url(self, incident: MajorIncident) -> str:
        return _absolute(
            self.context.get("request"), reverse("incidents_api:incident-detail", args=[incident.key])
        )

    def get_web_url(self, incident: MajorIncident) -> str:
        return _absolute(self.context.get("request"), reverse("incidents:detail", args=[incident.key]))

    def get_origin_case(self, incident: MajorIncident) -> str | None:
        return f"{CASE_KEY_PREFIX}{incident.origin_case_id}" if incident.origin_case_id else None

    def get_update_overdue(self, incident: MajorIncident) -> bool:
        due = incident.next_update_due_at
        return bool(incident.is_active and due is not None and due <= self.context["now"])


class IncidentCaseSerializer(serializers.ModelSerializer):
    key = serializers.CharField(read_only=True)
    organisation = serializers.CharField(source="organisation.name", read_only=True)
    tier = serializers.CharField(source="organisation.tier", read_only=True)
    assignee = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Case
        fields = [
            "key",
            "title",
            "status",
            "severity",
            "organisation",
            "tier",
            "assignee",
            "created_at",
            "next_due_at",
            "next_due_target",
            "next_due_state",
        ]
        read_only_fields = fields


class IncidentUpdateOutSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    body = serializers.CharField(read_only=True)
    public = serializers.BooleanField(source="is_public", read_only=True)
    closing = serializers.BooleanField(read_only=True, help_text="The closing message of the resolution.")
    author = serializers.CharField(source="author.username", read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    due_at = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="Public updates: when it was due by the incident's cadence.",
    )
    on_time = serializers.BooleanField(
        read_only=True, allow_null=True, help_text="Posted by its due instant."
    )
    reached = serializers.IntegerField(read_only=True, help_text="Cases it was posted to as a public reply.")
    missed = serializers.IntegerField(read_only=True, help_text="Cases that could not take it.")
    pending = serializers.IntegerField(read_only=True, help_text="Cases it is still being posted to.")


class IncidentFiguresSerializer(serializers.Serializer):
    cases = serializers.IntegerField(help_text="Cases affected (linked).")
    organisations = serializers.IntegerField(help_text="Customers (organisations) affected.")
    first_update_at = serializers.DateTimeField(allow_null=True)
    time_to_first_update = serializers.DurationField(
        allow_null=True, help_text="From the declaration to the first public update."
    )
    public_updates = serializers.IntegerField()
    updates_on_time = serializers.IntegerField(help_text="Public updates posted by their due instant.")
    own_cadence_adherence = serializers.FloatField(allow_null=True)
    reminders = serializers.IntegerField(help_text="Overdue reminders sent to the commander.")
    cadence_met = serializers.IntegerField(
        help_text="The cases' update-cadence clocks met on time while linked."
    )
    cadence_completed = serializers.IntegerField(help_text="Those clocks completed (met or breached).")
    cadence_adherence = serializers.FloatField(
        allow_null=True, help_text="cadence_met / cadence_completed (null when none completed)."
    )


class IncidentDetailSerializer(IncidentSerializer):
    cases = serializers.SerializerMethodField()
    updates = serializers.SerializerMethodField(help_text="Newest first.")
    figures = serializers.SerializerMethodField()
    allowed_actions = serializers.SerializerMethodField(help_text="What you may do with it now.")

    class Meta(IncidentSerializer.Meta):
        fields = [*IncidentSerializer.Meta.fields, "cases", "updates", "figures", "allowed_actions"]
        read_only_fields = fields

    @extend_schema_field(IncidentCaseSerializer(many=True))
    def get_cases(self, incident: MajorIncident) -> list[dict]:
        return IncidentCaseSerializer(selectors.linked_cases(incident), many=True).data

    @extend_schema_field(IncidentUpdateOutSerializer(many=True))
    def get_updates(self, incident: MajorIncident) -> list[dict]:
        return IncidentUpdateOutSerializer(selectors.updates(incident), many=True).data

    @extend_schema_field(IncidentFiguresSerializer)
    def get_figures(self, incident: MajorIncident) -> dict:
        return IncidentFiguresSerializer(selectors.incident_figures(incident).as_dict()).data

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_allowed_actions(self, incident: MajorIncident) -> list[str]:
        user = self.context["request"].user
        if not incident.is_active:
            return []
        allowed = ["link", "updates"] if permissions.can_work(user, incident) else []
        if permissions.can_command(user, incident):
            allowed += ["cadence", "resolve"]
        return allowed


class IncidentRefusalSerializer(serializers.Serializer):
    key = serializers.CharField()
    reason = serializers.CharField()


class IncidentOutcomeSerializer(serializers.Serializer):
    done = serializers.ListField(child=serializers.CharField(), help_text="The cases changed.")
    refused = IncidentRefusalSerializer(many=True, help_text="The cases that could not be changed, and why.")


class IncidentDeclaredSerializer(serializers.Serializer):
    incident = IncidentDetailSerializer()
    linked = IncidentOutcomeSerializer(help_text="The cases given in `cases`: linked, or refused and why.")


class IncidentPostedSerializer(serializers.Serializer):
    update = IncidentUpdateOutSerializer()
    posted = IncidentOutcomeSerializer(
        help_text="Public: the cases it became a public reply on, and those refused."
    )


class IncidentResolvedSerializer(serializers.Serializer):
    incident = IncidentDetailSerializer()
    resolved = IncidentOutcomeSerializer(
        help_text="The linked cases resolved, and those that could not be (why)."
    )


def _outcome(outcome: services.Outcome) -> dict:
    return {"done": outcome.done, "refused": [{"key": k, "reason": r} for k, r in outcome.refused]}


# --- Input ----------------------------------------------------------------------------------------


class CaseKeysField(serializers.ListField):
    def __init__(self, **kwargs):
        kwargs.setdefault("child", StrictCharField(max_length=40))
        kwargs.setdefault("max_length", MAX_CASES)
        super().__init__(**kwargs)


class IncidentDeclareSerializer(RejectUnexpectedFields, serializers.Serializer):
    title = StrictCharField(max_length=services.MAX_TITLE, help_text="What is broken, as customers see it.")
    severity = serializers.ChoiceField(choices=Severity.choices, default=Severity.P1)
    product_area = StrictCharField(max_length=100, required=False, allow_blank=True, default="")
    commander = StrictCharField(
        required=False, help_text="The commander's username (a support agent or manager); default: you."
    )
    cadence_minutes = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=services.MIN_CADENCE,
        max_value=services.MAX_CADENCE,
        help_text=f"Minutes between customer updates (e.g. {', '.join(map(str, CADENCE_CHOICES[:4]))}); "
        "default by severity: P1 30, P2 120, P3 480, P4 1440.",
    )
    from_case = StrictCharField(
        required=False, max_length=40, help_text="The case it is declared from (linked at once; must link)."
    )
    cases = CaseKeysField(
        required=False,
        help_text=f"More cases to link at once (at most {MAX_CASES}); those refused are listed.",
    )

    def validate_commander(self, value: str):
        user = case_selectors.assignable_users().filter(username=value).first()
        if user is None:
            raise ValidationError(f"There is no support agent with the username “{value}”.")
        return user


class IncidentLinkSerializer(serializers.Serializer):
    cases = CaseKeysField(min_length=1, help_text=f"The case keys to link (at most {MAX_CASES}).")


class IncidentPostUpdateSerializer(serializers.Serializer):
    body = StrictCharField(
        max_length=services.MAX_BODY, help_text="Written once; public: posted to every case."
    )
    public = serializers.BooleanField(
        help_text="true: a public reply on every linked case (mailed to each requester); "
        "false: an internal note."
    )


class IncidentCadenceSerializer(serializers.Serializer):
    cadence_minutes = serializers.IntegerField(min_value=services.MIN_CADENCE, max_value=services.MAX_CADENCE)


class IncidentResolveSerializer(serializers.Serializer):
    closing_message = StrictCharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=services.MAX_BODY,
        help_text="Posted to every linked case first (empty: nothing is posted).",
    )
    resolve_cases = serializers.BooleanField(
        default=True, help_text="Resolve every linked case still open, each through its lifecycle."
    )


class IncidentFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=IncidentStatus.choices, label="Status")
    severity = django_filters.MultipleChoiceFilter(choices=Severity.choices, label="Severity")

    class Meta:
        model = MajorIncident
        fields: list[str] = []


# --- Schema pieces --------------------------------------------------------------------------------


class IncidentErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")


def _validation_error(name: str, fields: list[str]) -> type[serializers.Serializer]:
    attrs: dict = {
        "detail": serializers.CharField(required=False, help_text="Why the request was refused."),
        "code": serializers.CharField(required=False, help_text="`invalid_incident` for a refused change."),
        "non_field_errors": serializers.ListField(child=serializers.CharField(), required=False),
        "__doc__": f"Validation errors for {name}: each field lists its messages.",
    }
    for field in fields:
        attrs[field] = FieldErrorsField(required=False)
    return type(f"{name}ValidationErrorSerializer", (serializers.Serializer,), attrs)


ListError = _validation_error("IncidentList", ["status", "severity", "cursor", "page_size"])
DeclareError = _validation_error("IncidentDeclare", [*IncidentDeclareSerializer().fields, "case"])
LinkError = _validation_error("IncidentLink", ["cases"])
UpdateError = _validation_error("IncidentUpdate", ["body", "public"])
CadenceError = _validation_error("IncidentCadence", ["cadence_minutes"])
ResolveError = _validation_error("IncidentResolve", ["closing_message", "resolve_cases"])

AUTH = {
    401: OpenApiResponse(
        IncidentErrorSerializer, description="Not authenticated (send a token or a session cookie)."
    ),
    403: OpenApiResponse(IncidentErrorSerializer, description="Only support agents and managers."),
}
COMMAND = {
    403: OpenApiResponse(
        IncidentErrorSerializer,
        description="Only the incident's commander or a manager (or not support staff).",
    )
}
NOT_FOUND = {
    404: OpenApiResponse(IncidentErrorSerializer, description="No such incident (or a malformed key).")
}
KEY = OpenApiParameter(
    "key", OpenApiTypes.STR, OpenApiParameter.PATH, description="The incident key, e.g. INC-3."
)


def _bad(
    serializer, description: str = "Invalid input, or the incident is resolved (under `detail`)."
) -> dict:
    return {400: OpenApiResponse(serializer, description=description)}


# --- Views ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List major incidents",
        description="Newest first, keyset-paginated with `cursor`; filter by `status` and `severity`.",
        responses={200: IncidentSerializer, **_bad(ListError, "A bad filter or cursor."), **AUTH},
    ),
    retrieve=extend_schema(
        summary="Read a major incident",
        description="With its linked cases (organisation, tier, SLA state), its updates, its cadence and its "
        "figures (cases and customers affected, time to the first customer update, cadence adherence).",
        parameters=[KEY],
        responses={200: IncidentDetailSerializer, **AUTH, **NOT_FOUND},
    ),
)
class IncidentViewSet(viewsets.GenericViewSet):
    permission_classes = [IsSupportStaff]
    pagination_class = KeysetPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = IncidentFilter
    serializer_class = IncidentDetailSerializer
    lookup_field = "key"
    lookup_value_regex = KEY_REGEX
    parser_classes = [BoundedJSONParser]

    def get_queryset(self) -> QuerySet[MajorIncident]:
        return selectors.incident_list()

    def get_keyset_ordering(self) -> list[str]:
        return ["-declared_at", "-id"]

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "now": timezone.now()}

    def get_serializer_class(self):
        return {
            "list": IncidentSerializer,
            "create": IncidentDeclareSerializer,
            "link": IncidentLinkSerializer,
            "updates": IncidentPostUpdateSerializer,
            "cadence": IncidentCadenceSerializer,
            "resolve": IncidentResolveSerializer,
        }.get(self.action, IncidentDetailSerializer)

    def get_object(self) -> MajorIncident:
        incident = selectors.incident_by_key(self.kwargs["key"])
        if incident is None:
            raise NotFound(f"There is no incident {self.kwargs['key']}.")
        return incident

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _detail(self, incident: MajorIncident) -> dict:
        incident = selectors.incident_list().get(pk=incident.pk)
        return IncidentDetailSerializer(incident, context=self.get_serializer_context()).data

    def _cases(self, keys: list[str]) -> tuple[list[Case], list[tuple[str, str]]]:
        wanted = list(dict.fromkeys(k.strip().upper() for k in keys))
        pks = {key: Case.pk_from_key(key) for key in wanted}
        found = Case.objects.in_bulk([pk for pk in pks.values() if pk is not None])
        cases, unknown = [], []
        for key, pk in pks.items():
            case = found.get(pk)
            if case is None or not can_see_case(self.request.user, case):
                unknown.append((key, "no such case"))
            else:
                cases.append(case)
        return cases, unknown

    def list(self, request):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(
            IncidentSerializer(page, many=True, context=self.get_serializer_context()).data
        )

    def retrieve(self, request, key: str | None = None):
        return Response(self._detail(self.get_object()))

    @extend_schema(
        summary="Declare a major incident",
        description="Optionally from a case (`from_case`, linked at once: it must be linkable) and with more "
        "cases (`cases`, those that cannot be linked are listed with the reason). The first public update is "
        "due one cadence from now.",
        request=IncidentDeclareSerializer,
        responses={201: IncidentDeclaredSerializer, **_bad(DeclareError), **AUTH},
        examples=[
            OpenApiExample(
                "From the queue",
                request_only=True,
                value={"title": "Checkout returns 502", "severity": "P1", "cases": ["CASE-7", "CASE-9"]},
            )
        ],
    )
    @idempotent
    def create(self, request):
        data = self._input(IncidentDeclareSerializer)
        origin = None
        if data.get("from_case"):
            found, _ = self._cases([data["from_case"]])
            if not found:
                raise ValidationError({"from_case": [f"There is no case {data['from_case']}."]})
            origin = found[0]
        cases, unknown = self._cases(data.get("cases", []))
        incident, outcome = services.declare_with_cases(
            cases=cases,
            actor=request.user,
            now=timezone.now(),
            title=data["title"],
            severity=data["severity"],
            product_area=data["product_area"],
            commander=data.get("commander") or request.user,
            cadence_minutes=data.get("cadence_minutes"),
            from_case=origin,
        )
        outcome.refused = unknown + outcome.refused
        headers = {"Location": reverse("incidents_api:incident-detail", args=[incident.key])}
        return Response(
            {"incident": self._detail(incident), "linked": _outcome(outcome)},
            status=status.HTTP_201_CREATED,
            headers=headers,
        )

    @extend_schema(
        summary="Link cases",
        description="Each linked case gets an event on its timeline; a case already linked, closed, or "
        "part of another active incident is refused with the reason.",
        request=IncidentLinkSerializer,
        parameters=[KEY],
        responses={200: IncidentOutcomeSerializer, **_bad(LinkError), **AUTH, **NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def link(self, request, key: str | None = None):
        incident = self.get_object()
        if not permissions.can_work(request.user, incident):
            raise PermissionDenied("You may not link cases to this incident.")
        data = self._input(IncidentLinkSerializer)
        cases, unknown = self._cases(data["cases"])
        outcome = services.link_cases(incident, cases, actor=request.user, now=timezone.now())
        outcome.refused = unknown + outcome.refused
        return Response(_outcome(outcome))

    @extend_schema(
        summary="Post an update",
        description="Written once. Public: posted to every linked case as that case's public reply "
        "(mailed to its requester in its own thread, meeting its update cadence), and it meets the "
        "incident's own cadence; internal: kept on the incident. Answers when every case has it (or "
        "said why not). Not idempotent: a retried request posts a second update.",
        request=IncidentPostUpdateSerializer,
        parameters=[KEY],
        responses={201: IncidentPostedSerializer, **_bad(UpdateError), **AUTH, **NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def updates(self, request, key: str | None = None):
        incident = self.get_object()
        if not permissions.can_work(request.user, incident):
            raise PermissionDenied("You may not post updates on this incident.")
        data = self._input(IncidentPostUpdateSerializer)
        outcome = services.post_update(
            incident, body=data["body"], public=data["public"], actor=request.user, now=timezone.now()
        )
        update = selectors.updates(incident).get(pk=outcome.update.pk)
        return Response(
            {"update": IncidentUpdateOutSerializer(update).data, "posted": _outcome(outcome)},
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Change the update cadence",
        description="The commander's or a manager's. The next update is due that long after the last "
        "public one.",
        request=IncidentCadenceSerializer,
        parameters=[KEY],
        responses={200: IncidentDetailSerializer, **_bad(CadenceError), **AUTH, **COMMAND, **NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def cadence(self, request, key: str | None = None):
        incident = self.get_object()
        if not permissions.can_command(request.user, incident):
            raise PermissionDenied(permissions.COMMAND_REFUSED)
        data = self._input(IncidentCadenceSerializer)
        incident = services.set_cadence(
            incident, minutes=data["cadence_minutes"], actor=request.user, now=timezone.now()
        )
        return Response(self._detail(incident))

    @extend_schema(
        summary="Resolve the incident",
        description="The commander's or a manager's. Posts the closing message to every linked case "
        "first, then resolves every linked case still open through its lifecycle; those that cannot "
        "be are listed.",
        request=IncidentResolveSerializer,
        parameters=[KEY],
        responses={200: IncidentResolvedSerializer, **_bad(ResolveError), **AUTH, **COMMAND, **NOT_FOUND},
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def resolve(self, request, key: str | None = None):
        incident = self.get_object()
        if not permissions.can_command(request.user, incident):
            raise PermissionDenied(permissions.COMMAND_REFUSED)
        data = self._input(IncidentResolveSerializer)
        outcome = services.resolve(
            incident,
            actor=request.user,
            now=timezone.now(),
            closing_message=data["closing_message"],
            resolve_cases=data["resolve_cases"],
        )
        return Response({"incident": self._detail(incident), "resolved": _outcome(outcome)})

    @extend_schema(
        summary="Suggested cases",
        description="Open cases of the incident's severity and product area opened since it began, in no "
        "active incident, whose text is like the incident's; most similar first (at most 20).",
        parameters=[KEY],
        responses={200: IncidentCaseSerializer(many=True), **AUTH, **NOT_FOUND},
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def suggestions(self, request, key: str | None = None):
        incident = self.get_object()
        return Response(IncidentCaseSerializer(selectors.suggested_cases(incident), many=True).data)
