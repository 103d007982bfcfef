"""The reopen rate and knowledge reuse: they share their denominator, the distinct cases resolved
in the period (by the resolution event's time; a case resolved twice counts once)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import BooleanField, Count, DateTimeField, ExpressionWrapper, F, QuerySet, Value

from cases.models import REOPENED_Q, RESOLVED_Q, CaseEvent
from knowledge.models import ArticleCaseLink

from .. import catalogue, rollup
from .base import MicrosecondsBetween, Periods, Ratio, case_filter_q, one_period
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


#: Edges longer than this (a rollup not built yet, or days marked dirty by a large import) are
#: not walked event by event: the periods are then counted straight from the source, as they are
#: when nothing of them is rolled up.
MAX_EDGE = dt.timedelta(days=7)
_COLUMNS = rollup.REPEAT_COLUMNS


def resolutions_rolled(periods: Periods, plan: Plan | None, **filters: Any) -> list[dict[str, Ratio]]:
    """Reopen rate and knowledge reuse per period, counting distinct cases, from event counts.

    The rollup counts reopen and resolution *events*. Of a period's events of one kind, each
    case's first is the one whose previous event of that kind (of the case) lies before the
    period: the distinct cases are the events less the *repeats*, the events whose previous one is
    in the period too. The events and repeats of the rolled-up days come from the rollup
    (``DailyRollup``, ``RollupRepeat``: a repeat whose two events both lie in the period's rolled-up
    days); the events of the edges, and the repeats with an event in an edge, from the source
    (``_edges``). No rule of the lifecycle is assumed: a history resolved twice without a reopen
    counts once too.
    """
    if plan is None or not plan.days or _edge_span(plan) > MAX_EDGE:
        return resolutions(periods, **filters)
    totals = [dict.fromkeys(_COLUMNS, 0) for _ in periods.bounds]
    for (i, _), row in plan.sums.items():
        for column in _COLUMNS:
            totals[i][column] += row[column]
    for i, repeats in rollup.repeat_sums(plan.days, **filters).items():
        for column in _COLUMNS:
            totals[i][column] -= repeats[column]
    for i, (events, repeats) in _edges(periods, plan, **filters).items():
        for column in _COLUMNS:
            totals[i][column] += events[column] - repeats[column]
    return [_result(t["reopens"], t["resolutions"], t["linked_resolutions"]) for t in totals]


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _us(instant: dt.datetime) -> int:
    """Microseconds since the epoch, as ``MicrosecondsBetween`` gives them for a stored instant."""
    return (instant - _EPOCH) // dt.timedelta(microseconds=1)


def _edge_span(plan: Plan) -> dt.timedelta:
    return (
        sum((end - start for start, end in plan.edges.bounds), dt.timedelta())
        if plan.edges
        else dt.timedelta()
    )


def _edges(periods: Periods, plan: Plan, **filters: Any) -> dict[int, tuple[dict[str, int], dict[str, int]]]:
    """Per period, the reopen and resolution events of its edges (the parts read from the source)
    and the repeats the rollup cannot see: consecutive events of one kind of a case, both in the
    period, at least one in an edge. Three queries, each an index-only scan: the edges' events,
    every reopen and resolution of their cases, which of those cases have a linked article."""
    result: dict[int, tuple[dict[str, int], dict[str, int]]] = {}
    if not plan.edges:
        return result
    owners = plan.edge_owners()
    edge_rows = list(
        metric_events(plan.edges, **filters)
        .annotate(period=plan.edges.key("created_at"), reopen=ExpressionWrapper(REOPENED_Q, BooleanField()))
        .values_list("period", "case_id", "reopen")
        .order_by()
    )
    if not edge_rows:
        return result
    # Their cases as a subquery, not a list of ids: PostgreSQL joins it to the indexes.
    ids = metric_events(plan.edges, **filters).values("case_id")
    linked = set(ArticleCaseLink.objects.filter(case_id__in=ids).values_list("case_id", flat=True))
    # Instants as microseconds since the epoch: thousands of them, and integers load far faster
    # than datetimes.
    history: dict[tuple[int, bool], list[int]] = {}
    for case_id, at_us, reopen in (
        CaseEvent.objects.filter(REOPENED_Q | RESOLVED_Q, case_id__in=ids)
        .annotate(
            reopen=ExpressionWrapper(REOPENED_Q, BooleanField()),
            at_us=MicrosecondsBetween(F("created_at"), Value(_EPOCH, output_field=DateTimeField())),
        )
        .values_list("case_id", "at_us", "reopen")
        .order_by()
    ):
        history.setdefault((case_id, reopen), []).append(at_us)

    def counts() -> tuple[dict[str, int], dict[str, int]]:
        return dict.fromkeys(_COLUMNS, 0), dict.fromkeys(_COLUMNS, 0)

    def add(into: dict[str, int], case_id: int, reopen: bool) -> None:
        into["reopens" if reopen else "resolutions"] += 1
        if not reopen and case_id in linked:
            into["linked_resolutions"] += 1

    for edge, case_id, reopen in edge_rows:
        if edge is not None:
            add(result.setdefault(owners[edge], counts())[0], case_id, reopen)
    edges_of: dict[int, list[tuple[int, int]]] = {}
    for (a, b), i in zip(plan.edges.bounds, owners, strict=True):
        edges_of.setdefault(i, []).append((_us(a), _us(b)))
    bounds_of = {i: (_us(periods.bounds[i][0]), _us(periods.bounds[i][1])) for i in edges_of}

    def in_edge(i: int, instant: int) -> bool:
        return any(a <= instant < b for a, b in edges_of[i])

    # Any order of events at the same instant gives the same pairs across days and edges: tied
    # events lie in the same day, so in the rollup's part or in an edge together.
    for (case_id, reopen), instants in history.items():
        instants.sort()
        for earlier, later in zip(instants, instants[1:], strict=False):
            for i in edges_of:
                start, end = bounds_of[i]
                if start <= earlier and later < end and (in_edge(i, earlier) or in_edge(i, later)):
                    add(result.setdefault(i, counts())[1], case_id, reopen)
    return result


def reopen_rate(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """``catalogue.REOPEN_RATE``, from the source."""
    return resolutions(one_period(start, end), **filters)[0][catalogue.REOPEN_RATE.key]


def knowledge_reuse(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """``catalogue.KNOWLEDGE_REUSE``, from the source."""
    return resolutions(one_period(start, end), **filters)[0][catalogue.KNOWLEDGE_REUSE.key]
