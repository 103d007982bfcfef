"""Engineering clocks: a team's internal targets through the escalation lifecycle, in business time of
the team's calendar, with warnings and breaches recorded once; and where the case's time went.

The scenario's calendar is open Monday to Friday, 09:00-17:00 UTC. 2026-03-02 is a Monday.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cases import services as case_services
from cases.models import CaseEvent, Status
from escalations import selectors, services, tasks
from escalations.events import EscalationEventKind
from escalations.models import ClockState, EngineeringClock, EngineeringTarget
from sla.models import BusinessCalendar, OpeningHours
from supportdesk.core.models import Notification
from tests import factories

from .conftest import complete_package

pytestmark = pytest.mark.django_db

MON = dt.date(2026, 3, 2)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """An instant of the scenario's week: ``day`` 0 is Monday 2 March 2026 (UTC)."""
    d = MON + dt.timedelta(days=day)
    return factories.at(d.year, d.month, d.day, hour, minute)


@pytest.fixture
def office_hours(db) -> BusinessCalendar:
    calendar = BusinessCalendar.objects.create(name="Engineering office", time_zone="UTC")
    for weekday in range(5):
        OpeningHours.objects.create(calendar=calendar, weekday=weekday, start=dt.time(9), end=dt.time(17))
    return calendar


@pytest.fixture
def payments_targets(payments, office_hours) -> EngineeringTarget:
    payments.calendar = office_hours
    payments.save()
    return EngineeringTarget.objects.create(
        team=payments,
        severity="P2",
        acknowledge_minutes=60,
        first_response_minutes=120,
        resolve_minutes=480,
        warning_ratio=0.75,
    )


@pytest.fixture
def payments_engineers(engineer, payments, scope_to):
    pia = factories.EngineerFactory(username="pia", email="pia@eng.example")
    scope_to(engineer, payments)
    scope_to(pia, payments)
    return [engineer, pia]


def _clock(escalation, kind: str) -> EngineeringClock:
    return EngineeringClock.objects.get(escalation=escalation, kind=kind)


def _events(case, kind: str) -> list[CaseEvent]:
    return list(CaseEvent.objects.filter(case=case, kind=kind))


def test_clocks_through_acknowledge_a_bounce_and_resolve_with_the_time_attributed_by_hand(
    organisation, contact, agent, engineer, payments, payments_targets, payments_engineers, time_machine
):
    def sweep(now: dt.datetime) -> int:
        time_machine.move_to(now, tick=False)
        return tasks.sweep_clocks()

    # Monday 08:00 the case opens; 08:30 it is triaged (P2, Alice).
    case = case_services.create_case(
        title="Checkout fails with 502",
        organisation=organisation,
        requester=contact,
        severity="P2",
        actor=agent,
        now=at(0, 8),
    )
    case = case_services.transition(
        case, Status.TRIAGED, actor=agent, now=at(0, 8, 30), severity="P2", assignee=agent
    )
    draft = services.create_draft(case=case, team=payments, actor=agent, now=at(0, 15), **complete_package())
    # Monday 16:00 it goes to Payments: the three clocks start in the team's office hours.
    escalation = services.submit(draft, actor=agent, now=at(0, 16))
    ack = _clock(escalation, "acknowledge")
    assert (ack.due_at, ack.warn_at) == (at(0, 17), at(0, 16, 45))  # 60 min; warned at 45
    # 120 min: Monday 16-17, Tuesday 09-10. Warned at 90: Tuesday 09:30.
    first = _clock(escalation, "first_response")
    assert (first.due_at, first.warn_at) == (at(1, 10), at(1, 9, 30))
    # 480 min: Monday 16-17 (60), Tuesday 09-16 (420). Warned at 360: Tuesday 14:00.
    resolve = _clock(escalation, "resolve")
    assert (resolve.due_at, resolve.warn_at) == (at(1, 16), at(1, 14))

    # 16:50 a sweep warns about the acknowledgement, once however often it runs.
    assert sweep(at(0, 16, 50)) == 1
    assert sweep(at(0, 16, 50)) == 0
    # 17:30 it records the breach, once; the old ack-overdue notice leaves this escalation to the clock.
    assert sweep(at(0, 17, 30)) == 1
    assert sweep(at(0, 17, 30)) == 0
    assert tasks.notify_ack_overdue() == 0

    # Tuesday 09:10 engineering asks for more: that is its first response (70 of 120 min, on time).
    # The resolve clock pauses with 70 min used; the acknowledge clock, past due, does not pause.
    escalation = services.request_info(
        escalation, questions="Which tenant?", actor=engineer, now=at(1, 9, 10)
    )
    first = _clock(escalation, "first_response")
    assert (first.state, first.met_at) == (ClockState.MET, at(1, 9, 10))
    resolve = _clock(escalation, "resolve")
    assert (resolve.state, resolve.used) == (ClockState.PAUSED, dt.timedelta(minutes=70))
    assert sweep(at(1, 10, 30)) == 0  # nothing is due while support holds it (the old due 16:00 aside)

    # 11:10 support answers: 410 min left from 11:10 (Tuesday 350 to 17:00, Wednesday 60): Wed 10:00.
    escalation = services.answer_info_request(escalation, answer="acme-prod", actor=agent, now=at(1, 11, 10))
    resolve = _clock(escalation, "resolve")
    assert resolve.state == ClockState.RUNNING
    assert resolve.paused_total == dt.timedelta(minutes=120)
    assert resolve.due_at == at(2, 10)
    assert resolve.warn_at == at(1, 16)  # 360 - 70 = 290 min from 11:10

    # 11:40 acknowledged (late), 12:00 started, 15:00 resolved on time.
    escalation = services.acknowledge(escalation, actor=engineer, now=at(1, 11, 40))
    escalation = services.start(escalation, actor=engineer, now=at(1, 12))
    escalation = services.resolve(escalation, resolution="Raised the timeout.", actor=engineer, now=at(1, 15))
    ack, resolve = _clock(escalation, "acknowledge"), _clock(escalation, "resolve")
    assert (ack.state, ack.met_at, ack.breached_at) == (ClockState.BREACHED, at(1, 11, 40), at(0, 17, 30))
    assert (resolve.state, resolve.met_at) == (ClockState.MET, at(1, 15))
    assert resolve.used == dt.timedelta(minutes=70 + 230)  # Monday 60, Tuesday 09:00-09:10 and 11:10-15:00
    assert sweep(at(2, 12)) == 0  # nothing live any more

    # Exactly one warning and one breach on the timeline, and each engineer told once of each.
    [warning] = _events(case, EscalationEventKind.CLOCK_WARNING)
    [breach] = _events(case, EscalationEventKind.CLOCK_BREACHED)
    assert (warning.created_at, warning.old_value) == (at(0, 16, 50), "acknowledge")
    assert (breach.created_at, breach.old_value) == (at(0, 17, 30), "acknowledge")
    assert "time to acknowledge target of 60 min missed" in breach.body
    for kind in ("escalation_clock_warning", "escalation_clock_breached"):
        told = Notification.objects.filter(kind=kind).values_list("recipient__username", flat=True)
        assert sorted(told) == ["erik", "pia"]

    # The case, back in progress at 15:00, waits on the customer 15:30 to Wednesday 10:00, and is
    # resolved Wednesday 11:00.
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS
    case = case_services.transition(case, Status.WAITING_ON_CUSTOMER, actor=agent, now=at(1, 15, 30))
    case = case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=at(2, 10))
    case = case_services.transition(case, Status.RESOLVED, actor=agent, now=at(2, 11))

    # By hand, Monday 08:00 to Wednesday 11:00 (51 h = 183,600 s):
    # support: Mon 08:00-16:00 (28,800) + needs info Tue 09:10-11:10 (7,200)
    #          + Tue 15:00-15:30 (1,800) + Wed 10:00-11:00 (3,600)                 = 41,400 s
    # engineering: Mon 16:00-Tue 09:10 (61,800) + Tue 11:10-15:00 (13,800)          = 75,600 s
    # customer wait: Tue 15:30-Wed 10:00                                             = 66,600 s
    split = selectors.case_time_attribution(case, now=at(4, 12))
    assert split.support == dt.timedelta(seconds=41_400)
    assert split.engineering == dt.timedelta(seconds=75_600)
    assert split.customer_wait == dt.timedelta(seconds=66_600)
    assert split.total == at(2, 11) - at(0, 8)
    assert split.by_team == {payments.pk: dt.timedelta(seconds=75_600)}

    week = selectors.time_attribution_by_team(at(0, 0), at(7, 0))
    assert week == {
        "cases": 1,
        "support_seconds": 41_400.0,
        "engineering_seconds": 75_600.0,
        "customer_wait_seconds": 66_600.0,
        "teams": [{"team_id": payments.pk, "team": "Payments", "cases": 1, "engineering_seconds": 75_600.0}],
    }
    assert selectors.time_attribution_by_team(at(3, 0), at(7, 0))["cases"] == 0  # resolved Wednesday
