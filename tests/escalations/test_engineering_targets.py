"""Engineering targets: who may set them, where the clocks show (pages, API), how the lifecycle stops
them, and the sweep's claim against a second worker. No calendar is set up here, so the clocks count
24x7 (the default when there is no default calendar) and due instants are plain sums."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from escalations import clocks, services, tasks
from escalations.events import EscalationEventKind
from escalations.models import ClockState, EngineeringClock, EngineeringTarget
from supportdesk.core.models import Notification, StaffProfile
from tests import factories

pytestmark = pytest.mark.django_db

T0 = factories.at(2026, 3, 2, 9, 0)


@pytest.fixture
def p2_targets(payments):
    return EngineeringTarget.objects.create(
        team=payments, severity="P2", acknowledge_minutes=60, first_response_minutes=120, resolve_minutes=480
    )


def _clock(escalation, kind) -> EngineeringClock:
    return EngineeringClock.objects.get(escalation=escalation, kind=kind)


def _targets_url(team) -> str:
    return reverse("escalations:team-targets", args=[team.slug])


def _post_p1(client, team, minutes="30"):
    return client.post(
        _targets_url(team),
        {
            "calendar": "",
            "P1_acknowledge_minutes": minutes,
            "P1_resolve_minutes": "240",
            "P1_warning_ratio": "0.5",
        },
    )


# --- Who may set and read the targets ------------------------------------------------------------


def test_a_manager_sets_a_teams_targets_on_its_page(client, manager, payments):
    client.force_login(manager)
    response = _post_p1(client, payments)
    assert response.status_code == 302
    target = EngineeringTarget.objects.get(team=payments, severity="P1")
    assert (target.acknowledge_minutes, target.first_response_minutes, target.resolve_minutes) == (
        30,
        None,
        240,
    )
    assert target.warning_ratio == 0.5
    assert not EngineeringTarget.objects.filter(team=payments, severity="P2").exists()  # left empty
    # Emptying the minutes removes the severity's targets.
    client.post(_targets_url(payments), {"P1_acknowledge_minutes": "", "P1_resolve_minutes": ""})
    assert not EngineeringTarget.objects.filter(team=payments).exists()


def test_a_bad_target_is_a_field_error(client, manager, payments):
    client.force_login(manager)
    response = _post_p1(client, payments, minutes="-5")
    assert response.status_code == 400
    assert not EngineeringTarget.objects.exists()


@pytest.mark.parametrize("who", ["agent", "engineer"])
def test_only_managers_change_targets(client, request, payments, p2_targets, scope_to, who):
    user = request.getfixturevalue(who)
    if who == "engineer":
        scope_to(user, payments)
    client.force_login(user)
    page = client.get(_targets_url(payments))
    assert page.status_code == 200
    html = page.content.decode()
    assert "60 min" in html
    assert "480 min" in html
    assert "Save targets" not in html
    assert _post_p1(client, payments).status_code == 403
    assert not EngineeringTarget.objects.filter(severity="P1").exists()
    with pytest.raises(PermissionDenied):
        clocks.save_targets(payments, actor=user, targets={"P1": {"acknowledge_minutes": 5}})


def test_an_engineer_sees_only_their_teams_targets(
    client, engineer, payments, identity, p2_targets, scope_to
):
    scope_to(engineer, identity)
    client.force_login(engineer)
    assert client.get(_targets_url(payments)).status_code == 404
    assert client.get(_targets_url(identity)).status_code == 200


# --- The clocks through the lifecycle ------------------------------------------------------------


def test_no_targets_no_clocks_and_the_ack_overdue_notice_still_applies(draft, agent):
    escalation = services.submit(draft, actor=agent, now=T0)
    assert not EngineeringClock.objects.filter(escalation=escalation).exists()
    assert services.notify_overdue_acknowledgements(now=T0 + dt.timedelta(hours=2)) == 1


def test_withdrawing_cancels_the_clocks_and_the_sweep_ignores_them(draft, agent, p2_targets):
    escalation = services.submit(draft, actor=agent, now=T0)
    services.withdraw(escalation, actor=agent, now=T0 + dt.timedelta(minutes=5), reason="Fixed itself")
    assert set(EngineeringClock.objects.values_list("state", flat=True)) == {ClockState.CANCELLED}
    assert services.record_clock_alerts(now=T0 + dt.timedelta(days=2)) == 0


def test_declining_meets_every_clock(draft, agent, engineer, p2_targets):
    escalation = services.submit(draft, actor=agent, now=T0)
    services.decline(
        escalation, reason="Works as designed.", actor=engineer, now=T0 + dt.timedelta(minutes=90)
    )
    assert _clock(escalation, "acknowledge").state == ClockState.BREACHED  # 90 > 60: met late
    assert _clock(escalation, "first_response").state == ClockState.MET
    assert _clock(escalation, "resolve").state == ClockState.MET
    # The late acknowledgement is recorded as a breach then, since no sweep had seen it.
    [breach] = escalation.case.events.filter(kind=EscalationEventKind.CLOCK_BREACHED)
    assert breach.created_at == T0 + dt.timedelta(minutes=90)
    assert breach.new_value["late"] is True
    assert services.record_clock_alerts(now=T0 + dt.timedelta(days=2)) == 0


def test_a_sweep_that_lost_the_claim_records_nothing(draft, agent, p2_targets):
    escalation = services.submit(draft, actor=agent, now=T0)
    # Another worker claimed the acknowledge breach a moment ago (and recorded it in its transaction).
    EngineeringClock.objects.filter(escalation=escalation, kind="acknowledge").update(
        breached_at=T0 + dt.timedelta(minutes=61), warned_at=T0 + dt.timedelta(minutes=45)
    )
    recorded = services.record_clock_alerts(now=T0 + dt.timedelta(minutes=95))
    assert recorded == 1  # only the first response's warning (at 90 of 120 min)
    kinds = list(escalation.case.events.filter(field="engineering_clock").values_list("kind", "old_value"))
    assert kinds == [(EscalationEventKind.CLOCK_WARNING, "first_response")]


def test_the_clock_task_is_scheduled_in_beat(settings):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "escalations.sweep_clocks"]
    assert len(entries) == 1
    assert tasks.sweep_clocks.name == "escalations.sweep_clocks"


def test_warnings_go_to_the_teams_engineers(draft, agent, engineer, payments, p2_targets, scope_to):
    scope_to(engineer, payments)
    services.submit(draft, actor=agent, now=T0)
    assert services.record_clock_alerts(now=T0 + dt.timedelta(minutes=50)) == 1
    [note] = Notification.objects.filter(kind="escalation_clock_warning")
    assert note.recipient == engineer
    assert "time to acknowledge target (60 min) nearly used" in note.title


# --- Where the clocks show -----------------------------------------------------------------------


def test_the_pages_show_each_clock_with_its_target_state_and_due_instant_in_the_viewers_zone(
    client, draft, agent, engineer, payments, p2_targets, scope_to
):
    scope_to(engineer, payments)
    StaffProfile.objects.update_or_create(user=engineer, defaults={"time_zone": "America/New_York"})
    escalation = services.submit(draft, actor=agent, now=T0)
    services.acknowledge(escalation, actor=engineer, now=T0 + dt.timedelta(minutes=20))
    client.force_login(engineer)
    html = client.get(reverse("escalations:engineer-view", args=[escalation.pk])).content.decode()
    assert "Engineering targets" in html
    assert "Time to acknowledge" in html
    assert "60 min" in html
    ack_row = html.split('data-clock="acknowledge"')[1].split("</tr>")[0]
    assert 'clock-met">met</td>' in ack_row  # acknowledged after 20 of 60 min
    assert 'met <time datetime="2026-03-02T04:20:00-05:00">' in ack_row
    # Resolve is due 8 h after 09:00 UTC: 17:00 UTC is 12:00 in New York (EST).
    assert 'datetime="2026-03-02T12:00:00-05:00"' in html
    assert "overdue" in html  # the real now is long past that
    client.force_login(agent)
    support_page = client.get(reverse("escalations:detail", args=[escalation.pk])).content.decode()
    assert "Time to first engineering response" in support_page


def test_the_api_lists_the_clocks(client, draft, agent, engineer, p2_targets):
    escalation = services.submit(draft, actor=agent, now=T0)
    client.force_login(engineer)
    body = client.get(f"/api/escalations/{escalation.pk}/").json()
    by_kind = {c["kind"]: c for c in body["engineering_clocks"]}
    assert list(by_kind) == ["acknowledge", "first_response", "resolve"]
    assert by_kind["resolve"]["target_minutes"] == 480
    assert by_kind["resolve"]["due_at"].startswith("2026-03-02T17:00:00")
    assert by_kind["acknowledge"]["state"] == "running"
    assert by_kind["acknowledge"]["state_words"] == "overdue"


def test_the_case_page_shows_where_the_time_went(client, draft, agent, engineer):
    services.submit(draft, actor=agent, now=draft.created_at)
    client.force_login(agent)
    html = client.get(reverse("cases:detail", args=[draft.case.key])).content.decode()
    assert "Where the time went" in html
    assert "Customer wait" in html
