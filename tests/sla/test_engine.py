"""The SLA engine on its own: clocks as values, events in, changes out (no database)."""

from __future__ import annotations

import datetime as dt
from datetime import time

import pytest

from cases.models import OPEN_STATUSES, Status
from sla import clock, engine
from sla.engine import ChangeKind
from sla.models import ClockState, SlaClock, Target

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)  # a Monday
MIN = dt.timedelta(minutes=1)
TWENTY_FOUR_SEVEN = clock.Calendar.twenty_four_seven()
OFFICE = clock.Calendar(tz="UTC", ranges=tuple(clock.OpeningRange(w, time(9), time(17)) for w in range(5)))
FR, TRIAGE, CADENCE, RESOLUTION = (
    engine.FIRST_RESPONSE,
    engine.TRIAGE,
    engine.UPDATE_CADENCE,
    engine.RESOLUTION,
)


def terms(fr=60, triage=120, cadence=120, resolution=24 * 60, *, business_time=False, policy_id=1):
    return engine.Terms(
        policy_id=policy_id,
        business_time=business_time,
        warning_ratio=0.75,
        minutes={FR: fr, TRIAGE: triage, CADENCE: cadence, RESOLUTION: resolution},
    )


def counting(business_time: bool, since: dt.datetime, until: dt.datetime) -> clock.Calendar:
    return OFFICE if business_time else TWENTY_FOUR_SEVEN


def opened(policy=None, **kwargs) -> engine.CaseClocks:
    clocks = engine.CaseClocks(counting=counting, **kwargs)
    clocks.created(T0, terms=policy or terms())
    return clocks


def kinds(changes: engine.Changes) -> list[tuple[str, str, int]]:
    return [(c.kind, c.clock.target, c.clock.run) for c in changes]


def test_the_engine_speaks_the_models_codes():
    assert tuple(Target.values) == engine.TARGETS
    assert {engine.RUNNING, engine.PAUSED, engine.MET, engine.BREACHED, engine.CANCELLED} == set(
        ClockState.values
    )
    assert {s.value for s in OPEN_STATUSES} == engine.OPEN
    assert {engine.NEW, engine.TRIAGED, engine.WAITING_ON_CUSTOMER, engine.RESOLVED, engine.REOPENED} <= set(
        Status.values
    )
    assert set(engine.STORED_FIELDS) <= {f.attname for f in SlaClock._meta.fields}


def test_created_starts_every_target_of_the_policy_with_its_deadlines():
    clocks = engine.CaseClocks(counting=counting)
    changes = clocks.created(T0, terms=terms(cadence=None))
    assert kinds(changes) == [("started", FR, 1), ("started", TRIAGE, 1), ("started", RESOLUTION, 1)]
    fr = clocks.latest(FR)
    assert (fr.state, fr.started_at, fr.warn_at, fr.due_at) == (
        engine.RUNNING,
        T0,
        T0 + 45 * MIN,
        T0 + 60 * MIN,
    )
    assert clocks.latest(CADENCE) is None


def test_only_the_measured_targets_start():
    clocks = opened(measured={RESOLUTION})
    assert [c.target for c in clocks.all()] == [RESOLUTION]


def test_no_policy_starts_no_clock():
    clocks = engine.CaseClocks(counting=counting)
    assert len(clocks.created(T0, terms=None)) == 0


def test_business_time_deadlines_skip_the_night_and_the_weekend():
    friday = dt.datetime(2026, 3, 6, 16, 0, tzinfo=dt.UTC)
    clocks = engine.CaseClocks(counting=counting)
    clocks.created(friday, terms=terms(business_time=True))
    # 1 h of business time from Friday 16:00: 16:00-17:00 is all of it; 2 h end on Monday at 10:00.
    assert clocks.latest(FR).due_at == friday + 60 * MIN
    assert clocks.latest(TRIAGE).due_at == dt.datetime(2026, 3, 9, 10, 0, tzinfo=dt.UTC)


def test_a_staff_reply_meets_the_response_and_the_update_and_starts_the_next_update():
    clocks = opened()
    changes = clocks.staff_reply(T0 + 10 * MIN)
    assert kinds(changes) == [("met", FR, 1), ("met", CADENCE, 1), ("started", CADENCE, 2)]
    assert [c.target for c in changes.changed] == [FR, CADENCE]
    assert [(c.target, c.run) for c in changes.started] == [(CADENCE, 2)]
    nxt = clocks.latest(CADENCE)
    assert (nxt.started_at, nxt.due_at) == (T0 + 10 * MIN, T0 + 130 * MIN)
    assert clocks.first_response_at == T0 + 10 * MIN


def test_a_customer_reply_moves_no_clock():
    clocks = opened()
    assert len(clocks.customer_reply(T0 + MIN)) == 0


def test_waiting_on_the_customer_pauses_resolution_and_updates_and_resuming_moves_their_due():
    clocks = opened(status="in_progress")
    paused = clocks.status_changed(T0 + 30 * MIN, old="in_progress", new="waiting_on_customer")
    assert kinds(paused) == [("paused", RESOLUTION, 1), ("paused", CADENCE, 1)]
    assert clocks.latest(FR).state == engine.RUNNING  # the first response never pauses
    resolution = clocks.latest(RESOLUTION)
    assert (resolution.paused_at, resolution.remaining_at_pause) == (
        T0 + 30 * MIN,
        dt.timedelta(hours=23, minutes=30),
    )

    resumed = clocks.status_changed(T0 + 90 * MIN, old="waiting_on_customer", new="in_progress")
    assert kinds(resumed) == [("resumed", RESOLUTION, 1), ("resumed", CADENCE, 1)]
    assert (resolution.state, resolution.paused_total, resolution.due_at) == (
        engine.RUNNING,
        60 * MIN,
        T0 + dt.timedelta(hours=25),
    )
    assert resolution.pauses == [[(T0 + 30 * MIN).isoformat(), (T0 + 90 * MIN).isoformat()]]


def test_a_reply_while_waiting_starts_the_next_update_paused():
    clocks = opened(status="waiting_on_customer")
    clocks.staff_reply(T0 + 5 * MIN)
    nxt = clocks.latest(CADENCE)
    assert (nxt.run, nxt.state, nxt.remaining_at_pause) == (2, engine.PAUSED, dt.timedelta(hours=2))


def test_an_overdue_clock_is_not_paused():
    clocks = opened(terms(cadence=10), status="in_progress")
    changes = clocks.status_changed(T0 + 20 * MIN, old="in_progress", new="waiting_on_customer")
    assert kinds(changes) == [("paused", RESOLUTION, 1)]
    assert clocks.latest(CADENCE).state == engine.RUNNING  # for the sweep to breach


def test_resolving_meets_the_resolution_and_cancels_what_is_still_live():
    clocks = opened(status="in_progress")
    changes = clocks.status_changed(T0 + 30 * MIN, old="in_progress", new="resolved")
    assert kinds(changes) == [
        ("met", RESOLUTION, 1),
        ("cancelled", CADENCE, 1),
        ("cancelled", FR, 1),
        ("cancelled", TRIAGE, 1),
    ]
    assert clocks.latest(CADENCE).cancelled_at == T0 + 30 * MIN
    assert len(clocks.staff_reply(T0 + 40 * MIN).started) == 0  # a resolved case needs no updates


def test_reopening_starts_a_resolution_run_carrying_the_time_used():
    clocks = opened(status="in_progress")
    clocks.status_changed(T0 + 30 * MIN, old="in_progress", new="waiting_on_customer")
    clocks.status_changed(T0 + 90 * MIN, old="waiting_on_customer", new="in_progress")
    clocks.status_changed(T0 + 120 * MIN, old="in_progress", new="resolved")
    changes = clocks.status_changed(T0 + 200 * MIN, old="resolved", new="reopened")
    assert kinds(changes) == [("started", RESOLUTION, 2), ("started", CADENCE, 2)]
    second = clocks.latest(RESOLUTION)
    # Used: 120 min open minus 60 paused; 23 h left from the reopening.
    assert (second.consumed, second.due_at) == (60 * MIN, T0 + 200 * MIN + dt.timedelta(hours=23))


def test_a_severity_change_retargets_from_the_start_cancels_what_the_new_policy_lacks_and_adds_the_rest():
    clocks = opened(terms(triage=None), status="in_progress")
    changes = clocks.severity_changed(T0 + 10 * MIN, terms=terms(fr=15, cadence=None, policy_id=2))
    assert kinds(changes) == [
        ("retargeted", FR, 1),
        ("cancelled", CADENCE, 1),
        ("retargeted", RESOLUTION, 1),
        ("started", TRIAGE, 1),
    ]
    fr, triage = clocks.latest(FR), clocks.latest(TRIAGE)
    assert (fr.policy_id, fr.target_minutes, fr.due_at, fr.changed_at) == (
        2,
        15,
        T0 + 15 * MIN,
        T0 + 10 * MIN,
    )
    assert (triage.started_at, triage.due_at) == (T0, T0 + 120 * MIN)  # as if it had applied all along


def test_a_retarget_recounts_the_finished_pauses_in_the_new_calendar():
    clocks = opened(status="in_progress")  # 24x7
    clocks.status_changed(
        dt.datetime(2026, 3, 2, 16, 0, tzinfo=dt.UTC), old="in_progress", new="waiting_on_customer"
    )
    clocks.status_changed(
        dt.datetime(2026, 3, 3, 10, 0, tzinfo=dt.UTC), old="waiting_on_customer", new="in_progress"
    )
    resolution = clocks.latest(RESOLUTION)
    assert resolution.paused_total == dt.timedelta(hours=18)
    clocks.severity_changed(dt.datetime(2026, 3, 3, 11, 0, tzinfo=dt.UTC), terms=terms(business_time=True))
    assert resolution.paused_total == dt.timedelta(hours=2)  # Mon 16:00-17:00 and Tue 09:00-10:00


def test_a_clock_met_late_is_breached_with_its_warning_both_late():
    clocks = opened()
    changes = clocks.staff_reply(T0 + 70 * MIN)
    fr = clocks.latest(FR)
    assert (fr.state, fr.met_at, fr.warned_at, fr.breached_at) == (engine.BREACHED, *(3 * [T0 + 70 * MIN]))
    recorded = [(c.kind, c.clock.target, c.late) for c in changes.recorded]
    assert recorded == [(ChangeKind.WARNED, FR, True), (ChangeKind.BREACHED, FR, True)]


def test_a_breached_clock_met_later_keeps_its_breach_and_gets_its_met_instant():
    clocks = opened()
    clocks.advance(T0 + 61 * MIN)
    changes = clocks.staff_reply(T0 + 70 * MIN)
    fr = clocks.latest(FR)
    assert (fr.state, fr.breached_at, fr.met_at) == (engine.BREACHED, T0 + 61 * MIN, T0 + 70 * MIN)
    assert changes.recorded == []


def test_a_sweep_warns_at_the_warning_point_and_breaches_after_the_due_instant_once_each():
    clocks = opened()
    assert len(clocks.advance(T0 + 44 * MIN)) == 0
    assert kinds(clocks.advance(T0 + 45 * MIN)) == [("warned", FR, 1)]
    assert len(clocks.advance(T0 + 50 * MIN)) == 0
    assert len(clocks.advance(T0 + 60 * MIN)) == 0  # met at the due instant would still be on time
    breach = clocks.advance(T0 + 61 * MIN)
    assert [(c.kind, c.clock.target, c.late) for c in breach] == [("breached", FR, False)]
    assert clocks.latest(FR).breached_at == T0 + 61 * MIN
    assert len(clocks.advance(T0 + 62 * MIN)) == 0


def test_a_sweep_after_an_outage_records_the_missed_warning_late_with_the_breach():
    clk = opened().latest(FR)
    changes = engine.observe(clk, T0 + 70 * MIN)
    assert [(c.kind, c.late) for c in changes] == [("warned", True), ("breached", False)]
    assert (clk.warned_at, clk.breached_at) == (T0 + 70 * MIN, T0 + 70 * MIN)
    assert len(engine.observe(clk, T0 + 80 * MIN)) == 0


def test_paused_clocks_are_never_swept():
    clocks = opened(status="in_progress")
    clocks.status_changed(T0 + MIN, old="in_progress", new="waiting_on_customer")
    changes = clocks.advance(T0 + dt.timedelta(days=30))
    assert {c.clock.target for c in changes} == {FR, TRIAGE}


def test_a_replay_stamps_each_warning_and_breach_at_the_instant_it_passed():
    clocks = opened()
    clocks.advance(T0 + 5 * 60 * MIN, exact=True)
    fr = clocks.latest(FR)
    assert (fr.state, fr.warned_at, fr.breached_at) == (engine.BREACHED, T0 + 45 * MIN, T0 + 60 * MIN)


def test_a_replay_notices_deadlines_a_retarget_put_in_the_past_from_the_retarget_on():
    clocks = opened()
    clocks.advance(T0 + 40 * MIN, exact=True)
    clocks.severity_changed(T0 + 40 * MIN, terms=terms(fr=15))
    changes = clocks.advance(T0 + 50 * MIN, exact=True)
    fr = clocks.latest(FR)
    assert (fr.warned_at, fr.breached_at) == (T0 + 40 * MIN, T0 + 40 * MIN)
    assert ("warned", FR, True) in [(c.kind, c.clock.target, c.late) for c in changes]


def test_stored_fields_round_trip():
    clk = opened().latest(RESOLUTION)
    assert engine.Clock(**clk.as_fields()) == clk


@pytest.mark.parametrize("calendar", [OFFICE, TWENTY_FOUR_SEVEN])
def test_a_tabulated_calendar_gives_the_same_clocks(calendar):
    table = clock.TabulatedCalendar(lambda since, until: calendar)

    def story(arith):
        clocks = engine.CaseClocks(counting=lambda business_time, since, until: arith, status="in_progress")
        clocks.created(T0, terms=terms(business_time=True))
        clocks.status_changed(T0 + 30 * MIN, old="in_progress", new="waiting_on_customer")
        clocks.status_changed(T0 + 3000 * MIN, old="waiting_on_customer", new="in_progress")
        clocks.staff_reply(T0 + 3100 * MIN)
        clocks.advance(T0 + 9000 * MIN, exact=True)
        return [c.as_fields() for c in clocks.all()]

    assert story(table) == story(calendar)
