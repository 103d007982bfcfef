"""Figures per assignee: the managers' "By agent" table and an agent's own week."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q

from cases.models import OPEN_Q, Case
from sla.models import ClockState

from .. import catalogue as c
from .base import EMPTY, DurationStats, Ratio, check_period, filtered_cases, one_period, pk_of, run_all
from .compliance import completed_clocks, update_cadence_adherence
from .durations import duration_rows, duration_stats, first_response_time
from .trends import next_week, week_starts


@dataclass(frozen=True)
class AgentFigures:
    """One assignee's figures in a period: the cases they handled (first answered or first resolved
    in the period), their first response and resolution times, and their cases' SLA clocks met on
    time / completed in the period. Cases count for their current assignee."""

    user: Any
    handled: int
    first_response_time: DurationStats
    time_to_resolve: DurationStats
    sla_compliance: Ratio

    @property
    def breached(self) -> int:
        return self.sla_compliance.denominator - self.sla_compliance.numerator


def agent_figures(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> list[AgentFigures]:
    """Per assignee with anything in the period, most cases handled first. Five queries whatever
    the number of agents: handled counts, the two duration groupings, compliance, the users."""
    check_period(start, end)
    period = one_period(start, end)
    assigned = Q(assignee__isnull=False)

    def handled():
        rows = (
            filtered_cases(**filters)
            .filter(assigned)
            .filter(period.range(c.FIRST_RESPONSE_TIME.field) | period.range(c.TIME_TO_RESOLVE.field))
            .values("assignee_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        return {row["assignee_id"]: row["n"] for row in rows}

    def durations(metric: c.Metric):
        rows = duration_rows(metric, period, **filters).filter(assigned)
        return {key[0]: stats for key, stats in duration_stats(rows, group_by=("assignee_id",)).items()}

    def compliance():
        rows = (
            completed_clocks(period, **filters)
            .filter(case__assignee__isnull=False)
            .values("case__assignee_id")
            .annotate(total=Count("id"), on_time=Count("id", filter=Q(state=ClockState.MET)))
            .order_by()
        )
        return {row["case__assignee_id"]: Ratio(row["on_time"], row["total"]) for row in rows}

    counts, frt, mttr, clocks = run_all(
        [
            handled,
            lambda: durations(c.FIRST_RESPONSE_TIME),
            lambda: durations(c.TIME_TO_RESOLVE),
            compliance,
        ]
    )
    ids = set(counts) | set(frt) | set(mttr) | set(clocks)
    users = get_user_model().objects.in_bulk(ids)
    rows = [
        AgentFigures(
            user=users[pk],
            handled=counts.get(pk, 0),
            first_response_time=frt.get(pk, EMPTY),
            time_to_resolve=mttr.get(pk, EMPTY),
            sla_compliance=clocks.get(pk, Ratio(0, 0)),
        )
        for pk in ids
        if pk in users
    ]
    return sorted(rows, key=lambda r: (-r.handled, (r.user.get_full_name() or r.user.get_username()).lower()))


def agent_overview(*, user: Any, now: dt.datetime, tz: str = "UTC") -> dict[str, Any]:
    """The agent's own week (local Monday to now): FRT and update-cadence adherence of the cases
    assigned to them, and their open cases ordered by the next SLA due time."""
    week_start = week_starts(end=now, tz=tz, weeks=1)[0]
    period = {"start": week_start, "end": next_week(week_start), "tz": tz, "assignee": user}
    open_cases = (
        Case.objects.filter(OPEN_Q, assignee=pk_of(user))
        .select_related("organisation")
        .order_by(F("next_due_at").asc(nulls_last=True), "created_at", "id")
    )
    return {
        "week_start": week_start,
        c.FIRST_RESPONSE_TIME.key: first_response_time(**period).overall,
        c.UPDATE_CADENCE_ADHERENCE.key: update_cadence_adherence(**period),
        "open_cases": open_cases,
    }
