"""The dashboard's tables, as plain rows: the page renders them and the CSV exports write them.

Everything here works on what ``metrics.selectors`` returned, named as ``metrics.catalogue``
names it (no queries of its own except the case list of a drill-down), so the page, the CSV and
the API always agree.

CSV cells that a spreadsheet would run as a formula (text starting with ``= + - @``, a tab or a
carriage return) are prefixed with a quote: case titles and names are typed by customers and
staff. Numbers are written as numbers.
"""

from __future__ import annotations

import contextvars
import csv
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.http import StreamingHttpResponse

from cases.models import Severity
from sla.models import Target

from . import catalogue, selectors
from .catalogue import Kpi

SEVERITIES = tuple(Severity.values)
TARGET_LABELS = dict(Target.choices)


#: The headline KPIs and the duration tables, from the catalogue.
HEADLINE = catalogue.HEADLINE
DURATIONS = catalogue.DURATIONS


def ratio_of(kpi: Kpi, metrics: dict[str, Any]) -> selectors.Ratio:
    figure = metrics[kpi.metric.key]
    return figure[kpi.target]["all"] if kpi.target else figure


@dataclass(frozen=True)
class Figure:
    """One headline KPI in this period and the previous one."""

    kpi: Kpi
    value: float | None
    previous: float | None
    count: int  # cases measured (duration), answers (CSAT) or the ratio's denominator
    numerator: int | None = None
    previous_count: int = 0

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, ``same``, ``neutral`` (no good direction) or "" (nothing to compare)."""
        change = self.change
        if change is None:
            return ""
        if abs(change) < 1e-9:
            return "same"
        if self.kpi.lower_is_better is None:
            return "neutral"
        return "better" if (change < 0) == self.kpi.lower_is_better else "worse"


def headline(current: dict[str, Any], previous: dict[str, Any] | None) -> list[Figure]:
    """The headline figures; without a previous period (the whole history) nothing is compared."""
    figures = []
    for kpi in HEADLINE:
        if kpi.kind == catalogue.DURATION:
            now = current[kpi.metric.key].overall
            before = previous[kpi.metric.key].overall if previous else None
            figures.append(
                Figure(
                    kpi,
                    now.median,
                    before.median if before else None,
                    now.count,
                    previous_count=before.count if before else 0,
                )
            )
        elif kpi.kind == catalogue.CSAT:
            key = kpi.metric.key
            now, before = current[key], previous[key] if previous else None
            figures.append(
                Figure(
                    kpi,
                    now.mean,
                    before.mean if before else None,
                    now.count,
                    previous_count=before.count if before else 0,
                )
            )
        else:
            now, before = ratio_of(kpi, current), ratio_of(kpi, previous) if previous else None
            figures.append(
                Figure(
                    kpi,
                    now.rate,
                    before.rate if before else None,
                    now.denominator,
                    now.numerator,
                    before.denominator if before else 0,
                )
            )
    return figures


def targets_for(targets: dict[str, Any], tier: str) -> dict[str, dict[str, int | None]]:
    """``{severity: {target: minutes}}`` of one tier (from ``selectors.sla_targets()``)."""
    return targets.get(tier) or {s: dict.fromkeys(Target.values) for s in SEVERITIES}


# --- the tables as CSV rows ---------------------------------------------------------------------


def _num(value: float | None, digits: int = 6) -> float | str:
    return "" if value is None else round(value, digits)


def kpi_rows(figures: list[Figure]) -> tuple[list[str], list[list[Any]]]:
    header = [
        "kpi",
        "label",
        "unit",
        "value",
        "previous_value",
        "change",
        "numerator",
        "count_or_denominator",
    ]
    rows = [
        [
            f.kpi.key,
            f.kpi.label,
            f.kpi.unit,
            _num(f.value),
            _num(f.previous),
            _num(f.change),
            "" if f.numerator is None else f.numerator,
            f.count,
        ]
        for f in figures
    ]
    return header, rows


def duration_rows(current: dict[str, Any], tier_targets: dict[str, dict[str, int | None]]):
    header = [
        "metric",
        "severity",
        "count",
        "median_seconds",
        "p90_seconds",
        "mean_seconds",
        "target_minutes",
    ]
    rows = []
    for metric in DURATIONS:
        report = current[metric.key]
        for severity, stats in [("all", report.overall), *report.by_severity.items()]:
            goal = tier_targets.get(severity, {}).get(metric.sla_target) if severity != "all" else None
            rows.append(
                [
                    metric.key,
                    severity,
                    stats.count,
                    _num(stats.median),
                    _num(stats.p90),
                    _num(stats.mean),
                    goal or "",
                ]
            )
    return header, rows


def compliance_rows(current: dict[str, Any]):
    header = ["target", "severity", "met_on_time", "completed", "rate"]
    rows = []
    for target, per in current[catalogue.SLA_COMPLIANCE.key].items():
        for severity in [*SEVERITIES, "all"]:
            ratio = per[severity]
            rows.append([target, severity, ratio.numerator, ratio.denominator, _num(ratio.rate)])
    return header, rows


def backlog_rows(aging: dict[str, dict[str, int]]):
    header = ["age", *SEVERITIES, "total"]
    rows = [[label, *(per[s] for s in SEVERITIES), sum(per.values())] for label, per in aging.items()]
    return header, rows


def trend_rows(series: dict[str, Any]):
    header = [
        "week_start",
        "frt_count",
        "frt_median_seconds",
        "frt_p90_seconds",
        "mttr_count",
        "mttr_median_seconds",
        "mttr_p90_seconds",
        "sla_met_on_time",
        "sla_completed",
        "sla_compliance",
        "reopened",
        "resolved",
        "reopen_rate",
        "created",
        "first_resolved",
    ]
    rows = []
    for i, week in enumerate(series["weeks"]):
        frt = series[catalogue.FIRST_RESPONSE_TIME.key][i]
        mttr = series[catalogue.TIME_TO_RESOLVE.key][i]
        sla, reopen = series[catalogue.SLA_COMPLIANCE.key][i], series[catalogue.REOPEN_RATE.key][i]
        volume = series["volume"][i]
        rows.append(
            [
                week.date().isoformat(),
                frt.count,
                _num(frt.median),
                _num(frt.p90),
                mttr.count,
                _num(mttr.median),
                _num(mttr.p90),
                sla.numerator,
                sla.denominator,
                _num(sla.rate),
                reopen.numerator,
                reopen.denominator,
                _num(reopen.rate),
                volume["created"],
                volume["resolved"],
            ]
        )
    return header, rows


CASE_HEADER = [
    "key",
    "title",
    "organisation",
    "severity",
    "status",
    "assignee",
    "created_at",
    "first_response_at",
    "triaged_at",
    "first_resolved_at",
    "last_resolved_at",
    "counted",
]


def case_rows(cases: Iterable[Any], *, tz: str) -> Iterator[list[Any]]:
    zone = ZoneInfo(tz)

    def when(value: dt.datetime | None) -> str:
        return "" if value is None else value.astimezone(zone).isoformat()

    for case in cases:
        yield [
            case.key,
            case.title,
            case.organisation.name,
            case.severity,
            case.status,
            case.assignee.get_username() if case.assignee else "",
            when(case.created_at),
            when(case.first_response_at),
            when(case.triaged_at),
            when(case.first_resolved_at),
            when(case.last_resolved_at),
            case.counted,
        ]


# --- writing ------------------------------------------------------------------------------------

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text, never runs: text that could start a formula gets a quote."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(filename: str, header: list[str], rows: Iterable[list[Any]]) -> StreamingHttpResponse:
    """A CSV download, streamed (a drill-down can list many cases)."""
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow([safe_cell(cell) for cell in row])

    response = StreamingHttpResponse(_in_context(lines()), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _in_context(items: Iterator[str]) -> Iterator[str]:
    """``items`` produced in the context of the view that made the response: the rows of a streamed
    export are read after the view returned, and must still read from where the view reads
    (``reads_from_replica``). The context is copied now, not when the rows are first asked for."""
    context = contextvars.copy_context()

    def produce() -> Iterator[str]:
        try:
            while True:
                try:
                    yield context.run(next, items)
                except StopIteration:
                    return
        finally:
            items.close()

    return produce()
