"""The duration figures from the rollup's histograms equal the direct ones, exactly, over years.

A few hundred cases over two and a half years (2022-11 to 2025-03), with durations that tie (whole
minutes repeated), that differ by a microsecond, that are long (weeks) and short (seconds), cases
reopened and resolved again (days or weeks apart, so that a case's two resolutions fall in two
periods, or in a rolled-up day and an edge of one), cases reopened and open now (no final
resolution), some with a linked article. The clock is moved to April 2025, so everything before
2025-03-31 is rolled up. The reopen rate and knowledge reuse (distinct cases among repeated
events) are compared with the direct figures as well.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest
import time_machine

from cases import services as cases
from cases.models import Case, CaseEvent, EventKind, Status
from knowledge import services as knowledge
from metrics import catalogue, histograms, rollup
from metrics import selectors as m
from metrics.models import DurationBucket, DurationValue, RollupDirtyDay
from tests.factories import at
from tests.metrics.conftest import BERLIN

pytestmark = pytest.mark.django_db

NOW = at(2025, 4, 1, 12, 0)
FIGURES = {
    "first_response_time": m.first_response_time,
    "time_to_triage": m.time_to_triage,
    "time_to_resolve": m.time_to_resolve,
    "time_to_final_resolution": m.time_to_final_resolution,
}
SPANS = [
    # The whole history and more, in UTC (whole days: all from the rollup but the live days).
    ("UTC", [(at(2022, 10, 1), at(2025, 4, 2))]),
    # Two Berlin years and the two before them (partial UTC days at each end).
    (
        BERLIN,
        [
            (at(2023, 3, 15, tz=BERLIN), at(2025, 3, 15, tz=BERLIN)),
            (at(2021, 3, 15, tz=BERLIN), at(2023, 3, 15, tz=BERLIN)),
        ],
    ),
    # 90 days with a half-hour offset, reaching into the live days, and the 90 before.
    (
        "Asia/Kolkata",
        [
            (at(2025, 1, 2, tz="Asia/Kolkata"), at(2025, 4, 2, tz="Asia/Kolkata")),
            (at(2024, 10, 4, tz="Asia/Kolkata"), at(2025, 1, 2, tz="Asia/Kolkata")),
        ],
    ),
]


def _step(rng: random.Random, n: int) -> dt.timedelta:
    if n % 3 == 0:  # ties: the same few whole minutes again and again
        return dt.timedelta(minutes=rng.choice([10, 10, 10, 30, 90]))
    if n % 7 == 0:  # long
        return dt.timedelta(days=rng.randrange(3, 30), seconds=rng.randrange(86400))
    return dt.timedelta(seconds=rng.randrange(1, 200_000), microseconds=rng.randrange(1_000_000))


@pytest.fixture
def years(organisation, contact, agent, team):
    rng = random.Random(18)
    first = at(2022, 11, 1, 9, 0)
    travel = time_machine.travel(NOW, tick=False)
    travel.start()
    article = knowledge.create_draft(title="Known fix", actor=agent, now=first)
    for n in range(240):
        created = first + dt.timedelta(minutes=rng.randrange(0, 60 * 24 * 880))
        severity = rng.choice(["P1", "P2", "P2", "P3", "P4"])
        case = cases.create_case(
            title=f"Case {n}",
            organisation=organisation,
            requester=contact,
            severity=severity,
            actor=agent,
            now=created,
            **({"team": team} if n % 3 == 1 else {}),
        )
        when = created + _step(rng, n)
        if when >= NOW:
            continue
        cases.add_public_reply(Case.objects.get(pk=case.pk), body="On it.", actor=agent, now=when)
        if n % 6 == 5:  # answered, never triaged
            continue
        moves = [(Status.TRIAGED, {"severity": severity, "assignee": agent}), (Status.IN_PROGRESS, {})]
        moves.append((Status.RESOLVED, {}))
        if n % 4 == 0:  # reopened; every other one resolved again, the rest open now
            moves += [(Status.REOPENED, {"reason": "Not fixed."}), (Status.IN_PROGRESS, {})]
            if n % 8 == 0:
                moves.append((Status.RESOLVED, {}))
        for status, extra in moves:
            when += _step(rng, n + 1)
            if when >= NOW:
                break
            cases.transition(Case.objects.get(pk=case.pk), status, actor=agent, now=when, **extra)
        if n % 5 == 0:
            knowledge.link_to_case(article, Case.objects.get(pk=case.pk), actor=agent, now=when)
    assert rollup.refresh() > 800
    yield
    travel.stop()


def direct(start, end, tz, **filters):
    return {name: figure(start=start, end=end, tz=tz, **filters) for name, figure in FIGURES.items()}


#: The figures that count distinct cases among repeated events.
RATES = {"reopen_rate": m.reopen_rate, "knowledge_reuse": m.knowledge_reuse}


def assert_durations_equal_direct(**filters):
    for tz, bounds in SPANS:
        together = m.periods_metrics(bounds, tz=tz, **filters)
        for (start, end), figures in zip(bounds, together, strict=True):
            expected = direct(start, end, tz, **filters)
            assert {k: figures[k] for k in FIGURES} == expected, (
                tz,
                start,
                end,
                filters,
                _diff(figures, expected),
            )
            rates = {name: rate(start=start, end=end, tz=tz, **filters) for name, rate in RATES.items()}
            assert {k: figures[k] for k in RATES} == rates, (tz, start, end, filters)


def _diff(figures, expected):
    """Which (figure, severity) stats differ, for a readable failure."""
    out = []
    for name, report in expected.items():
        got = figures[name]
        pairs = [("all", got.overall, report.overall)]
        pairs += [(s, got.by_severity[s], report.by_severity[s]) for s in report.by_severity]
        out += [(name, s, a, b) for s, a, b in pairs if a != b]
    return out


def test_the_histograms_hold_every_duration_of_the_rolled_up_days(years):
    counted = Case.objects.filter(first_resolved_at__lt=at(2025, 3, 31)).count()
    code = catalogue.TIME_TO_RESOLVE.code
    assert DurationValue.objects.filter(figure=code).count() == counted
    assert sum(DurationBucket.objects.filter(figure=code).values_list("count", flat=True)) == counted
    # Cases reopened and open now have no final resolution.
    final = catalogue.TIME_TO_FINAL_RESOLUTION.code
    assert DurationValue.objects.filter(figure=final).count() < counted


@pytest.mark.parametrize("filters", [{}, {"severity": "P2"}, {"severity": "P4"}])
def test_durations_over_years_from_the_histograms_equal_the_direct_ones(years, filters):
    assert_durations_equal_direct(**filters)
    whole = m.periods_metrics([SPANS[0][1][0]])[0]["time_to_resolve"].overall
    assert whole.count > 100


def test_team_and_tier_filters_read_durations_from_the_histograms(years, team):
    assert rollup.usable(team=team, tier="enterprise", severity="P2")
    assert_durations_equal_direct(team=team)
    assert_durations_equal_direct(tier="enterprise")
    assert_durations_equal_direct(team=team, tier="enterprise", severity="P2")
    assert_durations_equal_direct(tier="standard")  # no case of that tier: empty figures


def test_the_histograms_are_really_read(years):
    # Move every rolled-up value one second later behind the rollup's back: the figure follows.
    code = catalogue.TIME_TO_RESOLVE.code
    before = m.periods_metrics([SPANS[0][1][0]])[0]["time_to_resolve"].overall
    DurationValue.objects.filter(figure=code).update(value=0)
    after = m.periods_metrics([SPANS[0][1][0]])[0]["time_to_resolve"].overall
    assert after.median != before.median


def test_reopening_an_old_case_takes_its_final_resolution_off_its_day(years, agent):
    case = Case.objects.filter(status=Status.RESOLVED, last_resolved_at__lt=at(2024, 6, 1)).first()
    day = case.last_resolved_at.date()
    with time_machine.travel(NOW, tick=False):
        cases.transition(case, Status.REOPENED, actor=agent, now=NOW, reason="Back again.")
        assert day in set(RollupDirtyDay.objects.values_list("day", flat=True))
        assert_durations_equal_direct()
        rollup.refresh()
        assert not RollupDirtyDay.objects.exists()
        assert_durations_equal_direct()


def test_a_severity_change_of_an_old_case_moves_its_durations(years, agent):
    case = Case.objects.filter(severity="P2", first_resolved_at__lt=at(2024, 1, 1)).first()
    with time_machine.travel(NOW, tick=False):
        cases.update_case(case, actor=agent, now=NOW, severity="P4")
        assert_durations_equal_direct(severity="P4")
        rollup.refresh()
        assert_durations_equal_direct(severity="P4")
        assert_durations_equal_direct(severity="P2")


def test_a_whole_history_summary_takes_a_fixed_number_of_queries(years, django_assert_num_queries):
    # Rollup state and dirty days 2; per duration figure 3 (bucket counts, the edges' values, the
    # values of the buckets holding the ranks); the counted figures 9 (as in test_rollup.py, and
    # the history of the cases resolved or reopened in the edges, and their links).
    from django.db import connection

    setup = 3 if connection.vendor == "postgresql" else 0
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(23 + setup):
        m.periods_metrics([SPANS[0][1][0]], tz="UTC")


@pytest.mark.parametrize(
    ("offset", "stored", "extra", "complete", "wanted"),
    [
        # No extras: stored values from the offset are ranks offset, offset + 1, ...
        (3, [10, 11], [], False, {3: 10, 4: 11}),
        # Extras below the first stored value come before it; equal values tie.
        (0, [10, 12, 14], [9, 12], True, {0: 9, 1: 10, 2: 12, 3: 12, 4: 14}),
        # An incomplete read is valid up to its last stored value only.
        (2, [10, 12], [11, 30], False, {2: 10, 3: 11, 4: 12}),
    ],
)
def test_ranks_within_a_bucket_merge_the_stored_and_the_extra_values(offset, stored, extra, complete, wanted):
    ranked = histograms.ranked(offset, stored, extra, complete=complete)
    assert {k: v for k, v in ranked.items() if k in wanted} == wanted


def test_buckets_are_ordered_as_their_values():
    values = [-5, 0, 1, 2, 15, 16, 17, 31, 32, 10**6, 10**6 + 1, 2**40, 2**52]
    buckets = [histograms.bucket_of(v) for v in values]
    assert buckets == sorted(buckets)
    assert histograms.bucket_of(0) == histograms.bucket_of(-5) == 0


def test_refresh_days_recomputes_what_a_bulk_writer_changed_behind_the_services(years):
    # A write that records no event (as the history import's) changes an old case; refresh_days
    # brings those days' figures back from the rollup at once.
    case = Case.objects.filter(first_resolved_at__lt=at(2024, 1, 1)).first()
    day = case.first_resolved_at.date()
    Case.objects.filter(pk=case.pk).update(first_resolved_at=case.first_resolved_at - dt.timedelta(minutes=5))
    with time_machine.travel(NOW, tick=False):
        assert rollup.refresh_days([day]) >= 1
        assert not RollupDirtyDay.objects.exists()
        assert_durations_equal_direct()


def test_a_history_resolved_twice_without_a_reopen_counts_its_case_once(years):
    # Imported history may resolve a closed case again without a reopen (closed -> resolved): the
    # case's two resolutions of one period are still one resolved case, from the rollup too.
    case = Case.objects.filter(status=Status.RESOLVED, last_resolved_at__lt=at(2024, 6, 1)).first()
    again = case.last_resolved_at + dt.timedelta(days=2, hours=3)
    CaseEvent.objects.create(
        case=case,
        kind=EventKind.STATUS_CHANGED,
        field="status",
        old_value=Status.CLOSED.value,
        new_value=Status.RESOLVED.value,
        created_at=again,
        imported=True,
    )
    first = case.last_resolved_at
    windows = [
        # Both resolutions on rolled-up days; the first in the period's first (partial) day, read
        # from the source, the second on a rolled-up day; both in partial days at the two ends.
        [(first - dt.timedelta(days=1), again + dt.timedelta(days=1))],
        [(first - dt.timedelta(minutes=1), again + dt.timedelta(days=2))],
        [(first - dt.timedelta(minutes=1), again + dt.timedelta(minutes=1))],
    ]
    with time_machine.travel(NOW, tick=False):
        rollup.touch_span(case.last_resolved_at, again)  # as the history import marks its days
        rollup.refresh()
        for bounds in (*windows, SPANS[0][1]):
            figures = m.periods_metrics(bounds)[0]
            start, end = bounds[0]
            assert figures["reopen_rate"] == m.reopen_rate(start=start, end=end)
            assert figures["knowledge_reuse"] == m.knowledge_reuse(start=start, end=end)
        assert figures["reopen_rate"].denominator > 1


@pytest.mark.parametrize(
    "value", [-5, 0, 1, 2, 15, 16, 17, 31, 32, 33, 10**6 - 1, 10**6, 2**40 - 1, 2**40, 2**52, 2**60]
)
def test_the_bucket_the_database_computes_is_the_one_python_computes(value):
    from django.db import connection

    with connection.cursor() as cursor:
        bucket = rollup.bucket_sql("v", connection.vendor)
        cursor.execute(f"SELECT {bucket} FROM (SELECT CAST(%s AS BIGINT) AS v) s", [value])  # noqa: S608
        assert cursor.fetchone()[0] == histograms.bucket_of(value)
