"""The KPIs of DOMAIN.md's metrics table, computed in the database.

Every function takes the period as keyword-only aware instants ``start`` (inclusive) and ``end``
(exclusive), the filters of the dashboard (``team``, ``tier``, ``severity``, ``organisation``,
``assignee``: a model instance, a primary key or a code) and returns plain data. A period selects
cases by the time of the event the metric is about (FRT: the first reply, MTTR: the first
resolution, compliance: the clock's completion, ...). Durations are calendar seconds.

Percentiles: PostgreSQL's ``percentile_cont``; on SQLite the same linear interpolation between the
two nearest ranks computed with window functions. Either way one query per figure, no rows loaded
into Python.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import (
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from cases.models import OPEN_Q, REOPENED_Q, RESOLVED_Q, Case, CaseEvent, EventKind, Severity, Tier
from escalations.models import Escalation
from escalations.states import EscalationState
from knowledge.models import ArticleCaseLink
from sla.models import ClockState, SlaClock, SlaPolicy, Target, completed_at
from supportdesk.core.db_router import read_alias

from . import csat, histograms, rollup
from .models import DurationValue

#: Backlog age buckets: (label, lower bound in days inclusive, upper bound exclusive or None).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-1d", 0, 1),
    ("1-3d", 1, 3),
    ("3-7d", 3, 7),
    ("7-21d", 7, 21),
    (">21d", 21, None),
)
CADENCE_SEVERITIES = (Severity.P1.value, Severity.P2.value)
FILTER_NAMES = ("team", "tier", "severity", "organisation", "assignee")


# --- building blocks -------------------------------------------------------------------------------


class SecondsBetween(Func):
    """``later - earlier`` in (fractional) seconds, exact to the microsecond on both backends."""

    output_field = FloatField()
    arity = 2

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError(f"SecondsBetween is not implemented for {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra_context):
        # date_part is double precision all the way; EXTRACT computes in numeric (PostgreSQL 14+),
        # which costs more than the sort at a hundred thousand rows. An interval's epoch in double
        # precision is within one unit in the last place of the exact value, which the figures'
        # rounding to the microsecond removes.
        return self.as_sql_template(compiler, connection, "date_part('epoch', %(expressions)s)", " - ")

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django's own SQLite function: the difference of two stored instants in microseconds.
        return self.as_sql_template(
            compiler, connection, "(django_timestamp_diff(%(expressions)s) / 1000000.0)", ", "
        )

    def as_sql_template(self, compiler, connection, template, joiner):
        return Func.as_sql(self, compiler, connection, template=template, arg_joiner=joiner)


@dataclass(frozen=True)
class DurationStats:
    """Median, p90 and mean of a set of durations (seconds); None when the set is empty."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator``; ``rate`` is None when nothing was counted."""

    numerator: int
    denominator: int

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def _pk(value: Any) -> Any:
    return getattr(value, "pk", value)


def case_filter_q(prefix: str = "", **filters: Any) -> Q:
    """The dashboard filters as a Q on Case (``prefix`` is the path to the case, e.g. ``case__``)."""
    unknown = set(filters) - set(FILTER_NAMES)
    if unknown:
        raise TypeError(f"Unknown metric filters: {', '.join(sorted(unknown))}")
    lookups = {
        "team": "team_id",
        "tier": "organisation__tier",
        "severity": "severity",
        "organisation": "organisation_id",
        "assignee": "assignee_id",
    }
    q = Q()
    for name, value in filters.items():
        if value is None or value == "":
            continue
        q &= Q(**{f"{prefix}{lookups[name]}": _pk(value)})
    return q


def local_period(first: dt.date, last: dt.date, tz: str) -> dict[str, Any]:
    """The local days ``first`` to ``last`` (inclusive) as aware instants: midnight to midnight in
    ``tz``, so a day of a DST change is 23 or 25 hours long, as the team lived it."""
    zone = ZoneInfo(tz)
    start = dt.datetime.combine(first, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return {"start": start, "end": end, "tz": tz}


def whole_history(*, tz: str, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """The local days of the whole history: the day of the first case to today, in ``tz`` (today
    alone when there is no case yet). One query, on the index of ``created_at``."""
    zone = ZoneInfo(tz)
    today = now.astimezone(zone).date()
    first = Case.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return (min(first.astimezone(zone).date(), today) if first else today), today


def previous_period(first: dt.date, last: dt.date, tz: str) -> dict[str, Any]:
    """The same number of local days just before ``first`` (the comparison period)."""
    days = (last - first).days + 1
    return local_period(first - dt.timedelta(days=days), first - dt.timedelta(days=1), tz)


def _check_period(start: dt.datetime, end: dt.datetime) -> None:
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise ValueError("The period's start and end must be aware datetimes.")
    if end <= start:
        raise ValueError("The period must end after it starts.")


#: The keys durations can be grouped by (annotations or fields of the queryset).
_DURATION_KEYS = ("period", "severity", "assignee_id")


def _run_all(calls: list) -> list:
    """Run independent figure queries, each in the figures' settings (``_sorting_in_memory``).

    On PostgreSQL, outside a transaction, they run on ``METRICS_QUERY_THREADS`` connections at
    once: a percentile needs a sort of every duration in the period, which PostgreSQL does on one
    process per query, so the figures of one request use the server's cores side by side. Each
    thread's connection sees what is committed, as the request's own would (a dashboard request
    writes nothing); inside a transaction (tests, or a caller with uncommitted writes) they run in
    order on the caller's connection. The threads run in a copy of the caller's context, so that
    they read from the same database (``reads_from_replica``).
    """
    threads = getattr(settings, "METRICS_QUERY_THREADS", 1)
    using = read_alias()
    conn = connections[using]
    in_transaction = conn.in_atomic_block or connections[DEFAULT_DB_ALIAS].in_atomic_block
    if threads <= 1 or conn.vendor != "postgresql" or in_transaction:
        with _sorting_in_memory(using):
            return [call() for call in calls]

    def run(call):
        try:
            with _sorting_in_memory(using):
                return call()
        finally:
            connections.close_all()  # this thread's connections only

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="metrics") as pool:
        # One context copy per call: a context cannot be entered by two threads at once.
        futures = [pool.submit(contextvars.copy_context().run, run, call) for call in calls]
        return [f.result() for f in futures]


@contextmanager
def _sorting_in_memory(using: str = "default"):
    """On PostgreSQL, let the figures' sorts (durations: a period's hundreds of thousands of rows)
    run in memory rather than spill to temporary files at the default 4 MB ``work_mem``. Only for
    the transaction around the figures (``set_config(..., true)`` is SET LOCAL)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            # No parallel workers on top: the request's figures already run side by side on their
            # own connections (``_run_all``), and workers would compete with them for the cores.
            cursor.execute(
                "SELECT set_config('work_mem', '64MB', true), "
                "set_config('max_parallel_workers_per_gather', '0', true)"
            )
        yield


def _duration_stats(
    qs: QuerySet, *, group_by: tuple[str, ...] = (), subtotal: bool = False
) -> dict[tuple, DurationStats]:
    """Stats of the ``d`` annotation of ``qs`` (seconds) per tuple of ``group_by`` values.

    With ``subtotal`` each group of all keys but the last is also reported, under that key with
    ``None`` last (``("period", "severity")``: per period and severity, and per period overall). One
    query whatever the grouping: the queryset is compiled for its own database and wrapped in an
    aggregate over it. Rows whose keys are NULL (outside every period) are left out. Only
    ORM-compiled SQL and quoted names of this module are interpolated; values travel as parameters.
    """
    if any(key not in _DURATION_KEYS for key in group_by) or (subtotal and not group_by):
        raise ValueError(f"Cannot group durations by {group_by!r}.")
    # Callers select rows by a range on the instant, so ``d`` is never NULL: no filter on it (it
    # would compute every duration twice).
    inner = qs.values("d", "us", *group_by).order_by()
    connection = connections[qs.db]
    sql, params = inner.query.get_compiler(using=qs.db).as_sql()
    cols = [connection.ops.quote_name(key) for key in group_by]
    where = " AND ".join(f"{c} IS NOT NULL" for c in cols) or "TRUE"
    groupings = [cols] + ([cols[:-1]] if subtotal else [])
    if connection.vendor == "postgresql":
        # GROUPING SETS reads the rows once for the groups and their subtotals; an array of fractions
        # sorts each group once for both percentiles.
        keys = [*cols, f"GROUPING({cols[-1]})" if subtotal else "0"] if cols else ["0"]
        sets = ", ".join("(" + ", ".join(g) + ")" for g in groupings)
        group = f"GROUP BY GROUPING SETS ({sets})" if cols else ""
        outer = (
            f"SELECT {', '.join(keys)}, COUNT(*), "  # noqa: S608
            "percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY d), SUM(us) "
            f"FROM ({sql}) s WHERE {where} {group}"
        )
        with connection.cursor() as cursor:
            cursor.execute(outer, params)
            rows = [(*row[:-2], *(row[-2] or (None, None)), row[-1]) for row in cursor.fetchall()]
    else:
        # Rank rows per group, then interpolate between ranks floor((n-1)p) and ceil((n-1)p):
        # exactly what percentile_cont computes. One SELECT per grouping, glued by UNION ALL.
        def pct(p: float) -> str:
            pos = f"((n - 1) * {p})"
            lo = f"CAST({pos} AS INTEGER)"
            hi = f"({lo} + CASE WHEN {pos} > {lo} THEN 1 ELSE 0 END)"
            lo_val = f"MAX(CASE WHEN rn = {lo} THEN d END)"
            hi_val = f"MAX(CASE WHEN rn = {hi} THEN d END)"
            return f"({lo_val} + (MAX({pos}) - MAX({lo})) * ({hi_val} - {lo_val}))"

        selects = []
        for level, grouping in enumerate(groupings):
            part = f"PARTITION BY {', '.join(grouping)} " if grouping else ""
            keys = [*grouping, *(["NULL"] * (len(cols) - len(grouping))), str(level)]
            group = f"GROUP BY {', '.join(grouping)}" if grouping else ""
            selects.append(
                f"SELECT {', '.join(keys)}, COUNT(*), {pct(0.5)}, {pct(0.9)}, SUM(us) FROM ("  # noqa: S608
                f"SELECT {', '.join([*cols, 'd', 'us'])}, ROW_NUMBER() OVER ({part}ORDER BY d) - 1 AS rn, "
                f"COUNT(*) OVER ({part.strip()}) AS n FROM ({sql}) s0 WHERE {where}) s {group}"
            )
        with connection.cursor() as cursor:
            cursor.execute(" UNION ALL ".join(selects), params * len(selects))
            rows = cursor.fetchall()
    result = {}
    for row in rows:
        key = tuple(row[: len(cols)])
        if subtotal and row[len(cols)]:
            key = (*key[:-1], None)
        result[key] = DurationStats(
            count=row[-4], median=_seconds(row[-3]), p90=_seconds(row[-2]), mean=_mean(row[-1], row[-4])
        )
    return result


_DAY_US = 86_400_000_000


def _seconds_like_the_source(vendor: str):
    """Whole microseconds to seconds as ``SecondsBetween`` computes them on ``vendor``, to the
    last bit, so that an interpolated percentile rounds as the direct one does. PostgreSQL splits
    a difference of instants into days and the rest (``justify_hours``) and adds the two in double
    precision; SQLite divides the microseconds."""
    if vendor != "postgresql":
        return lambda us: us / 1e6

    def seconds(us: int) -> float:
        days = abs(us) // _DAY_US * (1 if us >= 0 else -1)  # C division: towards zero
        return (us - days * _DAY_US) / 1e6 + 86400.0 * days

    return seconds


def _mean(total_us: Any, count: int) -> float | None:
    """The mean in seconds from the exact sum of whole microseconds: the same figure whichever
    order the durations were added in (the rollup's histograms add them per day)."""
    return _seconds(int(total_us) / count / 1e6) if count and total_us is not None else None


def _seconds(value: Any) -> float | None:
    # Durations are exact to the microsecond; rounding there hides float noise of interpolation.
    return None if value is None else round(float(value), 6)


_EMPTY = DurationStats(count=0, median=None, p90=None, mean=None)


@dataclass(frozen=True)
class DurationReport:
    overall: DurationStats
    by_severity: dict[str, DurationStats]


class Periods:
    """Disjoint periods computed together: each metric reads the rows of all of them in one range
    scan and groups them by a ``period`` key (the position of the period holding the row's instant).

    The dashboard compares a period with the one before it; both come from the same queries.
    """

    def __init__(self, bounds: Iterable[tuple[dt.datetime, dt.datetime]]):
        self.bounds = tuple(sorted(bounds))
        if not self.bounds:
            raise ValueError("At least one period is needed.")
        for start, end in self.bounds:
            _check_period(start, end)
        for (_, end), (start, _) in zip(self.bounds, self.bounds[1:], strict=False):
            if start < end:
                raise ValueError("Periods computed together must not overlap.")
        self.order = {bound: i for i, bound in enumerate(self.bounds)}

    def __len__(self) -> int:
        return len(self.bounds)

    def range(self, instant: str) -> Q:
        """``instant`` within one of the periods (adjacent periods as one range)."""
        spans: list[list[dt.datetime]] = []
        for start, end in self.bounds:
            if spans and spans[-1][1] == start:
                spans[-1][1] = end
            else:
                spans.append([start, end])
        q = Q()
        for start, end in spans:
            q |= Q(**{f"{instant}__gte": start, f"{instant}__lt": end})
        return q

    def key(self, instant: str) -> models.Case:
        """The position of the period holding ``instant`` (NULL in a gap between periods), for rows
        already limited to ``range``: one comparison per period end (and per gap)."""
        whens = []
        for i, (start, end) in enumerate(self.bounds):
            if i and start > self.bounds[i - 1][1]:
                whens.append(When(**{f"{instant}__lt": start}, then=Value(None)))
            whens.append(When(**{f"{instant}__lt": end}, then=Value(i)))
        return models.Case(*whens, output_field=IntegerField())


#: The duration figures: the figure's key in ``periods_metrics`` -> the instant it ends at (a
#: period selects a case by that instant). Time to final resolution also leaves out the cases open
#: now (``FINAL_RESOLUTION``).
DURATION_INSTANTS = {
    "first_response_time": "first_response_at",
    "time_to_triage": "triaged_at",
    "time_to_resolve": "first_resolved_at",
    "time_to_final_resolution": "last_resolved_at",
}
FINAL_RESOLUTION = "last_resolved_at"


def duration_cases(instant: str, **filters: Any) -> QuerySet:
    """The cases a duration ending at ``instant`` can count: every case, except that the time to
    final resolution counts only cases that are not open now (a reopened case has no final
    resolution yet)."""
    cases = _cases(**filters)
    return cases.exclude(OPEN_Q) if instant == FINAL_RESOLUTION else cases


def _duration_rows(instant: str, periods: Periods, **filters: Any) -> QuerySet:
    """The cases whose ``instant`` falls in one of the periods, with ``d`` = ``instant - created``
    (seconds) and the ``period`` holding it."""
    return (
        duration_cases(instant, **filters)
        .filter(periods.range(instant))
        .annotate(
            d=SecondsBetween(F(instant), F("created_at")),
            us=rollup.MicrosecondsBetween(F(instant), F("created_at")),
            period=periods.key(instant),
        )
    )


def _durations(instant: str, periods: Periods, **filters: Any) -> list[DurationReport]:
    """``instant - created`` of the cases whose ``instant`` falls in each period: per period, overall
    and per severity, in one query."""
    stats = _duration_stats(
        _duration_rows(instant, periods, **filters), group_by=("period", "severity"), subtotal=True
    )
    return [
        DurationReport(
            overall=stats.get((i, None), _EMPTY),
            by_severity={s: stats.get((i, s), _EMPTY) for s in Severity.values},
        )
        for i in range(len(periods))
    ]


def _cases(**filters: Any) -> QuerySet:
    return Case.objects.filter(case_filter_q(**filters))


def _figure_durations(
    figure: str, periods: Periods, split: tuple[list, list] | None, **filters: Any
) -> list[DurationReport]:
    """A duration figure per period: from the rollup's histograms for the clean rolled-up days
    (``split``) merged with the source for the rest, when the filters allow it; else all from
    the source (``_durations``). Both give the same figures."""
    if split is None or not split[0] or not rollup.usable_for_durations(**filters):
        return _durations(DURATION_INSTANTS[figure], periods, **filters)
    return _durations_rolled(figure, periods, *split, **filters)


def _durations_rolled(
    figure: str, periods: Periods, days: list, edges: list, **filters: Any
) -> list[DurationReport]:
    """Exact median, p90 and mean from the histograms (``metrics.histograms``): the summed bucket
    counts give each rank's bucket, and only those buckets' values are read. Three queries: the
    counts, the source values of the edges, the values of the buckets holding the ranks."""
    instant = DURATION_INSTANTS[figure]
    severity = filters.get("severity") or None
    to_seconds = _seconds_like_the_source(connections[DurationValue.objects.all().db].vendor)
    # (period, severity) -> {bucket: [count, sum]}; (period, severity) -> the edges' values.
    counts: dict[tuple[int, str], dict[int, list[int]]] = {}
    extra: dict[tuple[int, str], list[int]] = {}
    for i, sev, bucket, n, total in rollup.duration_counts(figure, days, severity=severity):
        counts.setdefault((i, sev), {})[bucket] = [n, total]
    if edges:
        source = Periods([(start, end) for _, start, end in edges])
        owner = {(start, end): i for i, start, end in edges}
        owners = [owner[bound] for bound in source.bounds]
        rows = (
            rollup.duration_source(figure, **filters)
            .filter(source.range(instant))
            .annotate(period=source.key(instant))
            .values_list("period", "severity", "us")
            .order_by()
        )
        for p, sev, us in rows:
            if p is None:
                continue
            key = (owners[p], sev)
            extra.setdefault(key, []).append(us)
            cell = counts.setdefault(key, {}).setdefault(histograms.bucket_of(us), [0, 0])
            cell[0] += 1
            cell[1] += us
    runs = {i: tuple((a, b) for j, a, b in days if j == i) for i in range(len(periods))}
    groups: dict[tuple[int, str | None], dict[int, list[int]]] = {}
    for (i, sev), cells in counts.items():
        groups[(i, sev)] = cells
        overall = groups.setdefault((i, None), {})
        for bucket, (n, total) in cells.items():
            cell = overall.setdefault(bucket, [0, 0])
            cell[0] += n
            cell[1] += total
    # Which values each group's ranks need: one read per (group, bucket).
    plans: dict[tuple[int, str | None], list] = {}
    reads: list[rollup.ValueRead] = []
    for (i, sev), cells in groups.items():
        histogram = sorted((bucket, n) for bucket, (n, _) in cells.items() if n)
        total_n = sum(n for _, n in histogram)
        wanted: dict[int, list[int]] = {}
        spots = []
        for share in histograms.PERCENTILES:
            pos, lo, hi = histograms.positions(total_n, share)
            spot = []
            for rank in (lo, hi):
                bucket, k = histograms.locate(histogram, rank)
                wanted.setdefault(bucket, []).append(k)
                spot.append((bucket, k))
            spots.append((pos, spot))
        group_extra = (
            extra.get((i, sev), []) if sev else [x for (j, s), xs in extra.items() if j == i for x in xs]
        )
        fetched = []
        for bucket, ks in wanted.items():
            mine = [x for x in group_extra if histograms.bucket_of(x) == bucket]
            offset, limit = histograms.window(min(ks), max(ks), mine)
            index = None
            if runs[i]:
                severities = (sev,) if sev else ((severity,) if severity else tuple(Severity.values))
                reads.append(rollup.ValueRead(runs[i], bucket, severities, offset, limit))
                index = len(reads) - 1
            fetched.append((bucket, offset, limit, mine, index))
        plans[(i, sev)] = [total_n, sum(t for _, t in cells.values()), spots, fetched]
    stored = rollup.duration_values(figure, reads)
    stats: dict[tuple[int, str | None], DurationStats] = {}
    for key, (total_n, total_us, spots, fetched) in plans.items():
        if not total_n:
            continue
        by_bucket = {}
        for bucket, offset, limit, mine, index in fetched:
            values = stored[index] if index is not None else []
            by_bucket[bucket] = histograms.ranked(offset, values, mine, complete=len(values) < limit)
        figures = []
        for pos, ((b_lo, k_lo), (b_hi, k_hi)) in spots:
            low, high = to_seconds(by_bucket[b_lo][k_lo]), to_seconds(by_bucket[b_hi][k_hi])
            figures.append(_seconds(histograms.interpolate(pos, low, high)))
        stats[key] = DurationStats(
            count=total_n, median=figures[0], p90=figures[1], mean=_mean(total_us, total_n)
        )
    return [
        DurationReport(
            overall=stats.get((i, None), _EMPTY),
            by_severity={s: stats.get((i, s), _EMPTY) for s in Severity.values},
        )
        for i in range(len(periods))
    ]


# --- durations -------------------------------------------------------------------------------------


def _one(start: dt.datetime, end: dt.datetime) -> Periods:
    return Periods([(start, end)])


def first_response_time(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """FRT: first public staff reply - created, for cases first answered in the period."""
    return _durations("first_response_at", _one(start, end), **filters)[0]


def time_to_triage(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """TTT: first time the case reached ``triaged`` - created, for cases first triaged in the period."""
    return _durations("triaged_at", _one(start, end), **filters)[0]


def time_to_resolve(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """Time to first resolution (DOMAIN's MTTR): first resolution - created, for cases first
    resolved in the period."""
    return _durations("first_resolved_at", _one(start, end), **filters)[0]


def time_to_final_resolution(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """Time to final resolution: last resolution - created, for cases whose last resolution is in
    the period and that are not open now."""
    return _durations(FINAL_RESOLUTION, _one(start, end), **filters)[0]


# --- SLA compliance --------------------------------------------------------------------------------


def _completed_clocks(periods: Periods, **filters: Any) -> QuerySet:
    """Clocks whose outcome was decided in the period: met (at ``met_at``) or breached (at
    ``breached_at``, also when met late afterwards). Cancelled and live clocks are not counted."""
    # One range on one expression (the one sla_clock_completed_idx is built on), not an OR of two.
    return (
        SlaClock.objects.annotate(completed_at=completed_at())
        .filter(periods.range("completed_at"))
        .filter(case_filter_q("case__", **filters))
    )


def _compliance(periods: Periods, **filters: Any) -> list[dict[str, dict[str, Ratio]]]:
    """Per period, per target, per severity (and ``all``): clocks met on time / completed. One query."""
    rows = (
        _completed_clocks(periods, **filters)
        .annotate(period=periods.key("completed_at"))
        .values("period", "target", "case__severity")
        .annotate(total=Count("case_id"), on_time=Count("case_id", filter=Q(state=ClockState.MET)))
        .order_by()
    )
    result = [_no_compliance() for _ in periods.bounds]
    for row in rows:
        if row["period"] is None:
            continue
        per = result[row["period"]][row["target"]]
        per[row["case__severity"]] = Ratio(row["on_time"], row["total"])
        per["all"] = _plus(per["all"], per[row["case__severity"]])
    return result


def sla_compliance(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> dict[str, dict[str, Ratio]]:
    """Per target, per severity (and ``all``): clocks met on time / clocks completed in the period.

    A clock met late is a breach; cancelled clocks are excluded. One query.
    """
    return _compliance(_one(start, end), **filters)[0]


def _cadence(compliance: dict[str, dict[str, Ratio]]) -> Ratio:
    """Update-cadence adherence read off a compliance result: its P1 and P2 cells together."""
    cells = [compliance[Target.UPDATE_CADENCE][s] for s in CADENCE_SEVERITIES]
    return Ratio(sum(c.numerator for c in cells), sum(c.denominator for c in cells))


def update_cadence_adherence(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> Ratio:
    """Update-cadence clocks of P1 and P2 cases met on time / completed in the period."""
    qs = _completed_clocks(_one(start, end), **filters).filter(
        target=Target.UPDATE_CADENCE, case__severity__in=CADENCE_SEVERITIES
    )
    agg = qs.aggregate(total=Count("case_id"), on_time=Count("case_id", filter=Q(state=ClockState.MET)))
    return Ratio(agg["on_time"], agg["total"])


# --- rates -----------------------------------------------------------------------------------------


def _resolved_case_ids(*, start: dt.datetime, end: dt.datetime, **filters: Any) -> QuerySet:
    """Cases with at least one resolution in the period (as a subquery of case ids)."""
    return (
        CaseEvent.objects.filter(RESOLVED_Q, created_at__gte=start, created_at__lt=end)
        .filter(case_filter_q("case__", **filters))
        .values("case_id")
    )


def _metric_events(periods: Periods, **filters: Any) -> QuerySet:
    """The periods' reopen and resolution events (what event_reopen_resolve_idx holds)."""
    return CaseEvent.objects.filter(REOPENED_Q | RESOLVED_Q).filter(
        periods.range("created_at"), case_filter_q("case__", **filters)
    )


def _resolutions(periods: Periods, **filters: Any) -> list[dict[str, Ratio]]:
    """Per period: the reopen rate and the knowledge reuse, which share their denominator (the cases
    resolved in the period, each counted once). One pass over the periods' reopen and resolution
    events (what event_reopen_resolve_idx holds)."""
    rows = (
        _metric_events(periods, **filters)
        .annotate(period=periods.key("created_at"))
        .values("period")
        .annotate(
            reopened=Count("case_id", distinct=True, filter=REOPENED_Q),
            resolved=Count("case_id", distinct=True, filter=RESOLVED_Q),
            linked=Count("case_id", distinct=True, filter=rollup.linked_resolution_q()),
        )
        .order_by()
    )
    result = [{"reopen_rate": Ratio(0, 0), "knowledge_reuse": Ratio(0, 0)} for _ in periods.bounds]
    for row in rows:
        if row["period"] is not None:
            result[row["period"]] = {
                "reopen_rate": Ratio(row["reopened"], row["resolved"]),
                "knowledge_reuse": Ratio(row["linked"], row["resolved"]),
            }
    return result


def reopen_rate(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """Cases reopened in the period / cases resolved in the period (each case counted once)."""
    return _resolutions(_one(start, end), **filters)[0]["reopen_rate"]


def knowledge_reuse(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """Cases resolved in the period with a linked article / cases resolved in the period."""
    return _resolutions(_one(start, end), **filters)[0]["knowledge_reuse"]


def _escalated_case_ids() -> QuerySet:
    return Escalation.objects.filter(submitted_at__isnull=False).values("case_id")


def _escalation_rates(periods: Periods, **filters: Any) -> list[Ratio]:
    rows = (
        _cases(**filters)
        .filter(periods.range("created_at"))
        .annotate(period=periods.key("created_at"))
        .values("period")
        .annotate(escalated=Count("id", filter=Q(id__in=_escalated_case_ids())), created=Count("id"))
        .order_by()
    )
    return _ratios(periods, rows, "escalated", "created")


def _ratios(periods: Periods, rows: Iterable[dict], numerator: str, denominator: str) -> list[Ratio]:
    result = [Ratio(0, 0) for _ in periods.bounds]
    for row in rows:
        if row["period"] is not None:
            result[row["period"]] = Ratio(row[numerator], row[denominator])
    return result


def escalation_rate(*, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any) -> Ratio:
    """Cases created in the period that have been escalated (submitted to engineering) / cases
    created in the period.

    Both sides are the same cohort, so the rate is a share of the period's cases and never exceeds
    1; an escalation submitted after the period still counts for the case's own period.
    """
    return _escalation_rates(_one(start, end), **filters)[0]


def _bounce_rates(periods: Periods, **filters: Any) -> list[Ratio]:
    bounced = Q(bounce_count__gt=0) | Q(state=EscalationState.NEEDS_INFO)
    rows = (
        Escalation.objects.filter(periods.range("submitted_at"))
        .filter(case_filter_q("case__", **filters))
        .annotate(period=periods.key("submitted_at"))
        .values("period")
        .annotate(total=Count("id"), bounced=Count("id", filter=bounced))
        .order_by()
    )
    return _ratios(periods, rows, "bounced", "total")


def engineering_bounce_rate(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> Ratio:
    """Escalations first submitted in the period that went to ``needs_info`` at least once / those
    escalations."""
    return _bounce_rates(_one(start, end), **filters)[0]


# --- backlog ---------------------------------------------------------------------------------------


def backlog_aging(*, now: dt.datetime, **filters: Any) -> dict[str, dict[str, int]]:
    """Open cases right now by age bucket and severity: ``{bucket: {severity: count}}``.

    The backlog is a snapshot (statuses are current), so it takes ``now``, not a period.
    """
    if timezone.is_naive(now):
        raise ValueError("now must be an aware datetime.")
    aggregates = {}
    for label, low, high in AGE_BUCKETS:
        for severity in Severity.values:
            cond = Q(severity=severity, created_at__lte=now - dt.timedelta(days=low))
            if high is not None:
                cond &= Q(created_at__gt=now - dt.timedelta(days=high))
            aggregates[f"{label}|{severity}"] = Count("id", filter=cond)
    agg = _cases(**filters).filter(OPEN_Q).aggregate(**aggregates)
    return {
        label: {severity: agg[f"{label}|{severity}"] for severity in Severity.values}
        for label, _, _ in AGE_BUCKETS
    }


# --- weekly trends ---------------------------------------------------------------------------------


def week_starts(*, end: dt.datetime, tz: str, weeks: int = 12) -> list[dt.datetime]:
    """The local Monday 00:00 of the last ``weeks`` weeks up to the one containing ``end``."""
    zone = ZoneInfo(tz)
    local = end.astimezone(zone)
    monday = (local - dt.timedelta(days=local.weekday())).date()
    return [
        dt.datetime.combine(monday - dt.timedelta(weeks=i), dt.time(0), tzinfo=zone)
        for i in reversed(range(weeks))
    ]


def volume_trend(
    *, end: dt.datetime, tz: str = "UTC", weeks: int = 12, **filters: Any
) -> list[dict[str, Any]]:
    """Cases created and cases first resolved per local week, for the last ``weeks`` weeks."""
    starts = week_starts(end=end, tz=tz, weeks=weeks)
    zone = ZoneInfo(tz)
    first, last = starts[0], starts[-1] + dt.timedelta(weeks=1)
    cases = _cases(**filters)
    created = dict(
        cases.filter(created_at__gte=first, created_at__lt=last)
        .annotate(week=TruncWeek("created_at", tzinfo=zone))
        .values("week")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("week", "n")
    )
    resolved = dict(
        cases.filter(first_resolved_at__gte=first, first_resolved_at__lt=last)
        .annotate(week=TruncWeek("first_resolved_at", tzinfo=zone))
        .values("week")
        .annotate(n=Count("*"))
        .order_by()
        .values_list("week", "n")
    )
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
    """``metric`` (one of the period functions above) for each of the last ``weeks`` local weeks."""
    starts = week_starts(end=end, tz=tz, weeks=weeks)
    return [(s, metric(start=s, end=_next_week(s), tz=tz, **filters)) for s in starts]


def _next_week(start: dt.datetime) -> dt.datetime:
    # Wall-clock arithmetic on an aware datetime keeps local midnight across DST changes.
    return start + dt.timedelta(weeks=1)


def period_metrics(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> dict[str, Any]:
    """All headline KPIs for one period (for the dashboard / API)."""
    return periods_metrics([(start, end)], tz=tz, **filters)[0]


def periods_metrics(
    bounds: Iterable[tuple[dt.datetime, dt.datetime]], *, tz: str = "UTC", **filters: Any
) -> list[dict[str, Any]]:
    """All headline KPIs for each of several disjoint periods (in the order given), each metric
    reading all the periods in one query: a period and the one before it cost about what the two
    together as one period would."""
    bounds = list(bounds)
    periods = Periods(bounds)
    split = _split(periods, **filters)

    def counted() -> tuple:
        plan = _Plan.make(periods, split, **filters)
        return (*_counts(periods, plan, **filters), _resolutions_rolled(periods, plan, **filters))

    def durations(figure: str):
        return lambda: _figure_durations(figure, periods, split, **filters)

    # Longest first: a duration read from the source sorts a period's worth of cases.
    mttr, final, frt, counts, ttt = _run_all(
        [
            durations("time_to_resolve"),
            durations("time_to_final_resolution"),
            durations("first_response_time"),
            counted,
            durations("time_to_triage"),
        ]
    )
    compliance, escalated, bounced, satisfaction, resolutions = counts
    by_start = [
        {
            "first_response_time": frt[i],
            "time_to_triage": ttt[i],
            "time_to_resolve": mttr[i],
            "time_to_final_resolution": final[i],
            "sla_compliance": compliance[i],
            "reopen_rate": resolutions[i]["reopen_rate"],
            "escalation_rate": escalated[i],
            "engineering_bounce_rate": bounced[i],
            "update_cadence_adherence": _cadence(compliance[i]),
            "knowledge_reuse": resolutions[i]["knowledge_reuse"],
            "csat": satisfaction[i],
        }
        for i in range(len(periods))
    ]
    return [by_start[periods.order[bound]] for bound in bounds]


def compared_metrics(
    period: dict[str, Any], previous: dict[str, Any], **filters: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The KPIs of ``period`` and of ``previous`` (``local_period`` dicts), from the same queries."""
    current, before = periods_metrics(
        [(period["start"], period["end"]), (previous["start"], previous["end"])], tz=period["tz"], **filters
    )
    return current, before


# --- count metrics: the daily rollup where it holds the days, the source for the rest ----------------


def _split(periods: Periods, **filters: Any) -> tuple[list, list] | None:
    """``rollup.split`` of the periods (two queries), or None when the filters need the source."""
    return rollup.split(periods.bounds) if rollup.usable(**filters) else None


@dataclass(frozen=True)
class _Plan:
    """Where each period's count metrics come from: rollup sums for its clean rolled-up days, the
    source for its ``edges`` (Periods of the remaining ranges, ``owner`` mapping each to its period)."""

    sums: dict[tuple[int, str], dict[str, int]]
    edges: Periods | None
    owner: dict[tuple[dt.datetime, dt.datetime], int]

    @classmethod
    def make(cls, periods: Periods, split: tuple[list, list] | None, **filters: Any) -> _Plan | None:
        if split is None:
            return None
        days, edges = split
        return cls(
            sums=rollup.sums(days, **filters),
            edges=Periods([(start, end) for _, start, end in edges]) if edges else None,
            owner={(start, end): i for i, start, end in edges},
        )

    def edge_owners(self) -> list[int]:
        return [self.owner[bound] for bound in self.edges.bounds] if self.edges else []


def _counts(periods: Periods, plan: _Plan | None, **filters: Any) -> tuple[list, list, list, list]:
    """SLA compliance, escalation rate, bounce rate and CSAT per period. Whole UTC days that are
    rolled up and clean come from ``metrics.rollup`` (one query), the rest from the source (the
    direct queries, over those ranges only); a period's figure is the sum of both parts."""
    n = len(periods)
    if plan is None:
        return (
            _compliance(periods, **filters),
            _escalation_rates(periods, **filters),
            _bounce_rates(periods, **filters),
            csat.csat_periods(periods, **filters),
        )
    compliance = [_no_compliance() for _ in range(n)]
    escalated = [Ratio(0, 0) for _ in range(n)]
    bounced = [Ratio(0, 0) for _ in range(n)]
    satisfaction = [csat.from_distribution({}) for _ in range(n)]
    if plan.edges:
        source = plan.edges
        parts = zip(
            _compliance(source, **filters),
            _escalation_rates(source, **filters),
            _bounce_rates(source, **filters),
            csat.csat_periods(source, **filters),
            strict=True,
        )
        for i, (c, e, b, s) in zip(plan.edge_owners(), parts, strict=True):
            _add_compliance(compliance[i], c)
            escalated[i], bounced[i] = _plus(escalated[i], e), _plus(bounced[i], b)
            satisfaction[i] = csat.combine(satisfaction[i], s)
    for (i, severity), row in plan.sums.items():
        rolled = _no_compliance()
        for target, (met, total) in rollup.CLOCK_COLUMNS.items():
            rolled[target][severity] = rolled[target]["all"] = Ratio(row[met], row[total])
        _add_compliance(compliance[i], rolled)
        escalated[i] = _plus(escalated[i], Ratio(row["escalated"], row["created"]))
        bounced[i] = _plus(bounced[i], Ratio(row["bounced"], row["submitted"]))
        answers = csat.from_distribution({r: row[c] for r, c in rollup.CSAT_COLUMNS.items()})
        satisfaction[i] = csat.combine(satisfaction[i], answers)
    return compliance, escalated, bounced, satisfaction


def _resolutions_rolled(periods: Periods, plan: _Plan | None, **filters: Any) -> list[dict[str, Ratio]]:
    """Reopen rate and knowledge reuse per period, counting distinct cases, from event counts.

    The rollup (and the source, for the edges) counts reopen and resolution *events*; a case
    resolved twice in a period counts once. Between two resolutions a case is always reopened
    (resolved only leads to reopened or closed), so every case with repeats has a reopen event in
    the period: one query over those few cases finds the repeats to subtract.
    """
    if plan is None:
        return _resolutions(periods, **filters)
    n = len(periods)
    reopens, resolutions, linked = [0] * n, [0] * n, [0] * n
    for (i, _), row in plan.sums.items():
        reopens[i] += row["reopens"]
        resolutions[i] += row["resolutions"]
        linked[i] += row["linked_resolutions"]
    # Counted by case_id, not id: the partial indexes hold every column read (index-only scans).
    counts = {
        "o": Count("case_id", filter=REOPENED_Q),
        "r": Count("case_id", filter=RESOLVED_Q),
        "l": Count("case_id", filter=rollup.linked_resolution_q()),
    }
    if plan.edges:
        rows = (
            _metric_events(plan.edges, **filters)
            .annotate(period=plan.edges.key("created_at"))
            .values("period")
            .annotate(**counts)
            .order_by()
        )
        owners = plan.edge_owners()
        for row in rows:
            if row["period"] is not None:
                i = owners[row["period"]]
                reopens[i] += row["o"]
                resolutions[i] += row["r"]
                linked[i] += row["l"]
    reopened_cases = CaseEvent.objects.filter(REOPENED_Q, periods.range("created_at")).values("case_id")
    repeats = (
        _metric_events(periods, **filters)
        .filter(case_id__in=reopened_cases)
        .annotate(period=periods.key("created_at"))
        .values("period", "case_id")
        .annotate(**counts)
        .filter(Q(o__gt=1) | Q(r__gt=1))
        .order_by()
        .values_list("period", "o", "r", "l")
    )
    for i, o, r, lk in repeats:
        if i is not None:
            reopens[i] -= max(o - 1, 0)
            resolutions[i] -= max(r - 1, 0)
            linked[i] -= max(lk - 1, 0)
    return [
        {
            "reopen_rate": Ratio(reopens[i], resolutions[i]),
            "knowledge_reuse": Ratio(linked[i], resolutions[i]),
        }
        for i in range(n)
    ]


def _no_compliance() -> dict[str, dict[str, Ratio]]:
    return {t: {s: Ratio(0, 0) for s in [*Severity.values, "all"]} for t in Target.values}


def _plus(a: Ratio, b: Ratio) -> Ratio:
    return Ratio(a.numerator + b.numerator, a.denominator + b.denominator)


def _add_compliance(into: dict[str, dict[str, Ratio]], more: dict[str, dict[str, Ratio]]) -> None:
    for target, cells in more.items():
        for severity, ratio in cells.items():
            into[target][severity] = _plus(into[target][severity], ratio)


# --- weekly trends, all at once ----------------------------------------------------------------------


def trends(*, end: dt.datetime, tz: str = "UTC", weeks: int = 12, **filters: Any) -> dict[str, Any]:
    """The dashboard's weekly series for the last ``weeks`` local weeks up to the one holding ``end``:
    FRT and MTTR (overall stats), SLA compliance (all targets together), reopen rate and volume.

    Each series is grouped by week (a fixed number of queries, whatever ``weeks`` is), with the same
    figures as the period functions give for each week on its own; compliance and the reopen rate
    come from the daily rollup where it holds the days, as in ``periods_metrics``.
    """
    starts = week_starts(end=end, tz=tz, weeks=weeks)
    periods = Periods([(start, _next_week(start)) for start in starts])

    split = _split(periods, **filters)

    def counted() -> tuple[list, list]:
        # Compliance and the reopen rate per week as the summary computes them (rollup + source).
        plan = _Plan.make(periods, split, **filters)
        compliance = _counts(periods, plan, **filters)[0]
        return compliance, _resolutions_rolled(periods, plan, **filters)

    frt, mttr, (compliance, resolutions), volume = _run_all(
        [
            lambda: _figure_durations("first_response_time", periods, split, **filters),
            lambda: _figure_durations("time_to_resolve", periods, split, **filters),
            counted,
            lambda: volume_trend(end=end, tz=tz, weeks=weeks, **filters),
        ]
    )
    positions = range(len(starts))
    return {
        "weeks": starts,
        "first_response_time": [frt[i].overall for i in positions],
        "time_to_resolve": [mttr[i].overall for i in positions],
        "sla_compliance": [_all_targets(compliance[i]) for i in positions],
        "reopen_rate": [resolutions[i]["reopen_rate"] for i in positions],
        "volume": volume,
    }


def _all_targets(compliance: dict[str, dict[str, Ratio]]) -> Ratio:
    total = Ratio(0, 0)
    for cells in compliance.values():
        total = _plus(total, cells["all"])
    return total


# --- the targets the dashboard draws its lines at ---------------------------------------------------


def sla_targets() -> dict[str, dict[str, dict[str, int | None]]]:
    """``{tier: {severity: {target: minutes or None}}}`` from the SLA policies (one query)."""
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


# --- drill-down: the cases a figure counts ----------------------------------------------------------

#: metric -> (label, parts). A ratio's parts are its numerator and its denominator (the default).
DRILLDOWN: dict[str, tuple[str, tuple[str, ...]]] = {
    "first_response_time": ("First response time", ()),
    "time_to_triage": ("Time to triage", ()),
    "time_to_resolve": ("Time to first resolution", ()),
    "time_to_final_resolution": ("Time to final resolution", ()),
    "sla_compliance": ("SLA compliance", ("met", "breached")),
    "update_cadence_adherence": ("Update cadence adherence", ("met", "breached")),
    "reopen_rate": ("Reopen rate", ("reopened", "resolved")),
    "escalation_rate": ("Escalation rate", ("escalated", "created")),
    "engineering_bounce_rate": ("Engineering bounce rate", ("bounced", "submitted")),
    "knowledge_reuse": ("Knowledge reuse", ("linked", "resolved")),
    "csat": ("CSAT", ()),
    "backlog": ("Backlog", ()),
    "volume_created": ("Cases created", ()),
    "volume_resolved": ("Cases resolved", ()),
}


def counted_cases(
    metric: str,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    tz: str = "UTC",
    now: dt.datetime | None = None,
    part: str | None = None,
    target: str | None = None,
    bucket: str | None = None,
    **filters: Any,
) -> QuerySet:
    """The cases a dashboard figure counts, annotated with ``counted``: how many of the figure's
    items each case contributes (clocks for compliance, escalations for the bounce rate, else 1).

    The sum of ``counted`` is the figure's count (a duration's ``count``, a ratio's numerator for
    its numerator part and its denominator otherwise, a backlog cell's number).
    """
    if metric not in DRILLDOWN:
        raise ValueError(f"Unknown metric {metric!r}.")
    parts = DRILLDOWN[metric][1]
    if part not in (None, "", *parts):
        raise ValueError(f"{metric} has no part {part!r}.")
    if target not in (None, "", *Target.values):
        raise ValueError(f"Unknown SLA target {target!r}.")
    if metric == "backlog":
        return _backlog_cases(now=now, bucket=bucket, **filters)
    if start is None or end is None:
        raise ValueError("A period is needed.")
    _check_period(start, end)
    period = {"start": start, "end": end, **filters}
    one = Value(1, output_field=IntegerField())
    if metric == "first_response_time":
        return _duration_rows("first_response_at", _one(start, end), **filters).annotate(counted=one)
    if metric == "time_to_triage":
        return _duration_rows("triaged_at", _one(start, end), **filters).annotate(counted=one)
    if metric in ("time_to_resolve", "volume_resolved"):
        return _duration_rows("first_resolved_at", _one(start, end), **filters).annotate(counted=one)
    if metric == "time_to_final_resolution":
        return _duration_rows(FINAL_RESOLUTION, _one(start, end), **filters).annotate(counted=one)
    if metric == "volume_created":
        return _cases(**filters).filter(created_at__gte=start, created_at__lt=end).annotate(counted=one)
    if metric in ("sla_compliance", "update_cadence_adherence"):
        clocks = _completed_clocks(_one(start, end), **filters)
        if metric == "update_cadence_adherence":
            clocks = clocks.filter(target=Target.UPDATE_CADENCE, case__severity__in=CADENCE_SEVERITIES)
        elif target:
            clocks = clocks.filter(target=target)
        if part == "met":
            clocks = clocks.filter(state=ClockState.MET)
        elif part == "breached":
            clocks = clocks.filter(state=ClockState.BREACHED)
        return _with_count(clocks)
    if metric == "reopen_rate":
        if part == "reopened":
            ids = CaseEvent.objects.filter(
                kind=EventKind.REOPENED, created_at__gte=start, created_at__lt=end
            ).values("case_id")
            return _cases(**filters).filter(id__in=ids).annotate(counted=one)
        return Case.objects.filter(id__in=_resolved_case_ids(**period)).annotate(counted=one)
    if metric == "knowledge_reuse":
        resolved = Case.objects.filter(id__in=_resolved_case_ids(**period))
        if part == "linked":
            resolved = resolved.filter(id__in=ArticleCaseLink.objects.values("case_id"))
        return resolved.annotate(counted=one)
    if metric == "escalation_rate":
        created = _cases(**filters).filter(created_at__gte=start, created_at__lt=end)
        if part == "escalated":
            created = created.filter(id__in=_escalated_case_ids())
        return created.annotate(counted=one)
    if metric == "engineering_bounce_rate":
        escalations = Escalation.objects.filter(submitted_at__gte=start, submitted_at__lt=end).filter(
            case_filter_q("case__", **filters)
        )
        if part == "bounced":
            escalations = escalations.filter(Q(bounce_count__gt=0) | Q(state=EscalationState.NEEDS_INFO))
        return _with_count(escalations)
    return csat.csat_cases(start=start, end=end, tz=tz, **filters).annotate(counted=one)


def _with_count(items: QuerySet) -> QuerySet:
    """The cases of ``items`` (rows with a ``case_id``), each annotated with how many it has."""
    per_case = (
        items.filter(case_id=OuterRef("pk")).order_by().values("case_id").annotate(n=Count("id")).values("n")
    )
    return Case.objects.filter(id__in=items.values("case_id")).annotate(
        counted=Coalesce(Subquery(per_case, output_field=IntegerField()), 0)
    )


def _backlog_cases(*, now: dt.datetime | None, bucket: str | None, **filters: Any) -> QuerySet:
    if now is None or timezone.is_naive(now):
        raise ValueError("now must be an aware datetime.")
    qs = _cases(**filters).filter(OPEN_Q)
    if bucket:
        bounds = {label: (low, high) for label, low, high in AGE_BUCKETS}
        if bucket not in bounds:
            raise ValueError(f"Unknown backlog bucket {bucket!r}.")
        low, high = bounds[bucket]
        qs = qs.filter(created_at__lte=now - dt.timedelta(days=low))
        if high is not None:
            qs = qs.filter(created_at__gt=now - dt.timedelta(days=high))
    return qs.annotate(counted=Value(1, output_field=IntegerField()))


# --- per agent -------------------------------------------------------------------------------------


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
    _check_period(start, end)
    period = _one(start, end)
    assigned = Q(assignee__isnull=False)

    def handled():
        rows = (
            _cases(**filters)
            .filter(assigned)
            .filter(period.range("first_response_at") | period.range("first_resolved_at"))
            .values("assignee_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        return {row["assignee_id"]: row["n"] for row in rows}

    def durations(instant: str):
        rows = _duration_rows(instant, period, **filters).filter(assigned)
        return {key[0]: stats for key, stats in _duration_stats(rows, group_by=("assignee_id",)).items()}

    def compliance():
        rows = (
            _completed_clocks(period, **filters)
            .filter(case__assignee__isnull=False)
            .values("case__assignee_id")
            .annotate(total=Count("id"), on_time=Count("id", filter=Q(state=ClockState.MET)))
            .order_by()
        )
        return {row["case__assignee_id"]: Ratio(row["on_time"], row["total"]) for row in rows}

    counts, frt, mttr, clocks = _run_all(
        [handled, lambda: durations("first_response_at"), lambda: durations("first_resolved_at"), compliance]
    )
    ids = set(counts) | set(frt) | set(mttr) | set(clocks)
    users = get_user_model().objects.in_bulk(ids)
    rows = [
        AgentFigures(
            user=users[pk],
            handled=counts.get(pk, 0),
            first_response_time=frt.get(pk, _EMPTY),
            time_to_resolve=mttr.get(pk, _EMPTY),
            sla_compliance=clocks.get(pk, Ratio(0, 0)),
        )
        for pk in ids
        if pk in users
    ]
    return sorted(rows, key=lambda r: (-r.handled, (r.user.get_full_name() or r.user.get_username()).lower()))


# --- an agent's own figures -------------------------------------------------------------------------


def agent_overview(*, user: Any, now: dt.datetime, tz: str = "UTC") -> dict[str, Any]:
    """The agent's own week (local Monday to now): FRT and update-cadence adherence of the cases
    assigned to them, and their open cases ordered by the next SLA due time."""
    week_start = week_starts(end=now, tz=tz, weeks=1)[0]
    period = {"start": week_start, "end": _next_week(week_start), "tz": tz, "assignee": user}
    open_cases = (
        Case.objects.filter(OPEN_Q, assignee=_pk(user))
        .select_related("organisation")
        .order_by(F("next_due_at").asc(nulls_last=True), "created_at", "id")
    )
    return {
        "week_start": week_start,
        "first_response_time": first_response_time(**period).overall,
        "update_cadence_adherence": update_cadence_adherence(**period),
        "open_cases": open_cases,
    }


__all__: Iterable[str] = [
    "AGE_BUCKETS",
    "DRILLDOWN",
    "agent_overview",
    "local_period",
    "previous_period",
    "whole_history",
    "counted_cases",
    "sla_targets",
    "trends",
    "DurationReport",
    "DurationStats",
    "Ratio",
    "backlog_aging",
    "case_filter_q",
    "engineering_bounce_rate",
    "escalation_rate",
    "first_response_time",
    "knowledge_reuse",
    "period_metrics",
    "periods_metrics",
    "compared_metrics",
    "Periods",
    "reopen_rate",
    "sla_compliance",
    "time_to_final_resolution",
    "time_to_resolve",
    "time_to_triage",
    "trend",
    "update_cadence_adherence",
    "volume_trend",
    "week_starts",
]
