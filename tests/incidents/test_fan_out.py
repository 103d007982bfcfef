"""One update, fanned out without holding the incident: each case gets it exactly once, in chunks of
its own transactions, and what a stopped process left pending is finished by the beat task."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import OperationalError, connection, transaction

from cases import services as case_services
from cases.models import CaseEvent, EventKind, Status
from incidents import services, tasks
from incidents.models import DeliveryState, MajorIncident, UpdateDelivery
from sla.models import ClockState, SlaClock, Target
from supportdesk.core.models import OutboundMessage
from tests import factories
from tests.factories import at

T0 = at(2026, 3, 4, 10, 0)
MIN = dt.timedelta(minutes=1)


def _cases(agent, n: int):
    cases = []
    for i in range(n):
        org = factories.OrganisationFactory(name=f"Customer {i}", tier="enterprise")
        contact = factories.ContactFactory(organisation=org, email=f"ops@customer{i}.example")
        case = case_services.create_case(
            title="Checkout down",
            organisation=org,
            requester=contact,
            severity="P1",
            assignee=agent,
            actor=agent,
            now=T0,
        )
        cases.append(case_services.transition(case, Status.TRIAGED, severity="P1", actor=agent, now=T0))
    return cases


def _incident(agent, cases):
    incident = services.declare(title="Checkout is down", severity="P1", commander=agent, actor=agent, now=T0)
    services.link_cases(incident, cases, actor=agent, now=T0)
    return incident


def _replies(case, body: str) -> int:
    return CaseEvent.objects.filter(case=case, kind=EventKind.PUBLIC_REPLY, body=body).count()


@pytest.mark.django_db
def test_a_process_that_stops_part_way_leaves_the_rest_to_the_beat_task_each_case_once(agent, monkeypatch):
    cases = _cases(agent, 5)
    incident = _incident(agent, cases)
    monkeypatch.setattr(services, "DELIVERY_CHUNK", 2)
    real = case_services.add_public_reply
    calls = []

    def dies_on_the_third(case, **kwargs):
        calls.append(case.pk)
        if len(calls) == 3:
            raise RuntimeError("worker killed")
        return real(case, **kwargs)

    monkeypatch.setattr(case_services, "add_public_reply", dies_on_the_third)
    with pytest.raises(RuntimeError):
        services.post_update(incident, body="We are on it.", public=True, actor=agent, now=T0 + 5 * MIN)
    monkeypatch.setattr(case_services, "add_public_reply", real)

    update = incident.updates.get()
    states = dict(UpdateDelivery.objects.filter(update=update).values_list("case_id", "state"))
    # The first chunk (two cases) committed; the chunk that died rolled back whole.
    assert sorted(states.values()) == [DeliveryState.DELIVERED] * 2 + [DeliveryState.PENDING] * 3
    # The incident's own cadence was met when the update was written.
    incident.refresh_from_db()
    assert incident.next_update_due_at == T0 + 35 * MIN

    with time_machine.travel(T0 + 6 * MIN, tick=False):
        assert tasks.resume_deliveries() == 0  # its writer may still be at it
    with time_machine.travel(T0 + 8 * MIN, tick=False):
        assert tasks.resume_deliveries() == 3
        assert tasks.resume_deliveries() == 0
    for case in cases:
        assert _replies(case, "We are on it.") == 1
        assert OutboundMessage.objects.filter(case_id=case.pk, body="We are on it.").count() == 1
    assert set(UpdateDelivery.objects.filter(update=update).values_list("state", flat=True)) == {
        DeliveryState.DELIVERED
    }
    # Delivering again finds nothing to do.
    assert services.deliver(update, actor=agent, now=T0 + 9 * MIN).done == []


@pytest.mark.django_db
def test_the_update_reaches_the_cases_linked_when_it_was_written_each_cadence_met(agent):
    first, second, late = _cases(agent, 3)
    incident = _incident(agent, [first, second])
    case_services.transition(second, Status.RESOLVED, actor=agent, now=T0 + MIN)
    case_services.auto_close_resolved(now=T0 + dt.timedelta(days=8))
    outcome = services.post_update(incident, body="On it.", public=True, actor=agent, now=T0 + 10 * MIN)
    assert outcome.done == [first.key]
    assert [key for key, _ in outcome.refused] == [second.key]
    assert "closed" in outcome.refused[0][1]
    refused = UpdateDelivery.objects.get(update=outcome.update, case=second)
    assert (refused.state, refused.event_id) == (DeliveryState.REFUSED, None)
    delivered = UpdateDelivery.objects.get(update=outcome.update, case=first)
    assert delivered.state == DeliveryState.DELIVERED
    assert delivered.event_id == CaseEvent.objects.get(case=first, body="On it.").pk
    cadence = SlaClock.objects.filter(case=first, target=Target.UPDATE_CADENCE).order_by("run")
    assert [(c.state, c.met_at) for c in cadence] == [
        (ClockState.MET, T0 + 10 * MIN),
        (ClockState.RUNNING, None),
    ]

    services.link_cases(incident, [late], actor=agent, now=T0 + 11 * MIN)
    assert _replies(late, "On it.") == 0  # linked after the update was written
    services.post_update(incident, body="Fixing.", public=True, actor=agent, now=T0 + 20 * MIN)
    assert _replies(late, "Fixing.") == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")
def test_the_incident_is_not_locked_while_the_cases_get_the_update(monkeypatch):
    agent = factories.AgentFactory(username="alice")
    cases = _cases(agent, 4)
    incident = _incident(agent, cases)
    real = case_services.add_public_reply
    probes: list[bool] = []

    def probe() -> None:
        """Another request (say, linking a case) locks the incident at once, without waiting."""
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT 1 FROM incidents_majorincident WHERE id = %s FOR UPDATE NOWAIT", [incident.pk]
                )
            probes.append(True)
        except OperationalError:
            probes.append(False)
        finally:
            connection.close()

    def replying(case, **kwargs):
        thread = threading.Thread(target=probe)
        thread.start()
        thread.join()
        return real(case, **kwargs)

    monkeypatch.setattr(case_services, "add_public_reply", replying)
    outcome = services.post_update(incident, body="On it.", public=True, actor=agent, now=T0 + MIN)
    assert len(outcome.done) == 4
    assert probes == [True] * 4
    assert MajorIncident.objects.get(pk=incident.pk).next_update_due_at == T0 + 31 * MIN


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="two connections at once need PostgreSQL")
def test_two_processes_posting_the_same_update_give_each_case_one_reply(monkeypatch):
    agent = factories.AgentFactory(username="alice")
    cases = _cases(agent, 12)
    incident = _incident(agent, cases)
    monkeypatch.setattr(services, "DELIVERY_CHUNK", 3)
    update = services.start_update(incident, body="On it.", public=True, actor=agent, now=T0 + MIN)
    barrier = threading.Barrier(2)
    done: list[list[str]] = []

    def worker() -> None:
        try:
            barrier.wait()
            done.append(services.deliver(update, actor=agent, now=T0 + MIN).done)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(done[0] + done[1]) == sorted(c.key for c in cases)
    for case in cases:
        assert _replies(case, "On it.") == 1
        assert OutboundMessage.objects.filter(case_id=case.pk, body="On it.").count() == 1


@pytest.mark.django_db
def test_a_large_fan_out_asks_workers_to_help_after_commit(
    agent, monkeypatch, django_capture_on_commit_callbacks
):
    cases = _cases(agent, 3)
    incident = _incident(agent, cases)
    monkeypatch.setattr(services, "FAN_OUT_HELPERS_FROM", 3)
    asked = []
    monkeypatch.setattr(tasks.deliver_update, "delay", lambda update_id: asked.append(update_id))
    with django_capture_on_commit_callbacks(execute=True):
        outcome = services.post_update(incident, body="On it.", public=True, actor=agent, now=T0 + MIN)
    assert asked == [outcome.update.pk] * services.FAN_OUT_HELPERS
    assert len(outcome.done) == 3  # the caller posted every case itself
    # A helper that comes late finds nothing left; each case has the update once.
    with time_machine.travel(T0 + 2 * MIN, tick=False):
        assert tasks.deliver_update(outcome.update.pk) == 0
    assert all(_replies(case, "On it.") == 1 for case in cases)
    # A small incident asks nobody.
    asked.clear()
    monkeypatch.setattr(services, "FAN_OUT_HELPERS_FROM", 4)
    with django_capture_on_commit_callbacks(execute=True):
        services.post_update(incident, body="Still on it.", public=True, actor=agent, now=T0 + 3 * MIN)
    assert asked == []
