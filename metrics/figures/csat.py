"""CSAT: the mean rating (1-5) of the post-resolution surveys answered in a period, with their count.

Same conventions as the other figures (``metrics.figures.base``): keyword-only aware ``start``
(inclusive) and ``end`` (exclusive), the dashboard filters (``team``, ``tier``, ``severity``,
``organisation``, ``assignee``) applied to the answer's case, computed in the database. The period
selects answers by ``answered_at`` (``catalogue.CSAT_SCORE``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet

from cases.models import Case

from ..models import RATING_MAX, RATING_MIN, SurveyResponse
from .base import Periods, case_filter_q, check_period

RATINGS = tuple(range(RATING_MIN, RATING_MAX + 1))


@dataclass(frozen=True)
class CsatStats:
    """``count`` answers, their ``mean`` rating (None when there are none) and ``{rating: n}``."""

    count: int
    mean: float | None
    distribution: dict[int, int]


def _answers(*, start: dt.datetime, end: dt.datetime, **filters: Any) -> QuerySet[SurveyResponse]:
    check_period(start, end)
    return SurveyResponse.objects.filter(answered_at__gte=start, answered_at__lt=end).filter(
        case_filter_q("case__", **filters)
    )


def csat(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> CsatStats:
    """Answers received in the period: count, mean rating and how many gave each rating. One query."""
    return _stats(_answers(start=start, end=end, **filters).aggregate(**_aggregates()))


def csat_cases(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> QuerySet[Case]:
    """The cases whose survey was answered in the period (the drill-down of ``csat``)."""
    answered = _answers(start=start, end=end, **filters).values("case_id")
    return Case.objects.filter(id__in=answered)


def csat_periods(periods: Periods, **filters: Any) -> list[CsatStats]:
    """``csat`` for each of the (disjoint) periods, in one query."""
    rows = (
        SurveyResponse.objects.filter(periods.range("answered_at"), case_filter_q("case__", **filters))
        .annotate(period=periods.key("answered_at"))
        .values("period")
        .annotate(**_aggregates())
        .order_by()
    )
    result = [CsatStats(count=0, mean=None, distribution=dict.fromkeys(RATINGS, 0)) for _ in periods.bounds]
    for row in rows:
        if row["period"] is not None:
            result[row["period"]] = _stats(row)
    return result


def _aggregates() -> dict[str, Any]:
    """What ``_stats`` reads: the count, the mean rating and the count of each rating."""
    return {
        "count": Count("id"),
        "mean": Avg("rating"),
        **{f"r{n}": Count("id", filter=Q(rating=n)) for n in RATINGS},
    }


def _stats(agg: dict[str, Any]) -> CsatStats:
    # PostgreSQL averages integers as numeric (Decimal); the figure is a plain float either way.
    mean = None if agg["mean"] is None else float(agg["mean"])
    return CsatStats(count=agg["count"], mean=mean, distribution={n: agg[f"r{n}"] for n in RATINGS})


def from_distribution(distribution: dict[int, int]) -> CsatStats:
    """The stats of answers given as ``{rating: n}`` (the mean is exact: a sum of integers / n)."""
    dist = {n: distribution.get(n, 0) for n in RATINGS}
    count = sum(dist.values())
    mean = sum(n * k for n, k in dist.items()) / count if count else None
    return CsatStats(count=count, mean=mean, distribution=dist)


def combine(*parts: CsatStats) -> CsatStats:
    """The stats of the answers of several disjoint sets together."""
    return from_distribution({n: sum(p.distribution.get(n, 0) for p in parts) for n in RATINGS})
