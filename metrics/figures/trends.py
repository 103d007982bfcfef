"""The dashboard's weekly series: FRT and MTTR, SLA compliance, reopen rate and volume per local
week, each grouped by week in a fixed number of queries whatever the number of weeks."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count
from django.db.models.functions import TruncWeek

from .. import catalogue as c
from . import compliance as sla
from . import durations, resolutions, summary
from .base import Periods, filtered_cases, run_all
from .plan import Plan, split


def week_starts(*, end: dt.datetime, tz: str, weeks: int = 12) -> list[dt.datetime]:
    """The local Monday 00:00 of the last ``weeks`` weeks up to the one containing ``end``."""
    zone = ZoneInfo(tz)
    local = end.astimezone(zone)
    monday = (local - dt.timedelta(days=local.weekday())).date()
    return [
        dt.datetime.combine(monday - dt.timedelta(weeks=i), dt.time(0), tzinfo=zone)
        for i in reversed(range(weeks))
    ]


def next_week(start: dt.datetime) -> dt.datetime:
    # Wall-clock arithmetic on an aware datetime keeps local midnight across DST changes.
    return start + dt.timedelta(weeks=1)


def volume_trend(
    *, end: dt.datetime, tz: str = "UTC", weeks: int = 12, **filters: Any
) -> list[dict[str, Any]]:
    """Cases created (``catalogue.VOLUME_CREATED``) and first resolved (``VOLUME_RESOLVED``) per
    local week, for the last ``weeks`` weeks."""
    starts = week_starts(end=end, tz=tz, weeks=weeks)
    zone = ZoneInfo(tz)
    first, last = starts[0], starts[-1] + dt.timedelta(weeks=1)
    cases = filtered_cases(**filters)

    def per_week(instant: str) -> dict:
        return dict(
            cases.filter(**{f"{instant}__gte": first, f"{instant}__lt": last})
            .annotate(week=TruncWeek(instant, tzinfo=zone))
            .values("week")
            .annotate(n=Count("*"))
            .order_by()
            .values_list("week", "n")
        )

    created = per_week(c.VOLUME_CREATED.field)
    resolved = per_week(c.VOLUME_RESOLVED.field)
    return [{"week": s, "created": _lookup(created, s), "resolved": _lookup(resolved, s)} for s in starts]


def _lookup(counts: dict, week: dt.datetime) -> int:
    for key, value in counts.items():
        if key is not None and _same_instant(key, week):
            return value
    return 0


def _same_instant(a: dt.datetime | dt.date, b: dt.datetime) -> bool:
    if isinstance(a, dt.datetime):
        return a == b
    return a == b.date()


def trend(
    metric, *, end: dt.datetime, tz: str = "UTC", weeks: int = 12, **filters: Any
) -> list[tuple[dt.datetime, Any]]:
    """``metric`` (one of the period functions of the figures) for each of the last ``weeks`` local
    weeks."""
    starts = week_starts(end=end, tz=tz, weeks=weeks)
    return [(s, metric(start=s, end=next_week(s), tz=tz, **filters)) for s in starts]


def trends(*, end: dt.datetime, tz: str = "UTC", weeks: int = 12, **filters: Any) -> dict[str, Any]:
    """The dashboard's weekly series for the last ``weeks`` local weeks up to the one holding ``end``:
    FRT and MTTR (overall stats), SLA compliance (all targets together), reopen rate and volume.

    The same figures as the period functions give for each week on its own; compliance and the
    reopen rate come from the daily rollup where it holds the days, as in ``periods_metrics``.
    """
    starts = week_starts(end=end, tz=tz, weeks=weeks)
    periods = Periods([(start, next_week(start)) for start in starts])
    parts = split(periods, **filters)

    def counted() -> tuple[list, list]:
        # Compliance and the reopen rate per week as the summary computes them (rollup + source).
        plan = Plan.make(periods, parts, **filters)
        compliance = summary.counts(periods, plan, **filters)[0]
        return compliance, resolutions.resolutions_rolled(periods, plan, **filters)

    frt, mttr, (compliance, resolved), volume = run_all(
        [
            lambda: durations.figure_durations(c.FIRST_RESPONSE_TIME, periods, parts, **filters),
            lambda: durations.figure_durations(c.TIME_TO_RESOLVE, periods, parts, **filters),
            counted,
            lambda: volume_trend(end=end, tz=tz, weeks=weeks, **filters),
        ]
    )
    positions = range(len(starts))
    return {
        "weeks": starts,
        c.FIRST_RESPONSE_TIME.key: [frt[i].overall for i in positions],
        c.TIME_TO_RESOLVE.key: [mttr[i].overall for i in positions],
        c.SLA_COMPLIANCE.key: [sla.all_targets(compliance[i]) for i in positions],
        c.REOPEN_RATE.key: [resolved[i][c.REOPEN_RATE.key] for i in positions],
        "volume": volume,
    }
