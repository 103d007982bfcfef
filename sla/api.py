"""The SLA REST API: a case's clocks, calendars and policies (managers write), and the due preview.

Writes go through ``sla.services``; their ValidationErrors become 400 with field messages in the
project's exception handler. Support staff (agents, managers, admins) only: engineers get 403.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from django.utils import timezone
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
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.models import Case, Organisation, Severity, Tier
from supportdesk.core import bounds
from supportdesk.core.api import IsSupportStaff, ManagerCanWrite

from . import explain, selectors, services
from .models import (
    BREACH_PERCENT,
    MAX_TARGET_MINUTES,
    BusinessCalendar,
    Recipient,
    SlaClock,
    SlaPolicy,
    Target,
)


class ManagerCanWriteSla(ManagerCanWrite):
    message = "Only managers can change SLA calendars and policies."


# --- Fields ---------------------------------------------------------------------------------------

_CLOCK_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


@extend_schema_field(
    {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$", "example": "09:00"}
)
class ClockTimeField(serializers.Field):
    """A local wall-clock time "HH:MM"; "24:00" (end of day) is stored as 00:00."""

    default_error_messages = {"invalid": "Give a time as HH:MM (00:00-24:00)."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _CLOCK_TIME.match(data.strip()):
            self.fail("invalid")
        text = data.strip()
        if text == "24:00":
            return dt.time(0)
        return dt.time.fromisoformat(text)

    def to_representation(self, value: dt.time) -> str:
        return f"{value:%H:%M}"


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """An integer (not 1.5, not True)."""

    def to_internal_value(self, data):
        if isinstance(data, bool | float) or not isinstance(data, int | str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


# --- Case clocks ----------------------------------------------------------------------------------


class WarningPointSerializer(serializers.Serializer):
    percent = serializers.IntegerField(help_text="Share of the target, in %.")
    warn_at = serializers.DateTimeField(allow_null=True, help_text="When it is (was) due; null while paused.")
    warned_at = serializers.DateTimeField(allow_null=True, help_text="When it fired; null until then.")


class ClockSerializer(serializers.Serializer):
    target = serializers.CharField(source="clock.target")
    run = serializers.IntegerField(source="clock.run")
    state = serializers.CharField(
        source="clock.state", help_text="running, paused, met, breached or cancelled"
    )
    display_state = serializers.CharField(help_text="on_track, at_risk, breached, paused, met or cancelled")
    target_minutes = serializers.IntegerField(source="clock.target_minutes")
    business_time = serializers.BooleanField(source="clock.business_time")
    started_at = serializers.DateTimeField(source="clock.started_at")
    warn_at = serializers.DateTimeField(source="clock.warn_at")
    due_at = serializers.DateTimeField(
        source="clock.due_at", help_text="While paused, moves on resume by the business time spent paused."
    )
    remaining_seconds = serializers.SerializerMethodField(
        help_text="Running: real seconds until due (negative when overdue). Paused: business seconds left."
    )
    paused_at = serializers.DateTimeField(source="clock.paused_at", allow_null=True)
    paused_total_seconds = serializers.SerializerMethodField()
    warned_at = serializers.DateTimeField(source="clock.warned_at", allow_null=True)
    warnings = WarningPointSerializer(
        many=True,
        help_text="The warning ladder of this run, lowest first: the clock's own warning (warn_at, "
        "warned_at above), then the further rungs of its policy's ladder.",
    )
    met_at = serializers.DateTimeField(source="clock.met_at", allow_null=True)
    breached_at = serializers.DateTimeField(source="clock.breached_at", allow_null=True)
    met_on_time = serializers.BooleanField(source="clock.met_on_time", allow_null=True)

    def get_remaining_seconds(self, view: selectors.ClockView) -> int | None:
        return None if view.remaining is None else int(view.remaining.total_seconds())

    def get_paused_total_seconds(self, view: selectors.ClockView) -> int:
        return int(view.clock.paused_total.total_seconds())


class CaseSlaSerializer(serializers.Serializer):
    case = serializers.CharField()
    now = serializers.DateTimeField()
    clocks = ClockSerializer(many=True)


class CaseSlaView(APIView):
    permission_classes = [IsSupportStaff]

    @extend_schema(
        operation_id="case_sla",
        summary="A case's SLA clocks with the time remaining",
        parameters=[
            OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. CASE-12"),
            OpenApiParameter(
                "history",
                OpenApiTypes.BOOL,
                description="Every run (each update-cadence run), not just the current.",
            ),
        ],
        responses={200: CaseSlaSerializer, 404: OpenApiResponse(description="No such case")},
        tags=["sla"],
    )
    def get(self, request, key: str):
        pk = Case.pk_from_key(key)
        case = Case.objects.filter(pk=pk).only("id").first() if pk is not None else None
        if case is None:
            raise NotFound(f"There is no case {key}.")
        now = timezone.now()
        history = request.query_params.get("history", "").lower() in ("1", "true", "yes")
        views = selectors.clocks_for_case(case, now=now, history=history)
        return Response(CaseSlaSerializer({"case": case.key, "now": now, "clocks": views}).data)


class PauseSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField(allow_null=True, help_text="null: paused now")
    business_seconds = serializers.SerializerMethodField()

    def get_business_seconds(self, pause: explain.Pause) -> int:
        return int(pause.business.total_seconds())


class SpanSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    counted_seconds = serializers.SerializerMethodField(help_text="The part not inside a pause.")
    running_total_seconds = serializers.SerializerMethodField()

    def get_counted_seconds(self, span: explain.Span) -> int:
        return int(span.counted.total_seconds())

    def get_running_total_seconds(self, span: explain.Span) -> int:
        return int(span.running_total.total_seconds())


class RetargetSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    old = serializers.CharField(help_text="The severity before")
    new = serializers.CharField(help_text="The severity after")


class ExplanationSerializer(serializers.Serializer):
    case = serializers.SerializerMethodField(help_text="The case key")
    clock = serializers.SerializerMethodField(help_text="The clock's id")
    target = serializers.CharField()
    run = serializers.IntegerField()
    state = serializers.CharField()
    policy = serializers.CharField(help_text='e.g. "Enterprise · P1"; empty when the policy was deleted')
    target_minutes = serializers.IntegerField()
    business_time = serializers.BooleanField()
    calendar = serializers.CharField(help_text='The calendar counted in, or "around the clock"')
    warning_ratio = serializers.FloatField()
    started_at = serializers.DateTimeField()
    consumed_seconds = serializers.SerializerMethodField(help_text="Used by earlier runs of the clock")
    left_seconds = serializers.SerializerMethodField(help_text="The target minus what earlier runs used")
    paused_seconds = serializers.SerializerMethodField(help_text="Business time spent paused")
    pauses = PauseSerializer(many=True)
    spans = SpanSerializer(many=True, help_text="The calendar's open stretches from the start to due")
    spans_left_out = serializers.IntegerField(help_text="Stretches not listed (the middle of a long clock)")
    retargets = RetargetSerializer(many=True)
    due_at = serializers.DateTimeField()
    warn_at = serializers.DateTimeField()
    recomputed_due_at = serializers.DateTimeField(help_text="The due instant the terms and calendar give now")
    recomputed_warn_at = serializers.DateTimeField()
    matches = serializers.BooleanField(help_text="Whether the stored deadlines equal the recomputed ones")
    met_at = serializers.DateTimeField(allow_null=True)
    breached_at = serializers.DateTimeField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    steps = serializers.ListField(child=serializers.CharField(), help_text="The arithmetic in words")

    def get_consumed_seconds(self, item: explain.Explanation) -> int:
        return int(item.consumed.total_seconds())

    def get_left_seconds(self, item: explain.Explanation) -> int:
        return int(item.left.total_seconds())

    def get_paused_seconds(self, item: explain.Explanation) -> int:
        return int(item.paused_total.total_seconds())

    def get_case(self, item: explain.Explanation) -> str:
        return self.context["case"]

    def get_clock(self, item: explain.Explanation) -> int:
        return self.context["clock"]


class ClockExplanationView(APIView):
    permission_classes = [IsSupportStaff]

    @extend_schema(
        operation_id="case_sla_clock_explanation",
        summary="Why one of a case's SLA clocks is due when it is",
        description=(
            "Its policy and terms, the calendar stretches it counted, every pause and re-target, and the "
            "arithmetic of its due instant worked out again with today's calendar (``matches`` is false "
            "when the calendar or policy changed after the clock's deadlines were computed)."
        ),
        parameters=[
            OpenApiParameter("key", OpenApiTypes.STR, OpenApiParameter.PATH, description="e.g. CASE-12"),
            OpenApiParameter("clock_id", OpenApiTypes.INT, OpenApiParameter.PATH),
        ],
        responses={200: ExplanationSerializer, 404: OpenApiResponse(description="No such case or clock")},
        tags=["sla"],
    )
    def get(self, request, key: str, clock_id: int):
        pk = Case.pk_from_key(key)
        row = (
            SlaClock.objects.select_related("case", "policy").filter(case_id=pk, pk=clock_id).first()
            if pk is not None
            else None
        )
        if row is None:
            raise NotFound(f"{key} has no clock {clock_id}.")
        item = explain.explain(row, now=timezone.now())
        context = {"case": row.case.key, "clock": row.pk}
        return Response(ExplanationSerializer(item, context=context).data)


# --- Calendars ------------------------------------------------------------------------------------


class OpeningRangeSerializer(serializers.Serializer):
    weekday = StrictIntegerField(min_value=0, max_value=6, help_text="0 = Monday … 6 = Sunday")
    start = ClockTimeField(help_text="HH:MM local time")
    end = ClockTimeField(help_text="HH:MM local time; 24:00 = end of day")


class CustomHolidaySerializer(serializers.Serializer):
    date = bounds.DateField()
    name = StrictCharField(max_length=100, required=False, allow_blank=True, default="")


class CalendarSerializer(serializers.ModelSerializer):
    name = StrictCharField(max_length=100)
    time_zone = StrictCharField(max_length=64, default="UTC")
    always_open = StrictBooleanField(default=False)
    holiday_country = StrictCharField(max_length=2, required=False, allow_blank=True, default="")
    holiday_subdivision = StrictCharField(max_length=10, required=False, allow_blank=True, default="")
    is_default = StrictBooleanField(default=False)
    opening_hours = OpeningRangeSerializer(many=True, required=False, default=list)
    custom_holidays = CustomHolidaySerializer(many=True, required=False, default=list)
    organisations = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(),
        many=True,
        required=False,
        help_text="Organisation ids counting business time in this calendar (moved from any other).",
    )

    class Meta:
        model = BusinessCalendar
        fields = [
            "id",
            "name",
            "time_zone",
            "always_open",
            "holiday_country",
            "holiday_subdivision",
            "is_default",
            "opening_hours",
            "custom_holidays",
            "organisations",
            "version",
            "updated_at",
        ]
        read_only_fields = ["id", "version", "updated_at"]

    def to_representation(self, instance: BusinessCalendar):
        return {
            "id": instance.pk,
            "name": instance.name,
            "time_zone": instance.time_zone,
            "always_open": instance.always_open,
            "holiday_country": instance.holiday_country,
            "holiday_subdivision": instance.holiday_subdivision,
            "is_default": instance.is_default,
            "opening_hours": [
                {"weekday": h.weekday, "start": f"{h.start:%H:%M}", "end": _end(h.end)}
                for h in instance.opening_hours.all()
            ],
            "custom_holidays": [
                {"date": h.date.isoformat(), "name": h.name} for h in instance.custom_holidays.all()
            ],
            "organisations": [link.organisation_id for link in instance.organisations.all()],
            "version": instance.version,
            "updated_at": serializers.DateTimeField().to_representation(instance.updated_at),
        }

    def _save(self, instance: BusinessCalendar | None, data: dict) -> BusinessCalendar:
        def current(name, default):
            return data.get(name, default)

        if instance is not None:
            hours = [
                {"weekday": h.weekday, "start": h.start, "end": h.end} for h in instance.opening_hours.all()
            ]
            holidays = [{"date": h.date, "name": h.name} for h in instance.custom_holidays.all()]
        else:
            hours, holidays = [], []
        saved = services.save_calendar(
            instance,
            name=current("name", instance.name if instance else ""),
            time_zone=current("time_zone", instance.time_zone if instance else "UTC"),
            always_open=current("always_open", instance.always_open if instance else False),
            holiday_country=current("holiday_country", instance.holiday_country if instance else ""),
            holiday_subdivision=current(
                "holiday_subdivision", instance.holiday_subdivision if instance else ""
            ),
            is_default=current("is_default", instance.is_default if instance else False),
            opening_hours=[services.OpeningRangeInput(**h) for h in current("opening_hours", hours)],
            custom_holidays=[(h["date"], h.get("name", "")) for h in current("custom_holidays", holidays)],
            organisations=data.get("organisations"),
            now=timezone.now(),
        )
        return selectors.calendar_list().get(pk=saved.pk)

    def create(self, validated_data):
        return self._save(None, validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)


def _end(value: dt.time) -> str:
    return "24:00" if value == dt.time(0) else f"{value:%H:%M}"


@extend_schema_view(
    list=extend_schema(summary="Business calendars", tags=["sla"]),
    retrieve=extend_schema(summary="A business calendar", tags=["sla"]),
    create=extend_schema(summary="Create a calendar (managers)", tags=["sla"]),
    update=extend_schema(summary="Replace a calendar (managers)", tags=["sla"]),
    partial_update=extend_schema(summary="Change a calendar (managers)", tags=["sla"]),
    destroy=extend_schema(summary="Delete an unused calendar (managers)", tags=["sla"]),
)
class CalendarViewSet(viewsets.ModelViewSet):
    permission_classes = [IsSupportStaff, ManagerCanWriteSla]
    serializer_class = CalendarSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        return selectors.calendar_list()

    def perform_destroy(self, instance):
        services.delete_calendar(instance)


# --- Policies -------------------------------------------------------------------------------------


def _minutes_field(target: str) -> serializers.IntegerField:
    return StrictIntegerField(
        min_value=1,
        max_value=MAX_TARGET_MINUTES,
        allow_null=True,
        required=False,
        default=None,
        help_text=f"{Target(target).label} target in minutes; null = not measured.",
    )


class PolicySerializer(serializers.ModelSerializer):
    tier = serializers.ChoiceField(choices=Tier.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    business_time = StrictBooleanField(default=True, help_text="Count business hours (else 24x7).")
    warning_ratio = serializers.FloatField(
        default=0.75, min_value=0.01, max_value=0.99, help_text="Warn at this share of a target."
    )
    first_response_minutes = _minutes_field(Target.FIRST_RESPONSE)
    triage_minutes = _minutes_field(Target.TRIAGE)
    update_cadence_minutes = _minutes_field(Target.UPDATE_CADENCE)
    resolution_minutes = _minutes_field(Target.RESOLUTION)

    class Meta:
        model = SlaPolicy
        fields = [
            "id",
            "tier",
            "severity",
            "business_time",
            "warning_ratio",
            "first_response_minutes",
            "triage_minutes",
            "update_cadence_minutes",
            "resolution_minutes",
            "updated_at",
        ]
        read_only_fields = ["id", "updated_at"]
        validators: list = []  # uniqueness is the service's, with a readable message

    def _save(self, instance: SlaPolicy | None, data: dict) -> SlaPolicy:
        fields = [f for f in self.Meta.fields if f not in self.Meta.read_only_fields]
        values = {f: data[f] if f in data else getattr(instance, f) for f in fields}
        return services.save_policy(instance, **values)

    def create(self, validated_data):
        return self._save(None, validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)


class ThresholdSerializer(serializers.Serializer):
    target = serializers.ChoiceField(choices=Target.choices)
    percent = StrictIntegerField(
        min_value=1, max_value=BREACH_PERCENT, help_text="Share of the target used, in %; 100 is the breach."
    )
    notify = serializers.ListField(
        child=serializers.ChoiceField(choices=Recipient.choices),
        default=list,
        help_text="Whom to tell, resolved when the rung fires: assignee (else the team), team_lead, "
        "managers, duty_manager.",
    )
    webhook = StrictBooleanField(
        default=True, help_text="Also send it to the webhook subscribers of SLA events."
    )


class LadderSerializer(serializers.Serializer):
    policy = serializers.IntegerField(read_only=True)
    thresholds = ThresholdSerializer(
        many=True,
        help_text="Every rung of every target; a target without a rung below 100 % warns once at the "
        "policy's warning_ratio. Writing replaces the whole ladder.",
    )


@extend_schema_view(
    list=extend_schema(summary="SLA policies", tags=["sla"]),
    retrieve=extend_schema(summary="An SLA policy", tags=["sla"]),
    create=extend_schema(summary="Create a policy (managers)", tags=["sla"]),
    update=extend_schema(summary="Replace a policy (managers)", tags=["sla"]),
    partial_update=extend_schema(summary="Change a policy (managers)", tags=["sla"]),
    destroy=extend_schema(summary="Delete a policy (managers)", tags=["sla"]),
)
class PolicyViewSet(viewsets.ModelViewSet):
    permission_classes = [IsSupportStaff, ManagerCanWriteSla]
    serializer_class = PolicySerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        return selectors.policy_list()

    @extend_schema(
        methods=["GET"], summary="A policy's warning ladder", responses=LadderSerializer, tags=["sla"]
    )
    @extend_schema(
        methods=["PUT"],
        summary="Replace a policy's warning ladder (managers)",
        request=LadderSerializer,
        responses={200: LadderSerializer, 400: OpenApiResponse(description="Invalid rungs, by field")},
        tags=["sla"],
    )
    @action(detail=True, methods=["get", "put"], url_path="ladder")
    def ladder(self, request, pk=None):
        policy = self.get_object()
        if request.method == "PUT":
            data = LadderSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            # A ValidationError of the service is a 400 by field (supportdesk.core.api.exception_handler).
            thresholds = [services.ThresholdInput(**item) for item in data.validated_data["thresholds"]]
            services.save_ladder(policy, thresholds=thresholds)
        rows = policy.thresholds.order_by("target", "percent")
        body = {
            "policy": policy.pk,
            "thresholds": [
                {"target": t.target, "percent": t.percent, "notify": list(t.notify), "webhook": t.webhook}
                for t in rows
            ],
        }
        return Response(LadderSerializer(body).data)


# --- Preview --------------------------------------------------------------------------------------


class PreviewInputSerializer(serializers.Serializer):
    organisation = serializers.PrimaryKeyRelatedField(
        queryset=Organisation.objects.all(),
        required=False,
        allow_null=True,
        help_text="Uses its tier and calendar.",
    )
    calendar = serializers.PrimaryKeyRelatedField(
        queryset=BusinessCalendar.objects.all(),
        required=False,
        allow_null=True,
        help_text="Instead of an organisation.",
    )
    tier = serializers.ChoiceField(choices=Tier.choices, required=False, help_text="Needed with a calendar.")
    severity = serializers.ChoiceField(choices=Severity.choices)
    start = StrictCharField(
        help_text="ISO 8601 instant the case arrives; without an offset it is in the calendar's time zone."
    )

    def validate(self, attrs):
        organisation, calendar = attrs.get("organisation"), attrs.get("calendar")
        if (organisation is None) == (calendar is None):
            raise serializers.ValidationError(
                {"organisation": ["Give either an organisation or a calendar."]}
            )
        if calendar is not None and not attrs.get("tier"):
            raise serializers.ValidationError(
                {"tier": ["Give the tier whose policy applies with this calendar."]}
            )
        try:
            start = dt.datetime.fromisoformat(attrs["start"].strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise serializers.ValidationError({"start": ["Give an ISO 8601 date and time."]}) from exc
        if not bounds.in_range(start):
            raise serializers.ValidationError({"start": [bounds.OUT_OF_RANGE]})
        if start.tzinfo is None:
            from . import calendars

            zone = (
                calendar or calendars.calendar_for_organisation(organisation.pk) or BusinessCalendar()
            ).time_zone
            start = start.replace(tzinfo=ZoneInfo(zone or "UTC"))
            if not bounds.in_range(start):
                raise serializers.ValidationError({"start": [bounds.OUT_OF_RANGE]})
        attrs["start"] = start
        return attrs


class TargetPreviewSerializer(serializers.Serializer):
    target = serializers.CharField()
    minutes = serializers.IntegerField(allow_null=True)
    warn_at = serializers.DateTimeField(allow_null=True)
    due_at = serializers.DateTimeField(allow_null=True)


class PreviewSerializer(serializers.Serializer):
    tier = serializers.CharField()
    severity = serializers.CharField()
    start = serializers.DateTimeField()
    policy = serializers.IntegerField(source="policy.pk", allow_null=True, default=None)
    calendar = serializers.IntegerField(source="calendar.pk", allow_null=True, default=None)
    business_time = serializers.BooleanField()
    time_zone = serializers.CharField()
    targets = TargetPreviewSerializer(many=True)


class PreviewView(APIView):
    permission_classes = [IsSupportStaff]

    @extend_schema(
        operation_id="sla_preview",
        summary="When would each target be due for a case arriving at a given instant?",
        request=PreviewInputSerializer,
        responses={200: PreviewSerializer, 400: OpenApiResponse(description="Invalid input, by field")},
        tags=["sla"],
    )
    def post(self, request):
        data = PreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        attrs = data.validated_data
        preview = selectors.preview_due(
            severity=attrs["severity"],
            start=attrs["start"],
            organisation=attrs.get("organisation"),
            calendar=attrs.get("calendar"),
            tier=attrs.get("tier"),
        )
        return Response(PreviewSerializer(preview).data, status=status.HTTP_200_OK)


@extend_schema_view(post=extend_schema(exclude=True))
class PreviewSlashView(PreviewView):
    """``/api/sla/preview/``: documented once, without the slash."""
