"""The "Configuration changes" page and API: the configuration audit trail, for managers and admins."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError

from . import audit_selectors
from .api import IsManager
from .decorators import role_required
from .roles import is_manager

PAGE_SIZE = 25


class ChangeFilterForm(forms.Form):
    """Which changes: of one kind of object, by one person (or the system)."""

    kind = forms.ChoiceField(label="Kind of object", required=False)
    user = forms.ChoiceField(label="Changed by", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", "Any"), *audit_selectors.kinds()]
        self.fields["user"].choices = [("", "Anyone"), *audit_selectors.actors()]


@require_safe
@role_required(is_manager, "Managers and admins only.")
def config_changes(request):
    form = ChangeFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(
            request, "core/config_changes.html", {"form": form, "page": None, "changes": []}, status=400
        )
    data = form.cleaned_data if form.is_bound else {}
    index = audit_selectors.change_index(kind=data.get("kind") or None, user=data.get("user") or None)
    page = Paginator(index, PAGE_SIZE).get_page(request.GET.get("page"))
    changes = audit_selectors.describe(list(page.object_list))
    return render(request, "core/config_changes.html", {"form": form, "page": page, "changes": changes})


# --- API -----------------------------------------------------------------------------------------


class FieldChangeSerializer(serializers.Serializer):
    field = serializers.CharField()
    # A declared field: DRF's metaclass takes it off the class, the stubs see Field.label.
    label = serializers.CharField()  # type: ignore[assignment]
    before = serializers.CharField(allow_null=True, help_text="Absent before (creation): null.")
    after = serializers.CharField(allow_null=True, help_text="Absent after (deletion): null.")

    def to_representation(self, instance):
        return {
            "field": instance.field,
            "label": instance.label,
            "before": instance.before.as_json() if instance.before else None,
            "after": instance.after.as_json() if instance.after else None,
        }


class ConfigChangeSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="kind:history id, unique across kinds.")
    kind = serializers.CharField(help_text="app_label.model of the changed object, e.g. sla.slapolicy.")
    kind_label = serializers.CharField()
    action = serializers.ChoiceField(choices=sorted(audit_selectors.ACTIONS.values()))
    at = serializers.DateTimeField()
    user_id = serializers.IntegerField(allow_null=True, help_text="Who changed it; null: the system.")
    actor = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    object_id = serializers.IntegerField()
    object_label = serializers.CharField()
    changes = FieldChangeSerializer(many=True)
    note = serializers.CharField(allow_blank=True)


class ConfigChangeErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong.")


class ChangeFilterErrorSerializer(serializers.Serializer):
    """The filter that is not one of the choices, with its message."""

    kind = serializers.ListField(child=serializers.CharField(), required=False)
    user = serializers.ListField(child=serializers.CharField(), required=False)


@extend_schema_view(
    get=extend_schema(
        summary="Configuration changes (the audit trail), newest first",
        description=(
            "Every recorded change to SLA policies, calendars and holidays, organisations, teams, "
            "engineering teams, webhook subscriptions, roles and API tokens: who, when, and the "
            "changed fields before and after. Managers and admins only."
        ),
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, description="Only this kind (app_label.model)."),
            OpenApiParameter("user", OpenApiTypes.STR, description="A user id, or `system`."),
        ],
        responses={
            200: ConfigChangeSerializer(many=True),
            400: OpenApiResponse(ChangeFilterErrorSerializer, description="An unknown kind or person."),
            401: OpenApiResponse(ConfigChangeErrorSerializer, description="Not authenticated."),
            403: OpenApiResponse(ConfigChangeErrorSerializer, description="Managers and admins only."),
            404: OpenApiResponse(ConfigChangeErrorSerializer, description="No such page."),
        },
    )
)
class ConfigChangeList(generics.ListAPIView):
    permission_classes = [IsManager]
    serializer_class = ConfigChangeSerializer
    filter_backends: list = []

    def get_queryset(self):
        form = ChangeFilterForm(self.request.query_params)
        if not form.is_valid():
            raise ValidationError(form.errors)
        data = form.cleaned_data
        return audit_selectors.change_index(kind=data.get("kind") or None, user=data.get("user") or None)

    def list(self, request, *args, **kwargs):
        index = self.get_queryset()
        rows = self.paginate_queryset(index)
        return self.get_paginated_response(
            self.get_serializer(audit_selectors.describe(rows), many=True).data
        )
