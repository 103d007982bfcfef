"""How each case event moves the clocks (sla.services.on_case_event, through the case services)."""

from __future__ import annotations

import datetime as dt

import pytest

from cases import services as case_services
from cases.models import EventKind
from sla import services
from sla.models import ClockState, SlaClock, SlaPolicy, Target
from tests import factories
from tests.factories import at

FR, TRIAGE, CADENCE, RESOLUTION = (
    Target.FIRST_RESPONSE,
    Target.TRIAGE,
    Target.UPDATE_CADENCE,
    Target.RESOLUTION,
)
T0 = at(2026, 3, 4, 10, 0)  # a Wednesday, 10:00 UTC
MIN = dt.timedelta(minutes=1)


def clocks(case) -> dict[tuple[str, int], SlaClock]:
    return {(c.target, c.run): c for c in SlaClock.objects.filter(case=case)}


def clk(case, target: str, run: int = 1) -> SlaClock:
    return SlaClock.objects.get(case=case, target=target, run=run)


@pytest.fixture
def p2(organisation, contact, agent):
    """An enterprise P2 (seeded policy: 24x7, first response 1 h, triage 2 h, updates every 2 h,
    resolution 24 h) created at T0, assigned to alice."""
    return case_services.create_case(
        title="Checkout fails",
        organisation=organisation,
        requester=contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=T0,
    )


def _in_progress(case, agent, now=T0 + 5 * MIN):
    case = case_services.transition(case, "triaged", severity=case.severity, actor=agent, now=now)
    return case_services.transition(case, "in_progress", actor=agent, now=now)


def test_creating_a_case_starts_every_target_of_its_policy(p2):
    assert {key: (c.state, c.started_at, c.warn_at, c.due_at) for key, c in clocks(p2).items()} == {
        (FR, 1): (ClockState.RUNNING, T0, T0 + 45 * MIN, T0 + 60 * MIN),
        (TRIAGE, 1): (ClockState.RUNNING, T0, T0 + 90 * MIN, T0 + 120 * MIN),
        (CADENCE, 1): (ClockState.RUNNING, T0, T0 + 90 * MIN, T0 + 120 * MIN),
        (RESOLUTION, 1): (ClockState.RUNNING, T0, T0 + 18 * 60 * MIN, T0 + 24 * 60 * MIN),
    }
    fr = clk(p2, FR)
    assert (fr.target_minutes, fr.business_time, fr.warning_ratio) == (60, False, 0.75)


def test_a_target_the_policy_leaves_empty_gets_no_clock(organisation, contact, agent):
    # Seeded enterprise P4 has no update cadence.
    case = case_services.create_case(
        title="How do I export?",
        organisation=organisation,
        requester=contact,
        severity="P4",
        actor=agent,
        now=T0,
    )
    assert set(clocks(case)) == {(FR, 1), (TRIAGE, 1), (RESOLUTION, 1)}


def test_without_a_policy_a_case_has_no_clocks(organisation, contact, agent):
    SlaPolicy.objects.filter(tier="enterprise", severity="P3").delete()
    case = case_services.create_case(
        title="Typo",
        organisation=organisation,
        requester=contact,
        severity="P3",
        assignee=agent,
        actor=agent,
        now=T0,
    )
    assert clocks(case) == {}
    _in_progress(case, agent)  # and the other reactions cope with a case without clocks
    case_services.add_public_reply(case, body="Fixed", actor=agent, now=T0 + MIN)


def test_business_time_counts_the_organisations_calendar(globex, globex_contact, business_p2, agent):
    friday_1630 = at(2026, 3, 6, 16, 30, tz="Europe/Berlin")
    case = case_services.create_case(
        title="Slow",
        organisation=globex,
        requester=globex_contact,
        severity="P2",
        actor=agent,
        now=friday_1630,
    )
    # 30 minutes on Friday, 30 on Monday morning.
    assert clk(case, FR).due_at == at(2026, 3, 9, 9, 30, tz="Europe/Berlin")


def test_an_organisation_without_a_calendar_counts_the_default_one(agent):
    org = factories.OrganisationFactory(name="Initech", tier="standard", time_zone="America/Chicago")
    contact = factories.ContactFactory(organisation=org)
    # Seeded: standard P1, business hours, first response 1 h; default calendar Mon-Fri 09-17 UTC.
    case = case_services.create_case(
        title="Down",
        organisation=org,
        requester=contact,
        severity="P1",
        actor=agent,
        now=at(2026, 3, 6, 16, 45),
    )
    assert clk(case, FR).due_at == at(2026, 3, 9, 9, 45)


def test_a_staff_reply_meets_the_first_response_and_starts_the_next_update(p2, agent):
    case_services.add_public_reply(p2, body="On it", actor=agent, now=T0 + 20 * MIN)
    assert (clk(p2, FR).state, clk(p2, FR).met_at) == (ClockState.MET, T0 + 20 * MIN)
    assert (clk(p2, CADENCE, 1).state, clk(p2, CADENCE, 1).met_at) == (ClockState.MET, T0 + 20 * MIN)
    run2 = clk(p2, CADENCE, 2)
    assert (run2.state, run2.started_at, run2.due_at) == (ClockState.RUNNING, T0 + 20 * MIN, T0 + 140 * MIN)

    case_services.add_public_reply(p2, body="Still on it", actor=agent, now=T0 + 60 * MIN)
    assert clk(p2, FR).met_at == T0 + 20 * MIN  # met once, not moved by later replies
    assert clk(p2, CADENCE, 2).state == ClockState.MET
    assert clk(p2, CADENCE, 3).due_at == T0 + 180 * MIN
    assert SlaClock.objects.filter(case=p2, target=CADENCE, state=ClockState.RUNNING).count() == 1


def test_internal_notes_and_replies_by_the_system_or_imported_do_not_count(p2, agent):
    case_services.add_internal_note(p2, body="Customer is grumpy", actor=agent, now=T0 + MIN)
    case_services.record_event(p2, EventKind.PUBLIC_REPLY, actor=None, now=T0 + 2 * MIN, is_public=True)
    assert clk(p2, FR).state == ClockState.RUNNING
    assert set(clocks(p2)) == {(FR, 1), (TRIAGE, 1), (CADENCE, 1), (RESOLUTION, 1)}


def test_triaging_meets_the_triage_target(p2, agent):
    case_services.transition(p2, "triaged", severity="P2", actor=agent, now=T0 + 30 * MIN)
    assert (clk(p2, TRIAGE).state, clk(p2, TRIAGE).met_at) == (ClockState.MET, T0 + 30 * MIN)
    assert clk(p2, FR).state == ClockState.RUNNING


def test_waiting_on_the_customer_pauses_resolution_and_updates_and_resume_moves_their_due(p2, agent):
    case = _in_progress(p2, agent)
    case = case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + 30 * MIN)
    assert {key: c.state for key, c in clocks(case).items()} == {
        (FR, 1): ClockState.RUNNING,  # the first response is not affected
        (TRIAGE, 1): ClockState.MET,
        (CADENCE, 1): ClockState.PAUSED,
        (RESOLUTION, 1): ClockState.PAUSED,
    }
    assert clk(case, CADENCE).remaining_at_pause == 90 * MIN
    assert clk(case, RESOLUTION).due_at == T0 + 24 * 60 * MIN  # not moved while paused

    case_services.transition(case, "in_progress", actor=agent, now=T0 + 5 * 60 * MIN)
    cadence, resolution = clk(case, CADENCE), clk(case, RESOLUTION)
    assert cadence.state == resolution.state == ClockState.RUNNING
    assert cadence.paused_total == resolution.paused_total == 270 * MIN
    assert cadence.due_at == T0 + (120 + 270) * MIN
    assert resolution.due_at == T0 + (24 * 60 + 270) * MIN
    assert resolution.warn_at == T0 + (18 * 60 + 270) * MIN
    assert cadence.pauses == [[(T0 + 30 * MIN).isoformat(), (T0 + 300 * MIN).isoformat()]]


def test_an_overdue_clock_is_not_paused(p2, agent):
    case = _in_progress(p2, agent)
    case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + 150 * MIN)
    assert clk(case, CADENCE).state == ClockState.RUNNING  # due at +120: the sweep breaches it
    assert clk(case, RESOLUTION).state == ClockState.PAUSED


def test_a_reply_while_waiting_on_the_customer_starts_the_next_update_paused(p2, agent):
    case = _in_progress(p2, agent)
    case = case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + 10 * MIN)
    case_services.add_public_reply(case, body="Any news?", actor=agent, now=T0 + 20 * MIN)
    assert clk(case, CADENCE, 1).state == ClockState.MET
    run2 = clk(case, CADENCE, 2)
    assert (run2.state, run2.remaining_at_pause) == (ClockState.PAUSED, 120 * MIN)
    case_services.transition(case, "in_progress", actor=agent, now=T0 + 60 * MIN)
    assert clk(case, CADENCE, 2).due_at == T0 + 180 * MIN


def test_resolving_meets_resolution_and_cancels_the_rest(p2, agent):
    case_services.transition(p2, "resolved", actor=agent, now=T0 + 40 * MIN)
    assert {key: c.state for key, c in clocks(p2).items()} == {
        (FR, 1): ClockState.CANCELLED,
        (TRIAGE, 1): ClockState.CANCELLED,
        (CADENCE, 1): ClockState.CANCELLED,
        (RESOLUTION, 1): ClockState.MET,
    }
    assert clk(p2, RESOLUTION).met_on_time is True
    assert clk(p2, CADENCE).cancelled_at == T0 + 40 * MIN


def test_resolving_while_waiting_counts_the_pause(p2, agent):
    case = _in_progress(p2, agent)
    case = case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + 60 * MIN)
    case_services.transition(case, "resolved", actor=agent, now=T0 + 25 * 60 * MIN)
    resolution = clk(case, RESOLUTION)
    # Paused for 24 h of its 24 h: met on time, not late.
    assert (resolution.state, resolution.paused_total) == (ClockState.MET, 24 * 60 * MIN)
    assert resolution.due_at == T0 + 48 * 60 * MIN


def test_reopening_restarts_resolution_counting_the_time_already_used(p2, agent):
    case = case_services.transition(p2, "resolved", actor=agent, now=T0 + 6 * 60 * MIN)
    reopened_at = T0 + 3 * 24 * 60 * MIN
    case = case_services.transition(case, "reopened", actor=agent, now=reopened_at)
    run2 = clk(case, RESOLUTION, 2)
    assert (run2.state, run2.consumed, run2.started_at) == (ClockState.RUNNING, 6 * 60 * MIN, reopened_at)
    assert run2.due_at == reopened_at + 18 * 60 * MIN
    assert run2.warn_at == reopened_at + 12 * 60 * MIN  # 75 % of 24 h = 18 h, 6 h already used
    assert clk(case, CADENCE, 2).started_at == reopened_at
    assert clk(case, RESOLUTION, 1).state == ClockState.MET  # the first run's record is kept

    # A second resolution and reopening carries both runs' time.
    case = case_services.transition(case, "resolved", actor=agent, now=reopened_at + 2 * 60 * MIN)
    case = case_services.transition(case, "reopened", actor=agent, now=reopened_at + 10 * 60 * MIN)
    assert clk(case, RESOLUTION, 3).consumed == 8 * 60 * MIN


def test_reopening_after_using_the_whole_target_is_due_at_once(p2, agent):
    case = case_services.transition(p2, "resolved", actor=agent, now=T0 + 30 * 60 * MIN)
    case = case_services.transition(case, "reopened", actor=agent, now=T0 + 40 * 60 * MIN)
    run2 = clk(case, RESOLUTION, 2)
    assert run2.due_at == run2.warn_at == T0 + 40 * 60 * MIN
    assert services.record_due_warnings_and_breaches(now=T0 + 40 * 60 * MIN + MIN) == 1


def test_a_severity_change_retargets_running_clocks_from_their_original_start(p2, agent):
    case_services.add_public_reply(p2, body="On it", actor=agent, now=T0 + 10 * MIN)
    case_services.update_case(p2, severity="P1", actor=agent, now=T0 + 20 * MIN)
    # Enterprise P1: triage 30 min, updates every 30 min, resolution 8 h, all from their start.
    assert clk(p2, TRIAGE).due_at == T0 + 30 * MIN
    assert (clk(p2, TRIAGE).target_minutes, clk(p2, TRIAGE).policy.severity) == (30, "P1")
    assert clk(p2, CADENCE, 2).due_at == T0 + 40 * MIN
    assert clk(p2, RESOLUTION).due_at == T0 + 8 * 60 * MIN
    assert clk(p2, FR).due_at == T0 + 60 * MIN  # met clocks keep their terms


def test_a_severity_change_to_business_time_recounts_pauses_in_the_calendar(globex, globex_contact, agent):
    # Business P1 counts 24x7, business P2 business hours (seeded).
    friday = at(2026, 3, 6, 16, 0, tz="Europe/Berlin")
    case = case_services.create_case(
        title="Down",
        organisation=globex,
        requester=globex_contact,
        severity="P1",
        assignee=agent,
        actor=agent,
        now=friday,
    )
    case = _in_progress(case, agent, now=friday)
    case = case_services.transition(case, "waiting_on_customer", actor=agent, now=friday + 30 * MIN)
    monday_10 = at(2026, 3, 9, 10, 0, tz="Europe/Berlin")
    case = case_services.transition(case, "in_progress", actor=agent, now=monday_10)
    assert clk(case, RESOLUTION).paused_total == monday_10 - friday - 30 * MIN  # 24x7: the whole weekend

    case_services.update_case(case, severity="P2", actor=agent, now=monday_10 + MIN)
    resolution = clk(case, RESOLUTION)
    # In business hours the pause was Fri 16:30-17:00 + Mon 09:00-10:00.
    assert resolution.paused_total == 90 * MIN
    assert (resolution.business_time, resolution.target_minutes) == (True, 24 * 60)
    # 24 business hours from Fri 16:00 plus 1 h 30 paused: Fri 1 h, Mon 8 h, Tue 8 h, Wed 8 h, Thu 30 min.
    assert resolution.due_at == at(2026, 3, 12, 9, 30, tz="Europe/Berlin")


def test_a_severity_without_a_target_cancels_it_and_one_with_it_starts_it(p2, agent):
    case_services.update_case(p2, severity="P4", actor=agent, now=T0 + 10 * MIN)
    assert clk(p2, CADENCE).state == ClockState.CANCELLED  # enterprise P4 has no update cadence
    SlaPolicy.objects.filter(tier="enterprise", severity="P1").update(update_cadence_minutes=30)
    SlaPolicy.objects.filter(tier="enterprise", severity="P4").update(
        update_cadence_minutes=None, triage_minutes=None
    )
    case = case_services.update_case(p2, severity="P1", actor=agent, now=T0 + 20 * MIN)
    assert clk(case, TRIAGE).due_at == T0 + 30 * MIN


def test_meeting_a_clock_after_its_due_before_the_sweep_records_the_breach(p2, agent):
    case_services.add_public_reply(p2, body="Sorry for the wait", actor=agent, now=T0 + 61 * MIN)
    fr = clk(p2, FR)
    assert (fr.state, fr.met_at, fr.breached_at, fr.met_on_time) == (
        ClockState.BREACHED,
        T0 + 61 * MIN,
        T0 + 61 * MIN,
        False,
    )
    event = p2.events.get(kind="sla_breached")
    assert (event.field, event.new_value["run"], event.created_at) == (FR, 1, T0 + 61 * MIN)
    assert "met late" in event.body
    assert services.record_due_warnings_and_breaches(now=T0 + 62 * MIN) == 0  # nothing left for the sweep


def test_closing_changes_no_clock(p2, agent):
    case = case_services.transition(p2, "resolved", actor=agent, now=T0 + MIN)
    before = {key: (c.state, c.due_at) for key, c in clocks(case).items()}
    case_services.auto_close_resolved(now=T0 + 8 * 24 * 60 * MIN)
    assert {key: (c.state, c.due_at) for key, c in clocks(case).items()} == before
