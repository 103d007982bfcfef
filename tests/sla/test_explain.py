"""A clock explains itself: its policy and terms, the office hours it counted, each pause and
re-target, and the arithmetic of its due instant (page and API), worked out by hand below.

Globex (tier business) counts business hours of the Berlin office (Mon-Fri 09:00-17:00); its P2
policy: first response 1 h, triage 2 h, an update every 4 h, resolution 24 h, warnings at 75 %.
March 2026 in Berlin is CET (UTC+1).
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from cases import services as case_services
from cases.models import Status
from sla.models import SlaClock, Target
from tests.factories import at
from tests.sla.factories import OpeningHoursFactory, SlaPolicyFactory

pytestmark = pytest.mark.django_db
H = dt.timedelta(hours=1)


def berlin(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return at(2026, 3, day, hour, minute, tz="Europe/Berlin")


def _explanation(client, case, target: str, run: int = 1) -> dict:
    clock = SlaClock.objects.get(case=case, target=target, run=run)
    response = client.get(f"/api/cases/{case.key}/sla/{clock.pk}/explanation/")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def api(agent):
    client = APIClient()
    client.force_authenticate(agent)
    return client


@pytest.fixture
def friday_case(globex, globex_contact, business_p2, agent, time_machine):
    """Opened Friday 6 March 15:00; the customer is asked a question Monday 10:00 and answers 12:30."""
    time_machine.move_to(berlin(6, 15), tick=False)
    case = case_services.create_case(
        title="Exports time out",
        organisation=globex,
        requester=globex_contact,
        severity="P2",
        assignee=agent,
        actor=agent,
        now=berlin(6, 15),
    )
    case_services.transition(case, Status.TRIAGED, actor=agent, now=berlin(6, 15, 30), severity="P2")
    case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=berlin(6, 15, 40))
    case_services.transition(case, Status.WAITING_ON_CUSTOMER, actor=agent, now=berlin(9, 10))
    case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=berlin(9, 12, 30))
    time_machine.move_to(berlin(9, 13), tick=False)
    return case


def test_the_resolution_clock_lists_the_office_hours_it_counted_and_its_pause(api, friday_case):
    body = _explanation(api, friday_case, Target.RESOLUTION)
    # 24 business hours from Friday 15:00: Fri 2 h, Mon 5.5 h (8 h open, 2.5 h of them paused),
    # Tue 8 h, Wed 8 h (23.5 h), Thu 0.5 h: due Thursday 12 March 09:30 Berlin, 08:30 UTC.
    assert body["due_at"] == "2026-03-12T08:30:00Z"
    assert body["matches"] is True
    assert (body["target_minutes"], body["business_time"], body["calendar"]) == (1440, True, "Berlin office")
    assert body["policy"] == "Business · P2"
    assert body["left_seconds"] == 24 * 3600
    assert body["paused_seconds"] == int(2.5 * 3600)
    assert body["pauses"] == [
        {"start": "2026-03-09T09:00:00Z", "end": "2026-03-09T11:30:00Z", "business_seconds": int(2.5 * 3600)}
    ]
    spans = [(s["start"], s["end"], s["counted_seconds"]) for s in body["spans"]]
    assert spans == [
        ("2026-03-06T14:00:00Z", "2026-03-06T16:00:00Z", 2 * 3600),
        ("2026-03-09T08:00:00Z", "2026-03-09T16:00:00Z", int(5.5 * 3600)),  # 8 h open, 2.5 h paused
        ("2026-03-10T08:00:00Z", "2026-03-10T16:00:00Z", 8 * 3600),
        ("2026-03-11T08:00:00Z", "2026-03-11T16:00:00Z", 8 * 3600),
        ("2026-03-12T08:00:00Z", "2026-03-12T08:30:00Z", 1800),
    ]
    assert body["spans"][-1]["running_total_seconds"] == 24 * 3600  # the spans add up to the target
    assert any("paused once" in step and "2 h 30 min of business time" in step for step in body["steps"])


def test_a_severity_change_is_listed_as_a_retarget(api, friday_case, agent, globex, time_machine):
    SlaPolicyFactory(
        tier="business", severity="P1", business_time=True, warning_ratio=0.5, resolution_minutes=480
    )
    time_machine.move_to(berlin(9, 13, 30), tick=False)
    case_services.update_case(friday_case, actor=agent, now=berlin(9, 13, 30), severity="P1")
    body = _explanation(api, friday_case, Target.RESOLUTION)
    assert body["retargets"] == [{"at": "2026-03-09T12:30:00Z", "old": "P2", "new": "P1"}]
    assert body["target_minutes"] == 480
    # 8 business hours from Friday 15:00: Fri 2 h, Mon 5.5 h (2.5 h paused), Tue 0.5 h: Tuesday 09:30.
    assert body["due_at"] == "2026-03-10T08:30:00Z"
    assert body["matches"] is True


def test_a_calendar_changed_since_is_named_with_the_due_instant_it_would_give(api, friday_case, office_hours):
    # The office now also opens on Saturdays 10:00-14:00: the stored deadlines predate that.
    OpeningHoursFactory(calendar=office_hours, weekday=5, start=dt.time(10), end=dt.time(14))
    office_hours.save()  # a new version: the arithmetic's calendar is built again
    body = _explanation(api, friday_case, Target.RESOLUTION)
    assert body["matches"] is False
    assert body["due_at"] == "2026-03-12T08:30:00Z"
    # Four more hours on Saturday 7 March: Fri 2 h, Sat 4 h, Mon 5.5 h, Tue 8 h (19.5 h), Wed 4.5 h:
    # Wednesday 11 March 13:30 Berlin.
    assert body["recomputed_due_at"] == "2026-03-11T12:30:00Z"


def test_the_page_shows_the_arithmetic_in_the_viewers_zone(client, agent, friday_case):
    client.force_login(agent)
    clock = SlaClock.objects.get(case=friday_case, target=Target.RESOLUTION)
    case_page = client.get(reverse("cases:detail", args=[friday_case.key])).content.decode()
    url = reverse("sla:clock-explanation", args=[clock.pk])
    assert url in case_page  # each clock links to its explanation
    html = client.get(url).content.decode()
    assert f"Why {friday_case.key}’s resolution is due" in html
    assert 'id="span-table"' in html
    assert 'id="pause-table"' in html
    assert "Berlin office" in html
    assert "clock-moved" not in html


def test_only_support_staff_see_an_explanation(client, engineer, friday_case):
    clock = SlaClock.objects.get(case=friday_case, target=Target.RESOLUTION)
    client.force_login(engineer)
    assert client.get(reverse("sla:clock-explanation", args=[clock.pk])).status_code == 403
    api = APIClient()
    api.force_authenticate(engineer)
    assert api.get(f"/api/cases/{friday_case.key}/sla/{clock.pk}/explanation/").status_code == 403


def test_a_clock_of_another_case_is_not_found(api, friday_case, globex, globex_contact, agent):
    other = case_services.create_case(
        title="Other",
        organisation=globex,
        requester=globex_contact,
        severity="P2",
        actor=agent,
        now=berlin(9, 13),
    )
    clock = SlaClock.objects.get(case=other, target=Target.RESOLUTION)
    assert api.get(f"/api/cases/{friday_case.key}/sla/{clock.pk}/explanation/").status_code == 404
