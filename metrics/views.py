"""The managers' dashboard, its drill-down case lists and CSV exports, and an agent's own week.

The page is rendered on the server from ``metrics.selectors`` (it works without JavaScript); the
charts are drawn in the browser from ``/api/metrics/...``, the same selectors. Every figure links
to ``metrics:cases`` with the parameters that make ``counted_cases`` list exactly what it counts.
Bad parameters re-render the page with form errors (400), never a 500.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_safe

from cases.models import Tier
from sla.models import Target
from supportdesk.core.db_router import reads_from_replica
from supportdesk.core.decorators import role_required
from supportdesk.core.roles import is_agent, is_manager
from supportdesk.core.templatetags.supportdesk import duration

from . import catalogue, exports, selectors
from .forms import PRESETS, DrilldownForm, PeriodForm

CASES_PAGE_SIZE = 50
TREND_WEEKS = 12

# Managers and admins only: anonymous -> login, anyone else -> 403.
manager_required = role_required(is_manager, "The dashboards are for support managers.")
# Agents, managers and admins; engineers -> 403.
agent_required = role_required(is_agent, "Your own figures are for support agents.")


# --- formatting ----------------------------------------------------------------------------------


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if abs(seconds) < 60:
        return f"{seconds:.0f} s"
    return duration(dt.timedelta(seconds=seconds))


def fmt_minutes(minutes: int | None) -> str:
    return "—" if not minutes else duration(dt.timedelta(minutes=minutes))


def fmt_rate(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def fmt_value(kind: str, value: float | None) -> str:
    if kind == "duration":
        return fmt_seconds(value)
    if kind == "ratio":
        return fmt_rate(value)
    return "—" if value is None else f"{value:.2f}"


def fmt_change(kind: str, change: float | None) -> str:
    if change is None:
        return "—"
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    if kind == "duration":
        return sign + fmt_seconds(abs(change))
    if kind == "ratio":
        return f"{sign}{abs(change) * 100:.1f} pp"
    return f"{sign}{abs(change):.2f}"


def fmt_day(day: dt.date) -> str:
    return f"{day.day} {day:%b %Y}"


# --- links ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """URLs of the figures of one dashboard view (period and filters in ``params``)."""

    params: dict[str, str]

    def query(self, **changes: Any) -> str:
        merged = {**self.params, **{k: v for k, v in changes.items() if v not in (None, "")}}
        return urlencode(merged)

    def cases(
        self, metric: str, *, part=None, target=None, bucket=None, severity=None, assignee=None
    ) -> str | None:
        """The drill-down of a figure. A severity cell under a different severity filter counts
        nothing (the filter already excluded it), so it gets no link."""
        current = self.params.get("severity")
        if severity and current and severity != current:
            return None
        extra = {"metric": metric, "part": part, "target": target, "bucket": bucket, "severity": severity}
        if assignee is not None:
            extra["assignee"] = str(assignee)
        return f"{reverse('metrics:cases')}?{self.query(**extra)}"

    def export(self, table: str, **extra: Any) -> str:
        return f"{reverse('metrics:export', args=[table])}?{self.query(**extra)}"


# --- the dashboard -------------------------------------------------------------------------------


def _target_tier(filters: dict[str, Any]) -> tuple[str, bool]:
    """The tier whose SLA targets the tables and charts show, and whether the filters chose it."""
    if filters.get("tier"):
        return filters["tier"], True
    if filters.get("organisation"):
        return filters["organisation"].tier, True
    return Tier.ENTERPRISE.value, False


VERDICT_WORDS = {
    "better": "better than the previous period",
    "worse": "worse than the previous period",
    "same": "no change",
}


def _kpi_cards(figures: list[exports.Figure], links: Links) -> list[dict[str, Any]]:
    cards = []
    for f in figures:
        kpi = f.kpi
        card = {
            "figure": f,
            "value": fmt_value(kpi.kind, f.value),
            "previous": fmt_value(kpi.kind, f.previous),
            "change": fmt_change(kpi.kind, f.change),
            # The arrow says which way the figure moved; the words (and the colour) whether that is good.
            "arrow": "" if f.change is None else "up" if f.change > 0 else "down" if f.change < 0 else "same",
            "verdict_words": VERDICT_WORDS.get(f.verdict, ""),
            "count_url": links.cases(kpi.metric.key, target=kpi.target),
        }
        if kpi.kind == catalogue.RATIO:
            card["numerator_url"] = links.cases(kpi.metric.key, part=kpi.part, target=kpi.target)
        cards.append(card)
    return cards


def _duration_tables(current: dict[str, Any], tier_targets: dict, links: Links) -> list[dict[str, Any]]:
    tables = []
    for metric in exports.DURATIONS:
        report = current[metric.key]
        rows = [
            {
                "severity": "All",
                "stats": report.overall,
                "url": links.cases(metric.key),
                "cells": [
                    fmt_seconds(v) for v in (report.overall.median, report.overall.p90, report.overall.mean)
                ],
                "target": "",
            }
        ]
        for severity, stats in report.by_severity.items():
            rows.append(
                {
                    "severity": severity,
                    "stats": stats,
                    "url": links.cases(metric.key, severity=severity),
                    "cells": [fmt_seconds(v) for v in (stats.median, stats.p90, stats.mean)],
                    "target": fmt_minutes(tier_targets.get(severity, {}).get(metric.sla_target)),
                }
            )
        tables.append(
            {
                "metric": metric.key,
                "label": metric.titled,
                "target_label": exports.TARGET_LABELS[metric.sla_target],
                "rows": rows,
            }
        )
    return tables


def _compliance_rows(current: dict[str, Any], links: Links) -> list[dict[str, Any]]:
    metric, met, breached = catalogue.SLA_COMPLIANCE.key, catalogue.MET.code, catalogue.BREACHED.code
    rows = []
    for target, per in current[metric].items():
        cells = []
        for severity in [*exports.SEVERITIES, "all"]:
            ratio = per[severity]
            sev = None if severity == "all" else severity
            cells.append(
                {
                    "severity": severity,
                    "ratio": ratio,
                    "rate": fmt_rate(ratio.rate),
                    "met_url": links.cases(metric, target=target, part=met, severity=sev),
                    "all_url": links.cases(metric, target=target, severity=sev),
                    "breached": ratio.denominator - ratio.numerator,
                    "breached_url": links.cases(metric, target=target, part=breached, severity=sev),
                }
            )
        rows.append({"target": target, "label": exports.TARGET_LABELS[target], "cells": cells})
    return rows


def _breaches(current: dict[str, Any]) -> int:
    """SLA clocks breached in the period, all targets and severities."""
    compliance = current[catalogue.SLA_COMPLIANCE.key]
    return sum(per["all"].denominator - per["all"].numerator for per in compliance.values())


def _agent_rows(agents: list[selectors.AgentFigures], links: Links) -> list[dict[str, Any]]:
    frt, mttr = catalogue.FIRST_RESPONSE_TIME.key, catalogue.TIME_TO_RESOLVE.key
    compliance, breached = catalogue.SLA_COMPLIANCE.key, catalogue.BREACHED.code
    rows = []
    for a in agents:
        pk = a.user.pk
        rows.append(
            {
                "name": a.user.get_full_name() or a.user.get_username(),
                "username": a.user.get_username(),
                "handled": a.handled,
                "frt": fmt_seconds(a.first_response_time.median),
                "frt_count": a.first_response_time.count,
                "frt_url": links.cases(frt, assignee=pk),
                "mttr": fmt_seconds(a.time_to_resolve.median),
                "mttr_count": a.time_to_resolve.count,
                "mttr_url": links.cases(mttr, assignee=pk),
                "compliance": a.sla_compliance,
                "rate": fmt_rate(a.sla_compliance.rate),
                "compliance_url": links.cases(compliance, assignee=pk),
                "breached": a.breached,
                "breached_url": links.cases(compliance, part=breached, assignee=pk),
            }
        )
    return rows


def _backlog_rows(aging: dict[str, dict[str, int]], links: Links) -> tuple[list[dict[str, Any]], list[int]]:
    rows = []
    for label, per in aging.items():
        cells = [
            {"n": per[s], "url": links.cases(catalogue.BACKLOG.key, bucket=label, severity=s)}
            for s in exports.SEVERITIES
        ]
        rows.append(
            {
                "bucket": label,
                "cells": cells,
                "total": sum(per.values()),
                "url": links.cases(catalogue.BACKLOG.key, bucket=label),
            }
        )
    totals = [sum(per[s] for per in aging.values()) for s in exports.SEVERITIES]
    return rows, totals


def _preset_links(form: PeriodForm, links: Links) -> list[tuple[str, str, bool]]:
    base = {k: v for k, v in links.params.items() if k not in ("start", "end")}
    chosen = form.cleaned_data.get("preset") if form.is_valid() else None
    return [
        (label, f"{reverse('metrics:dashboard')}?{urlencode({'preset': days, **base})}", days == chosen)
        for days, label in PRESETS.items()
    ]


def _compared(data: dict[str, Any], filters: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The period's figures and the previous period's (None for the whole history: it has none)."""
    if data["previous"] is None:
        return selectors.period_metrics(**data["period"], **filters), None
    return selectors.compared_metrics(data["period"], data["previous"], **filters)


@manager_required
@require_safe
@reads_from_replica()
def dashboard(request: HttpRequest) -> HttpResponse:
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return render(request, "metrics/dashboard.html", {"form": form, "presets": []}, status=400)
    data = form.cleaned_data
    # Show the dates a preset stands for in the date fields.
    shown = request.GET.copy()
    shown.update({"start": data["start"].isoformat(), "end": data["end"].isoformat(), "tz": data["tz"]})
    form.data = shown
    filters, links = data["filters"], Links(data["params"])
    now = timezone.now()
    current, previous = _compared(data, filters)
    aging = selectors.backlog_aging(now=now, **filters)
    agents = selectors.agent_figures(**data["period"], **filters)
    tier, tier_chosen = _target_tier(filters)
    tier_targets = exports.targets_for(selectors.sla_targets(), tier)
    figures = exports.headline(current, previous)
    backlog_rows, backlog_totals = _backlog_rows(aging, links)
    if data["previous"]:
        prev_first = data["previous"]["start"].date()
        prev_last = data["start"] - dt.timedelta(days=1)
        previous_label = f"{fmt_day(prev_first)} – {fmt_day(prev_last)}"
    else:
        previous_label = ""
    csat = current[catalogue.CSAT_SCORE.key]
    chart_severities = [filters["severity"]] if filters.get("severity") else ["P1", "P2"]
    return render(
        request,
        "metrics/dashboard.html",
        {
            "form": form,
            "presets": _preset_links(form, links),
            "period_label": f"{fmt_day(data['start'])} – {fmt_day(data['end'])}",
            "previous_label": previous_label,
            "whole_history": data["whole_history"],
            "tz": data["tz"],
            "kpis": _kpi_cards(figures, links),
            "durations": _duration_tables(current, tier_targets, links),
            "compliance": _compliance_rows(current, links),
            "breaches": _breaches(current),
            "breaches_url": links.cases(catalogue.SLA_COMPLIANCE.key, part=catalogue.BREACHED.code),
            "agents": _agent_rows(agents, links),
            "severities": exports.SEVERITIES,
            "backlog": backlog_rows,
            "backlog_totals": backlog_totals,
            "backlog_total": sum(backlog_totals),
            "backlog_url": links.cases(catalogue.BACKLOG.key),
            "metrics": catalogue.METRICS,
            "now": now,
            "csat": csat,
            "csat_distribution": sorted(csat.distribution.items(), reverse=True),
            "target_tier": dict(Tier.choices)[tier],
            "target_tier_value": tier,
            "target_tier_chosen": tier_chosen,
            "chart_severities": ",".join(chart_severities),
            "query": links.query(),
            "trend_weeks": TREND_WEEKS,
            "exports": {
                table: links.export(table)
                for table in ("kpis", "durations", "compliance", "backlog", "trends")
            },
        },
    )


# --- drill-down ----------------------------------------------------------------------------------


def _counted(data: dict[str, Any], *, now: dt.datetime):
    options = {k: data.get(k) for k in ("part", "target", "bucket")}
    return selectors.counted_cases(data["metric"], now=now, **data["period"], **options, **data["filters"])


def _figure_label(data: dict[str, Any]) -> str:
    metric = catalogue.METRICS[data["metric"]]
    parts = [metric.label]
    if data.get("target"):
        parts.append(exports.TARGET_LABELS[data["target"]])
    if data.get("bucket"):
        parts.append(f"open {data['bucket']}")
    if data.get("part"):
        parts.append(metric.part_label(data["part"]))
    elif metric.whole:
        parts.append(metric.whole)
    return " — ".join(parts)


def _filter_labels(filters: dict[str, Any]) -> list[str]:
    labels = []
    for name, value in filters.items():
        if name == "assignee":
            value = value.get_full_name() or value.get_username()
        elif name == "tier":
            value = dict(Tier.choices).get(value, value)
        labels.append(f"{name.capitalize()}: {getattr(value, 'name', value)}")
    return labels


@manager_required
@require_safe
@reads_from_replica()
def cases(request: HttpRequest) -> HttpResponse:
    form = DrilldownForm(request.GET)
    if not form.is_valid():
        return render(request, "metrics/cases.html", {"form": form}, status=400)
    data = form.cleaned_data
    now = timezone.now()
    counted = _counted(data, now=now)
    total = counted.aggregate(n=Sum("counted"))["n"] or 0
    listed = counted.select_related("organisation", "assignee").order_by("-created_at", "-id")
    page = Paginator(listed, CASES_PAGE_SIZE).get_page(request.GET.get("page"))
    metric = catalogue.METRICS[data["metric"]]
    field, field_label, is_duration = metric.shown
    if metric is catalogue.SLA_COMPLIANCE and data.get("target") in catalogue.TARGET_SHOWN:
        field, field_label = catalogue.TARGET_SHOWN[data["target"]]
    rows = []
    for case in page.object_list:
        when = getattr(case, field)
        took = fmt_seconds((when - case.created_at).total_seconds()) if is_duration and when else ""
        rows.append({"case": case, "when": when, "took": took})
    links = Links(data["params"])
    unit = metric.counted
    dashboard_params = {
        k: v for k, v in data["params"].items() if k not in ("metric", "part", "target", "bucket")
    }
    return render(
        request,
        "metrics/cases.html",
        {
            "form": form,
            "label": _figure_label(data),
            "metric": data["metric"],
            "total": total,
            "unit": unit[0] if total == 1 else unit[1],
            "cases_count": page.paginator.count,
            # A case holds several clocks or escalations, but one survey answer at most.
            "shows_counted": metric.counted != ("case", "cases") and metric is not catalogue.CSAT_SCORE,
            "page": page,
            "rows": rows,
            "field_label": field_label,
            "is_duration": is_duration,
            "is_backlog": metric is catalogue.BACKLOG,
            "period_label": f"{fmt_day(data['start'])} – {fmt_day(data['end'])}",
            "tz": data["tz"],
            "filters": _filter_labels(data["filters"]),
            "now": now,
            "export_url": links.export("cases"),
            "dashboard_url": f"{reverse('metrics:dashboard')}?{urlencode(dashboard_params)}",
        },
    )


# --- CSV -----------------------------------------------------------------------------------------

TABLES = ("kpis", "durations", "compliance", "backlog", "trends", "cases")


def _bad_request(form) -> HttpResponse:
    lines = [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()]
    return HttpResponse(
        "The export parameters are not valid:\n" + "\n".join(lines) + "\n",
        status=400,
        content_type="text/plain; charset=utf-8",
    )


@manager_required
@require_safe
@reads_from_replica()
def export(request: HttpRequest, table: str) -> HttpResponse:
    if table not in TABLES:
        raise Http404(f"No table {table}.")
    form = (DrilldownForm if table == "cases" else PeriodForm)(request.GET)
    if not form.is_valid():
        return _bad_request(form)
    data = form.cleaned_data
    filters = data["filters"]
    span = f"{data['start'].isoformat()}_{data['end'].isoformat()}"
    now = timezone.now()
    if table == "backlog":
        day = now.astimezone(ZoneInfo(data["tz"])).date().isoformat()
        header, rows = exports.backlog_rows(selectors.backlog_aging(now=now, **filters))
        return exports.csv_response(f"supportdesk-backlog-{day}.csv", header, rows)
    if table == "trends":
        zone = ZoneInfo(data["tz"])
        end = dt.datetime.combine(data["end"], dt.time(12), tzinfo=zone)
        series = selectors.trends(end=end, tz=data["tz"], weeks=TREND_WEEKS, **filters)
        header, rows = exports.trend_rows(series)
        return exports.csv_response(
            f"supportdesk-trends-{TREND_WEEKS}w-to-{data['end'].isoformat()}.csv", header, rows
        )
    if table == "cases":
        qs = _counted(data, now=now).select_related("organisation", "assignee").order_by("-created_at", "-id")
        name = "-".join(
            filter(None, [data["metric"], data.get("part"), data.get("target"), data.get("bucket")])
        )
        # Bucket labels hold ">" and "-": keep the file name portable.
        name = re.sub(r"[^A-Za-z0-9_-]+", "", name.replace(">", "over"))
        rows = exports.case_rows(qs.iterator(chunk_size=2000), tz=data["tz"])
        return exports.csv_response(f"supportdesk-cases-{name}-{span}.csv", exports.CASE_HEADER, rows)
    if table == "kpis":
        current, previous = _compared(data, filters)
        header, rows = exports.kpi_rows(exports.headline(current, previous))
    elif table == "durations":
        tier, _ = _target_tier(filters)
        current = selectors.period_metrics(**data["period"], **filters)
        header, rows = exports.duration_rows(current, exports.targets_for(selectors.sla_targets(), tier))
    else:
        header, rows = exports.compliance_rows(selectors.period_metrics(**data["period"], **filters))
    return exports.csv_response(f"supportdesk-{table}-{span}.csv", header, rows)


# --- an agent's own week -------------------------------------------------------------------------


@agent_required
@require_safe
def mine(request: HttpRequest) -> HttpResponse:
    tz = timezone.get_current_timezone_name()
    now = timezone.now()
    overview = selectors.agent_overview(user=request.user, now=now, tz=tz)
    page = Paginator(overview["open_cases"], CASES_PAGE_SIZE).get_page(request.GET.get("page"))
    frt = overview[catalogue.FIRST_RESPONSE_TIME.key]
    cadence = overview[catalogue.UPDATE_CADENCE_ADHERENCE.key]
    return render(
        request,
        "metrics/mine.html",
        {
            "week_start": overview["week_start"],
            "tz": tz,
            "frt": frt,
            "frt_cells": {k: fmt_seconds(getattr(frt, k)) for k in ("median", "p90", "mean")},
            "cadence": cadence,
            "cadence_rate": fmt_rate(cadence.rate),
            "page": page,
            "cases": list(page.object_list),
            "now": now,
            "targets": {t.value: t.label for t in Target},
        },
    )
