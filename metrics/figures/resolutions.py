"""The reopen rate and knowledge reuse: they share their denominator, the distinct cases resolved
in the period (by the resolution event's time; a case resolved twice counts once)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q, QuerySet

from cases.models import REOPENED_Q, RESOLVED_Q, CaseEvent

from .. import catalogue, rollup
from .base import Periods, Ratio, case_filter_q, one_period
from .plan import Plan


def resolved_case_ids(*, start: dt.datetime, end: dt.datetime, **filters: Any) -> QuerySet:
    """Cases with at least one resolution in the period (as a subquery of case ids)."""
    return (
        CaseEvent.objects.filter(RESOLVED_Q, created_at__gte=start, created_at__lt=end)
        .filter(case_filter_q("case__", **filters))
        .values("case_id")
    )


def metric_events(periods: Periods, **filters: Any) -> QuerySet:
    """The periods' reopen and resolution events (what event_reopen_resolve_idx holds)."""
    return CaseEvent.objects.filter(REOPENED_Q | RESOLVED_Q).filter(
        periods.range("created_at"), case_filter_q("case__", **filters)
    )


def _result(reopened: int, resolved: int, linked: int) -> dict[str, Ratio]:
    return {
        catalogue.REOPEN_RATE.key: Ratio(reopened, resolved),
        catalogue.KNOWLEDGE_REUSE.key: Ratio(linked, resolved),
    }


def resolutions(periods: Periods, **filters: Any) -> list[dict[str, Ratio]]:
    """Per period, from the source: the reopen rate and the knowledge reuse. One pass over the
    periods' reopen and resolution events, counting distinct cases."""
    rows = (
        metric_events(periods, **filters)
        .annotate(period=periods.key("created_at"))
        .values("period")
        .annotate(
            reopened=Count("case_id", distinct=True, filter=REOPENED_Q),
            resolved=Count("case_id", distinct=True, filter=RESOLVED_Q),
            linked=Count("case_id", distinct=True, filter=rollup.linked_resolution_q()),
        )
        .order_by()
    )
    result = [_result(0, 0, 0) for _ in periods.bounds]
    for row in rows:
        if row["period"] is not None:
            result[row["period"]] = _result(row["reopened"], row["resolved"], row["linked"])
    return result


def resolutions_rolled(periods: Periods, plan: Plan | None, **filters: Any) -> list[dict[str, Ratio]]:
    """Reopen rate and knowledge reuse per period, counting distinct cases, from event counts.

    The rollup (and the source, for the edges) counts reopen and resolution *events*; a case
    resolved twice in a period counts once. Between two resolutions a case is always reopened
    (resolved only leads to reopened or closed), so every case with repeats has a reopen event in
    the period: one query over those few cases finds the repeats to subtract.
    """
    if plan is None:
        return resolutions(periods, **filters)
    n = len(periods)
    reopens, resolved, linked = [0] * n, [0] * n, [0] * n
    for (i, _), row in plan.sums.items():
        reopens[i] += row["reopens"]
        resolved[i] += row["resolutions"]
        linked[i] += row["linked_resolutions"]
    # Counted by case_id, not id: the partial indexes hold every column read (index-only scans).
    counts = {
        "o": Count("case_id", filter=REOPENED_Q),
        "r": Count("case_id", filter=RESOLVED_Q),
        "l": Count("case_id", filter=rollup.linked_resolution_q()),
    }
    if plan.edges:
        rows = (
            metric_events(plan.edges, **filters)
            .annotate(period=plan.edges.key("created_at"))
            .values("period")
            .annotate(**counts)
            .order_by()
        )
        owners = plan.edge_owners()
        for row in rows:
            if row["period"] is not None:
                i = owners[row["period"]]
                reopens[i] += row["o"]
                resolved[i] += row["r"]
                linked[i] += row["l"]
    reopened_cases = CaseEvent.objects.filter(REOPENED_Q, periods.range("created_at")).values("case_id")
    repeats = (
        metric_events(periods, **filters)
        .filter(case_id__in=reopened_cases)
        .annotate(period=periods.key("created_at"))
        .values("period", "case_id")
        .annotate(**counts)
        .filter(Q(o__gt=1) | Q(r__gt=1))
        .order_by()
        .values_list("period", "o", "r", "l")
    )
    for i, o, r, lk in repeats:
        if i is not None:
            reopens[i] -= max(o - 1, 0)
            resolved[i] -= max(r - 1, 0)
            linked[i] -= max(lk - 1, 0)
    return [_result(reopens[i], resolved[i], linked[i]) for i in range(n)]


def reopen_rate(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """``catalogue.REOPEN_RATE``, from the source."""
    return resolutions(one_period(start, end), **filters)[0][catalogue.REOPEN_RATE.key]


def knowledge_reuse(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """``catalogue.KNOWLEDGE_REUSE``, from the source."""
    return resolutions(one_period(start, end), **filters)[0][catalogue.KNOWLEDGE_REUSE.key]
