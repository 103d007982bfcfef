"""What every family of figures shares: periods, filters, value types and running queries.

Every figure takes the period as keyword-only aware instants ``start`` (inclusive) and ``end``
(exclusive), the filters of the dashboard (``team``, ``tier``, ``severity``, ``organisation``,
``assignee``: a model instance, a primary key or a code) and returns plain data. A period selects
rows by the time of the event the metric is about (``metrics.catalogue``: ``selected_by``).
Durations are calendar seconds.
"""

from __future__ import annotations

import contextvars
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models import BigIntegerField, F, FloatField, Func, IntegerField, Q, QuerySet, Value, When
from django.utils import timezone

from cases.models import OPEN_Q, Case
from supportdesk.core.db_router import read_alias

from ..catalogue import Metric

FILTER_NAMES = ("team", "tier", "severity", "organisation", "assignee")
T = TypeVar("T")


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


class MicrosecondsBetween(Func):
    """``later - earlier`` in whole microseconds (exact: stored instants are whole microseconds)."""

    output_field = BigIntegerField()
    arity = 2

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError(f"MicrosecondsBetween is not implemented for {connection.vendor}")

    def as_postgresql(self, compiler, connection, **extra_context):
        # In double precision (cheaper than EXTRACT's numeric): the epoch of an interval is within
        # an ulp of the exact seconds, so times 10^6 and rounded it is the exact microseconds for
        # any duration below a few hundred years.
        return Func.as_sql(
            self,
            compiler,
            connection,
            template="CAST(round(date_part('epoch', %(expressions)s) * 1000000) AS bigint)",
            arg_joiner=" - ",
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return Func.as_sql(
            self, compiler, connection, template="django_timestamp_diff(%(expressions)s)", arg_joiner=", "
        )


@dataclass(frozen=True)
class DurationStats:
    """Median, p90 and mean of a set of durations (seconds); None when the set is empty."""

    count: int
    median: float | None
    p90: float | None
    mean: float | None


EMPTY = DurationStats(count=0, median=None, p90=None, mean=None)


@dataclass(frozen=True)
class DurationReport:
    overall: DurationStats
    by_severity: dict[str, DurationStats]


@dataclass(frozen=True)
class Ratio:
    """``numerator / denominator``; ``rate`` is None when nothing was counted."""

    numerator: int
    denominator: int

    @property
    def rate(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


def plus(a: Ratio, b: Ratio) -> Ratio:
    return Ratio(a.numerator + b.numerator, a.denominator + b.denominator)


def pk_of(value: Any) -> Any:
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
        q &= Q(**{f"{prefix}{lookups[name]}": pk_of(value)})
    return q


def filtered_cases(**filters: Any) -> QuerySet:
    return Case.objects.filter(case_filter_q(**filters))


def duration_cases(metric: Metric, **filters: Any) -> QuerySet:
    """The cases a duration figure can count, with ``us``: the duration in microseconds. Every
    case, except that the time to final resolution counts only cases that are not open now (a
    reopened case has no final resolution yet)."""
    cases = filtered_cases(**filters)
    if metric.closed_only:
        cases = cases.exclude(OPEN_Q)
    return cases.annotate(us=MicrosecondsBetween(F(metric.field), F("created_at")))


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


def check_period(start: dt.datetime, end: dt.datetime) -> None:
    if timezone.is_naive(start) or timezone.is_naive(end):
        raise ValueError("The period's start and end must be aware datetimes.")
    if end <= start:
        raise ValueError("The period must end after it starts.")


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
            check_period(start, end)
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


def one_period(start: dt.datetime, end: dt.datetime) -> Periods:
    return Periods([(start, end)])


def run_all(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run independent figure queries, each in the figures' settings (``sorting_in_memory``).

    On PostgreSQL, outside a transaction, they run on ``METRICS_QUERY_THREADS`` connections at
    once, so the figures of one request use the server's cores side by side. Each thread's
    connection sees what is committed, as the request's own would (a dashboard request writes
    nothing); inside a transaction (tests, or a caller with uncommitted writes) they run in order
    on the caller's connection. The threads run in a copy of the caller's context, so that they
    read from the same database (``reads_from_replica``).
    """
    threads = getattr(settings, "METRICS_QUERY_THREADS", 1)
    using = read_alias()
    conn = connections[using]
    in_transaction = conn.in_atomic_block or connections[DEFAULT_DB_ALIAS].in_atomic_block
    if threads <= 1 or conn.vendor != "postgresql" or in_transaction:
        with sorting_in_memory(using):
            return [call() for call in calls]

    def run(call: Callable[[], T]) -> T:
        try:
            with sorting_in_memory(using):
                return call()
        finally:
            connections.close_all()  # this thread's connections only

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="metrics") as pool:
        # One context copy per call: a context cannot be entered by two threads at once.
        futures = [pool.submit(contextvars.copy_context().run, run, call) for call in calls]
        return [f.result() for f in futures]


@contextmanager
def sorting_in_memory(using: str = "default") -> Iterator[None]:
    """On PostgreSQL, let the figures' sorts (durations read from the source: a period's hundreds of
    thousands of rows) run in memory rather than spill to temporary files at the default 4 MB
    ``work_mem``. Only for the transaction around the figures (``set_config(..., true)`` is SET
    LOCAL)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            # No parallel workers on top: the request's figures already run side by side on their
            # own connections (``run_all``), and workers would compete with them for the cores.
            cursor.execute(
                "SELECT set_config('work_mem', '64MB', true), "
                "set_config('max_parallel_workers_per_gather', '0', true)"
            )
        yield


def seconds(value: Any) -> float | None:
    # Durations are exact to the microsecond; rounding there hides float noise of interpolation.
    return None if value is None else round(float(value), 6)


def mean_of(total_us: Any, count: int) -> float | None:
    """The mean in seconds from the exact sum of whole microseconds: the same figure whichever
    order the durations were added in (the rollup's histograms add them per day)."""
    return seconds(int(total_us) / count / 1e6) if count and total_us is not None else None
