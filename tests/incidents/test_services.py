"""Major incidents: one fault, many customers. An outage scenario with a controlled clock."""

from __future__ import annotations

import datetime as dt

import pytest

from cases import services as case_services
from cases.models import CaseEvent, EventKind, Status
from incidents import services
from incidents.models import IncidentStatus, UpdateDelivery
from sla.models import ClockState, SlaClock, Target
from supportdesk.core.errors import DomainError
from supportdesk.core.models import OutboundMessage
from tests import factories
from tests.factories import at

T0 = at(2026, 3, 4, 10, 0)  # a Wednesday
MIN = dt.timedelta(minutes=1)


def _outage_cases(agent, *, organisations=10, per_organisation=3):
    """Enterprise P1 cases, from several people at each of several customers, being worked."""
    cases = []
    for o in range(organisations):
        org = factories.OrganisationFactory(name=f"Customer {o:02d}", tier="enterprise")
        for p in range(per_organisation):
            contact = factories.ContactFactory(organisation=org, email=f"person{p}@customer{o:02d}.example")
            case = case_services.create_case(
                title=f"Checkout down for customer {o:02d}",
                organisation=org,
                requester=contact,
                severity="P1",
                assignee=agent,
                actor=agent,
                now=T0 + len(cases) * MIN,
            )
            case = case_services.transition(
                case, Status.TRIAGED, severity="P1", actor=agent, now=T0 + 40 * MIN
            )
            cases.append(case_services.transition(case, Status.IN_PROGRESS, actor=agent, now=T0 + 40 * MIN))
    return cases


@pytest.mark.django_db
def test_an_outage_four_updates_reach_every_requester_once_in_their_own_thread_and_resolve_all(
    agent, manager
):
    cases = _outage_cases(agent)
    incident = services.declare(
        title="Checkout is down",
        severity="P1",
        product_area="checkout",
        commander=manager,
        actor=agent,
        now=T0 + 45 * MIN,
        from_case=cases[0],
    )
    linked = services.link_cases(incident, cases, actor=agent, now=T0 + 46 * MIN)
    # The case it was declared from is linked already; the other 29 now.
    assert linked.refused == [(cases[0].key, "already linked to this incident")]
    assert sorted(linked.done) == sorted(c.key for c in cases[1:])

    update_times = [T0 + (50 + 30 * i) * MIN for i in range(4)]
    for i, when in enumerate(update_times):
        outcome = services.post_update(
            incident, body=f"Update {i + 1}: engineers are on it.", public=True, actor=manager, now=when
        )
        assert outcome.refused == []
        assert len(outcome.done) == 30
    services.post_update(
        incident, body="Root cause is the payment proxy.", public=False, actor=manager, now=T0 + 200 * MIN
    )

    for case in cases:
        replies = OutboundMessage.objects.filter(case_id=case.pk).order_by("created_at", "id")
        bodies = [m.body for m in replies]
        # Each update exactly once, to this case's requester, in this case's thread.
        assert bodies == [f"Update {i + 1}: engineers are on it." for i in range(4)]
        assert {tuple(m.to) for m in replies} == {(case.requester.email,)}
        assert {m.headers["X-SupportDesk-Case"] for m in replies} == {case.key}
        first, *later = replies
        assert all(m.in_reply_to == previous.message_id for previous, m in zip(replies, later, strict=False))
        assert first.message_id
        # The internal update is on no case.
        assert not CaseEvent.objects.filter(case=case, body__contains="payment proxy").exists()
        # Each update met that case's update-cadence clock (the first late: the cases waited 50
        # minutes for it) and started the next run.
        cadence = SlaClock.objects.filter(case=case, target=Target.UPDATE_CADENCE).order_by("run")
        assert [c.met_at for c in cadence if c.met_at] == update_times
        assert [c.state for c in cadence][1:-1] == [ClockState.MET] * 3
        assert cadence.last().state == ClockState.RUNNING
        assert cadence.last().started_at == update_times[-1]

    closed_early = cases[5]
    case_services.transition(closed_early, Status.RESOLVED, actor=agent, now=T0 + 210 * MIN)
    done = services.resolve(
        incident, actor=manager, now=T0 + 240 * MIN, closing_message="Fixed: checkout works again."
    )
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.RESOLVED
    assert incident.resolved_at == T0 + 240 * MIN
    # The one resolved already gets the closing message but is not resolved again.
    assert sorted(done.done) == sorted(c.key for c in cases if c.pk != closed_early.pk)
    assert done.refused == []
    for case in cases:
        case.refresh_from_db()
        assert case.status == Status.RESOLVED
        assert (
            OutboundMessage.objects.filter(case_id=case.pk, body="Fixed: checkout works again.").count() == 1
        )


@pytest.mark.django_db
def test_cases_that_cannot_take_the_change_are_listed_with_the_reason(agent, organisation, contact):
    working = case_services.create_case(
        title="Checkout down",
        organisation=organisation,
        requester=contact,
        severity="P1",
        assignee=agent,
        actor=agent,
        now=T0,
    )
    working = case_services.transition(working, Status.TRIAGED, severity="P1", actor=agent, now=T0 + MIN)
    fresh = case_services.create_case(
        title="Cannot pay", organisation=organisation, requester=contact, severity="P1", actor=agent, now=T0
    )
    closed = factories.CaseFactory(organisation=organisation, requester=contact, status=Status.CLOSED)
    incident = services.declare(
        title="Payments", severity="P1", commander=agent, actor=agent, now=T0 + 2 * MIN
    )
    linked = services.link_cases(incident, [working, fresh, closed], actor=agent, now=T0 + 2 * MIN)
    assert linked.done == [working.key, fresh.key]
    assert linked.refused[0][0] == closed.key
    assert "closed" in linked.refused[0][1]
    # Linking is on each case's own timeline.
    event = CaseEvent.objects.get(case=working, kind=EventKind.FIELD_CHANGED, field="major_incident")
    assert event.new_value == incident.key

    other = services.declare(
        title="Also payments", severity="P1", commander=agent, actor=agent, now=T0 + 3 * MIN
    )
    again = services.link_cases(other, [working], actor=agent, now=T0 + 3 * MIN)
    assert again.refused == [(working.key, f"already part of {incident.key}, which is still active")]

    # A linked case that was closed since (resolved, then closed by the system) cannot take the
    # closing message: it is listed with the reason; every other case is resolved.
    fresh = case_services.transition(fresh, Status.RESOLVED, actor=agent, now=T0 + 4 * MIN)
    case_services.transition(fresh, Status.CLOSED, actor=None, now=T0 + 5 * MIN)
    outcome = services.resolve(incident, actor=agent, now=T0 + 10 * MIN, closing_message="Fixed.")
    assert outcome.done == [working.key]
    assert [key for key, _ in outcome.refused] == [fresh.key]
    assert "closed" in outcome.refused[0][1]
    working.refresh_from_db()
    assert working.status == Status.RESOLVED


@pytest.mark.django_db
def test_an_update_is_posted_once_per_case_and_a_resolved_incident_takes_no_more(
    agent, organisation, contact
):
    case = case_services.create_case(
        title="Down",
        organisation=organisation,
        requester=contact,
        severity="P1",
        assignee=agent,
        actor=agent,
        now=T0,
    )
    incident = services.declare(
        title="Outage", severity="P1", commander=agent, actor=agent, now=T0, from_case=case
    )
    outcome = services.post_update(incident, body="Looking into it.", public=True, actor=agent, now=T0 + MIN)
    assert UpdateDelivery.objects.filter(update=outcome.update, case=case).count() == 1
    with pytest.raises(DomainError, match="cannot be empty"):
        services.post_update(incident, body="  ", public=True, actor=agent, now=T0 + MIN)
    services.resolve(incident, actor=agent, now=T0 + 2 * MIN, resolve_cases=False)
    with pytest.raises(DomainError, match="is resolved"):
        services.post_update(incident, body="More", public=True, actor=agent, now=T0 + 3 * MIN)
    case.refresh_from_db()
    assert case.status == Status.NEW  # resolve_cases=False leaves the cases as they are


@pytest.mark.django_db
def test_the_commander_must_be_support_staff(agent, engineer):
    with pytest.raises(DomainError, match="commander"):
        services.declare(title="Outage", severity="P1", commander=engineer, actor=agent, now=T0)
    with pytest.raises(DomainError, match="title"):
        services.declare(title="   ", severity="P1", commander=agent, actor=agent, now=T0)
