"""A period's headline figures (``catalogue.SUMMARY``), for one period or several at once.

Each figure reads all the periods in one query, grouped by period: a period and the one before
it cost about what the two together as one period would. The count figures come from the daily
rollup for whole, clean, rolled-up UTC days and from the source for the rest; the durations from
the rollup's exact histograms likewise (``durations.figure_durations``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from .. import catalogue as c
from .. import rollup
from . import compliance as sla
from . import csat, durations, escalations, resolutions
from .base import Periods, Ratio, plus, run_all
from .plan import Plan, split


def counts(periods: Periods, plan: Plan | None, **filters: Any) -> tuple[list, list, list, list]:
    """SLA compliance, escalation rate, bounce rate and CSAT per period. Whole UTC days that are
    rolled up and clean come from ``metrics.rollup`` (one query), the rest from the source (the
    direct queries, over those ranges only); a period's figure is the sum of both parts."""
    n = len(periods)
    if plan is None:
        return (
            sla.compliance(periods, **filters),
            escalations.escalation_rates(periods, **filters),
            escalations.bounce_rates(periods, **filters),
            csat.csat_periods(periods, **filters),
        )
    compliance = [sla.no_compliance() for _ in range(n)]
    escalated = [Ratio(0, 0) for _ in range(n)]
    bounced = [Ratio(0, 0) for _ in range(n)]
    satisfaction = [csat.from_distribution({}) for _ in range(n)]
    if plan.edges:
        source = plan.edges
        parts = zip(
            sla.compliance(source, **filters),
            escalations.escalation_rates(source, few=True, **filters),
            escalations.bounce_rates(source, **filters),
            csat.csat_periods(source, **filters),
            strict=True,
        )
        for i, (cl, e, b, s) in zip(plan.edge_owners(), parts, strict=True):
            sla.add_compliance(compliance[i], cl)
            escalated[i], bounced[i] = plus(escalated[i], e), plus(bounced[i], b)
            satisfaction[i] = csat.combine(satisfaction[i], s)
    for (i, severity), row in plan.sums.items():
        rolled = sla.no_compliance()
        for target, (met, total) in rollup.CLOCK_COLUMNS.items():
            rolled[target][severity] = rolled[target]["all"] = Ratio(row[met], row[total])
        sla.add_compliance(compliance[i], rolled)
        escalated[i] = plus(escalated[i], Ratio(row["escalated"], row["created"]))
        bounced[i] = plus(bounced[i], Ratio(row["bounced"], row["submitted"]))
        answers = csat.from_distribution({r: row[col] for r, col in rollup.CSAT_COLUMNS.items()})
        satisfaction[i] = csat.combine(satisfaction[i], answers)
    return compliance, escalated, bounced, satisfaction


def periods_metrics(
    bounds: Iterable[tuple[dt.datetime, dt.datetime]], *, tz: str = "UTC", **filters: Any
) -> list[dict[str, Any]]:
    """Every figure of ``catalogue.SUMMARY`` for each of several disjoint periods (in the order
    given), each figure reading all the periods in one query."""
    bounds = list(bounds)
    periods = Periods(bounds)
    parts = split(periods, **filters)

    def counted() -> tuple:
        plan = Plan.make(periods, parts, **filters)
        return (*counts(periods, plan, **filters), resolutions.resolutions_rolled(periods, plan, **filters))

    def duration(metric: c.Metric):
        return lambda: durations.figure_durations(metric, periods, parts, **filters)

    # Longest first: a duration read from the source sorts a period's worth of cases.
    mttr, final, frt, (compliance, escalated, bounced, satisfaction, resolved), ttt = run_all(
        [
            duration(c.TIME_TO_RESOLVE),
            duration(c.TIME_TO_FINAL_RESOLUTION),
            duration(c.FIRST_RESPONSE_TIME),
            counted,
            duration(c.TIME_TO_TRIAGE),
        ]
    )
    by_start = [
        {
            c.FIRST_RESPONSE_TIME.key: frt[i],
            c.TIME_TO_TRIAGE.key: ttt[i],
            c.TIME_TO_RESOLVE.key: mttr[i],
            c.TIME_TO_FINAL_RESOLUTION.key: final[i],
            c.SLA_COMPLIANCE.key: compliance[i],
            c.REOPEN_RATE.key: resolved[i][c.REOPEN_RATE.key],
            c.ESCALATION_RATE.key: escalated[i],
            c.ENGINEERING_BOUNCE_RATE.key: bounced[i],
            c.UPDATE_CADENCE_ADHERENCE.key: sla.cadence(compliance[i]),
            c.KNOWLEDGE_REUSE.key: resolved[i][c.KNOWLEDGE_REUSE.key],
            c.CSAT_SCORE.key: satisfaction[i],
        }
        for i in range(len(periods))
    ]
    in_order = (by_start[periods.order[bound]] for bound in bounds)
    return [{m.key: figures[m.key] for m in c.SUMMARY} for figures in in_order]


def period_metrics(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> dict[str, Any]:
    """Every figure of ``catalogue.SUMMARY`` for one period (for the dashboard / API)."""
    return periods_metrics([(start, end)], tz=tz, **filters)[0]


def compared_metrics(
    period: dict[str, Any], previous: dict[str, Any], **filters: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The figures of ``period`` and of ``previous`` (``local_period`` dicts), from the same queries."""
    current, before = periods_metrics(
        [(period["start"], period["end"]), (previous["start"], previous["end"])], tz=period["tz"], **filters
    )
    return current, before
