"""The metrics' public read surface: the KPIs of DOMAIN.md's metrics table.

The figures are computed by family in ``metrics.figures`` (durations, compliance, resolutions,
escalations, CSAT, backlog, the summary of a period, the weekly trends, the drill-down, the
per-agent figures); each metric's label, unit, definition and the instant that selects it are in
``metrics.catalogue``. Callers import from here, so the families can move without breaking them.
"""

from __future__ import annotations

from . import catalogue
from .figures import csat  # the module: ``selectors.csat.csat(...)``, as callers use it
from .figures.agents import AgentFigures, agent_figures, agent_overview
from .figures.backlog import AGE_BUCKETS, backlog_aging
from .figures.base import (
    FILTER_NAMES,
    DurationReport,
    DurationStats,
    Periods,
    Ratio,
    case_filter_q,
    local_period,
    previous_period,
    whole_history,
)
from .figures.compliance import CADENCE_SEVERITIES, sla_compliance, sla_targets, update_cadence_adherence
from .figures.csat import CsatStats, csat_cases
from .figures.drilldown import counted_cases
from .figures.durations import first_response_time, time_to_final_resolution, time_to_resolve, time_to_triage
from .figures.escalations import engineering_bounce_rate, escalation_rate
from .figures.resolutions import knowledge_reuse, reopen_rate
from .figures.summary import compared_metrics, period_metrics, periods_metrics
from .figures.trends import trend, trends, volume_trend, week_starts

#: metric -> (label, drill-down parts), from ``metrics.catalogue`` (a ratio's parts are its
#: numerator and its denominator, for compliance met and breached).
DRILLDOWN: dict[str, tuple[str, tuple[str, ...]]] = {
    key: (metric.label, metric.part_codes) for key, metric in catalogue.METRICS.items()
}

__all__ = [
    "AGE_BUCKETS",
    "CADENCE_SEVERITIES",
    "DRILLDOWN",
    "FILTER_NAMES",
    "AgentFigures",
    "CsatStats",
    "DurationReport",
    "DurationStats",
    "Periods",
    "Ratio",
    "agent_figures",
    "agent_overview",
    "backlog_aging",
    "case_filter_q",
    "compared_metrics",
    "counted_cases",
    "csat",
    "csat_cases",
    "engineering_bounce_rate",
    "escalation_rate",
    "first_response_time",
    "knowledge_reuse",
    "local_period",
    "period_metrics",
    "periods_metrics",
    "previous_period",
    "reopen_rate",
    "sla_compliance",
    "sla_targets",
    "time_to_final_resolution",
    "time_to_resolve",
    "time_to_triage",
    "trend",
    "trends",
    "update_cadence_adherence",
    "volume_trend",
    "week_starts",
    "whole_history",
]
