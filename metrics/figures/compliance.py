"""SLA compliance per target and severity, update-cadence adherence, and the SLA targets.

Both are clocks met on time / clocks completed (met, at ``met_at``, or breached, at
``breached_at``, also when met late afterwards), selected by the completion instant
(``sla.models.completed_at``); cancelled and live clocks are left out. They use the SLA clocks, so
they count business time where the policy does.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, Q, QuerySet

from cases.models import Severity, Tier
from sla.models import ClockState, SlaClock, SlaPolicy, Target, completed_at

from .base import Periods, Ratio, case_filter_q, one_period, plus

CADENCE_SEVERITIES = (Severity.P1.value, Severity.P2.value)


def completed_clocks(periods: Periods, **filters: Any) -> QuerySet:
    """Clocks whose outcome was decided in the period: met (at ``met_at``) or breached (at
    ``breached_at``, also when met late afterwards). Cancelled and live clocks are not counted."""
    # One range on one expression (the one sla_clock_completed_idx is built on), not an OR of two.
    return (
        SlaClock.objects.annotate(completed_at=completed_at())
        .filter(periods.range("completed_at"))
        .filter(case_filter_q("case__", **filters))
    )


def no_compliance() -> dict[str, dict[str, Ratio]]:
    return {t: {s: Ratio(0, 0) for s in [*Severity.values, "all"]} for t in Target.values}


def add_compliance(into: dict[str, dict[str, Ratio]], more: dict[str, dict[str, Ratio]]) -> None:
    for target, cells in more.items():
        for severity, ratio in cells.items():
            into[target][severity] = plus(into[target][severity], ratio)


def compliance(periods: Periods, **filters: Any) -> list[dict[str, dict[str, Ratio]]]:
    """Per period, per target, per severity (and ``all``): clocks met on time / completed. One query."""
    rows = (
        completed_clocks(periods, **filters)
        .annotate(period=periods.key("completed_at"))
        .values("period", "target", "case__severity")
        .annotate(total=Count("case_id"), on_time=Count("case_id", filter=Q(state=ClockState.MET)))
        .order_by()
    )
    result = [no_compliance() for _ in periods.bounds]
    for row in rows:
        if row["period"] is None:
            continue
        per = result[row["period"]][row["target"]]
        per[row["case__severity"]] = Ratio(row["on_time"], row["total"])
        per["all"] = plus(per["all"], per[row["case__severity"]])
    return result


def sla_compliance(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> dict[str, dict[str, Ratio]]:
    """``catalogue.SLA_COMPLIANCE`` per target, per severity (and ``all``), from the source. One query."""
    return compliance(one_period(start, end), **filters)[0]


def cadence(figures: dict[str, dict[str, Ratio]]) -> Ratio:
    """Update-cadence adherence read off a compliance result: its P1 and P2 cells together."""
    cells = [figures[Target.UPDATE_CADENCE][s] for s in CADENCE_SEVERITIES]
    return Ratio(sum(c.numerator for c in cells), sum(c.denominator for c in cells))


def cadence_clocks(clocks: QuerySet) -> QuerySet:
    """The update-cadence clocks of P1 and P2 cases among ``clocks``."""
    return clocks.filter(target=Target.UPDATE_CADENCE, case__severity__in=CADENCE_SEVERITIES)


def update_cadence_adherence(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> Ratio:
    """``catalogue.UPDATE_CADENCE_ADHERENCE``, from the source."""
    qs = cadence_clocks(completed_clocks(one_period(start, end), **filters))
    agg = qs.aggregate(total=Count("case_id"), on_time=Count("case_id", filter=Q(state=ClockState.MET)))
    return Ratio(agg["on_time"], agg["total"])


def all_targets(figures: dict[str, dict[str, Ratio]]) -> Ratio:
    """Every target's clocks together (the weekly compliance line)."""
    total = Ratio(0, 0)
    for cells in figures.values():
        total = plus(total, cells["all"])
    return total


def sla_targets() -> dict[str, dict[str, dict[str, int | None]]]:
    """``{tier: {severity: {target: minutes or None}}}`` from the SLA policies (one query): the lines
    the dashboard draws its targets at."""
    result: dict[str, dict[str, dict[str, int | None]]] = {
        tier: {severity: dict.fromkeys(Target.values) for severity in Severity.values} for tier in Tier.values
    }
    for policy in SlaPolicy.objects.all():
        result[policy.tier][policy.severity] = {
            Target.FIRST_RESPONSE: policy.first_response_minutes,
            Target.TRIAGE: policy.triage_minutes,
            Target.UPDATE_CADENCE: policy.update_cadence_minutes,
            Target.RESOLUTION: policy.resolution_minutes,
        }
    return result
