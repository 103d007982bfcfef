"""The daily rollup of the count metrics, and how the dashboard adds it up.

The durations (FRT, TTT, the times to first and to final resolution) are kept as exact
histograms per UTC day, figure and severity (``DurationBucket``: counts and sums per bucket;
``DurationValue``: every value with its bucket, and its case's team and tier), merged per request
by ``metrics.figures.durations`` into exact medians and p90s (``metrics.histograms``): a period's
cost grows with its days' buckets, not with its cases' sort. A team or tier filter counts its
buckets from its own values (``duration_counts``). Both are written set-based
(``_insert_durations``: ``INSERT ... SELECT``, the bucket computed in SQL).

SLA compliance, update-cadence adherence, the escalation and bounce rates and CSAT are sums over
clocks, cases, escalations and survey answers. At a million cases a 90-day period holds hundreds
of thousands of those rows; the rollup holds one row per UTC day and (severity, team, tier) with
their counts, so a period is a few thousand rows. The reopen rate and knowledge reuse count
distinct cases: the rollup holds their events (reopens, resolutions) and their repeats (an event
whose case's previous event of the kind is on a given day: ``RollupRepeat``), and
``metrics.figures.resolutions`` subtracts the repeats within the period.

Exactness rules:

* A day's rows are computed from the source by the same definitions as the direct queries
  (``_source_rows``), per UTC day of the instant each metric selects by.
* Only days before ``RollupState.through`` (at most the day before yesterday, UTC) are read from
  the rollup: recent days, where almost every write lands, are always read from the source, so the
  services writing "now" have nothing to maintain.
* A change that alters what an older day counts marks that day dirty in its own transaction
  (``touch``). The domain announces its changes (``cases.signals``: every timeline event, and an
  organisation's new tier) and ``on_case_event`` / ``on_organisation_changed`` mark the days: a
  case's severity or team changing, an escalation submitted or bouncing for a case created earlier,
  a clock met or breached, an article linked, an organisation's tier. No model signal is used, so a
  service's ``update()`` is seen as well as its ``save()``; writes that record no event (imported
  history, the demo load) mark their days themselves (``touch_span``, ``deferred``). Dirty days are
  read from the source until ``refresh`` (a Celery beat task, every minute) recomputes them.
* The parts of a period that are not whole UTC days (a period in Berlin starts at 23:00 UTC) are
  read from the source.

Filters on organisation or assignee are not in the rollup's key: those figures are read from the
source entirely.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, connections, transaction
from django.db.models import Case as CaseWhen
from django.db.models import Count, F, IntegerField, Max, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone

from cases.models import REOPENED_Q, RESOLVED_Q, Case, CaseEvent, EventKind
from cases.signals import case_event_recorded, organisation_changed
from escalations.events import EscalationEventKind
from escalations.models import Escalation
from knowledge.models import ArticleCaseLink
from knowledge.services import ARTICLE_LINKED
from sla.events import SlaEventKind
from sla.models import ClockState, SlaClock, Target, completed_at

from . import catalogue, histograms
from .catalogue import Metric
from .figures.base import duration_cases
from .figures.escalations import BOUNCED_Q
from .models import (
    DailyRollup,
    DurationBucket,
    DurationValue,
    RollupDirtyDay,
    RollupRepeat,
    RollupState,
    SurveyResponse,
)
from .surveys import CSAT_ANSWERED

UTC = dt.UTC
#: Days this close to today (UTC) are never rolled up: today and yesterday are read from the source.
LIVE_DAYS = 2
#: Days recomputed per refresh transaction.
REFRESH_BATCH_DAYS = 31
#: The advisory lock that keeps two workers from refreshing at once (PostgreSQL).
_LOCK_KEY = 0x5D_0001
CLOCK_COLUMNS = {t: (f"{t}_met", f"{t}_total") for t in Target.values}
CSAT_COLUMNS = {n: f"csat_{n}" for n in range(1, 6)}
COUNT_COLUMNS = (
    *[c for pair in CLOCK_COLUMNS.values() for c in pair],
    "created",
    "escalated",
    "submitted",
    "bounced",
    "reopens",
    "resolutions",
    "linked_resolutions",
    *CSAT_COLUMNS.values(),
)
#: The filters the rollup can answer (its key); organisation and assignee need the source.
ROLLUP_FILTERS = {"team": "team_id", "tier": "tier", "severity": "severity"}


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(0), tzinfo=UTC)


def _utc_day(instant: dt.datetime) -> dt.date:
    return instant.astimezone(UTC).date()


def _live_from(now: dt.datetime | None = None) -> dt.date:
    """The first day that is never rolled up."""
    return _utc_day(now or timezone.now()) - dt.timedelta(days=LIVE_DAYS - 1)


# --- marking days dirty -----------------------------------------------------------------------------


@dataclass
class _Pending:
    days: set[dt.date] = field(default_factory=set)
    case_ids: set[int] = field(default_factory=set)


_deferred: ContextVar[_Pending | None] = ContextVar("rollup_deferred", default=None)


@contextmanager
def deferred() -> Iterator[None]:
    """Inside, the marks are collected; leaving the block writes them at once (one INSERT, the
    instants of the cases whose dimensions changed read once). For a bulk writer (the demo load);
    use it inside the writing transaction so the marks commit with the rows."""
    pending = _Pending()
    token = _deferred.set(pending)
    try:
        yield
    finally:
        _deferred.reset(token)
    touch([*(_midnight(d) for d in pending.days), *case_instants(pending.case_ids)])


def touch(instants: Iterable[dt.datetime | None]) -> None:
    """Mark the UTC days of ``instants`` dirty if they may be rolled up (call inside the writing
    transaction). Recent days are always read from the source and need no mark."""
    days = {_utc_day(i) for i in instants if i is not None}
    pending = _deferred.get()
    if pending is not None:
        pending.days |= days
        return
    live = _live_from()
    RollupDirtyDay.objects.bulk_create([RollupDirtyDay(day=d) for d in sorted(days) if d < live])


def touch_span(first: dt.datetime | dt.date, last: dt.datetime | dt.date) -> None:
    """Mark every day from ``first`` to ``last`` (inclusive) dirty: imported history, an
    organisation's tier."""
    if isinstance(first, dt.datetime):
        first = _utc_day(first)
    if isinstance(last, dt.datetime):
        last = _utc_day(last)
    last = min(last, _live_from() - dt.timedelta(days=1))
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    RollupDirtyDay.objects.bulk_create([RollupDirtyDay(day=d) for d in days], batch_size=1000)


def case_instants(case_ids: Iterable[int]) -> list[dt.datetime]:
    """Every instant a count metric selects these cases' rows by (created, clocks completed,
    escalations submitted, surveys answered): the days a change of the cases' severity, team or
    organisation moves between rollup rows."""
    ids = list(case_ids)
    instants: list[dt.datetime] = []
    # Creation (the escalation rate's cohort) and the instants the duration figures select by.
    for row in Case.objects.filter(pk__in=ids).values_list(
        "created_at", "first_response_at", "triaged_at", "first_resolved_at", "last_resolved_at"
    ):
        instants.extend(i for i in row if i is not None)
    clocks = SlaClock.objects.filter(case_id__in=ids).exclude(met_at=None, breached_at=None)
    for met, breached in clocks.values_list("met_at", "breached_at"):
        instants.extend(i for i in (met, breached) if i is not None)
    instants.extend(
        Escalation.objects.filter(case_id__in=ids)
        .exclude(submitted_at=None)
        .values_list("submitted_at", flat=True)
    )
    instants.extend(resolution_instants(ids))
    instants.extend(
        SurveyResponse.objects.filter(case_id__in=ids)
        .exclude(answered_at=None)
        .values_list("answered_at", flat=True)
    )
    return instants


def linked_resolution_q() -> Q:
    """A resolution event of a case with a linked article (knowledge reuse's numerator)."""
    return RESOLVED_Q & Q(case_id__in=ArticleCaseLink.objects.values("case_id"))


def resolution_instants(case_ids: Iterable[int]) -> list[dt.datetime]:
    """When these cases were reopened or resolved (what a new article link changes, too)."""
    return list(
        CaseEvent.objects.filter(REOPENED_Q | RESOLVED_Q, case_id__in=list(case_ids)).values_list(
            "created_at", flat=True
        )
    )


# --- computing days from the source -----------------------------------------------------------------


def _day_ranges(days: Iterable[dt.date]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive days merged into [start, end) instants."""
    ranges: list[list[dt.date]] = []
    for day in sorted(set(days)):
        if ranges and ranges[-1][1] == day:
            ranges[-1][1] = day + dt.timedelta(days=1)
        else:
            ranges.append([day, day + dt.timedelta(days=1)])
    return [(_midnight(a), _midnight(b)) for a, b in ranges]


def _in_ranges(instant: str, ranges: list[tuple[dt.datetime, dt.datetime]]) -> Q:
    q = Q(pk__in=[])
    for start, end in ranges:
        q |= Q(**{f"{instant}__gte": start, f"{instant}__lt": end})
    return q


def _source_rows(days: Iterable[dt.date]) -> list[DailyRollup]:
    """The rollup rows of ``days`` computed from the source (four grouped queries)."""
    ranges = _day_ranges(days)
    if not ranges:
        return []
    rows: dict[tuple, dict[str, int]] = {}

    def add(day, severity, team_id, tier, **counts: int) -> None:
        row = rows.setdefault((day, severity, team_id, tier), dict.fromkeys(COUNT_COLUMNS, 0))
        for column, n in counts.items():
            row[column] += n

    day_of = {"day": TruncDate("instant", tzinfo=UTC)}
    clocks = (
        SlaClock.objects.annotate(instant=completed_at())
        .filter(_in_ranges("instant", ranges))
        .annotate(**day_of)
        .values("day", "target", "case__severity", "case__team_id", "case__organisation__tier")
        .annotate(total=Count("id"), met=Count("id", filter=Q(state=ClockState.MET)))
        .order_by()
    )
    for r in clocks:
        met, total = CLOCK_COLUMNS[r["target"]]
        dims = (r["day"], r["case__severity"], r["case__team_id"], r["case__organisation__tier"])
        add(*dims, **{met: r["met"], total: r["total"]})

    escalated = Escalation.objects.filter(submitted_at__isnull=False).values("case_id")
    created = (
        Case.objects.annotate(instant=F("created_at"))
        .filter(_in_ranges("instant", ranges))
        .annotate(**day_of)
        .values("day", "severity", "team_id", "organisation__tier")
        .annotate(created=Count("id"), escalated=Count("id", filter=Q(id__in=escalated)))
        .order_by()
    )
    for r in created:
        dims = (r["day"], r["severity"], r["team_id"], r["organisation__tier"])
        add(*dims, created=r["created"], escalated=r["escalated"])

    submitted = (
        Escalation.objects.annotate(instant=F("submitted_at"))
        .filter(_in_ranges("instant", ranges))
        .annotate(**day_of)
        .values("day", "case__severity", "case__team_id", "case__organisation__tier")
        .annotate(submitted=Count("id"), bounced=Count("id", filter=BOUNCED_Q))
        .order_by()
    )
    for r in submitted:
        dims = (r["day"], r["case__severity"], r["case__team_id"], r["case__organisation__tier"])
        add(*dims, submitted=r["submitted"], bounced=r["bounced"])

    events = (
        CaseEvent.objects.filter(REOPENED_Q | RESOLVED_Q)
        .annotate(instant=F("created_at"))
        .filter(_in_ranges("instant", ranges))
        .annotate(**day_of)
        .values("day", "case__severity", "case__team_id", "case__organisation__tier")
        .annotate(
            reopens=Count("id", filter=REOPENED_Q),
            resolutions=Count("id", filter=RESOLVED_Q),
            linked_resolutions=Count("id", filter=linked_resolution_q()),
        )
        .order_by()
    )
    for r in events:
        dims = (r["day"], r["case__severity"], r["case__team_id"], r["case__organisation__tier"])
        add(
            *dims,
            reopens=r["reopens"],
            resolutions=r["resolutions"],
            linked_resolutions=r["linked_resolutions"],
        )

    answers = (
        SurveyResponse.objects.annotate(instant=F("answered_at"))
        .filter(_in_ranges("instant", ranges))
        .annotate(**day_of)
        .values("day", "case__severity", "case__team_id", "case__organisation__tier")
        .annotate(**{column: Count("id", filter=Q(rating=n)) for n, column in CSAT_COLUMNS.items()})
        .order_by()
    )
    for r in answers:
        dims = (r["day"], r["case__severity"], r["case__team_id"], r["case__organisation__tier"])
        add(*dims, **{column: r[column] for column in CSAT_COLUMNS.values()})

    return [
        DailyRollup(day=day, severity=severity, team_id=team_id, tier=tier, **counts)
        for (day, severity, team_id, tier), counts in rows.items()
    ]


def previous_event(kind: Q) -> Subquery:
    """The instant of the case's event of ``kind`` before this one (by time, then id), for a query
    over timeline events of ``kind``; NULL for the case's first. An index range scan of the case's
    metric events (``event_metric_case_idx``) that stops at the first row."""
    earlier = Q(created_at__lt=OuterRef("created_at")) | Q(
        created_at=OuterRef("created_at"), id__lt=OuterRef("id")
    )
    return Subquery(
        CaseEvent.objects.filter(kind, earlier, case_id=OuterRef("case_id"))
        .order_by("-created_at", "-id")
        .values("created_at")[:1]
    )


#: The two kinds of event whose distinct cases the reopen rate and knowledge reuse count, with the
#: repeat columns they fill.
REPEAT_KINDS = ((REOPENED_Q, "reopens"), (RESOLVED_Q, "resolutions"))


def _source_repeats(days: Iterable[dt.date]) -> list[RollupRepeat]:
    """The repeats of ``days`` from the source: their reopen and resolution events grouped by the
    day of the case's previous event of the same kind (two grouped queries)."""
    ranges = _day_ranges(days)
    if not ranges:
        return []
    rows: dict[tuple, dict[str, int]] = {}
    linked = Q(case_id__in=ArticleCaseLink.objects.values("case_id"))
    for kind, column in REPEAT_KINDS:
        counts = {column: Count("id")}
        if column == "resolutions":
            counts["linked_resolutions"] = Count("id", filter=linked)
        grouped = (
            CaseEvent.objects.filter(kind, _in_ranges("created_at", ranges))
            .annotate(previous=previous_event(kind))
            .filter(previous__isnull=False)
            .annotate(d=TruncDate("created_at", tzinfo=UTC), p=TruncDate("previous", tzinfo=UTC))
            .values("d", "p", "case__severity", "case__team_id", "case__organisation__tier")
            .annotate(**counts)
            .order_by()
        )
        for r in grouped:
            key = (r["d"], r["p"], r["case__severity"], r["case__team_id"], r["case__organisation__tier"])
            row = rows.setdefault(key, {"reopens": 0, "resolutions": 0, "linked_resolutions": 0})
            for name in counts:
                row[name] += r[name]
    return [
        RollupRepeat(day=d, previous_day=p, severity=sev, team_id=team, tier=tier, **counts)
        for (d, p, sev, team, tier), counts in rows.items()
    ]


def bucket_sql(column: str, vendor: str) -> str:
    """``histograms.bucket_of(column)`` in SQL for an integer ``column``: how many bucket bounds are
    at most its value. PostgreSQL's ``width_bucket`` over the bounds' array says exactly that; on
    SQLite a balanced tree of comparisons with the bounds (nine deep). The bounds are this module's
    integers, not input."""
    bounds = histograms.BOUNDS
    if vendor == "postgresql":
        return f"width_bucket({column}, ARRAY[{', '.join(map(str, bounds))}]::bigint[])"

    def tree(lo: int, hi: int) -> str:  # the bucket, known to lie in lo..hi
        if lo == hi:
            return str(lo)
        mid = (lo + hi + 1) // 2  # bucket >= mid exactly when column >= bounds[mid - 1]
        return f"CASE WHEN {column} >= {bounds[mid - 1]} THEN {tree(mid, hi)} ELSE {tree(lo, mid - 1)} END"

    return tree(0, len(bounds))


def _insert_durations(days: Iterable[dt.date]) -> None:
    """Write the duration histograms of ``days`` from the source, set-based: per figure one
    ``INSERT ... SELECT`` of every duration with its bucket, then one of the buckets' counts and
    sums from those values. Nothing passes through Python."""
    ranges = _day_ranges(days)
    if not ranges:
        return
    db = DurationValue.objects.all().db
    ops, vendor = connections[db].ops, connections[db].vendor
    values_table = ops.quote_name(DurationValue._meta.db_table)
    buckets_table = ops.quote_name(DurationBucket._meta.db_table)
    with connections[db].cursor() as cursor:
        for metric in catalogue.DURATIONS:
            source = (
                duration_cases(metric)
                .filter(_in_ranges(metric.field, ranges))
                .annotate(
                    v_day=TruncDate(metric.field, tzinfo=UTC),
                    v_severity=F("severity"),
                    v_team=F("team_id"),
                    v_tier=F("organisation__tier"),
                )
                .values("v_day", "v_severity", "v_team", "v_tier", "us")
                .order_by()
            )
            sql, params = source.query.get_compiler(using=db).as_sql()
            bucket = bucket_sql("us", vendor)
            cursor.execute(
                f"INSERT INTO {values_table} (day, figure, severity, team_id, tier, bucket, value) "  # noqa: S608
                f"SELECT v_day, %s, v_severity, v_team, v_tier, {bucket}, us FROM ({sql}) s",
                [metric.code, *params],
            )
        in_days = " OR ".join("(day >= %s AND day < %s)" for _ in ranges)
        cursor.execute(
            f"INSERT INTO {buckets_table} (day, figure, severity, bucket, count, total) "  # noqa: S608
            f"SELECT day, figure, severity, bucket, COUNT(*), SUM(value) FROM {values_table} "
            f"WHERE {in_days} GROUP BY day, figure, severity, bucket",
            [d for start, end in ranges for d in (start.date(), end.date())],
        )


# --- refreshing -------------------------------------------------------------------------------------


def refresh(*, now: dt.datetime | None = None, max_batches: int | None = None) -> int:
    """Recompute the dirty days and roll up the days that left the live window; returns the
    number of days recomputed. Safe to run on several workers at once (one waits for the other)."""
    target = _live_from(now)
    done = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        n = _refresh_batch(target)
        done += n
        if not n:
            break
    return done


def _refresh_batch(target: dt.date) -> int:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        state, _ = RollupState.objects.select_for_update().get_or_create(pk=1)
        days: set[dt.date] = set()
        if state.through is None or state.through < target:
            first = state.through or _first_day()
            if first is None:
                state.through = target
                state.save(update_fields=["through"])
                return 0
            last = min(target, first + dt.timedelta(days=REFRESH_BATCH_DAYS))
            days.update(first + dt.timedelta(days=i) for i in range((last - first).days))
            new_through = last
        else:
            new_through = state.through
        # Marks up to the highest id seen now: one written by a change that commits after this
        # point keeps its day dirty for the next refresh (ids only grow), whatever this one computed.
        seen = RollupDirtyDay.objects.filter(day__lt=new_through).aggregate(top=Max("id"))["top"]
        marked = (
            list(
                RollupDirtyDay.objects.filter(day__lt=new_through, id__lte=seen)
                .order_by("day")
                .values_list("day", flat=True)
                .distinct()[:REFRESH_BATCH_DAYS]
            )
            if seen
            else []
        )
        days.update(marked)
        if not days and new_through == state.through:
            return 0
        # Only days rolled up before have rows to replace (a new day has none: its rows are written
        # in the transaction that moves ``through`` past it).
        replaced = sorted(d for d in days if state.through is not None and d < state.through)
        rows, repeats = _source_rows(days), _source_repeats(days)
        if replaced:
            for model in (DailyRollup, RollupRepeat, DurationBucket, DurationValue):
                model.objects.filter(day__in=replaced).delete()
        DailyRollup.objects.bulk_create(rows, batch_size=2000)
        RollupRepeat.objects.bulk_create(repeats, batch_size=2000)
        _insert_durations(days)
        if marked:
            RollupDirtyDay.objects.filter(day__in=marked, id__lte=seen).delete()
        if new_through != state.through:
            state.through = new_through
            state.save(update_fields=["through"])
        return max(len(days), 1)


def refresh_days(days: Iterable[dt.date | dt.datetime], *, now: dt.datetime | None = None) -> int:
    """Recompute ``days`` now (and whatever else is dirty), so that the dashboard reads them from
    the rollup at once: for a bulk writer such as the history import, after its transaction
    committed, before it reports done. Days not yet rolled up are left to ``refresh`` as usual;
    returns the number of days recomputed."""
    touch(_midnight(d) if not isinstance(d, dt.datetime) else d for d in days)
    return refresh(now=now)


def _first_day() -> dt.date | None:
    first = Case.objects.order_by("created_at").values_list("created_at", flat=True).first()
    return _utc_day(first) if first else None


def rebuild(*, now: dt.datetime | None = None) -> int:
    """Forget the rollup and build it again from the source (after loading data behind the
    services' back, e.g. benchmark data)."""
    models = (DailyRollup, RollupRepeat, DurationBucket, DurationValue, RollupDirtyDay)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # TRUNCATE leaves no dead rows behind for the refresh to wade through.
            tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)
            with connection.cursor() as cursor:
                cursor.execute(f"TRUNCATE {tables}")
        else:
            for model in models:
                model.objects.all().delete()
        RollupState.objects.update_or_create(pk=1, defaults={"through": None})
    return refresh(now=now)


# --- reading ----------------------------------------------------------------------------------------


def usable(**filters: Any) -> bool:
    """Whether figures with these filters can come from the rollup: only its key's are given."""
    return all(name in ROLLUP_FILTERS for name, value in filters.items() if value not in (None, ""))


def split(bounds: Iterable[tuple[dt.datetime, dt.datetime]]) -> tuple[list, list]:
    """Split each period into rolled-up days and source ranges.

    Returns ``(days, edges)``: ``days`` as ``(period index, first day, end day)`` runs of clean
    rolled-up UTC days, ``edges`` as ``(period index, start, end)`` instants to read from the source.
    """
    bounds = list(bounds)
    through = RollupState.objects.filter(pk=1).values_list("through", flat=True).first()
    first_day = min(_utc_day(s) for s, _ in bounds)
    last_day = max(_utc_day(e) for _, e in bounds)
    dirty = (
        set(
            RollupDirtyDay.objects.filter(day__gte=first_day, day__lte=last_day)
            .values_list("day", flat=True)
            .distinct()  # a day is marked once per change until the next refresh
        )
        if through
        else set()
    )
    days, edges = [], []
    for i, (start, end) in enumerate(bounds):
        cursor = start
        day = _utc_day(start) + (
            dt.timedelta(0) if _midnight(_utc_day(start)) == start else dt.timedelta(days=1)
        )
        run_start = None
        while through and day < through and _midnight(day + dt.timedelta(days=1)) <= end:
            if day in dirty:
                if run_start is not None:
                    days.append((i, run_start, day))
                    run_start = None
            else:
                if run_start is None:
                    run_start = day
                    if cursor < _midnight(day):
                        edges.append((i, cursor, _midnight(day)))
                cursor = _midnight(day + dt.timedelta(days=1))
            day += dt.timedelta(days=1)
        if run_start is not None:
            days.append((i, run_start, day))
        if cursor < end:
            edges.append((i, cursor, end))
    return days, edges


def _filter_q(**filters: Any) -> Q:
    """The rollup-keyed filters (team, tier, severity) as a Q on the rollup's tables."""
    q = Q()
    for name, column in ROLLUP_FILTERS.items():
        value = filters.get(name)
        if value not in (None, ""):
            q &= Q(**{column: getattr(value, "pk", value)})
    return q


def _period_of(days: list[tuple[int, dt.date, dt.date]], field: str = "day") -> CaseWhen:
    """The index of the period whose runs hold ``field`` (NULL outside them)."""
    return CaseWhen(
        *[When(**{f"{field}__gte": a, f"{field}__lt": b}, then=Value(i)) for i, a, b in days],
        output_field=IntegerField(),
    )


def _days_q(days: list[tuple[int, dt.date, dt.date]]) -> Q:
    """The days of the runs, adjacent runs (a period and the one before it) as one range: an OR of
    ranges cannot bound an index scan, one range can."""
    spans: list[list[dt.date]] = []
    for _, a, b in sorted(days, key=lambda run: run[1]):
        if spans and spans[-1][1] >= a:
            spans[-1][1] = max(spans[-1][1], b)
        else:
            spans.append([a, b])
    q = Q(pk__in=[])
    for a, b in spans:
        q |= Q(day__gte=a, day__lt=b)
    return q


def sums(days: list[tuple[int, dt.date, dt.date]], **filters: Any) -> dict[tuple[int, str], dict[str, int]]:
    """The rollup's counts over ``days`` runs: ``{(period index, severity): {column: n}}``. One query."""
    if not days:
        return {}
    rows = (
        DailyRollup.objects.filter(_days_q(days), _filter_q(**filters))
        .annotate(period=_period_of(days))
        .values("period", "severity")
        .annotate(**{column: Sum(column) for column in COUNT_COLUMNS})
        .order_by()
    )
    return {(r["period"], r["severity"]): {c: r[c] or 0 for c in COUNT_COLUMNS} for r in rows}


REPEAT_COLUMNS = ("reopens", "resolutions", "linked_resolutions")


def repeat_sums(days: list[tuple[int, dt.date, dt.date]], **filters: Any) -> dict[int, dict[str, int]]:
    """The repeats within each period's rolled-up days: ``{period index: {column: n}}`` of the
    events of ``days`` runs whose case's previous event of the kind lies in the same period's
    runs. One query."""
    if not days:
        return {}
    rows = (
        RollupRepeat.objects.filter(_days_q(days), _filter_q(**filters))
        .annotate(period=_period_of(days), previous=_period_of(days, "previous_day"))
        .filter(previous=F("period"))
        .values("period")
        .annotate(**{column: Sum(column) for column in REPEAT_COLUMNS})
        .order_by()
    )
    return {r["period"]: {c: r[c] or 0 for c in REPEAT_COLUMNS} for r in rows}


def duration_counts(
    metric: Metric, days: list[tuple[int, dt.date, dt.date]], **filters: Any
) -> list[tuple[int, str, int, int, int]]:
    """The histograms' ``(period index, severity, bucket, count, sum µs)`` of a duration over
    ``days`` runs (``split``'s). One query: the summed buckets, or for a team or a tier the counts
    of its stored values (an index-only scan of that team's or tier's values)."""
    if not days:
        return []
    by_dimension = any(filters.get(name) not in (None, "") for name in ("team", "tier"))
    if by_dimension:
        rows = DurationValue.objects.filter(_days_q(days), _filter_q(**filters), figure=metric.code)
        n, total = Count("value"), Sum("value")
    else:
        rows = DurationBucket.objects.filter(_days_q(days), _filter_q(**filters), figure=metric.code)
        n, total = Sum("count"), Sum("total")
    return list(
        rows.annotate(period=_period_of(days))
        .values("period", "severity", "bucket")
        .annotate(n=n, t=total)
        .order_by()
        .values_list("period", "severity", "bucket", "n", "t")
    )


@dataclass(frozen=True)
class ValueRead:
    """Read the stored values of one bucket of a duration for the days of one period (``days``
    runs), the severities given and the team and tier filters, in order, ``limit`` of them from
    ``offset``."""

    days: tuple[tuple[dt.date, dt.date], ...]
    bucket: int
    severities: tuple[str, ...]
    offset: int
    limit: int
    team: int | None = None
    tier: str | None = None


def duration_values(metric: Metric, reads: list[ValueRead]) -> list[list[int]]:
    """The values of each read (in order), all in one query: each read is an index range scan of
    its bucket in value order that stops after ``offset + limit`` matching rows."""
    if not reads:
        return []
    table = connections[DurationValue.objects.all().db].ops.quote_name(DurationValue._meta.db_table)
    parts, params = [], []
    for i, read in enumerate(reads):
        days = " OR ".join("(day >= %s AND day < %s)" for _ in read.days)
        marks = ", ".join("%s" for _ in read.severities)
        dimensions = "".join(
            f" AND {column} = %s" for column, value in (("team_id", read.team), ("tier", read.tier)) if value
        )
        parts.append(
            f"SELECT * FROM (SELECT {i} AS n, value FROM {table} "  # noqa: S608 - names of this module
            f"WHERE figure = %s AND bucket = %s AND severity IN ({marks}){dimensions} AND ({days}) "
            "ORDER BY value LIMIT %s OFFSET %s) AS q" + str(i)
        )
        params.extend([metric.code, read.bucket, *read.severities])
        params.extend(value for value in (read.team, read.tier) if value)
        for a, b in read.days:
            params.extend([a, b])
        params.extend([read.limit, read.offset])
    result: list[list[int]] = [[] for _ in reads]
    with connections[DurationValue.objects.all().db].cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for n, value in cursor.fetchall():
            result[n].append(value)
    for values in result:
        values.sort()
    return result


# --- keeping marks: the domain events that change what an older day counts -------------------------

#: Events that move every counted row of their case between rollup rows (its key changed).
_KEY_CHANGES = frozenset({EventKind.SEVERITY_CHANGED, EventKind.TEAM_CHANGED})
#: Escalation events that change what the escalation and bounce rates count: the submission (its
#: ``submitted_at``, its case's cohort) and the moves into and out of ``needs_info`` (``BOUNCED_Q``).
_ESCALATION_COUNTED = frozenset(
    {
        EscalationEventKind.SUBMITTED,
        EscalationEventKind.INFO_REQUESTED,
        EscalationEventKind.INFO_PROVIDED,
        EscalationEventKind.WITHDRAWN,
    }
)
#: Events whose own instant is when what they change is counted: the clocks a reply or a status
#: change meets (``met_at`` is the event's ``now``), a breach the sweep or a late reply records
#: (``breached_at`` likewise), a resolution or reopen event, a survey answered (``answered_at``).
#: The other kinds (notes, tags, warnings, reminders, ...) change nothing the rollup counts.
_COUNTED_AT_THEIR_INSTANT = frozenset(
    {
        EventKind.PUBLIC_REPLY,
        EventKind.STATUS_CHANGED,
        EventKind.REOPENED,
        SlaEventKind.BREACHED,
        SlaEventKind.CADENCE_MISSED,
        CSAT_ANSWERED,
    }
)


def on_case_event(sender, *, case: Case, event: CaseEvent, now: dt.datetime, **kwargs) -> None:
    """Receiver of ``cases.signals.case_event_recorded`` (inside the writing transaction): mark the
    rolled-up days whose figures the recorded change alters.

    Every instant a count metric selects a case's rows by (its clocks completed, its escalations
    submitted, its reopens and resolutions, its survey answered) is at or after the case's creation,
    so a case created in the live window (today and yesterday, never rolled up) needs no marks and
    costs no query. For an older case:

    * created: its creation day (the escalation rate's cohort);
    * severity or team changed: every day that counts its rows (``case_instants``);
    * an escalation submitted, bounced or back from ``needs_info``: the escalations' submission
      days and the case's creation day;
    * an article linked: the days of its reopens and resolutions (knowledge reuse);
    * a status change or a reopen: the event's own day and the day of the case's last resolution
      (a reopened case has no final resolution: ``time_to_final_resolution`` counts only cases
      not open now);
    * a reply, a breach or a survey answer: the event's own day (``_COUNTED_AT_THEIR_INSTANT``);
    * anything else: nothing (a note, a warning or a tag changes no count).
    """
    if case.created_at >= _midnight(_live_from()):
        return
    kind = event.kind
    if kind in _KEY_CHANGES:
        if (pending := _deferred.get()) is not None:
            pending.case_ids.add(case.pk)
        else:
            touch(case_instants([case.pk]))
    elif kind == EventKind.CREATED:
        touch([case.created_at])
    elif kind in _ESCALATION_COUNTED:
        submitted = Escalation.objects.filter(case_id=case.pk).exclude(submitted_at=None)
        touch([case.created_at, now, *submitted.values_list("submitted_at", flat=True)])
    elif kind == ARTICLE_LINKED:
        touch(resolution_instants([case.pk]))
    elif kind in (EventKind.STATUS_CHANGED, EventKind.REOPENED):
        # A reopened case has no final resolution until it is resolved again: the day of its last
        # resolution loses it (``last_resolved_at`` is still that one while the case is open).
        touch([now, case.last_resolved_at])
    elif kind in _COUNTED_AT_THEIR_INSTANT:
        touch([now])


def on_organisation_changed(sender, *, organisation, changes: dict, now: dt.datetime, **kwargs) -> None:
    """Receiver of ``cases.signals.organisation_changed``: a new tier moves every counted row of the
    organisation's cases, so every day since its first case is marked."""
    if "tier" not in changes:
        return
    first = (
        Case.objects.filter(organisation_id=organisation.pk)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if first is not None:
        touch_span(first, now)


def connect() -> None:
    """Listen to the domain's signals (called from ``MetricsConfig.ready``). No model signal: a write
    the domain does not announce (an ``update()``, a bulk load) marks its days itself (``touch``,
    ``touch_span``, ``deferred``), as the history import does."""
    case_event_recorded.connect(on_case_event, dispatch_uid="metrics.rollup.on_case_event")
    organisation_changed.connect(
        on_organisation_changed, dispatch_uid="metrics.rollup.on_organisation_changed"
    )
