"""Read-only KPI endpoints for managers (``/api/metrics/...``); the same numbers as the selectors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from cases.models import Severity, Tier
from supportdesk.core import api as core_api

from . import selectors

RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.OBJECT, description="The figures"),
    400: OpenApiResponse(OpenApiTypes.OBJECT, description="Invalid period or filters (field messages)"),
    401: OpenApiResponse(description="Not authenticated"),
    403: OpenApiResponse(description="Not a manager"),
}


class IsManager(core_api.IsManager):
    message = "Only managers can read the metrics."


class PeriodInput(serializers.Serializer):
    """``start`` and ``end`` are local dates (end inclusive) in ``tz``; filters are optional."""

    start = serializers.DateField()
    end = serializers.DateField()
    tz = serializers.CharField(default="UTC", max_length=64)
    team = serializers.IntegerField(required=False, min_value=1)
    organisation = serializers.IntegerField(required=False, min_value=1)
    assignee = serializers.IntegerField(required=False, min_value=1)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)

    def validate_tz(self, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise serializers.ValidationError(f"“{value}” is not a time zone.") from exc
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["end"] < attrs["start"]:
            raise serializers.ValidationError({"end": "The period must not end before it starts."})
        if (attrs["end"] - attrs["start"]).days > 366:
            raise serializers.ValidationError({"end": "The period can be at most a year."})
        return attrs


def _period(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    zone = ZoneInfo(data["tz"])
    start = dt.datetime.combine(data["start"], dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(data["end"] + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    filters = {k: data[k] for k in selectors.FILTER_NAMES if k in data}
    return {"start": start, "end": end, "tz": data["tz"]}, filters


def _plain(value: Any) -> Any:
    if isinstance(value, selectors.Ratio):
        return {"numerator": value.numerator, "denominator": value.denominator, "rate": value.rate}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class SummaryView(APIView):
    """Every headline KPI for the period and filters."""

    permission_classes = [IsManager]

    @extend_schema(
        operation_id="metrics_summary",
        parameters=[PeriodInput],
        responses=RESPONSES,
    )
    def get(self, request):
        data = PeriodInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        period, filters = _period(data.validated_data)
        kpis = selectors.period_metrics(**period, **filters)
        return Response(
            {
                "start": period["start"].isoformat(),
                "end": period["end"].isoformat(),
                "tz": period["tz"],
                **_plain(kpis),
            }
        )


class BacklogInput(serializers.Serializer):
    team = serializers.IntegerField(required=False, min_value=1)
    organisation = serializers.IntegerField(required=False, min_value=1)
    assignee = serializers.IntegerField(required=False, min_value=1)
    tier = serializers.ChoiceField(choices=Tier.choices, required=False)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)


class BacklogView(APIView):
    """Open cases now, by age bucket and severity."""

    permission_classes = [IsManager]

    @extend_schema(
        operation_id="metrics_backlog",
        parameters=[BacklogInput],
        responses=RESPONSES,
    )
    def get(self, request):
        data = BacklogInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        return Response({"buckets": selectors.backlog_aging(now=timezone.now(), **data.validated_data)})
