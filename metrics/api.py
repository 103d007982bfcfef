"""Read-only KPI endpoints for managers (``/api/metrics/...``); the same numbers as the selectors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.models import Severity, Team, Tier
from sla.models import Target
from supportdesk.core import api as core_api
from supportdesk.core import bounds
from supportdesk.core.db_router import reads_from_replica

from . import catalogue, selectors

# 400 (the period or a filter, per field), 401, 403 (not a manager) and 429: the standard error
# responses (supportdesk.core.schema).
RESPONSES = {200: OpenApiResponse(OpenApiTypes.OBJECT, description="The figures")}


class IsManager(core_api.IsManager):
    message = "Only managers can read the metrics."


def _validate_tz(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise serializers.ValidationError(f"“{value}” is not a time zone.") from exc
    return value


class _ReferenceField(serializers.CharField):
    """A team or a person as the rest of the API names them (a slug, a username), or their id;
    resolved to the id the selectors take. Digits are tried as an id first. Unknown is a 400."""

    noun = ""
    key = ""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def queryset(self):
        raise NotImplementedError

    def to_internal_value(self, data):
        text = super().to_internal_value(data).strip()
        if len(text) > 150:  # checked here: the validators run on the id this returns
            raise serializers.ValidationError(f"There is no {self.noun} “{text[:150]}…”.")
        rows = self.queryset()
        if text.isascii() and text.isdigit() and len(text) <= 18:
            pk = rows.filter(pk=int(text)).values_list("pk", flat=True).first()
            if pk is not None:
                return pk
        pk = rows.filter(**{self.key: text}).values_list("pk", flat=True).first()
        if pk is None:
            raise serializers.ValidationError(f"There is no {self.noun} “{text}”.")
        return pk


class TeamReference(_ReferenceField):
    noun, key = "team with the slug or id", "slug"

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "A team's slug (as /api/teams/ lists it) or its id.")
        super().__init__(**kwargs)

    def queryset(self):
        return Team.objects.all()


class StaffReference(_ReferenceField):
    noun, key = "staff member with the username or id", "username"

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "A staff member's username (as /api/staff/ lists it) or their id.")
        super().__init__(**kwargs)

    def queryset(self):
        return get_user_model().objects.all()


class PeriodInput(serializers.Serializer):
    """``start`` and ``end`` are local dates (end inclusive) in ``tz``, of any length, or
    ``whole_history`` (the local day of the first case to today); filters are optional."""

    start = bounds.DateField(required=False, help_text="First local day (required unless whole_history).")
    end = bounds.DateField(
        required=False, help_text="Last local day, inclusive (required unless whole_history)."
    )
    whole_history = serializers.BooleanField(
        default=False,
        help_text="The whole history: from the local day of the first case to today, in place of "
        "start and end. Such a period has no previous period.",
    )
    tz = serializers.CharField(default="UTC", max_length=64)
    team = TeamReference()
    organisation = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    assignee = StaffReference()
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)

    def validate_tz(self, value: str) -> str:
        return _validate_tz(value)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("whole_history"):
            if "start" in attrs or "end" in attrs:
                raise serializers.ValidationError(
                    {"whole_history": "Give start and end, or whole_history, not both."}
                )
            attrs["start"], attrs["end"] = selectors.whole_history(tz=attrs["tz"], now=timezone.now())
            return attrs
        missing = {f: "This field is required." for f in ("start", "end") if f not in attrs}
        if missing:
            raise serializers.ValidationError(missing)
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": "The period must not end before it starts."})
        return attrs


def _period(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    period = selectors.local_period(data["start"], data["end"], data["tz"])
    filters = {k: data[k] for k in selectors.FILTER_NAMES if k in data}
    return period, filters


def _plain(value: Any) -> Any:
    if isinstance(value, selectors.Ratio):
        return {"numerator": value.numerator, "denominator": value.denominator, "rate": value.rate}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class SummaryInput(PeriodInput):
    compare = serializers.BooleanField(
        default=True,
        help_text="Also compute the previous period of the same length (``previous``). "
        "A whole_history period has none: ``previous`` is null.",
    )


class DurationStatsOutput(serializers.Serializer):
    count = serializers.IntegerField()
    median = serializers.FloatField(allow_null=True, help_text="Seconds")
    p90 = serializers.FloatField(allow_null=True, help_text="Seconds")
    mean = serializers.FloatField(allow_null=True, help_text="Seconds")


class RatioOutput(serializers.Serializer):
    numerator = serializers.IntegerField()
    denominator = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class DurationReportOutput(serializers.Serializer):
    overall = DurationStatsOutput()
    by_severity = serializers.DictField(child=DurationStatsOutput(), help_text="P1 to P4.")


class CsatOutput(serializers.Serializer):
    count = serializers.IntegerField(help_text="Survey answers received in the period.")
    mean = serializers.FloatField(allow_null=True, help_text="Mean rating, 1-5.")
    distribution = serializers.DictField(child=serializers.IntegerField(), help_text="Answers per rating.")


def _figure_output(metric: catalogue.Metric) -> serializers.Field:
    """The output field of one summary figure, documented with the catalogue's definition."""
    if metric.kind == catalogue.DURATION:
        return DurationReportOutput(help_text=metric.definition)
    if metric is catalogue.SLA_COMPLIANCE:
        return serializers.DictField(
            child=serializers.DictField(child=RatioOutput()),
            help_text=f"Per target, then per severity and all. {metric.definition}",
        )
    if metric.kind == catalogue.RATIO:
        return RatioOutput(help_text=metric.definition)
    if metric.kind == catalogue.CSAT:
        return CsatOutput(help_text=metric.definition)
    raise ValueError(f"{metric.key} is not a summary figure.")


#: The headline KPIs of one period: a field per figure of ``catalogue.SUMMARY``, named by its key.
PeriodFiguresOutput = type(
    "PeriodFiguresOutput",
    (serializers.Serializer,),
    {
        "__doc__": "The headline KPIs of one period (DOMAIN.md's metric definitions; durations in "
        "calendar seconds).",
        "__module__": __name__,
        "start": serializers.DateTimeField(),
        "end": serializers.DateTimeField(help_text="Exclusive."),
        **{metric.key: _figure_output(metric) for metric in catalogue.SUMMARY},
    },
)


class SummaryOutput(PeriodFiguresOutput):
    tz = serializers.CharField()
    whole_history = serializers.BooleanField(help_text="The period is the whole history.")
    previous = PeriodFiguresOutput(
        required=False,
        allow_null=True,
        help_text="The previous period of the same length; absent with compare=false, null for "
        "the whole history (nothing comes before the first case).",
    )
    targets = serializers.DictField(
        child=serializers.DictField(
            child=serializers.DictField(child=serializers.IntegerField(allow_null=True))
        ),
        help_text="SLA targets in minutes: tier -> severity -> target.",
    )


class SummaryView(APIView):
    """Every headline KPI for the period and filters."""

    permission_classes = [IsManager]

    @extend_schema(
        operation_id="metrics_summary",
        parameters=[SummaryInput],
        responses={**RESPONSES, 200: SummaryOutput},
    )
    @reads_from_replica()
    def get(self, request):
        data = SummaryInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        period, filters = _period(data.validated_data)
        v = data.validated_data
        compare = v["compare"] and not v["whole_history"]
        previous = selectors.previous_period(v["start"], v["end"], v["tz"]) if compare else None
        if previous:
            current, before = selectors.compared_metrics(period, previous, **filters)
        else:
            current = selectors.period_metrics(**period, **filters)
        body = {
            "start": period["start"].isoformat(),
            "end": period["end"].isoformat(),
            "tz": period["tz"],
            "whole_history": v["whole_history"],
            **_plain(current),
        }
        if v["whole_history"]:
            body["previous"] = None
        elif previous:
            body["previous"] = {
                "start": previous["start"].isoformat(),
                "end": previous["end"].isoformat(),
                **_plain(before),
            }
        body["targets"] = selectors.sla_targets()
        return Response(body)


class FilterInput(serializers.Serializer):
    team = TeamReference()
    organisation = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    assignee = StaffReference()
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)


class BacklogInput(FilterInput):
    pass


class BacklogView(APIView):
    """Open cases now, by age bucket and severity."""

    permission_classes = [IsManager]

    @extend_schema(
        operation_id="metrics_backlog",
        parameters=[BacklogInput],
        responses=RESPONSES,
    )
    @reads_from_replica()
    def get(self, request):
        data = BacklogInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        return Response({"buckets": selectors.backlog_aging(now=timezone.now(), **data.validated_data)})


class TrendsInput(FilterInput):
    """The weekly series end with the local week holding ``end`` (default: today)."""

    end = bounds.DateField(required=False)
    tz = serializers.CharField(default="UTC", max_length=64)
    weeks = serializers.IntegerField(default=12, min_value=1, max_value=104)

    def validate_tz(self, value: str) -> str:
        return _validate_tz(value)


class TrendsView(APIView):
    """Weekly series (FRT and MTTR stats, SLA compliance, reopen rate, volume) for the charts."""

    permission_classes = [IsManager]

    @extend_schema(operation_id="metrics_trends", parameters=[TrendsInput], responses=RESPONSES)
    @reads_from_replica()
    def get(self, request):
        data = TrendsInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        v = dict(data.validated_data)
        zone = ZoneInfo(v.pop("tz"))
        last = v.pop("end", None) or timezone.now().astimezone(zone).date()
        end = dt.datetime.combine(last, dt.time(12), tzinfo=zone)
        series = selectors.trends(end=end, tz=zone.key, weeks=v.pop("weeks"), **v)
        return Response(
            {
                "tz": zone.key,
                "weeks": [week.isoformat() for week in series.pop("weeks")],
                **{
                    name: [
                        {**_plain(point), "week": point["week"].isoformat()}
                        if isinstance(point, dict)
                        else _plain(point)
                        for point in points
                    ]
                    for name, points in series.items()
                },
            }
        )


class DrilldownInput(PeriodInput):
    """The figure: ``metric`` and, for a ratio, ``part``; for compliance a ``target``; for the
    backlog a ``bucket`` (the backlog is now, so its period is ignored)."""

    metric = serializers.ChoiceField(choices=sorted(catalogue.METRICS))
    part = serializers.CharField(required=False, allow_blank=True, max_length=20)
    target = serializers.ChoiceField(choices=Target.choices, required=False)
    bucket = serializers.ChoiceField(choices=[b[0] for b in selectors.AGE_BUCKETS], required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        metric, part = attrs["metric"], attrs.get("part") or None
        if part and part not in catalogue.METRICS[metric].part_codes:
            raise serializers.ValidationError({"part": f"{metric} has no part “{part}”."})
        if metric != catalogue.BACKLOG.key:
            return super().validate(attrs)
        # The backlog is now: a period sent with it (whole or half) is ignored, not half-used.
        attrs.pop("start", None)
        attrs.pop("end", None)
        attrs.pop("whole_history", None)
        return attrs


class DrilldownCase(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField()
    organisation = serializers.CharField(source="organisation.name")
    assignee = serializers.CharField(source="assignee.get_username", default=None, allow_null=True)
    created_at = serializers.DateTimeField()
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_resolved_at = serializers.DateTimeField(allow_null=True)
    counted = serializers.IntegerField(help_text="How many of the figure's items the case holds.")
    url = serializers.CharField(source="get_absolute_url")


class DrilldownPage(serializers.Serializer):
    """One page of ``DrilldownCase`` (limit/offset): what the endpoint sends, not a bare list."""

    count = serializers.IntegerField(help_text="How many cases the figure counts in all.")
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = DrilldownCase(many=True)


def drilldown_queryset(data: dict[str, Any]):
    """``counted_cases`` for validated drill-down parameters (the backlog takes no period)."""
    filters = {k: data[k] for k in selectors.FILTER_NAMES if k in data}
    options = {k: data.get(k) for k in ("part", "target", "bucket")}
    period = selectors.local_period(data["start"], data["end"], data["tz"]) if "start" in data else {}
    return selectors.counted_cases(data["metric"], now=timezone.now(), **period, **options, **filters)


class DrilldownView(APIView):
    """The cases a dashboard figure counts (newest first), limit/offset paginated."""

    permission_classes = [IsManager]

    @extend_schema(
        operation_id="metrics_cases",
        parameters=[
            DrilldownInput,
            OpenApiParameter("limit", int, description="Cases per page (default 50)."),
            OpenApiParameter("offset", int, description="How many cases to skip."),
        ],
        responses={**RESPONSES, 200: DrilldownPage},
    )
    @reads_from_replica()
    def get(self, request):
        data = DrilldownInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        qs = drilldown_queryset(data.validated_data).select_related("organisation", "assignee")
        paginator = LimitOffsetPagination()
        page = paginator.paginate_queryset(qs.order_by("-created_at", "-id"), request, view=self)
        return paginator.get_paginated_response(DrilldownCase(page, many=True).data)


class AgentOutput(serializers.Serializer):
    id = serializers.IntegerField(source="user.pk")
    username = serializers.CharField(source="user.get_username")
    name = serializers.SerializerMethodField()
    handled = serializers.IntegerField(help_text="Cases first answered or first resolved in the period.")
    first_response_time = DurationStatsOutput()
    time_to_resolve = DurationStatsOutput()
    sla_compliance = RatioOutput(help_text="SLA clocks of their cases met on time / completed in the period.")
    breached = serializers.IntegerField(help_text="SLA clocks of their cases breached in the period.")

    def get_name(self, row) -> str:
        return row.user.get_full_name() or row.user.get_username()


class AgentsOutput(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    tz = serializers.CharField()
    agents = AgentOutput(many=True)


class AgentsView(APIView):
    """Per assignee: cases handled, first response and resolution times, SLA compliance (cases
    count for their current assignee), most cases handled first."""

    permission_classes = [IsManager]

    @extend_schema(
        operation_id="metrics_agents",
        parameters=[PeriodInput],
        responses={**RESPONSES, 200: AgentsOutput},
    )
    @reads_from_replica()
    def get(self, request):
        data = PeriodInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        period, filters = _period(data.validated_data)
        rows = selectors.agent_figures(**period, **filters)
        return Response(
            {
                "start": period["start"].isoformat(),
                "end": period["end"].isoformat(),
                "tz": period["tz"],
                "agents": AgentOutput(rows, many=True).data,
            }
        )
