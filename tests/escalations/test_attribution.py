"""Where the time went, as pure code: each instant of a case's life goes to exactly one side."""

from __future__ import annotations

import datetime as dt

from escalations.attribution import FINISHED, NEEDS_INFO, WITH_ENGINEERING, Change, attribute

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def t(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def status(minutes: int, value: str) -> Change:
    return Change(t(minutes), "status", value)


def esc(minutes: int, value: str, *, escalation: int = 1, team: int = 10) -> Change:
    return Change(t(minutes), "escalation", value, escalation=escalation, team=team)


def minutes(delta: dt.timedelta) -> float:
    return delta.total_seconds() / 60


def test_two_teams_at_once_are_each_credited_but_the_case_counts_the_time_once():
    changes = [
        status(0, "new"),
        status(10, "in_progress"),
        esc(10, WITH_ENGINEERING, escalation=1, team=10),
        status(10, "waiting_on_engineering"),
        esc(30, WITH_ENGINEERING, escalation=2, team=20),
        esc(60, FINISHED, escalation=1, team=10),
        esc(90, FINISHED, escalation=2, team=20),
        status(90, "in_progress"),
    ]
    split = attribute(changes, start=t(0), end=t(100))
    assert (minutes(split.support), minutes(split.engineering), minutes(split.customer_wait)) == (20, 80, 0)
    assert {team: minutes(d) for team, d in split.by_team.items()} == {10: 50, 20: 60}


def test_needs_info_is_support_time_even_while_the_case_waits_on_engineering():
    changes = [
        status(0, "new"),
        esc(0, WITH_ENGINEERING),
        status(0, "waiting_on_engineering"),
        esc(15, NEEDS_INFO),
        esc(45, WITH_ENGINEERING),
    ]
    split = attribute(changes, start=t(0), end=t(60))
    assert (minutes(split.support), minutes(split.engineering)) == (30, 30)


def test_waiting_on_engineering_without_a_known_escalation_is_engineering_time():
    changes = [status(0, "new"), status(5, "in_progress"), status(20, "waiting_on_engineering")]
    split = attribute(changes, start=t(0), end=t(50))
    assert (minutes(split.support), minutes(split.engineering)) == (20, 30)
    assert split.by_team == {}


def test_the_customer_holds_the_time_while_asked_and_while_resolved_before_a_reopen():
    changes = [
        status(0, "new"),
        status(10, "waiting_on_customer"),
        esc(20, WITH_ENGINEERING),  # an escalation open while the customer is asked: the customer's
        status(40, "in_progress"),
        esc(50, FINISHED),
        status(60, "resolved"),
        status(120, "reopened"),
        status(130, "resolved"),
    ]
    split = attribute(changes, start=t(0), end=t(130))
    assert minutes(split.customer_wait) == 30 + 60
    assert minutes(split.engineering) == 10
    assert minutes(split.support) == 10 + 10 + 10
    assert split.total == t(130) - t(0)


def test_changes_outside_the_window_only_set_the_state():
    changes = [status(-30, "in_progress"), esc(-10, WITH_ENGINEERING), esc(200, FINISHED)]
    split = attribute(changes, start=t(0), end=t(60))
    assert minutes(split.engineering) == 60
    assert split.total == dt.timedelta(hours=1)
