"""A case's whole SLA life on a controlled clock: every clock, timeline event, notification and
e-mail is asserted, and every sweep is run twice to show nothing fires twice.

Globex (tier business) counts business hours of the Berlin office (Mon-Fri 09:00-17:00); its P2
policy: first response 1 h, triage 2 h, an update every 4 h, resolution 24 h, warnings at 75 %.
All times below are Berlin local times in March 2026 (CET, before the DST change).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail

from cases import services as case_services
from sla import services
from sla.models import ClockState, SlaClock, Target
from supportdesk.core import tasks as core_tasks
from supportdesk.core.models import Notification
from tests.factories import at

FR, TRIAGE, CADENCE, RESOLUTION = (
    Target.FIRST_RESPONSE,
    Target.TRIAGE,
    Target.UPDATE_CADENCE,
    Target.RESOLUTION,
)


def berlin(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return at(2026, 3, day, hour, minute, tz="Europe/Berlin")


def clk(case, target: str, run: int = 1) -> SlaClock:
    return SlaClock.objects.get(case=case, target=target, run=run)


@pytest.fixture
def sweep(time_machine, django_capture_on_commit_callbacks):
    """Move the wall clock to ``when``, sweep twice, return what the first sweep recorded."""

    def run(when: dt.datetime) -> int:
        time_machine.move_to(when, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            first = services.record_due_warnings_and_breaches(now=when)
        with django_capture_on_commit_callbacks(execute=True):
            second = services.record_due_warnings_and_breaches(now=when)
        assert second == 0, "a second sweep at the same instant must record nothing"
        core_tasks.send_due()  # the mail worker sends what the sweep wrote to the outbox
        return first

    return run


@pytest.fixture
def act(time_machine, django_capture_on_commit_callbacks):
    """Run a case action at ``when`` (wall clock moved there too), with on-commit callbacks."""

    def run(when: dt.datetime, action, *args, **kwargs):
        time_machine.move_to(when, tick=False)
        with django_capture_on_commit_callbacks(execute=True):
            result = action(*args, now=when, **kwargs)
        core_tasks.send_due()  # the mail worker sends what the action wrote to the outbox
        return result

    return run


def sla_events(case) -> list[tuple[str, str, int]]:
    return [
        (e.kind, e.field, e.new_value["run"])
        for e in case.events.order_by("created_at", "id")
        if e.kind in services.SLA_EVENT_KINDS
    ]


def test_a_business_hours_case_from_friday_afternoon_to_a_breach_after_reopening(
    globex, globex_contact, business_p2, agent, manager, sweep, act
):
    # --- Friday 14:00: created -------------------------------------------------------------------
    case = act(
        berlin(6, 14),
        case_services.create_case,
        title="Exports time out",
        organisation=globex,
        requester=globex_contact,
        severity="P2",
        assignee=agent,
        actor=agent,
    )
    assert {c.target: (c.warn_at, c.due_at) for c in case.sla_clocks.all()} == {
        FR: (berlin(6, 14, 45), berlin(6, 15)),
        TRIAGE: (berlin(6, 15, 30), berlin(6, 16)),
        # 3 h left on Friday, the rest on Monday morning; the warning lands exactly at Friday's closing.
        CADENCE: (berlin(6, 17), berlin(9, 10)),
        # 24 business hours: Fri 3 h + Mon 8 h + Tue 8 h + Wed 5 h.
        RESOLUTION: (berlin(10, 16), berlin(11, 14)),
    }
    assert sweep(berlin(6, 14, 40)) == 0

    # --- 14:50: the first response is at risk ---------------------------------------------------
    assert sweep(berlin(6, 14, 50)) == 1
    assert clk(case, FR).warned_at == berlin(6, 14, 50)
    assert sla_events(case) == [("sla_warning", FR, 1)]
    assert set(Notification.objects.values_list("recipient__username", "kind")) == {
        ("alice", "sla_warning"),
        ("maria", "sla_warning"),  # P2: managers hear too
    }
    assert len(mail.outbox) == 1
    assert sorted(mail.outbox[0].to) == ["alice@support.example", "maria@support.example"]
    assert "First response" in mail.outbox[0].subject

    # --- 14:55: the agent replies -----------------------------------------------------------------
    act(berlin(6, 14, 55), case_services.add_public_reply, case, body="Looking into it.", actor=agent)
    assert (clk(case, FR).state, clk(case, FR).met_at) == (ClockState.MET, berlin(6, 14, 55))
    assert clk(case, CADENCE, 1).state == ClockState.MET
    run2 = clk(case, CADENCE, 2)
    assert (run2.state, run2.started_at, run2.warn_at, run2.due_at) == (
        ClockState.RUNNING,
        berlin(6, 14, 55),
        berlin(9, 9, 55),
        berlin(9, 10, 55),
    )

    # --- 15:35 warned, 16:05 breached: nobody triaged -----------------------------------------------
    assert sweep(berlin(6, 15, 35)) == 1
    assert sweep(berlin(6, 16, 5)) == 1
    triage = clk(case, TRIAGE)
    assert (triage.state, triage.warned_at, triage.breached_at) == (
        ClockState.BREACHED,
        berlin(6, 15, 35),
        berlin(6, 16, 5),
    )

    # --- 16:10 triaged late, 16:15 in progress, 16:30 waiting on the customer --------------------------
    act(berlin(6, 16, 10), case_services.transition, case, "triaged", severity="P2", actor=agent)
    triage.refresh_from_db()
    assert (triage.state, triage.met_at, triage.met_on_time) == (
        ClockState.BREACHED,
        berlin(6, 16, 10),
        False,
    )
    act(berlin(6, 16, 15), case_services.transition, case, "in_progress", actor=agent)
    act(berlin(6, 16, 30), case_services.transition, case, "waiting_on_customer", actor=agent)
    resolution, run2 = clk(case, RESOLUTION), clk(case, CADENCE, 2)
    assert (resolution.state, resolution.paused_at) == (ClockState.PAUSED, berlin(6, 16, 30))
    # Business time left: Fri 30 min + Mon 8 h + Tue 8 h + Wed 5 h; Fri 30 min + Mon 1 h 55.
    assert resolution.remaining_at_pause == dt.timedelta(minutes=1290)
    assert (run2.state, run2.remaining_at_pause) == (ClockState.PAUSED, dt.timedelta(minutes=145))

    # --- The weekend: paused clocks are never swept --------------------------------------------------
    assert sweep(berlin(7, 12)) == 0
    assert sweep(berlin(9, 10, 58)) == 0  # the update would have been due at 10:55

    # --- Monday 11:00: the customer answers; the clocks resume, due moved by 2 h 30 of business time --
    act(berlin(9, 11), case_services.transition, case, "in_progress", actor=agent)
    resolution, run2 = clk(case, RESOLUTION), clk(case, CADENCE, 2)
    assert resolution.paused_total == run2.paused_total == dt.timedelta(minutes=150)
    assert (resolution.state, resolution.warn_at, resolution.due_at) == (
        ClockState.RUNNING,
        berlin(11, 10, 30),
        berlin(11, 16, 30),
    )
    assert (run2.state, run2.warn_at, run2.due_at) == (
        ClockState.RUNNING,
        berlin(9, 12, 25),
        berlin(9, 13, 25),
    )
    assert clk(case, FR).state == ClockState.MET  # the first response never pauses

    # --- 12:30 the owner is reminded to update the customer; 13:30 the update is missed ----------------
    assert sweep(berlin(9, 12, 30)) == 1
    reminder = Notification.objects.get(kind="cadence_reminder")
    assert reminder.recipient == agent  # the reminder is for the owner only
    assert sweep(berlin(9, 13, 30)) == 1
    assert clk(case, CADENCE, 2).state == ClockState.BREACHED

    # --- 14:00 the agent updates the customer (late); Tuesday 09:30 on time; 11:00 resolved -----------
    act(berlin(9, 14), case_services.add_public_reply, case, body="Update: fix in testing.", actor=agent)
    run2 = clk(case, CADENCE, 2)
    assert (run2.state, run2.met_at, run2.met_on_time) == (ClockState.BREACHED, berlin(9, 14), False)
    assert (clk(case, CADENCE, 3).started_at, clk(case, CADENCE, 3).due_at) == (berlin(9, 14), berlin(10, 10))
    act(berlin(10, 9, 30), case_services.add_public_reply, case, body="Fix deployed.", actor=agent)
    assert clk(case, CADENCE, 3).state == ClockState.MET
    act(berlin(10, 11), case_services.transition, case, "resolved", actor=agent)
    resolution = clk(case, RESOLUTION)
    assert (resolution.state, resolution.met_at, resolution.met_on_time) == (
        ClockState.MET,
        berlin(10, 11),
        True,
    )
    assert clk(case, CADENCE, 4).state == ClockState.CANCELLED  # a resolved case needs no updates
    assert not SlaClock.objects.filter(case=case, state__in=["running", "paused"]).exists()
    assert sweep(berlin(10, 16)) == 0

    # --- Wednesday 09:00 reopened: resolution restarts with the 10 h 30 already used ---------------
    act(berlin(11, 9), case_services.transition, case, "reopened", actor=agent)
    act(berlin(11, 9, 30), case_services.transition, case, "in_progress", actor=agent)
    resolution2 = clk(case, RESOLUTION, 2)
    # Used: Fri 14:00-16:30 + Mon 11:00-17:00 + Tue 09:00-11:00 = 10 h 30; 13 h 30 left from Wed 09:00.
    assert resolution2.consumed == dt.timedelta(minutes=630)
    assert (resolution2.warn_at, resolution2.due_at) == (berlin(11, 16, 30), berlin(12, 14, 30))
    run5 = clk(case, CADENCE, 5)
    assert (run5.started_at, run5.due_at) == (berlin(11, 9), berlin(11, 13))

    assert sweep(berlin(11, 12, 5)) == 1  # update reminder
    assert sweep(berlin(11, 13, 5)) == 1  # update missed
    assert sweep(berlin(11, 16, 35)) == 1  # resolution at risk
    assert sweep(berlin(12, 14, 29)) == 0
    assert sweep(berlin(12, 14, 31)) == 1  # resolution breached
    assert clk(case, RESOLUTION, 2).state == ClockState.BREACHED
    assert sweep(berlin(20, 9)) == 0  # a week later: nothing left to record

    # --- The record: each warning and breach once, in order, with its notifications -------------------
    assert sla_events(case) == [
        ("sla_warning", FR, 1),
        ("sla_warning", TRIAGE, 1),
        ("sla_breached", TRIAGE, 1),
        ("cadence_reminder", CADENCE, 2),
        ("cadence_missed", CADENCE, 2),
        ("cadence_reminder", CADENCE, 5),
        ("cadence_missed", CADENCE, 5),
        ("sla_warning", RESOLUTION, 2),
        ("sla_breached", RESOLUTION, 2),
    ]
    assert all(
        e.actor_id is None and e.actor_name == "system" for e in case.events.filter(kind__startswith="sla_")
    )
    per_person = {
        user: sorted(Notification.objects.filter(recipient__username=user).values_list("kind", flat=True))
        for user in ("alice", "maria")
    }
    assert per_person == {
        "alice": sorted(
            ["sla_warning"] * 3 + ["sla_breached"] * 2 + ["cadence_reminder"] * 2 + ["cadence_missed"] * 2
        ),
        "maria": sorted(["sla_warning"] * 3 + ["sla_breached"] * 2 + ["cadence_missed"] * 2),
    }
    assert (
        Notification.objects.values("dedupe_key", "recipient").distinct().count()
        == Notification.objects.count()
    )
    sla_mails = [m for m in mail.outbox if "X-SupportDesk-Notification" in m.extra_headers]
    assert len(sla_mails) == 9  # one per SLA event (the other mails are the replies to the customer)
    assert len({m.extra_headers["X-SupportDesk-Notification"] for m in sla_mails}) == 9
    assert all("gus@globex.example" not in m.to for m in sla_mails)  # SLA alerts are internal
