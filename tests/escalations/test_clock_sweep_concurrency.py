"""Two sweeps at once on PostgreSQL (two connections, started together): every engineering clock's
breach is recorded exactly once, whichever sweep claims it."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from cases import services as case_services
from cases.models import CaseEvent, Status
from escalations import services
from escalations.events import EscalationEventKind
from escalations.models import EngineeringClock, EngineeringTarget
from tests import factories

from .conftest import complete_package

pytestmark = pytest.mark.django_db(transaction=True)

T0 = factories.at(2026, 3, 2, 9, 0)


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("two concurrent writers need PostgreSQL (SQLite serialises the whole database)")


def test_two_sweeps_at_once_record_each_breach_once(organisation, contact, agent, payments):
    EngineeringTarget.objects.create(
        team=payments, severity="P2", acknowledge_minutes=60, first_response_minutes=120, resolve_minutes=480
    )
    for i in range(12):
        case = case_services.create_case(
            title=f"Checkout fails {i}",
            organisation=organisation,
            requester=contact,
            severity="P2",
            actor=agent,
            now=T0,
        )
        case = case_services.transition(
            case, Status.TRIAGED, actor=agent, now=T0, severity="P2", assignee=agent
        )
        draft = services.create_draft(case=case, team=payments, actor=agent, now=T0, **complete_package())
        services.submit(draft, actor=agent, now=T0)
    now = T0 + dt.timedelta(hours=2, minutes=1)  # acknowledge and first response are past due
    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            start.wait(timeout=30)
            counts.append(services.record_clock_alerts(now=now, batch=5))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len(counts) == 2  # both sweeps ran to the end
    assert sum(counts) == 24
    assert CaseEvent.objects.filter(kind=EscalationEventKind.CLOCK_BREACHED).count() == 24
    assert not CaseEvent.objects.filter(kind=EscalationEventKind.CLOCK_WARNING).exists()
    assert EngineeringClock.objects.filter(breached_at=now).count() == 24
    assert services.record_clock_alerts(now=now) == 0
