"""The duration figures: FRT, TTT, the times to first and to final resolution.

Each is ``instant - created`` of the cases whose instant (``catalogue``: ``selected_by``) falls in
the period, reported as count, median, p90 (exact, linear interpolation) and mean, overall and per
severity. From the source: PostgreSQL's ``percentile_cont``, on SQLite the same interpolation
between the two nearest ranks with window functions, one query per figure, no rows loaded into
Python. From the rollup's exact histograms (``durations_rolled``): the same figures, reading only
the buckets that hold the ranks.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connections
from django.db.models import F, QuerySet

from cases.models import Severity

from .. import catalogue, histograms, rollup
from ..catalogue import Metric
from ..models import DurationValue
from .base import (
    EMPTY,
    DurationReport,
    DurationStats,
    Periods,
    SecondsBetween,
    duration_cases,
    mean_of,
    one_period,
    pk_of,
    seconds,
)

#: The keys durations can be grouped by (annotations or fields of the queryset).
_DURATION_KEYS = ("period", "severity", "assignee_id")


def duration_stats(
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
            count=row[-4], median=seconds(row[-3]), p90=seconds(row[-2]), mean=mean_of(row[-1], row[-4])
        )
    return result


_DAY_US = 86_400_000_000


def seconds_like_the_source(vendor: str):
    """Whole microseconds to seconds as ``SecondsBetween`` computes them on ``vendor``, to the
    last bit, so that an interpolated percentile rounds as the direct one does. PostgreSQL splits
    a difference of instants into days and the rest (``justify_hours``) and adds the two in double
    precision; SQLite divides the microseconds."""
    if vendor != "postgresql":
        return lambda us: us / 1e6

    def to_seconds(us: int) -> float:
        days = abs(us) // _DAY_US * (1 if us >= 0 else -1)  # C division: towards zero
        return (us - days * _DAY_US) / 1e6 + 86400.0 * days

    return to_seconds


def duration_rows(metric: Metric, periods: Periods, **filters: Any) -> QuerySet:
    """The cases whose instant falls in one of the periods, with ``d`` = ``instant - created``
    (seconds) and the ``period`` holding it."""
    instant = metric.field
    return (
        duration_cases(metric, **filters)
        .filter(periods.range(instant))
        .annotate(d=SecondsBetween(F(instant), F("created_at")), period=periods.key(instant))
    )


def _reports(stats: dict[tuple, DurationStats], periods: Periods) -> list[DurationReport]:
    return [
        DurationReport(
            overall=stats.get((i, None), EMPTY),
            by_severity={s: stats.get((i, s), EMPTY) for s in Severity.values},
        )
        for i in range(len(periods))
    ]


def durations(metric: Metric, periods: Periods, **filters: Any) -> list[DurationReport]:
    """``instant - created`` of the cases whose instant falls in each period, from the source: per
    period, overall and per severity, in one query."""
    rows = duration_rows(metric, periods, **filters)
    return _reports(duration_stats(rows, group_by=("period", "severity"), subtotal=True), periods)


def figure_durations(
    metric: Metric, periods: Periods, split: tuple[list, list] | None, **filters: Any
) -> list[DurationReport]:
    """A duration figure per period: from the rollup's histograms for the clean rolled-up days
    (``split``, None when the filters need the source) merged with the source for the rest; else
    all from the source (``durations``). Both give the same figures."""
    if split is None or not split[0]:
        return durations(metric, periods, **filters)
    return durations_rolled(metric, periods, *split, **filters)


def durations_rolled(
    metric: Metric, periods: Periods, days: list, edges: list, **filters: Any
) -> list[DurationReport]:
    """Exact median, p90 and mean from the histograms (``metrics.histograms``): the summed bucket
    counts give each rank's bucket, and only those buckets' values are read. Three queries: the
    counts, the source values of the edges, the values of the buckets holding the ranks."""
    instant = metric.field
    severity = filters.get("severity") or None
    to_seconds = seconds_like_the_source(connections[DurationValue.objects.all().db].vendor)
    # (period, severity) -> {bucket: [count, sum]}; (period, severity) -> the edges' values.
    counts: dict[tuple[int, str], dict[int, list[int]]] = {}
    extra: dict[tuple[int, str], list[int]] = {}
    team, tier = pk_of(filters.get("team")) or None, filters.get("tier") or None
    for i, sev, bucket, n, total in rollup.duration_counts(metric, days, **filters):
        counts.setdefault((i, sev), {})[bucket] = [n, total]
    if edges:
        source = Periods([(start, end) for _, start, end in edges])
        owner = {(start, end): i for i, start, end in edges}
        owners = [owner[bound] for bound in source.bounds]
        rows = (
            duration_cases(metric, **filters)
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
    # The edges' values by bucket, for the buckets the ranks fall in.
    extra_by_bucket: dict[tuple[int, str, int], list[int]] = {}
    for (i, sev), values in extra.items():
        for us in values:
            extra_by_bucket.setdefault((i, sev, histograms.bucket_of(us)), []).append(us)
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
        fetched = []
        for bucket, ks in wanted.items():
            if sev:
                mine = extra_by_bucket.get((i, sev, bucket), [])
            else:
                mine = [x for s in Severity.values for x in extra_by_bucket.get((i, s, bucket), [])]
            offset, limit = histograms.window(min(ks), max(ks), mine)
            index = None
            if runs[i]:
                severities = (sev,) if sev else ((severity,) if severity else tuple(Severity.values))
                reads.append(rollup.ValueRead(runs[i], bucket, severities, offset, limit, team, tier))
                index = len(reads) - 1
            fetched.append((bucket, offset, limit, mine, index))
        plans[(i, sev)] = [total_n, sum(t for _, t in cells.values()), spots, fetched]
    stored = rollup.duration_values(metric, reads)
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
            figures.append(seconds(histograms.interpolate(pos, low, high)))
        stats[key] = DurationStats(
            count=total_n, median=figures[0], p90=figures[1], mean=mean_of(total_us, total_n)
        )
    return _reports(stats, periods)


def _one(metric: Metric, start: dt.datetime, end: dt.datetime, **filters: Any) -> DurationReport:
    return durations(metric, one_period(start, end), **filters)[0]


def first_response_time(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """FRT (``catalogue.FIRST_RESPONSE_TIME``), from the source."""
    return _one(catalogue.FIRST_RESPONSE_TIME, start, end, **filters)


def time_to_triage(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """TTT (``catalogue.TIME_TO_TRIAGE``), from the source."""
    return _one(catalogue.TIME_TO_TRIAGE, start, end, **filters)


def time_to_resolve(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """Time to first resolution, DOMAIN's MTTR (``catalogue.TIME_TO_RESOLVE``), from the source."""
    return _one(catalogue.TIME_TO_RESOLVE, start, end, **filters)


def time_to_final_resolution(
    *, start: dt.datetime, end: dt.datetime, tz: str = "UTC", **filters: Any
) -> DurationReport:
    """Time to final resolution (``catalogue.TIME_TO_FINAL_RESOLUTION``), from the source."""
    return _one(catalogue.TIME_TO_FINAL_RESOLUTION, start, end, **filters)
