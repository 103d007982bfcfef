"""Backlog aging: open cases now by age bucket and severity (a snapshot, not a period)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, IntegerField, Q, QuerySet, Value
from django.utils import timezone

from cases.models import OPEN_Q, Severity

from .base import filtered_cases

#: Backlog age buckets: (label, lower bound in days inclusive, upper bound exclusive or None).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-1d", 0, 1),
    ("1-3d", 1, 3),
    ("3-7d", 3, 7),
    ("7-21d", 7, 21),
    (">21d", 21, None),
)


def _check_now(now: dt.datetime | None) -> dt.datetime:
    if now is None or timezone.is_naive(now):
        raise ValueError("now must be an aware datetime.")
    return now


def backlog_aging(*, now: dt.datetime, **filters: Any) -> dict[str, dict[str, int]]:
    """Open cases right now by age bucket and severity: ``{bucket: {severity: count}}``.

    The backlog is a snapshot (statuses are current), so it takes ``now``, not a period.
    """
    _check_now(now)
    aggregates = {}
    for label, low, high in AGE_BUCKETS:
        for severity in Severity.values:
            cond = Q(severity=severity, created_at__lte=now - dt.timedelta(days=low))
            if high is not None:
                cond &= Q(created_at__gt=now - dt.timedelta(days=high))
            aggregates[f"{label}|{severity}"] = Count("id", filter=cond)
    agg = filtered_cases(**filters).filter(OPEN_Q).aggregate(**aggregates)
    return {
        label: {severity: agg[f"{label}|{severity}"] for severity in Severity.values}
        for label, _, _ in AGE_BUCKETS
    }


def backlog_cases(*, now: dt.datetime | None, bucket: str | None, **filters: Any) -> QuerySet:
    """The open cases of one age bucket (or all of them), each counted once."""
    now = _check_now(now)
    qs = filtered_cases(**filters).filter(OPEN_Q)
    if bucket:
        bounds = {label: (low, high) for label, low, high in AGE_BUCKETS}
        if bucket not in bounds:
            raise ValueError(f"Unknown backlog bucket {bucket!r}.")
        low, high = bounds[bucket]
        qs = qs.filter(created_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            qs = qs.filter(created_at__gt=now - dt.timedelta(days=high))
    return qs.annotate(counted=Value(1, output_field=IntegerField()))
