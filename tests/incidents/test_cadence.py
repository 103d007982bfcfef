"""The incident's own update cadence: each public update meets it and starts the next period; the
commander is reminded once per overdue period, by the beat task, however often it runs."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection
from django.urls import reverse

from incidents import services, tasks
from incidents.models import IncidentReminder, MajorIncident
from supportdesk.core.models import MailKind, Notification, OutboundMessage
from tests import factories
from tests.factories import at

pytestmark = pytest.mark.django_db

T0 = at(2026, 3, 4, 10, 0)
MIN = dt.timedelta(minutes=1)


def _declare(commander, *, severity="P1", cadence=None, now=T0):
    return services.declare(
        title="Checkout is down",
        severity=severity,
        commander=commander,
        actor=commander,
        now=now,
        cadence_minutes=cadence,
    )


def _remind(at_minute: int) -> int:
    """The beat task at T0 + ``at_minute`` minutes."""
    with time_machine.travel(T0 + at_minute * MIN, tick=False):
        return tasks.remind_overdue()


def _reminders(incident) -> list[dt.datetime]:
    return list(
        IncidentReminder.objects.filter(incident=incident)
        .order_by("period_start")
        .values_list("period_start", flat=True)
    )


def test_the_first_update_is_due_one_cadence_after_the_declaration_by_severity(manager):
    assert _declare(manager).next_update_due_at == T0 + 30 * MIN
    assert _declare(manager, severity="P2").next_update_due_at == T0 + 120 * MIN
    chosen = _declare(manager, severity="P2", cadence=45)
    assert (chosen.cadence_minutes, chosen.next_update_due_at) == (45, T0 + 45 * MIN)
    with pytest.raises(services.IncidentError, match="between 5 and 1440"):
        _declare(manager, cadence=3)


def test_each_public_update_meets_the_cadence_and_starts_the_next_period(manager):
    incident = _declare(manager)
    first = services.post_update(incident, body="On it.", public=True, actor=manager, now=T0 + 20 * MIN)
    incident.refresh_from_db()
    assert incident.next_update_due_at == T0 + 50 * MIN
    assert (first.update.due_at, first.update.on_time) == (T0 + 30 * MIN, True)
    # An internal note tells no customer: the clock does not move.
    services.post_update(incident, body="Proxy?", public=False, actor=manager, now=T0 + 40 * MIN)
    incident.refresh_from_db()
    assert incident.next_update_due_at == T0 + 50 * MIN
    late = services.post_update(incident, body="Still on it.", public=True, actor=manager, now=T0 + 65 * MIN)
    assert (late.update.due_at, late.update.on_time) == (T0 + 50 * MIN, False)
    incident.refresh_from_db()
    assert incident.next_update_due_at == incident.reminder_due_at == T0 + 95 * MIN
    services.resolve(incident, actor=manager, now=T0 + 70 * MIN)
    incident.refresh_from_db()
    assert incident.next_update_due_at is None
    assert incident.reminder_due_at is None


def test_the_commander_is_reminded_once_per_overdue_period(manager, agent):
    incident = _declare(manager)
    assert _remind(29) == 0
    assert _remind(31) == 1
    assert _remind(31) == 0  # the beat again, or a second worker: nothing more
    assert _remind(45) == 0  # the same overdue period
    assert _remind(61) == 1  # a second period (one cadence later) without an update
    assert _reminders(incident) == [T0 + 30 * MIN, T0 + 60 * MIN]

    notes = Notification.objects.filter(recipient=manager, kind="incident_update_overdue").order_by(
        "created_at"
    )
    assert [n.title for n in notes] == [
        f"{incident.key} customer update overdue by 1 min: Checkout is down",
        f"{incident.key} customer update overdue by 31 min: Checkout is down",
    ]
    assert notes[0].url == reverse("incidents:detail", args=[incident.key])
    mails = OutboundMessage.objects.filter(kind=MailKind.CADENCE_REMINDER).order_by("created_at")
    assert [m.to for m in mails] == [[manager.email], [manager.email]]
    assert not Notification.objects.filter(recipient=agent).exists()  # the commander only

    # An update ends the overdue run; the next reminder waits for the next due instant.
    services.post_update(incident, body="Rolling back.", public=True, actor=agent, now=T0 + 70 * MIN)
    assert _remind(80) == 0
    assert _remind(101) == 1
    assert _reminders(incident)[-1] == T0 + 100 * MIN
    services.resolve(incident, actor=manager, now=T0 + 110 * MIN)
    assert _remind(200) == 0


def test_a_stopped_beat_reminds_once_for_the_periods_it_missed(manager):
    incident = _declare(manager)
    assert _remind(200) == 1  # due at 30: six periods passed unseen, one reminder
    incident.refresh_from_db()
    assert incident.reminder_due_at == T0 + 210 * MIN  # the next period after now
    assert _remind(205) == 0
    assert _remind(211) == 1


def test_a_worker_that_read_the_due_incidents_before_another_reminded_them_reminds_nobody(manager):
    incident = _declare(manager)
    now = T0 + 31 * MIN
    stale = list(
        MajorIncident.objects.filter(pk=incident.pk).values_list("pk", "reminder_due_at", "cadence_minutes")
    )
    assert services.remind_overdue(now=now) == 1  # the other worker
    # This worker goes on with what it read: the conditional claim finds the period taken.
    assert [services.claim_reminder(*row, now=now) for row in stale] == [False]
    assert IncidentReminder.objects.count() == 1
    assert Notification.objects.filter(kind="incident_update_overdue").count() == 1


def test_changing_the_cadence_moves_the_next_update_from_the_last_one(manager):
    incident = _declare(manager)
    services.post_update(incident, body="On it.", public=True, actor=manager, now=T0 + 10 * MIN)
    incident = services.set_cadence(incident, minutes=60, actor=manager, now=T0 + 20 * MIN)
    assert incident.next_update_due_at == T0 + 70 * MIN
    incident = services.set_cadence(incident, minutes=5, actor=manager, now=T0 + 20 * MIN)
    assert incident.next_update_due_at == T0 + 15 * MIN  # already overdue: the next sweep reminds
    assert services.remind_overdue(now=T0 + 21 * MIN) == 1


def test_the_incident_page_shows_the_cadence_and_the_last_reminder(client, manager):
    incident = _declare(manager)
    _remind(31)
    client.force_login(manager)
    with time_machine.travel(T0 + 35 * MIN, tick=False):
        page = client.get(reverse("incidents:detail", args=[incident.key])).content.decode()
    assert "Every 30 minutes." in page
    assert "<strong>Update overdue</strong>" in page
    assert "(overdue 5m)" in page
    assert "Maria Manager reminded" in page
    with time_machine.travel(T0 + 36 * MIN, tick=False):
        client.post(reverse("incidents:update", args=[incident.key]), {"body": "On it.", "public": "true"})
        page = client.get(reverse("incidents:detail", args=[incident.key])).content.decode()
    assert "Next update due" in page
    assert "(in 30m)" in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once need PostgreSQL")
def test_two_workers_at_once_remind_once():
    commander = factories.ManagerFactory(username="maria")
    incidents = [_declare(commander) for _ in range(20)]
    barrier = threading.Barrier(2)
    sent: list[int] = []

    def worker() -> None:
        try:
            barrier.wait()
            sent.append(services.remind_overdue(now=T0 + 31 * MIN))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sent) == 20
    assert IncidentReminder.objects.count() == 20
    assert Notification.objects.filter(kind="incident_update_overdue").count() == 20
    assert OutboundMessage.objects.filter(kind=MailKind.CADENCE_REMINDER).count() == 20
    assert {i.pk for i in incidents} == set(IncidentReminder.objects.values_list("incident_id", flat=True))
