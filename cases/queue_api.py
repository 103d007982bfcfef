"""The REST API of the queue's saved views (``/api/saved-views/``) and bulk changes
(``/api/cases/bulk/``). Writes go through ``cases.saved_views`` and ``cases.bulk``."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from supportdesk.core.api import IsSupportStaff
from supportdesk.core.errors import DomainError
from supportdesk.core.idempotency import idempotent

from . import bulk, saved_views
from .api import (
    AUTH_ERRORS,
    NOT_FOUND,
    StaffAPIView,
    StrictCharField,
    TeamSlugField,
    _bad_request,
    _validation_error,
)
from .models import SavedView
from .queue_views import QUEUE_COLUMNS

# --- Saved views ------------------------------------------------------------------------------------


class CanEditSavedView(BasePermission):
    """Per view: anyone who sees it may read it; its owner (or a manager, for a team's) changes it."""

    message = "Only the view's owner (or a manager, for a team's view) can change or delete it."

    def has_object_permission(self, request, view, obj) -> bool:
        return request.method in SAFE_METHODS or saved_views.can_edit(request.user, obj)


class SavedViewSerializer(serializers.ModelSerializer):
    name = StrictCharField(max_length=80, error_messages={"blank": "A view needs a name."})
    team = TeamSlugField(
        required=False,
        allow_null=True,
        help_text="A team slug to share the view with; null for a personal view.",
    )
    query = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="The queue's filters and sort as a query string, e.g. `status=new&severity=P1&sort=due`. "
        "Filters: " + ", ".join(saved_views._allowed_params()) + ".",
    )
    columns = serializers.ListField(
        child=StrictCharField(),
        required=False,
        max_length=len(QUEUE_COLUMNS),
        help_text="Optional columns to show, from: " + ", ".join(QUEUE_COLUMNS) + " (empty: the default).",
    )
    position = serializers.IntegerField(min_value=0, max_value=10_000, required=False)
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    url = serializers.SerializerMethodField(help_text="The queue page showing this view.")
    count = serializers.SerializerMethodField(
        help_text=f"How many cases match the view now (at most {saved_views.COUNT_CAP}: see count_capped)."
    )
    count_capped = serializers.SerializerMethodField(
        help_text=f"True when more than {saved_views.COUNT_CAP} cases match."
    )
    editable = serializers.SerializerMethodField(help_text="Whether you may change or delete it.")

    class Meta:
        model = SavedView
        fields = [
            "id",
            "name",
            "team",
            "query",
            "columns",
            "position",
            "owner",
            "url",
            "count",
            "count_capped",
            "editable",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "owner", "created_at", "updated_at"]

    def _count(self, obj):
        return self.context.get("counts", {}).get(obj.pk)

    def get_url(self, obj) -> str:
        return saved_views.queue_url(obj.query, view=obj)

    def get_count(self, obj) -> int | None:
        count = self._count(obj)
        return None if count is None else min(count.value, saved_views.COUNT_CAP)

    def get_count_capped(self, obj) -> bool:
        count = self._count(obj)
        return bool(count and count.capped)

    def get_editable(self, obj) -> bool:
        return saved_views.can_edit(self.context["request"].user, obj)

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise ValidationError("A view needs a name.")
        return value.strip()

    def validate_query(self, value: str) -> str:
        query = saved_views.normalise_query(value)
        errors = saved_views.query_errors(query)
        if errors:
            raise ValidationError(errors)
        return query

    def validate_columns(self, value: list[str]) -> list[str]:
        errors = saved_views.column_errors(value)
        if errors:
            raise ValidationError(errors)
        return value

    def validate_team(self, value):
        user = self.context["request"].user
        unchanged = self.instance is not None and value is not None and value.pk == self.instance.team_id
        if value is not None and not unchanged and not saved_views.can_share_to(user, value):
            raise ValidationError(f"Only members of {value.name} and managers can share a view with it.")
        return value


SavedViewError = _validation_error("SavedView", ["name", "team", "query", "columns", "position"])


def _domain_to_400(exc: saved_views.SavedViewError) -> ValidationError:
    return ValidationError(exc.problems or {exc.field or "detail": [exc.message]})


@extend_schema_view(
    list=extend_schema(
        summary="List saved views",
        description="Your views and those shared with your teams (managers: every team's), each with "
        "its live case count.",
        responses={200: SavedViewSerializer, **AUTH_ERRORS},
    ),
    create=extend_schema(
        summary="Save a view",
        description="A personal view, or one shared with a team you belong to (managers: any team).",
        responses={201: SavedViewSerializer, **_bad_request(SavedViewError), **AUTH_ERRORS},
        examples=[
            OpenApiExample(
                "Breached P1s of tier 2",
                request_only=True,
                value={
                    "name": "Tier 2 P1",
                    "team": "tier-2",
                    "query": "severity=P1&team=tier-2&sort=due",
                    "columns": ["severity", "status", "assignee", "due"],
                },
            )
        ],
    ),
    retrieve=extend_schema(
        summary="Read a saved view", responses={200: SavedViewSerializer, **AUTH_ERRORS, **NOT_FOUND}
    ),
    partial_update=extend_schema(
        summary="Rename, re-share, re-filter or move a saved view",
        responses={200: SavedViewSerializer, **_bad_request(SavedViewError), **AUTH_ERRORS, **NOT_FOUND},
    ),
    destroy=extend_schema(summary="Delete a saved view", responses={204: None, **AUTH_ERRORS, **NOT_FOUND}),
)
class SavedViewViewSet(
    StaffAPIView,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [*StaffAPIView.permission_classes, CanEditSavedView]
    serializer_class = SavedViewSerializer
    keyset_ordering = ["position", "id"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return SavedView.objects.none()
        return saved_views.visible_views(self.request.user)

    def _with_counts(self, views) -> dict:
        live = saved_views.counts({v.pk: v.query for v in views}, request=self.request)
        return {**self.get_serializer_context(), "counts": live}

    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(
            SavedViewSerializer(page, many=True, context=self._with_counts(page)).data
        )

    def retrieve(self, request, pk=None):
        view = self.get_object()
        return Response(SavedViewSerializer(view, context=self._with_counts([view])).data)

    @idempotent
    def create(self, request):
        serializer = SavedViewSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            view = saved_views.create_view(
                owner=request.user,
                name=data["name"],
                query=data.get("query", ""),
                columns=data.get("columns", []),
                team=data.get("team"),
                now=timezone.now(),
            )
        except saved_views.SavedViewError as exc:
            raise _domain_to_400(exc) from exc
        return Response(
            SavedViewSerializer(view, context=self._with_counts([view])).data, status=status.HTTP_201_CREATED
        )

    def partial_update(self, request, pk=None):
        view = self.get_object()
        serializer = SavedViewSerializer(
            view, data=request.data, partial=True, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        unknown = sorted(set(request.data) - set(serializer.fields)) if hasattr(request.data, "keys") else []
        read_only = sorted(
            k for k in request.data if k in serializer.fields and serializer.fields[k].read_only
        )
        if unknown or read_only:
            raise ValidationError({k: ["This field cannot be changed."] for k in [*unknown, *read_only]})
        try:
            view = saved_views.update_view(
                view, actor=request.user, now=timezone.now(), **serializer.validated_data
            )
        except saved_views.SavedViewError as exc:
            raise _domain_to_400(exc) from exc
        return Response(SavedViewSerializer(view, context=self._with_counts([view])).data)

    def perform_destroy(self, instance):
        saved_views.delete_view(instance, actor=self.request.user)


# --- Bulk changes -----------------------------------------------------------------------------------


class BulkRequestSerializer(serializers.Serializer):
    keys = serializers.ListField(
        child=StrictCharField(max_length=40),
        required=False,
        max_length=bulk.MAX_CASES,
        help_text=f"The cases to change, by key (at most {bulk.MAX_CASES}). Give `keys` or `filter`.",
    )
    versions = serializers.DictField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        help_text="Optional: the version you saw per key; a case changed since is refused, not overwritten.",
    )
    filter = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=2000,
        help_text="Instead of `keys`: every case matching this queue query string (as `/api/cases/` "
        f"takes it), at most {bulk.MAX_CASES}; more is refused as a whole.",
    )
    action = serializers.ChoiceField(choices=bulk.ACTION_CHOICES)
    value = serializers.JSONField(
        required=False,
        allow_null=True,
        help_text="assign: a username, `me`, or null to unassign; team: a slug or null; status and "
        "severity: the code; add_tags / remove_tags: a list of tags (or a comma-separated string); "
        "macro: the macro's id; link_incident: an active major incident's key (INC-3).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Other apps' actions too (cases.extensions.register_bulk_action), known once apps are ready;
        # not those that ask for a form first (the queue's bar only).
        self.fields["action"].choices = bulk.api_action_choices()

    def validate_filter(self, value: str) -> str:
        errors = saved_views.query_errors(value)
        if errors:
            raise ValidationError(errors)
        return value

    def validate(self, attrs):
        if ("keys" in attrs) == ("filter" in attrs):
            raise ValidationError({"keys": ["Give either `keys` or `filter`."]})
        try:
            attrs["parsed"] = bulk.parse_value(
                attrs["action"], attrs.get("value"), actor=self.context["request"].user
            )
        except DomainError as exc:
            raise ValidationError({"value": [exc.message]}) from exc
        return attrs


class BulkChangeSerializer(serializers.Serializer):
    key = serializers.CharField()
    change = serializers.CharField(help_text="What changed, in words.")


class BulkReasonSerializer(serializers.Serializer):
    key = serializers.CharField()
    reason = serializers.CharField(help_text="Why nothing changed.")


class BulkResultSerializer(serializers.Serializer):
    action = serializers.CharField()
    changed = BulkChangeSerializer(many=True)
    unchanged = BulkReasonSerializer(many=True, help_text="Cases that already were so.")
    refused = BulkReasonSerializer(many=True, help_text="Cases the rules refused, and why.")


BulkError = _validation_error("BulkRequest", ["keys", "versions", "filter", "action", "value"])


class BulkChangeView(APIView):
    permission_classes = [IsSupportStaff]

    @extend_schema(
        summary="Change many cases at once",
        description=(
            "Applies one action to each case through the same rules as one by one (lifecycle, "
            "assignment, version checks), each case in its own transaction with its own timeline "
            "events. One case's refusal does not stop the others: the answer lists what changed, "
            "what already was so and what was refused, with the reason."
        ),
        request=BulkRequestSerializer,
        responses={200: BulkResultSerializer, **_bad_request(BulkError), **AUTH_ERRORS},
        examples=[
            OpenApiExample(
                "Take three cases",
                request_only=True,
                value={"keys": ["CASE-7", "CASE-8", "CASE-9"], "action": "assign", "value": "me"},
            ),
            OpenApiExample(
                "Result",
                response_only=True,
                value={
                    "action": "status",
                    "changed": [{"key": "CASE-7", "change": "status Triaged → In progress"}],
                    "unchanged": [],
                    "refused": [
                        {
                            "key": "CASE-9",
                            "reason": "A case cannot go from “closed” to “in_progress”. Allowed next: none.",
                        }
                    ],
                },
            ),
        ],
    )
    def post(self, request):
        serializer = BulkRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            if "filter" in data:
                targets = bulk.targets_from_filter(data["filter"], request=request)
            else:
                targets = bulk.targets_from_keys(data["keys"], versions=data.get("versions"))
        except DomainError as exc:
            raise ValidationError({exc.field or "detail": [exc.message]}) from exc
        result = bulk.apply(targets, data["action"], data["parsed"], actor=request.user, now=timezone.now())
        return Response(result.as_dict())
