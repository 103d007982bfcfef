"""The escalation rate (by the cases' creation: one cohort) and the engineering bounce rate (by
the escalations' first submission)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from escalations.models import Escalation
from escalations.states import EscalationState

from .base import Periods, Ratio, case_filter_q, filtered_cases, one_period

#: An escalation that went to ``needs_info`` at least once (or is there now).
BOUNCED_Q = Q(bounce_count__gt=0) | Q(state=EscalationState.NEEDS_INFO)


def escalated_case_ids() -> QuerySet:
    return Escalation.objects.filter(submitted_at__isnull=False).values("case_id")


def ratios(periods: Periods, rows: Iterable[dict], numerator: str, denominator: str) -> list[Ratio]:
    result = [Ratio(0, 0) for _ in periods.bounds]
    for row in rows:
        if row["period"] is not None:
            result[row["period"]] = Ratio(row[numerator], row[denominator])
    return result


def escalation_rates(periods: Periods, *, few: bool = False, **filters: Any) -> list[Ratio]:
    """The escalation rate per period. ``few``: the periods hold few cases (the rollup's edges), so
    each case's escalations are looked up by their index rather than all of them hashed."""
    if few:
        escalated = Q(Exists(Escalation.objects.filter(case_id=OuterRef("pk"), submitted_at__isnull=False)))
    else:
        escalated = Q(id__in=escalated_case_ids())
    rows = (
        filtered_cases(**filters)
        .filter(periods.range("created_at"))
        .annotate(period=periods.key("created_at"))
        .values("period")
        .annotate(escalated=Count("id", filter=escalated), created=Count("id"))
        .order_by()
    )
    return ratios(periods, rows, "escalated", "created")


def escalation_rate(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """``catalogue.ESCALATION_RATE``, from the source.

    Both sides are the same cohort, so the rate is a share of the period's cases and never exceeds
    1; an escalation submitted after the period still counts for the case's own period.
    """
    return escalation_rates(one_period(start, end), **filters)[0]


def submitted(periods: Periods, **filters: Any) -> QuerySet:
    return Escalation.objects.filter(periods.range("submitted_at")).filter(case_filter_q("case__", **filters))


def bounce_rates(periods: Periods, **filters: Any) -> list[Ratio]:
    rows = (
        submitted(periods, **filters)
        .annotate(period=periods.key("submitted_at"))
        .values("period")
        .annotate(total=Count("id"), bounced=Count("id", filter=BOUNCED_Q))
        .order_by()
    )
    return ratios(periods, rows, "bounced", "total")


def engineering_bounce_rate(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> Ratio:
    """``catalogue.ENGINEERING_BOUNCE_RATE``, from the source."""
    return bounce_rates(one_period(start, end), **filters)[0]
