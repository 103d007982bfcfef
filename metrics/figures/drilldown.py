"""The drill-down: the cases a dashboard figure counts (``catalogue``: each metric's ``parts``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from cases.models import Case, CaseEvent, EventKind
from knowledge.models import ArticleCaseLink
from sla.models import ClockState, Target

from .. import catalogue as c
from . import compliance, escalations
from .backlog import backlog_cases
from .base import check_period, filtered_cases, one_period
from .csat import csat_cases
from .durations import duration_rows
from .resolutions import resolved_case_ids

#: The figures that count a duration's cases, by the instant that ends it.
_BY_INSTANT = {c.VOLUME_RESOLVED.key: c.TIME_TO_RESOLVE}


def counted_cases(
    metric: str,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    tz: str = "UTC",
    now: dt.datetime | None = None,
    part: str | None = None,
    target: str | None = None,
    bucket: str | None = None,
    **filters: Any,
) -> QuerySet:
    """The cases a dashboard figure counts, annotated with ``counted``: how many of the figure's
    items each case contributes (clocks for compliance, escalations for the bounce rate, else 1).

    The sum of ``counted`` is the figure's count (a duration's ``count``, a ratio's numerator for
    its numerator part and its denominator otherwise, a backlog cell's number).
    """
    entry = c.METRICS.get(metric)
    if entry is None:
        raise ValueError(f"Unknown metric {metric!r}.")
    if part not in (None, "", *entry.part_codes):
        raise ValueError(f"{metric} has no part {part!r}.")
    if target not in (None, "", *Target.values):
        raise ValueError(f"Unknown SLA target {target!r}.")
    if entry is c.BACKLOG:
        return backlog_cases(now=now, bucket=bucket, **filters)
    if start is None or end is None:
        raise ValueError("A period is needed.")
    check_period(start, end)
    period = {"start": start, "end": end, **filters}
    one = Value(1, output_field=IntegerField())
    if entry.kind == c.DURATION or entry is c.VOLUME_RESOLVED:
        duration = _BY_INSTANT.get(entry.key, entry)
        return duration_rows(duration, one_period(start, end), **filters).annotate(counted=one)
    if entry is c.VOLUME_CREATED:
        created = filtered_cases(**filters).filter(created_at__gte=start, created_at__lt=end)
        return created.annotate(counted=one)
    if entry in (c.SLA_COMPLIANCE, c.UPDATE_CADENCE_ADHERENCE):
        clocks = compliance.completed_clocks(one_period(start, end), **filters)
        if entry is c.UPDATE_CADENCE_ADHERENCE:
            clocks = compliance.cadence_clocks(clocks)
        elif target:
            clocks = clocks.filter(target=target)
        if part == c.MET.code:
            clocks = clocks.filter(state=ClockState.MET)
        elif part == c.BREACHED.code:
            clocks = clocks.filter(state=ClockState.BREACHED)
        return _with_count(clocks)
    if entry is c.REOPEN_RATE:
        if part == entry.numerator:
            ids = CaseEvent.objects.filter(
                kind=EventKind.REOPENED, created_at__gte=start, created_at__lt=end
            ).values("case_id")
            return filtered_cases(**filters).filter(id__in=ids).annotate(counted=one)
        return Case.objects.filter(id__in=resolved_case_ids(**period)).annotate(counted=one)
    if entry is c.KNOWLEDGE_REUSE:
        resolved = Case.objects.filter(id__in=resolved_case_ids(**period))
        if part == entry.numerator:
            resolved = resolved.filter(id__in=ArticleCaseLink.objects.values("case_id"))
        return resolved.annotate(counted=one)
    if entry is c.ESCALATION_RATE:
        created = filtered_cases(**filters).filter(created_at__gte=start, created_at__lt=end)
        if part == entry.numerator:
            created = created.filter(id__in=escalations.escalated_case_ids())
        return created.annotate(counted=one)
    if entry is c.ENGINEERING_BOUNCE_RATE:
        submitted = escalations.submitted(one_period(start, end), **filters)
        if part == entry.numerator:
            submitted = submitted.filter(escalations.BOUNCED_Q)
        return _with_count(submitted)
    return csat_cases(start=start, end=end, tz=tz, **filters).annotate(counted=one)


def _with_count(items: QuerySet) -> QuerySet:
    """The cases of ``items`` (rows with a ``case_id``), each annotated with how many it has."""
    per_case = (
        items.filter(case_id=OuterRef("pk")).order_by().values("case_id").annotate(n=Count("id")).values("n")
    )
    return Case.objects.filter(id__in=items.values("case_id")).annotate(
        counted=Coalesce(Subquery(per_case, output_field=IntegerField()), 0)
    )
