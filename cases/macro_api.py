"""The macros in the REST API: the macros a person may use, and applying one to a case.

Applying goes through ``cases.macros.apply_macro`` (the case services, one timeline event per
change, the lifecycle checks); the answer lists what changed and what was refused and why.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from supportdesk.core import logcontext
from supportdesk.core import selectors as core_selectors
from supportdesk.core.api import IsSupportStaff
from supportdesk.core.idempotency import idempotent

from . import macros, selectors
from .api import (
    AUTH_ERRORS,
    KEY_PARAMETER,
    NOT_FOUND,
    CaseEventSerializer,
    CaseSerializer,
    StrictCharField,
    _bad_request,
    _validation_error,
)
from .models import MACRO_STATUSES, Case, Macro, Team
from .permissions import can_see_case


class MacroSerializer(serializers.ModelSerializer):
    shared = serializers.BooleanField(
        source="is_shared", read_only=True, help_text="Shared with every agent (no owner)."
    )
    owner: serializers.SlugRelatedField[User] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="null when shared."
    )
    set_team: serializers.SlugRelatedField[Team] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True, help_text="A team slug, or null."
    )
    set_status = serializers.ChoiceField(
        read_only=True,
        choices=[("", "keep"), *MACRO_STATUSES],
        help_text='"" keeps the status.',
    )
    add_tags = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Tag names added to the case."
    )
    rendered_body = serializers.SerializerMethodField(
        help_text="The reply filled in for the case named by `?case=` (null without it)."
    )

    class Meta:
        model = Macro
        fields = [
            "id",
            "name",
            "body",
            "rendered_body",
            "shared",
            "owner",
            "set_status",
            "add_tags",
            "set_team",
            "updated_at",
        ]
        read_only_fields = fields

    def get_rendered_body(self, macro: Macro) -> str | None:
        case = self.context.get("case")
        if case is None:
            return None
        return macros.render_macro(macro, case, agent=self.context["request"].user)


def _visible_case(request, key: str) -> Case:
    """The case by key, as the case endpoints find it: 404 when there is none, 403 when it is not
    the person's to see."""
    case = selectors.case_by_key(key)
    if case is None:
        raise NotFound(f"There is no case {key}.")
    if not can_see_case(request.user, case):
        raise PermissionDenied("You may not see this case.")
    logcontext.bind(case_key=case.key)
    return case


@extend_schema(
    summary="The macros you may use",
    description=(
        "Shared macros and your own, by name. With `?case=CASE-12` each carries `rendered_body`: its "
        "reply with the placeholders filled in for that case, as you would send it."
    ),
    parameters=[
        OpenApiParameter(
            "case",
            OpenApiTypes.STR,
            OpenApiParameter.QUERY,
            required=False,
            description="A case key: fill in each macro's placeholders for this case.",
        )
    ],
    responses={
        200: MacroSerializer(many=True),
        **_bad_request(_validation_error("MacroList", ["case"])),
        **AUTH_ERRORS,
    },
)
class MacroViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    permission_classes = [IsSupportStaff]
    serializer_class = MacroSerializer
    pagination_class = None  # a person's macros are tens, not thousands

    def get_queryset(self):
        return macros.visible_macros(self.request.user)

    def get_serializer_context(self) -> dict:
        context = super().get_serializer_context()
        key = self.request.query_params.get("case")
        if key:
            case = selectors.case_by_key(key)
            if case is None or not can_see_case(self.request.user, case):
                raise ValidationError({"case": [f"There is no case {key} that you may see."]})
            context["case"] = case
        return context


class ApplyMacroSerializer(serializers.Serializer):
    macro = serializers.IntegerField(
        min_value=1, help_text="The id of a macro you may use (GET /api/macros/)."
    )
    body = StrictCharField(
        required=False,
        max_length=50_000,
        allow_blank=True,
        help_text="The reply as you edited it; without it the macro's text filled in for the case is sent.",
    )


class MacroChangeSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=macros.PART_CHOICES)
    detail = serializers.CharField()


class MacroRefusalSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=macros.PART_CHOICES)
    reason = serializers.CharField()


class ApplyMacroResultSerializer(serializers.Serializer):
    macro = serializers.IntegerField(source="macro.pk")
    changed = MacroChangeSerializer(many=True, help_text="Each change made, in order.")
    refused = MacroRefusalSerializer(many=True, help_text="Each action refused, with the reason.")
    reply = CaseEventSerializer(allow_null=True, help_text="The public reply posted (null when none).")
    case = CaseSerializer(help_text="The case after the macro.")


ApplyMacroError = _validation_error("ApplyMacro", ["macro", "body"])


class ApplyMacroView(APIView):
    permission_classes = [IsSupportStaff]

    @extend_schema(
        summary="Apply a macro to a case",
        description=(
            "Posts the macro's public reply (or `body`) and applies its actions (status, tags, team) "
            "through the same rules as every change: each is its own timeline event and the status "
            "goes through the lifecycle. A refused action is listed under `refused` with the reason "
            "while the other changes stay; a refused reply (e.g. a closed case) applies nothing and "
            "is a 400."
        ),
        operation_id="cases_apply_macro",
        parameters=[KEY_PARAMETER],
        request=ApplyMacroSerializer,
        responses={
            200: ApplyMacroResultSerializer,
            **_bad_request(ApplyMacroError, "Invalid input, an unknown macro, or the reply was refused."),
            **AUTH_ERRORS,
            **NOT_FOUND,
        },
        examples=[OpenApiExample("The macro as written", request_only=True, value={"macro": 3})],
        tags=["cases"],
    )
    @idempotent
    def post(self, request, key: str):
        case = _visible_case(request, key)
        serializer = ApplyMacroSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        macro = macros.visible_macros(request.user).filter(pk=data["macro"]).first()
        if macro is None:
            raise ValidationError({"macro": ["There is no such macro that you may use."]})
        result = macros.apply_macro(
            case, macro, actor=request.user, now=timezone.now(), body=data.get("body")
        )
        if result.reply is None and any(r.action == "reply" for r in result.refused):
            reason = result.refused[0].reason
            return Response({"detail": reason, "body": [reason]}, status=status.HTTP_400_BAD_REQUEST)
        result.case = selectors.case_detail(pk=case.pk)
        events = [result.reply] if result.reply is not None else []
        context = {
            "request": request,
            "deliveries": core_selectors.deliveries_by_event(event_ids=[e.pk for e in events]),
        }
        return Response(ApplyMacroResultSerializer(result, context=context).data)
