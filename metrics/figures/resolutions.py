"""The reopen rate and knowledge reuse: they share their denominator, the distinct cases resolved
in the period (by the resolution event's time; a case resolved twice counts once)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Exists, OuterRef, QuerySet

from cases.models import REOPENED_Q, RESOLVED_Q, CaseEvent
from knowledge.models import ArticleCaseLink

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

    The rollup (and the source, for the edges) counts reopen and resolution *events*. Of a period's
    events of one kind, each case's first is the one whose previous event of that kind (of the
    case) lies before the period: the distinct cases are the events less the *repeats*, the events
    whose previous one is in the period too. The repeats whose two events both lie in rolled-up
    days come from the rollup (``RollupRepeat``); those touching an edge from the source, by
    looking up, for each edge event, the case's previous and next event of its kind
    (``_edge_repeats``). No rule of the lifecycle is assumed: a history resolved twice without a
    reopen counts once too.
    """
    if plan is None:
        return resolutions(periods, **filters)
    n = len(periods)
    totals = [dict.fromkeys(rollup.REPEAT_COLUMNS, 0) for _ in range(n)]
    for (i, _), row in plan.sums.items():
        for column in rollup.REPEAT_COLUMNS:
            totals[i][column] += row[column]
    # Counted by case_id, not id: the partial indexes hold every column read (index-only scans).
    if plan.edges:
        rows = (
            metric_events(plan.edges, **filters)
            .annotate(period=plan.edges.key("created_at"))
            .values("period")
            .annotate(
                reopens=Count("case_id", filter=REOPENED_Q),
                resolutions=Count("case_id", filter=RESOLVED_Q),
                linked_resolutions=Count("case_id", filter=rollup.linked_resolution_q()),
            )
            .order_by()
        )
        owners = plan.edge_owners()
        for row in rows:
            if row["period"] is not None:
                for column in rollup.REPEAT_COLUMNS:
                    totals[owners[row["period"]]][column] += row[column]
    repeats = rollup.repeat_sums(plan.days, **filters)
    for i, counted in _edge_repeats(periods, plan, **filters).items():
        for column, k in counted.items():
            repeats.setdefault(i, dict.fromkeys(rollup.REPEAT_COLUMNS, 0))[column] += k
    for i, counted in repeats.items():
        for column, k in counted.items():
            totals[i][column] -= k
    return [_result(t["reopens"], t["resolutions"], t["linked_resolutions"]) for t in totals]


def _edge_repeats(periods: Periods, plan: Plan, **filters: Any) -> dict[int, dict[str, int]]:
    """The repeats of each period that the rollup cannot see because one of their two events lies
    in an edge (a part of the period read from the source): an edge event whose case's previous
    event of its kind is in the period, and an edge event whose case's next event of its kind is in
    the period's rolled-up days. One query per kind over the edge events only."""
    result: dict[int, dict[str, int]] = {}
    if not plan.edges:
        return result
    owners = plan.edge_owners()
    edges_of: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for bound, i in zip(plan.edges.bounds, owners, strict=True):
        edges_of.setdefault(i, []).append(bound)
    for kind, column in rollup.REPEAT_KINDS:
        rows = (
            CaseEvent.objects.filter(kind, plan.edges.range("created_at"), case_filter_q("case__", **filters))
            .annotate(
                period=plan.edges.key("created_at"),
                previous=rollup.previous_event(kind),
                following=rollup.next_event(kind),
                linked=Exists(ArticleCaseLink.objects.filter(case_id=OuterRef("case_id"))),
            )
            .values_list("period", "previous", "following", "linked")
            .order_by()
        )
        for edge, previous, following, is_linked in rows:
            if edge is None:
                continue
            i = owners[edge]
            start, end = periods.bounds[i]
            n = 0
            if previous is not None and previous >= start:
                n += 1  # the event repeats one of the period (from a rolled-up day or an edge)
            if (
                following is not None
                and following < end
                and not any(a <= following < b for a, b in edges_of[i])
            ):
                n += 1  # the next one, on a rolled-up day, repeats this one
            if n:
                counted = result.setdefault(i, dict.fromkeys(rollup.REPEAT_COLUMNS, 0))
                counted[column] += n
                if column == "resolutions" and is_linked:
                    counted["linked_resolutions"] += n
    return result


def reopen_rate(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """``catalogue.REOPEN_RATE``, from the source."""
    return resolutions(one_period(start, end), **filters)[0][catalogue.REOPEN_RATE.key]


def knowledge_reuse(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """``catalogue.KNOWLEDGE_REUSE``, from the source."""
    return resolutions(one_period(start, end), **filters)[0][catalogue.KNOWLEDGE_REUSE.key]
