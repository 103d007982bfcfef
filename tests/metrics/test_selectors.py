"""Each KPI against numbers worked out by hand for the data set in conftest.py (read its docstring).

Durations are in seconds. Percentiles interpolate linearly between ranks, like percentile_cont:
for sorted values v0..v(n-1), p90 = v(floor(k)) + frac(k) * (v(floor(k)+1) - v(floor(k))), k = 0.9 (n-1).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection

from metrics import selectors as m
from tests.factories import at
from tests.metrics.conftest import BERLIN, PERIOD, UTC_WEEK

pytestmark = pytest.mark.django_db
# On PostgreSQL the figures run in a transaction with a larger work_mem: SAVEPOINT, SET LOCAL, RELEASE.
SETUP = 3 if connection.vendor == "postgresql" else 0


def stats(report_part):
    return (report_part.count, report_part.median, report_part.p90, report_part.mean)


def test_frt_counts_cases_first_answered_in_the_berlin_week(dataset):
    report = m.first_response_time(**PERIOD)
    # A 600 s (10:00 -> 10:10), C 1200 s (23:30 -> 23:50 UTC, Monday 00:50 in Berlin).
    # B was answered on 03-01 and D on 03-10 00:40 Berlin time: outside.
    # median (600+1200)/2 = 900; p90 600 + 0.9 * 600 = 1140; mean 900.
    assert stats(report.overall) == (2, 900.0, 1140.0, 900.0)
    assert stats(report.by_severity["P1"]) == (2, 900.0, 1140.0, 900.0)
    assert stats(report.by_severity["P2"]) == (0, None, None, None)


def test_frt_in_utc_moves_the_period_boundary(dataset):
    report = m.first_response_time(**UTC_WEEK)
    # In UTC, C (answered Sunday 23:50 UTC) is out and D (Sunday 03-09 23:40 UTC) is in: A 600, D 600.
    assert stats(report.overall) == (2, 600.0, 600.0, 600.0)
    assert stats(report.by_severity["P1"]) == (1, 600.0, 600.0, 600.0)
    assert stats(report.by_severity["P2"]) == (1, 600.0, 600.0, 600.0)


def test_frt_percentiles_over_four_cases(dataset):
    report = m.first_response_time(start=at(2025, 2, 1), end=at(2025, 4, 1), tz="UTC")
    # Sorted: 600 (A), 600 (D), 1200 (C), 7200 (B). median (600+1200)/2 = 900;
    # p90: k = 2.7 -> 1200 + 0.7 * 6000 = 5400; mean 9600 / 4 = 2400.
    assert stats(report.overall) == (4, 900.0, 5400.0, 2400.0)
    # P2: D 600, B 7200 -> median 3900, p90 600 + 0.9 * 6600 = 6540, mean 3900.
    assert stats(report.by_severity["P2"]) == (2, 3900.0, 6540.0, 3900.0)


def test_time_to_triage(dataset):
    report = m.time_to_triage(**PERIOD)
    # A 1200 s (10:00 -> 10:20), C 1800 s (23:30 -> 00:00); B and D were triaged outside the week.
    # median 1500; p90 1200 + 0.9 * 600 = 1740; mean 1500.
    assert stats(report.overall) == (2, 1500.0, 1740.0, 1500.0)


def test_mttr_uses_the_first_resolution_and_counts_cases_resolved_in_the_period(dataset):
    report = m.time_to_resolve(**PERIOD)
    # A: first resolution 03-03 12:00, 7200 s (its two later resolutions after reopening don't count).
    # B: created 03-01 (previous week), first resolved 03-03 12:00: 172800 s, calendar time, the
    #    24 h it waited on the customer included.
    # median (7200 + 172800) / 2 = 90000; p90 7200 + 0.9 * 165600 = 156240; mean 90000.
    assert stats(report.overall) == (2, 90000.0, 156240.0, 90000.0)
    assert stats(report.by_severity["P1"]) == (1, 7200.0, 7200.0, 7200.0)
    assert stats(report.by_severity["P2"]) == (1, 172800.0, 172800.0, 172800.0)


def test_mttr_of_the_week_the_case_was_created_does_not_count_it(dataset):
    report = m.time_to_resolve(start=at(2025, 2, 24, tz=BERLIN), end=at(2025, 3, 3, tz=BERLIN), tz=BERLIN)
    # B was created in this week but first resolved in the next one.
    assert report.overall.count == 0


def test_sla_compliance_per_target_and_severity(dataset):
    result = m.sla_compliance(**PERIOD)
    fr = result["first_response"]
    # A met at 10:10 (due 10:15); C met 23:50 UTC but was due 23:45: met late = breach.
    assert (fr["P1"].numerator, fr["P1"].denominator) == (1, 2)
    assert fr["all"].rate == 0.5
    # B's late first response was breached on 03-01, before the period.
    assert fr["P2"].denominator == 0
    # Triage: A at 10:20 (due 10:30), C at 00:00 (due 00:00, on time).
    assert (result["triage"]["all"].numerator, result["triage"]["all"].denominator) == (2, 2)
    # Resolution: A's three runs all met (run 2 due 15:00 after 2 h used, run 3 due 14:00 after 3 h);
    # B met at 03-03 12:00, exactly its due time moved 24 h by the pause.
    res = result["resolution"]
    assert (res["P1"].numerator, res["P1"].denominator) == (3, 3)
    assert (res["P2"].numerator, res["P2"].denominator) == (1, 1)
    # Cadence: A run 1 and C run 1 met; A's runs 2-4 were cancelled by resolving: excluded.
    cad = result["update_cadence"]
    assert (cad["all"].numerator, cad["all"].denominator) == (2, 2)


def test_sla_compliance_in_utc(dataset):
    result = m.sla_compliance(**UTC_WEEK)
    fr = result["first_response"]["all"]
    # A met, D met 03-09 23:40 UTC; C's breach (03-02 23:50 UTC) is in the previous UTC week.
    assert (fr.numerator, fr.denominator) == (2, 2)


def test_update_cadence_adherence_counts_p1_and_p2(dataset):
    ratio = m.update_cadence_adherence(**PERIOD)
    assert (ratio.numerator, ratio.denominator) == (2, 2)
    # The previous Berlin week: B's run 1 met exactly at its due 14:00.
    prev = m.update_cadence_adherence(start=at(2025, 2, 24, tz=BERLIN), end=at(2025, 3, 3, tz=BERLIN))
    assert (prev.numerator, prev.denominator) == (1, 1)
    assert m.update_cadence_adherence(**PERIOD, severity="P2").denominator == 0


def test_reopen_rate_counts_a_case_reopened_twice_once(dataset):
    ratio = m.reopen_rate(**PERIOD)
    # Reopened: A (twice, counted once). Resolved in the period: A (three times) and B.
    assert (ratio.numerator, ratio.denominator) == (1, 2)
    assert ratio.rate == 0.5


def test_knowledge_reuse(dataset):
    ratio = m.knowledge_reuse(**PERIOD)
    # Resolved in the period: A (linked to an article) and B (not).
    assert (ratio.numerator, ratio.denominator) == (1, 2)


def test_escalation_rate(dataset):
    ratio = m.escalation_rate(**PERIOD)
    # Created in the Berlin week: A and C (D is created at 00:30 on the next Monday in Berlin).
    # Of those, C was escalated. The rate is a share of one cohort, so it never exceeds 1.
    assert (ratio.numerator, ratio.denominator) == (1, 2)
    utc = m.escalation_rate(**UTC_WEEK)
    # UTC week: created A and D, of which D was escalated (C was created the Sunday before in UTC).
    assert (utc.numerator, utc.denominator) == (1, 2)


def test_engineering_bounce_rate(dataset):
    ratio = m.engineering_bounce_rate(**PERIOD)
    # Submitted in the Berlin week: C's escalation, which went to needs_info.
    assert (ratio.numerator, ratio.denominator) == (1, 1)
    utc = m.engineering_bounce_rate(**UTC_WEEK)
    # UTC week: C's (bounced) and D's (not).
    assert (utc.numerator, utc.denominator) == (1, 2)


def test_backlog_aging_by_bucket_and_severity(dataset):
    aging = m.backlog_aging(now=at(2025, 3, 10, 12, 0))
    # Open: C (7 d 12.5 h old, P1), D (12.5 h, P2), E (37 d, P3). A and B are resolved.
    assert aging["0-1d"] == {"P1": 0, "P2": 1, "P3": 0, "P4": 0}
    assert aging["7-21d"] == {"P1": 1, "P2": 0, "P3": 0, "P4": 0}
    assert aging[">21d"] == {"P1": 0, "P2": 0, "P3": 1, "P4": 0}
    assert sum(aging["1-3d"].values()) + sum(aging["3-7d"].values()) == 0


def test_filters(dataset, team, agent):
    # Team "Tier 2" owns A and C: the same two first responses.
    assert m.first_response_time(**PERIOD, team=team).overall.count == 2
    # Only A is assigned to alice.
    assert stats(m.first_response_time(**PERIOD, assignee=agent).overall) == (1, 600.0, 600.0, 600.0)
    assert stats(m.time_to_resolve(**PERIOD, severity="P2").overall) == (1, 172800.0, 172800.0, 172800.0)
    assert m.time_to_resolve(**PERIOD, tier="standard").overall.count == 0
    assert m.reopen_rate(**PERIOD, severity="P2").numerator == 0
    assert m.backlog_aging(now=at(2025, 3, 10, 12, 0), team=team)["7-21d"]["P1"] == 1
    assert sum(sum(v.values()) for v in m.backlog_aging(now=at(2025, 3, 10, 12, 0), team=team).values()) == 1


def test_weekly_trends_in_berlin(dataset):
    end = at(2025, 3, 9, 12, 0, tz=BERLIN)
    frt = m.trend(m.first_response_time, end=end, tz=BERLIN, weeks=2)
    assert [week for week, _ in frt] == [at(2025, 2, 24, tz=BERLIN), at(2025, 3, 3, tz=BERLIN)]
    # Week of 02-24: B (7200 s). Week of 03-03: A and C, median 900.
    assert stats(frt[0][1].overall) == (1, 7200.0, 7200.0, 7200.0)
    assert frt[1][1].overall.median == 900.0
    volume = m.volume_trend(end=end, tz=BERLIN, weeks=2)
    # Created: B in the first week; A and C in the second. First resolved: A and B in the second.
    assert [(v["created"], v["resolved"]) for v in volume] == [(1, 0), (2, 2)]


def test_all_headline_kpis_take_a_fixed_number_of_queries(dataset, django_assert_num_queries):
    # Nothing is rolled up yet (see test_rollup.py): the rollup state and 9 figure queries (the
    # reopen rate and knowledge reuse together).
    with django_assert_num_queries(10 + SETUP):
        kpis = m.period_metrics(**PERIOD)
    assert kpis["reopen_rate"].rate == 0.5


WEEKS = [
    (at(2025, 2, 24, tz=BERLIN), at(2025, 3, 3, tz=BERLIN)),
    (at(2025, 3, 3, tz=BERLIN), at(2025, 3, 10, tz=BERLIN)),
    (at(2025, 3, 10, tz=BERLIN), at(2025, 3, 17, tz=BERLIN)),
]


@pytest.mark.parametrize("filters", [{}, {"severity": "P2"}])
def test_periods_computed_together_equal_each_period_on_its_own(dataset, django_assert_num_queries, filters):
    # The data set's cases straddle these weeks (B is created in the first and resolved in the
    # second, D is answered in the third 40 minutes after the second ends): every figure must land
    # in the same period as when that period is computed alone.
    alone = [m.period_metrics(start=s, end=e, tz=BERLIN, **filters) for s, e in WEEKS]
    # Nothing is rolled up: the rollup's state 1, each duration 1, compliance, escalations, bounces
    # and CSAT 1 each, reopen rate and knowledge reuse 1 (counted straight from the source).
    with django_assert_num_queries(10 + SETUP):
        together = m.periods_metrics(reversed(WEEKS), tz=BERLIN, **filters)
    assert together == alone[::-1]
    assert together[1]["time_to_resolve"].overall.count == (2 if not filters else 1)


def test_a_gap_between_periods_counts_for_neither(dataset):
    first, _, third = WEEKS
    together = m.periods_metrics([first, third], tz=BERLIN)
    assert together == [m.period_metrics(start=s, end=e, tz=BERLIN) for s, e in (first, third)]
    # A and C (answered in the middle week) are in neither.
    assert (
        together[0]["first_response_time"].overall.count + together[1]["first_response_time"].overall.count
        == m.first_response_time(start=first[0], end=third[1]).overall.count - 2
    )


def test_overlapping_periods_are_refused(db):
    with pytest.raises(ValueError):
        m.periods_metrics([WEEKS[0], (WEEKS[0][0], WEEKS[1][1])])


@pytest.mark.parametrize(
    "period",
    [
        {"start": dt.datetime(2025, 3, 3), "end": at(2025, 3, 10)},  # noqa: DTZ001 - naive on purpose
        {"start": at(2025, 3, 10), "end": at(2025, 3, 3)},
    ],
)
def test_a_naive_or_reversed_period_is_refused(db, period):
    with pytest.raises(ValueError):
        m.first_response_time(**period)


def test_an_unknown_filter_is_refused(db):
    with pytest.raises(TypeError):
        m.reopen_rate(**PERIOD, colour="red")
