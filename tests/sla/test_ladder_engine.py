"""The warning ladder's arithmetic in the SLA engine (no database): where each rung lands in
business time, how pauses, reopening and re-targeting move it, and what a look records."""

from __future__ import annotations

import datetime as dt
from datetime import time

from sla import clock, engine
from sla.engine import ChangeKind

MIN = dt.timedelta(minutes=1)
FRIDAY_15 = dt.datetime(2026, 3, 6, 15, 0, tzinfo=dt.UTC)
MONDAY_9 = dt.datetime(2026, 3, 9, 9, 0, tzinfo=dt.UTC)
TWENTY_FOUR_SEVEN = clock.Calendar.twenty_four_seven()
# Monday to Friday 09:00-17:00 UTC; Monday 9 March 2026 is a holiday of its own.
OFFICE = clock.Calendar(tz="UTC", ranges=tuple(clock.OpeningRange(w, time(9), time(17)) for w in range(5)))
RESOLUTION, CADENCE, FR = engine.RESOLUTION, engine.UPDATE_CADENCE, engine.FIRST_RESPONSE
LADDER = (0.5, 0.75, 0.9)


def terms(*, resolution=8 * 60, business_time=True, ladder=LADDER, policy_id=1, fr=None) -> engine.Terms:
    return engine.Terms(
        policy_id=policy_id,
        business_time=business_time,
        warning_ratio=0.8,
        minutes={FR: fr, engine.TRIAGE: None, CADENCE: None, RESOLUTION: resolution},
        ladders={RESOLUTION: ladder} if ladder else {},
    )


def counting(business_time: bool, since: dt.datetime, until: dt.datetime) -> clock.Calendar:
    return OFFICE if business_time else TWENTY_FOUR_SEVEN


def opened(at: dt.datetime, policy: engine.Terms | None = None) -> engine.CaseClocks:
    clocks = engine.CaseClocks(counting=counting)
    clocks.created(at, terms=policy or terms())
    return clocks


def points(clk: engine.Clock) -> list[dt.datetime | None]:
    """Where each warning point of the clock lands, its own warning first."""
    return [clk.warn_at, *(rung.warn_at for rung in clk.rungs)]


def warned(changes: engine.Changes) -> list[tuple[int, bool]]:
    """(percent, late) of each warning a look or an event recorded, in order."""
    return [(engine.percent_of(c.ratio), c.late) for c in changes if c.kind == ChangeKind.WARNED]


def test_each_rung_lands_where_its_share_of_the_target_is_used_in_business_time():
    # 8 business hours from Friday 15:00: two hours on Friday, the rest from Monday 09:00.
    resolution = opened(FRIDAY_15).latest(RESOLUTION)
    assert resolution.warning_ratio == 0.5  # the first rung is the clock's own warning
    assert [r.ratio for r in resolution.rungs] == [0.75, 0.9]
    assert points(resolution) == [
        MONDAY_9 + 2 * 60 * MIN,  # 4 h: 2 on Friday + 2 on Monday
        MONDAY_9 + 4 * 60 * MIN,  # 6 h
        MONDAY_9 + (5 * 60 + 12) * MIN,  # 7 h 12 min
    ]
    assert resolution.due_at == MONDAY_9 + 6 * 60 * MIN


def test_a_target_without_a_ladder_warns_once_at_the_policys_share():
    resolution = opened(FRIDAY_15, terms(ladder=None)).latest(RESOLUTION)
    assert (resolution.warning_ratio, resolution.rungs) == (0.8, [])
    assert resolution.warn_at == MONDAY_9 + (4 * 60 + 24) * MIN  # 6 h 24 min of 8 h


def test_24x7_rungs_count_real_time():
    resolution = opened(FRIDAY_15, terms(resolution=60, business_time=False)).latest(RESOLUTION)
    assert points(resolution) == [FRIDAY_15 + 30 * MIN, FRIDAY_15 + 45 * MIN, FRIDAY_15 + 54 * MIN]


def test_a_pause_takes_the_rungs_off_the_sweep_and_moves_them_by_the_business_time_paused():
    clocks = opened(MONDAY_9, terms(resolution=60))
    resolution = clocks.latest(RESOLUTION)
    assert points(resolution) == [MONDAY_9 + 30 * MIN, MONDAY_9 + 45 * MIN, MONDAY_9 + 54 * MIN]
    clocks.status_changed(MONDAY_9 + 10 * MIN, old="in_progress", new="waiting_on_customer")
    assert resolution.state == engine.PAUSED
    assert [r.warn_at for r in resolution.rungs] == [None, None]  # nothing the sweep could find
    assert not engine.observe(resolution, MONDAY_9 + 6 * 60 * MIN)
    # Waiting from 09:10 to 12:10 on Monday: three business hours pass paused.
    clocks.status_changed(MONDAY_9 + 190 * MIN, old="waiting_on_customer", new="in_progress")
    shift = 3 * 60 * MIN
    assert points(resolution) == [
        MONDAY_9 + 30 * MIN + shift,
        MONDAY_9 + 45 * MIN + shift,
        MONDAY_9 + 54 * MIN + shift,
    ]
    assert resolution.due_at == MONDAY_9 + 60 * MIN + shift


def test_a_pause_over_closed_hours_moves_the_rungs_by_business_time_only():
    clocks = opened(FRIDAY_15, terms(resolution=60))
    resolution = clocks.latest(RESOLUTION)
    clocks.status_changed(FRIDAY_15 + 10 * MIN, old="in_progress", new="waiting_on_customer")
    # Waiting from Friday 15:10 to Monday 10:00: 1 h 50 on Friday and 1 h on Monday are business time.
    clocks.status_changed(MONDAY_9 + 60 * MIN, old="waiting_on_customer", new="in_progress")
    assert resolution.paused_total == 170 * MIN
    # 45 and 54 minutes of the target, plus the pause, counted from Friday 15:00: 215 and 224 business
    # minutes, of which 120 on Friday.
    assert [r.warn_at for r in resolution.rungs] == [MONDAY_9 + 95 * MIN, MONDAY_9 + 104 * MIN]


def test_a_pause_after_a_rung_fired_keeps_the_fired_rung_and_resumes_the_others():
    clocks = opened(MONDAY_9, terms(resolution=60, business_time=False))
    resolution = clocks.latest(RESOLUTION)
    assert warned(engine.observe(resolution, MONDAY_9 + 46 * MIN)) == [(50, True), (75, False)]
    clocks.status_changed(MONDAY_9 + 50 * MIN, old="in_progress", new="waiting_on_customer")
    fired, waiting = resolution.rungs
    assert (fired.warn_at, fired.warned_at) == (MONDAY_9 + 45 * MIN, MONDAY_9 + 46 * MIN)
    assert (waiting.warn_at, waiting.warned_at) == (None, None)
    clocks.status_changed(MONDAY_9 + 80 * MIN, old="waiting_on_customer", new="in_progress")
    assert waiting.warn_at == MONDAY_9 + 84 * MIN  # 54 min of target + 30 min paused
    assert resolution.due_at == MONDAY_9 + 90 * MIN
    assert warned(engine.observe(resolution, MONDAY_9 + 85 * MIN)) == [(90, False)]
    assert not engine.observe(resolution, MONDAY_9 + 89 * MIN)


def test_one_look_past_several_rungs_records_each_once_the_lower_ones_late():
    resolution = opened(MONDAY_9, terms(resolution=60, business_time=False)).latest(RESOLUTION)
    assert not engine.observe(resolution, MONDAY_9 + 29 * MIN)
    assert warned(engine.observe(resolution, MONDAY_9 + 30 * MIN)) == [(50, False)]
    assert warned(engine.observe(resolution, MONDAY_9 + 56 * MIN)) == [(75, True), (90, False)]
    assert not engine.observe(resolution, MONDAY_9 + 58 * MIN)
    breach = engine.observe(resolution, MONDAY_9 + 61 * MIN)
    assert [c.kind for c in breach] == [ChangeKind.BREACHED]


def test_a_breach_first_seen_records_every_missed_rung_late_before_it():
    resolution = opened(MONDAY_9, terms(resolution=60, business_time=False)).latest(RESOLUTION)
    changes = engine.observe(resolution, MONDAY_9 + 90 * MIN)
    assert [
        (c.kind, engine.percent_of(c.ratio) if c.kind == "warned" else None, c.late) for c in changes
    ] == [
        ("warned", 50, True),
        ("warned", 75, True),
        ("warned", 90, True),
        ("breached", None, False),
    ]
    assert resolution.state == engine.BREACHED
    assert not engine.observe(resolution, MONDAY_9 + 91 * MIN)


def test_a_clock_met_late_records_its_missed_rungs_and_the_breach():
    clocks = opened(MONDAY_9, terms(resolution=60, business_time=False))
    resolution = clocks.latest(RESOLUTION)
    engine.observe(resolution, MONDAY_9 + 31 * MIN)  # the 50 % rung, in time
    changes = clocks.status_changed(MONDAY_9 + 70 * MIN, old="in_progress", new="resolved")
    assert warned(changes) == [(75, True), (90, True)]
    assert [c.kind for c in changes.recorded][-1] == ChangeKind.BREACHED
    assert [r.warned_at for r in resolution.rungs] == [MONDAY_9 + 70 * MIN] * 2


def test_a_clock_met_in_time_leaves_its_later_rungs_unfired_and_off_the_sweep():
    clocks = opened(MONDAY_9, terms(resolution=60, business_time=False))
    resolution = clocks.latest(RESOLUTION)
    changes = clocks.status_changed(MONDAY_9 + 40 * MIN, old="in_progress", new="resolved")
    assert not changes.recorded
    assert [(r.warn_at, r.warned_at) for r in resolution.rungs] == [(None, None), (None, None)]


def test_a_reopened_case_runs_the_ladder_again_on_what_is_left_of_the_target():
    clocks = opened(MONDAY_9, terms(resolution=60, business_time=False))
    run1 = clocks.latest(RESOLUTION)
    engine.observe(run1, MONDAY_9 + 31 * MIN)
    clocks.status_changed(MONDAY_9 + 40 * MIN, old="in_progress", new="resolved")
    reopened_at = MONDAY_9 + 3 * 60 * MIN
    clocks.status_changed(reopened_at, old="resolved", new="reopened")
    run2 = clocks.latest(RESOLUTION)
    assert (run2.run, run2.consumed) == (2, 40 * MIN)
    # 50 % (30 min) was used in run 1 already: that rung is due at once; 75 % after 5 more minutes.
    assert points(run2) == [reopened_at, reopened_at + 5 * MIN, reopened_at + 14 * MIN]
    assert run2.due_at == reopened_at + 20 * MIN
    assert warned(engine.observe(run2, reopened_at)) == [(50, False)]  # once in this run too


def test_a_retarget_moves_the_rungs_from_the_original_start_and_never_warns_twice_for_a_share():
    clocks = opened(MONDAY_9, terms(resolution=120, business_time=False))
    resolution = clocks.latest(RESOLUTION)
    assert warned(engine.observe(resolution, MONDAY_9 + 91 * MIN)) == [(50, True), (75, False)]
    # Raised to a policy of 60 minutes whose ladder is 60 %, 80 %, 95 %.
    changes = clocks.severity_changed(
        MONDAY_9 + 92 * MIN,
        terms=terms(resolution=60, business_time=False, ladder=(0.6, 0.8, 0.95), policy_id=2),
    )
    assert [c.kind for c in changes] == [ChangeKind.RETARGETED]
    assert resolution.warning_ratio == 0.6
    assert resolution.warned_at == MONDAY_9 + 91 * MIN  # the clock stays warned, as before a ladder
    eighty, ninety_five = resolution.rungs
    assert (eighty.ratio, eighty.warn_at, eighty.key) == (0.8, MONDAY_9 + 48 * MIN, None)
    assert eighty.warned_at is None  # warned at 75 % only: 80 % has not been said yet
    assert ninety_five.warn_at == MONDAY_9 + 57 * MIN
    assert resolution.due_at == MONDAY_9 + 60 * MIN
    # Now past due: the sweep records the rungs not said yet, late, then the breach.
    changes = engine.observe(resolution, MONDAY_9 + 93 * MIN)
    assert warned(changes) == [(80, True), (95, True)]
    assert changes.of(ChangeKind.BREACHED) == [resolution]


def test_a_retarget_to_a_lower_ladder_counts_the_shares_already_warned_as_fired():
    clocks = opened(MONDAY_9, terms(resolution=120, business_time=False))
    resolution = clocks.latest(RESOLUTION)
    engine.observe(resolution, MONDAY_9 + 109 * MIN)  # 50, 75 and 90 % fired
    first_rung_key = resolution.rungs[0].key = "row-75"
    clocks.severity_changed(
        MONDAY_9 + 110 * MIN,
        terms=terms(resolution=240, business_time=False, ladder=(0.5, 0.75, 0.8), policy_id=2),
    )
    seventy_five, eighty = resolution.rungs
    assert seventy_five.key == first_rung_key  # the same share keeps its stored row
    # 90 % was said already: neither is said again.
    assert seventy_five.warned_at is not None
    assert eighty.warned_at is not None
    assert not engine.observe(resolution, MONDAY_9 + 200 * MIN)


def test_a_target_the_ladder_does_not_name_keeps_its_single_warning():
    clocks = opened(MONDAY_9, terms(resolution=60, business_time=False, fr=20))
    fr = clocks.latest(FR)
    assert (fr.warning_ratio, fr.rungs, fr.warn_at) == (0.8, [], MONDAY_9 + 16 * MIN)


def test_a_replay_of_history_stamps_each_rung_when_it_passed():
    clocks = opened(MONDAY_9, terms(resolution=60, business_time=False))
    resolution = clocks.latest(RESOLUTION)
    changes = clocks.advance(MONDAY_9 + 70 * MIN, exact=True)
    assert [r.warned_at for r in resolution.rungs] == [MONDAY_9 + 45 * MIN, MONDAY_9 + 54 * MIN]
    assert resolution.warned_at == MONDAY_9 + 30 * MIN
    assert warned(changes) == [(50, False), (75, False), (90, False)]
    assert resolution.breached_at == MONDAY_9 + 60 * MIN
