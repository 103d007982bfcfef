"""The daily rollup gives the same figures as the direct queries, before and after changes.

``periods_metrics`` adds up the rollup for whole, clean, rolled-up UTC days and reads the rest from
the source; the single-metric functions (``sla_compliance``, ``escalation_rate``, ...) always read
the source. Every test compares the two on the data set of conftest.py (March 2025), with the clock
moved to April 2025 so that March is rolled up.
"""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection
from django.db.models.signals import post_init

from cases import organisations
from cases import services as cases
from cases.models import Case, Organisation, Status
from escalations import services as escalations
from escalations.models import EngineeringTeam
from metrics import rollup
from metrics import selectors as m
from metrics.figures import durations
from metrics.models import DailyRollup, RollupDirtyDay, RollupState, SurveyResponse
from metrics.surveys import answer_survey
from sla import services as sla
from tests.escalations.conftest import complete_package
from tests.factories import TeamFactory, at
from tests.metrics.conftest import BERLIN
from tests.metrics.direct import COUNTED, direct

pytestmark = pytest.mark.django_db
# On PostgreSQL the figures run in a transaction with a larger work_mem: SAVEPOINT, SET LOCAL, RELEASE.
SETUP = 3 if connection.vendor == "postgresql" else 0

NOW = at(2025, 4, 1, 12, 0)
PERIODS = [
    # A Berlin week and the one before it: starts and ends at 23:00 UTC, so each has edges.
    ("Europe/Berlin", [(at(2025, 3, 3, tz=BERLIN), at(2025, 3, 10, tz=BERLIN))]),
    ("Europe/Berlin", [(at(2025, 2, 24, tz=BERLIN), at(2025, 3, 3, tz=BERLIN))]),
    # UTC weeks: whole days only.
    ("UTC", [(at(2025, 3, 3), at(2025, 3, 10)), (at(2025, 2, 24), at(2025, 3, 3))]),
    # Half-hour offset, a long span, and a period reaching into the live (never rolled-up) days.
    ("Asia/Kolkata", [(at(2025, 3, 1, tz="Asia/Kolkata"), at(2025, 3, 31, tz="Asia/Kolkata"))]),
    ("UTC", [(at(2025, 1, 1), at(2025, 4, 2))]),
]


def assert_rollup_equals_direct(**filters):
    for tz, bounds in PERIODS:
        together = m.periods_metrics(bounds, tz=tz, **filters)
        for (start, end), figures in zip(bounds, together, strict=True):
            expected = direct(start, end, tz, **filters)
            assert {k: figures[k] for k in COUNTED} == expected, (tz, start, end, filters)


@pytest.fixture
def rolled(dataset):
    """The data set with a survey answered, rolled up as of April 2025."""
    survey = SurveyResponse.objects.get(case=dataset.b)
    answer_survey(survey, rating=4, comment="Fine", now=at(2025, 3, 4, 9, 0))
    with time_machine.travel(NOW, tick=False):
        assert rollup.refresh() > 0
        yield dataset


def test_the_rollup_holds_the_days_and_the_figures_equal_the_direct_queries(rolled, team):
    assert RollupState.objects.get().through == dt.date(2025, 3, 31)
    assert not RollupDirtyDay.objects.exists()
    # A's and C's clocks completed on 03-03; C was created 03-02 (UTC) and escalated.
    row = DailyRollup.objects.get(day=dt.date(2025, 3, 3), severity="P1")
    assert (row.first_response_met, row.first_response_total) == (1, 1)
    assert DailyRollup.objects.get(day=dt.date(2025, 3, 2), severity="P1").escalated == 1
    days, edges = rollup.split([(at(2025, 3, 3, tz=BERLIN), at(2025, 3, 10, tz=BERLIN))])
    # 23:00-24:00 UTC on 03-02 and 03-09 come from the source; 03-03..03-09 from the rollup.
    assert days == [(0, dt.date(2025, 3, 3), dt.date(2025, 3, 9))]
    assert edges == [
        (0, at(2025, 3, 2, 23, 0), at(2025, 3, 3)),
        (0, at(2025, 3, 9), at(2025, 3, 9, 23, 0)),
    ]
    for filters in ({}, {"severity": "P1"}, {"severity": "P2"}, {"team": team}, {"tier": "enterprise"}):
        assert_rollup_equals_direct(**filters)
    assert_rollup_equals_direct(tier="standard")


def test_the_rollup_is_really_read(rolled):
    # Change a rolled-up row behind the rollup's back: the figure follows the rollup, proving the
    # figures above came from it (and that a stale rollup would show).
    DailyRollup.objects.filter(day=dt.date(2025, 3, 2), severity="P1").update(created=10)
    figures = m.periods_metrics([(at(2025, 3, 2), at(2025, 3, 3))], tz="UTC")[0]
    assert figures["escalation_rate"].denominator == 10


def test_a_severity_change_moves_old_rows_and_marks_their_days(rolled, agent):
    with time_machine.travel(NOW, tick=False):
        cases.update_case(rolled.c, actor=agent, now=NOW, severity="P2")
        assert RollupDirtyDay.objects.filter(day=dt.date(2025, 3, 3)).exists()
        assert_rollup_equals_direct()
        assert_rollup_equals_direct(severity="P2")
        rollup.refresh()
        assert not RollupDirtyDay.objects.exists()
        assert_rollup_equals_direct(severity="P1")
        assert_rollup_equals_direct(severity="P2")


def test_a_team_change_and_a_bounce_on_an_old_escalation(rolled, agent, engineer):
    from escalations import services as escalations
    from escalations.models import Escalation

    other = TeamFactory(name="Tier 3", slug="tier-3")
    with time_machine.travel(NOW, tick=False):
        cases.update_case(rolled.a, actor=agent, now=NOW, team=other)
        # D's escalation (submitted 03-09) bounces now: the bounce rate of 03-09 changes.
        esc = Escalation.objects.get(case=rolled.d)
        escalations.request_info(esc, questions="Logs?", actor=engineer, now=NOW)
        for filters in ({}, {"team": other}):
            assert_rollup_equals_direct(**filters)
        rollup.refresh()
        for filters in ({}, {"team": other}):
            assert_rollup_equals_direct(**filters)
        assert (
            m.periods_metrics([(at(2025, 3, 9), at(2025, 3, 10))])[0]["engineering_bounce_rate"].rate == 1.0
        )


def test_an_organisation_tier_change_moves_all_its_cases(rolled, manager):
    organisation = Organisation.objects.get(pk=rolled.a.organisation_id)
    with time_machine.travel(NOW, tick=False):
        organisations.update_organisation(organisation, tier="standard", actor=manager, now=NOW)
        assert RollupDirtyDay.objects.filter(day=dt.date(2025, 3, 3)).exists()
        assert_rollup_equals_direct(tier="standard")
        assert_rollup_equals_direct(tier="enterprise")
        rollup.refresh()
        assert_rollup_equals_direct(tier="standard")
        assert (
            m.periods_metrics([(at(2025, 3, 1), at(2025, 3, 31))], tier="enterprise")[0][
                "escalation_rate"
            ].denominator
            == 0
        )


def test_a_case_reopened_twice_counts_once_from_the_rollup(rolled):
    # A: resolved 03-03, 03-04 and 03-05 (reopened in between): three events, one case.
    week = m.periods_metrics([(at(2025, 3, 3), at(2025, 3, 10))], tz="UTC")[0]
    assert (week["reopen_rate"].numerator, week["reopen_rate"].denominator) == (1, 2)
    assert (week["knowledge_reuse"].numerator, week["knowledge_reuse"].denominator) == (1, 2)
    row = DailyRollup.objects.get(day=dt.date(2025, 3, 4), severity="P1")
    assert (row.reopens, row.resolutions, row.linked_resolutions) == (1, 1, 1)


def test_linking_an_article_to_an_old_case_marks_its_resolution_days(rolled, agent):
    from knowledge import services as knowledge

    with time_machine.travel(NOW, tick=False):
        article = knowledge.create_draft(title="Waiting for logs", actor=agent, now=NOW)
        knowledge.link_to_case(article, rolled.b, actor=agent, now=NOW)
        assert RollupDirtyDay.objects.filter(day=dt.date(2025, 3, 3)).exists()
        assert_rollup_equals_direct()
        rollup.refresh()
        assert_rollup_equals_direct()
        week = m.periods_metrics([(at(2025, 3, 3), at(2025, 3, 10))], tz="UTC")[0]
        assert week["knowledge_reuse"].rate == 1.0


def test_organisation_and_assignee_filters_read_the_source(rolled, agent):
    assert not rollup.usable(assignee=agent)
    assert_rollup_equals_direct(assignee=agent)
    assert_rollup_equals_direct(organisation=rolled.a.organisation_id)


def test_recent_days_are_never_rolled_up_and_need_no_marks(rolled, agent):
    # Writes of "now" land in the live window (today and yesterday, UTC): no marks.
    with time_machine.travel(NOW, tick=False):
        assert rollup._live_from() == dt.date(2025, 3, 31)
        cases.create_case(
            title="New",
            organisation=rolled.a.organisation,
            requester=rolled.a.requester,
            severity="P1",
            actor=agent,
            now=NOW,
        )
        assert not RollupDirtyDay.objects.exists()
        assert_rollup_equals_direct()
    # A day later the refresh rolls 03-31 up; the next day's figures still agree.
    with time_machine.travel(NOW + dt.timedelta(days=2), tick=False):
        rollup.refresh()
        assert RollupState.objects.get().through == dt.date(2025, 4, 2)
        assert_rollup_equals_direct()


def test_rebuild_and_a_second_refresh_change_nothing(rolled):
    before = sorted(
        DailyRollup.objects.values_list("day", "severity", "team_id", "tier", "created", "escalated")
    )
    with time_machine.travel(NOW, tick=False):
        assert rollup.refresh() == 0
        rollup.rebuild()
    after = sorted(
        DailyRollup.objects.values_list("day", "severity", "team_id", "tier", "created", "escalated")
    )
    assert after == before


def test_headline_kpis_with_the_rollup_take_a_fixed_number_of_queries(rolled, django_assert_num_queries):
    # Rollup state + dirty days 2; each of the 4 durations 3 (bucket counts, the edges' values from
    # the source, the values of the buckets holding the ranks); rollup sums 1, the edges of the
    # Berlin weeks from the source (compliance, escalations, bounces, CSAT, reopens and
    # resolutions) 5 and the rolled-up repeats 1. The edges hold no reopen or resolution here, so
    # no case's history is read for repeats touching them (2 queries more when they do).
    with time_machine.travel(NOW, tick=False), django_assert_num_queries(21 + SETUP):
        m.periods_metrics(PERIODS[0][1] + PERIODS[1][1], tz=BERLIN)


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="figures use several connections on PostgreSQL only"
)
@pytest.mark.django_db(transaction=True)
def test_figures_on_several_connections_equal_those_in_order(dataset, settings, monkeypatch):
    # Committed data (a transactional test): the request's figures run on two connections at once.
    threads = []
    figure_durations = durations.figure_durations

    def spy(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return figure_durations(*args, **kwargs)

    monkeypatch.setattr(durations, "figure_durations", spy)
    bounds = [PERIODS[0][1][0], PERIODS[1][1][0]]
    settings.METRICS_QUERY_THREADS = 2
    together = m.periods_metrics(bounds, tz=BERLIN)
    assert len(threads) == 4
    assert all(name.startswith("metrics") for name in threads)
    settings.METRICS_QUERY_THREADS = 1
    assert m.periods_metrics(bounds, tz=BERLIN) == together
    assert threads[4:] == [threading.current_thread().name] * 4
    assert together[0]["time_to_resolve"].overall.count == 2


def test_the_command_refreshes_and_rebuilds(dataset):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    with time_machine.travel(NOW, tick=False):
        call_command("refresh_metrics_rollup", stdout=out)
        assert RollupState.objects.get().through == dt.date(2025, 3, 31)
        assert "days recomputed" in out.getvalue()
        DailyRollup.objects.all().delete()
        call_command("refresh_metrics_rollup", "--rebuild", stdout=out)
        assert DailyRollup.objects.filter(day=dt.date(2025, 3, 3)).exists()
        assert_rollup_equals_direct()


@pytest.mark.parametrize("tz", [BERLIN, "UTC"])
def test_weekly_trends_from_the_rollup_equal_each_week_from_the_source(rolled, tz):
    with time_machine.travel(NOW, tick=False):
        series = m.trends(end=at(2025, 3, 12), tz=tz, weeks=4)
    assert sum(r.denominator for r in series["sla_compliance"]) > 0
    for week, compliance, reopen in zip(
        series["weeks"], series["sla_compliance"], series["reopen_rate"], strict=True
    ):
        period = {"start": week, "end": week + dt.timedelta(weeks=1), "tz": tz}
        cells = [c["all"] for c in m.sla_compliance(**period).values()]
        assert (compliance.numerator, compliance.denominator) == (
            sum(c.numerator for c in cells),
            sum(c.denominator for c in cells),
        )
        assert reopen == m.reopen_rate(**period)


def test_imported_history_is_rolled_up_before_the_import_reports_done_and_the_figures_follow(rolled):
    from pathlib import Path

    from imports import services as imports
    from imports.mapping import default_mapping_text

    csv = Path(__file__).resolve().parent.parent / "imports" / "data" / "servicenow.csv"
    year = [(at(2023, 1, 1), at(2024, 1, 1)), (at(2023, 3, 1, tz=BERLIN), at(2023, 4, 1, tz=BERLIN))]
    with time_machine.travel(NOW, tick=False):
        before = m.periods_metrics(year[:1])[0]["sla_compliance"]
        job = imports.create_job(
            format="servicenow-csv",
            mapping_text=default_mapping_text("servicenow-csv"),
            mapping_name="test",
            now=NOW,
            path=str(csv),
        )
        imports.run_import(job, now=NOW)
        # The import refreshed the days it touched before it reported done: none is left dirty.
        assert not RollupDirtyDay.objects.filter(day=dt.date(2023, 3, 1)).exists()
        for phase in ("as the import left it", "refreshed again"):
            for bounds in (year[:1], year[1:]):
                figures = m.periods_metrics(bounds, tz=BERLIN)[0]
                start, end = bounds[0]
                expected = direct(start, end, BERLIN)
                assert {k: figures[k] for k in COUNTED} == expected, phase
            rollup.refresh()
        after = m.periods_metrics(year[:1])[0]
        assert after["sla_compliance"] != before
        assert after["reopen_rate"].denominator > 0


# --- fed by the domain's events ---------------------------------------------------------------------
# Each change below goes through a service; some write with update() (the sweep's claim of a breach,
# the auto-close), which no model signal sees.


def _dirty_days() -> set[dt.date]:
    return set(RollupDirtyDay.objects.values_list("day", flat=True))


def test_loading_cases_and_organisations_runs_no_metrics_code():
    # The rollup used to remember each loaded case's severity, team and organisation (and each
    # organisation's tier) in a post_init handler: work on every row of every queue page.
    assert not post_init.has_listeners(Case)
    assert not post_init.has_listeners(Organisation)


def test_a_breach_the_sweep_records_on_a_rolled_up_day_marks_that_day(rolled):
    # The sweep claims a breach with a conditional UPDATE (no post_save). A sweep that runs for an
    # instant inside the rolled-up days (its ``now`` is passed in) changes that day's compliance.
    late = at(2025, 3, 20, 12, 0)
    with time_machine.travel(NOW, tick=False):
        before = m.periods_metrics([(at(2025, 3, 1), at(2025, 4, 1))], tz="UTC")[0]["sla_compliance"]
        assert sla.record_due_warnings_and_breaches(now=late) > 0
        assert dt.date(2025, 3, 20) in _dirty_days()
        assert_rollup_equals_direct()
        rollup.refresh()
        assert not RollupDirtyDay.objects.exists()
        assert_rollup_equals_direct()
        after = m.periods_metrics([(at(2025, 3, 1), at(2025, 4, 1))], tz="UTC")[0]["sla_compliance"]
    assert after != before


def test_auto_closing_old_resolved_cases_keeps_the_figures(rolled):
    with time_machine.travel(NOW, tick=False):
        assert cases.auto_close_resolved(now=NOW) == 2  # A and B, resolved in March
        assert Case.objects.get(pk=rolled.a.pk).status == Status.CLOSED
        assert_rollup_equals_direct()
        rollup.refresh()
        assert_rollup_equals_direct()


def test_escalating_an_old_case_now_marks_its_creation_day(rolled, agent):
    # E was created on 2025-02-01: its escalation counts in February's escalation rate (by cohort).
    february = [(at(2025, 2, 1), at(2025, 3, 1))]
    team = EngineeringTeam.objects.get(slug="payments")
    with time_machine.travel(NOW, tick=False):
        case = cases.transition(rolled.e, Status.TRIAGED, actor=agent, now=NOW, severity="P3", assignee=agent)
        draft = escalations.create_draft(case=case, team=team, actor=agent, now=NOW, **complete_package())
        escalations.submit(draft, actor=agent, now=NOW)
        assert dt.date(2025, 2, 1) in _dirty_days()
        assert_rollup_equals_direct()
        rollup.refresh()
        assert_rollup_equals_direct()
        assert m.periods_metrics(february, tz="UTC")[0]["escalation_rate"].numerator == 1


def test_a_severity_change_of_a_recent_case_costs_no_mark(rolled, agent):
    # Everything a case is counted by happens after its creation: a case of the live window (today
    # and yesterday, never rolled up) has nothing rolled up to mark.
    with time_machine.travel(NOW, tick=False):
        case = cases.create_case(
            title="New",
            organisation=rolled.a.organisation,
            requester=rolled.a.requester,
            severity="P1",
            actor=agent,
            now=NOW - dt.timedelta(hours=20),
        )
        cases.update_case(case, actor=agent, now=NOW, severity="P3")
        assert not RollupDirtyDay.objects.exists()
        assert_rollup_equals_direct()
