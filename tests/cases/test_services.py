"""The case lifecycle, timeline and concurrency rules, through the services."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.core import mail
from django.db import connection

from cases import lifecycle, services
from cases.models import Case, CaseEvent, EventKind, Status
from supportdesk.core.errors import Conflict, DomainError
from tests import factories
from tests.outbox import deliver_mail

ALL = [s.value for s in Status]
LEGAL = {
    ("new", "triaged"),
    ("new", "resolved"),
    ("triaged", "in_progress"),
    ("triaged", "resolved"),
    ("in_progress", "waiting_on_customer"),
    ("in_progress", "waiting_on_engineering"),
    ("in_progress", "resolved"),
    ("waiting_on_customer", "in_progress"),
    ("waiting_on_customer", "resolved"),
    ("waiting_on_engineering", "in_progress"),
    ("waiting_on_engineering", "resolved"),
    ("resolved", "reopened"),
    ("reopened", "in_progress"),
    ("reopened", "resolved"),
}
SYSTEM_LEGAL = {("resolved", "closed")}


def _case_in(status: str, *, agent, now) -> Case:
    case = factories.CaseFactory(status=status, severity="P2", severity_confirmed=True, assignee=agent)
    case.created_at = case.updated_at = now - dt.timedelta(hours=1)
    case.save()
    return case


@pytest.mark.parametrize(("current", "to"), list(itertools.product(ALL, ALL)))
def test_every_transition_is_allowed_or_refused_as_the_lifecycle_says(current, to, agent, now):
    case = _case_in(current, agent=agent, now=now)
    if (current, to) in LEGAL:
        services.transition(case, to, actor=agent, now=now)
        case.refresh_from_db()
        assert case.status == to
        event = case.events.get(kind=EventKind.STATUS_CHANGED)
        assert (event.old_value, event.new_value, event.actor) == (current, to, agent)
    else:
        with pytest.raises(lifecycle.IllegalTransition):
            services.transition(case, to, actor=agent, now=now)
        case.refresh_from_db()
        assert case.status == current
        assert not case.events.exists()


@pytest.mark.parametrize(("current", "to"), sorted(SYSTEM_LEGAL))
def test_only_the_system_closes_a_resolved_case(current, to, agent, now):
    case = _case_in(current, agent=agent, now=now)
    with pytest.raises(lifecycle.IllegalTransition, match="automatically"):
        services.transition(case, to, actor=agent, now=now)
    services.transition(case, to, actor=None, now=now)
    case.refresh_from_db()
    assert case.status == Status.CLOSED
    assert case.closed_at == now
    assert case.events.get().actor_name == "system"


def test_created_case_has_a_created_event_with_its_fields(new_case, agent):
    event = new_case.events.get()
    assert event.kind == EventKind.CREATED
    assert event.actor == agent
    assert event.new_value["severity"] == "P2"
    assert event.new_value["status"] == "new"
    assert new_case.key == f"CASE-{new_case.pk}"


def test_requester_must_belong_to_the_organisation(organisation, agent, now):
    stranger = factories.ContactFactory()
    with pytest.raises(DomainError, match="requester"):
        services.create_case(title="x", organisation=organisation, requester=stranger, actor=agent, now=now)
    assert not Case.objects.exists()


def test_triage_needs_a_confirmed_severity(new_case, agent, now):
    services.update_case(new_case, actor=agent, now=now, assignee=agent)
    with pytest.raises(lifecycle.IllegalTransition, match="severity"):
        services.transition(new_case, "triaged", actor=agent, now=now)
    services.transition(new_case, "triaged", actor=agent, now=now, severity="P2")
    new_case.refresh_from_db()
    assert new_case.status == "triaged"
    assert new_case.severity_confirmed
    assert new_case.triaged_at == now


def test_triage_needs_an_owner_and_changes_nothing_when_refused(new_case, agent, now):
    with pytest.raises(lifecycle.IllegalTransition, match="owner"):
        services.transition(new_case, "triaged", actor=agent, now=now, severity="P1")
    new_case.refresh_from_db()
    assert (new_case.status, new_case.severity, new_case.severity_confirmed) == ("new", "P2", False)
    assert list(new_case.events.values_list("kind", flat=True)) == ["created"]


def test_triage_with_a_team_as_owner_records_each_change(new_case, agent, team, now):
    services.transition(new_case, "triaged", actor=agent, now=now, severity="P1", team=team)
    kinds = list(new_case.events.values_list("kind", flat=True))
    assert kinds == ["created", "severity_changed", "team_changed", "status_changed"]


def test_resolution_timestamps_and_reopen_count(new_case, agent, now):
    step = dt.timedelta(hours=1)
    services.transition(new_case, "resolved", actor=agent, now=now + step)
    services.transition(new_case, "reopened", actor=agent, now=now + 2 * step)
    services.transition(new_case, "in_progress", actor=agent, now=now + 3 * step)
    services.transition(new_case, "resolved", actor=agent, now=now + 4 * step)
    services.transition(new_case, "reopened", actor=agent, now=now + 5 * step)
    new_case.refresh_from_db()
    assert new_case.first_resolved_at == now + step
    assert new_case.last_resolved_at == now + 4 * step
    assert new_case.reopen_count == 2
    assert new_case.events.filter(kind=EventKind.REOPENED).count() == 2


def test_field_changes_record_one_event_each_and_bump_the_version(new_case, agent, team, now):
    version = new_case.version
    services.update_case(
        new_case,
        actor=agent,
        now=now,
        severity="P1",
        assignee=agent,
        team=team,
        tags=["sso", "Login Loop"],
        title="Checkout fails with 502 in EU",
        product_area="billing",
    )
    new_case.refresh_from_db()
    events = {e.kind: e for e in new_case.events.exclude(kind="created")}
    assert events["severity_changed"].old_value == "P2"
    assert events["severity_changed"].new_value == "P1"
    assert events["assignee_changed"].new_value == "alice"
    assert events["team_changed"].new_value == "tier-2"
    assert events["tags_changed"].new_value == ["login-loop", "sso"]
    assert new_case.events.filter(kind="field_changed").count() == 2
    assert new_case.version == version + 1
    # Saving the same values again changes nothing and records nothing.
    count = new_case.events.count()
    services.update_case(new_case, actor=agent, now=now, severity="P1", tags=["sso", "login-loop"])
    assert new_case.events.count() == count


def test_a_stale_version_is_a_conflict_and_loses_nothing(new_case, agent, other_agent, now):
    loaded_by_alice = new_case.version
    services.update_case(
        new_case, actor=other_agent, now=now, expected_version=loaded_by_alice, severity="P1"
    )
    with pytest.raises(Conflict):
        services.update_case(new_case, actor=agent, now=now, expected_version=loaded_by_alice, severity="P4")
    with pytest.raises(Conflict):
        services.transition(new_case, "resolved", actor=agent, now=now, expected_version=loaded_by_alice)
    new_case.refresh_from_db()
    assert (new_case.severity, new_case.status) == ("P1", "new")


def test_an_agent_cannot_take_a_case_from_another_agent_but_a_manager_can(
    new_case, agent, other_agent, manager, now
):
    services.update_case(new_case, actor=other_agent, now=now, assignee=other_agent)
    with pytest.raises(DomainError, match="manager"):
        services.update_case(new_case, actor=agent, now=now, assignee=agent)
    services.update_case(new_case, actor=manager, now=now, assignee=agent)
    new_case.refresh_from_db()
    assert new_case.assignee == agent


def test_cases_can_only_be_assigned_to_support_staff(new_case, agent, engineer, now):
    with pytest.raises(DomainError, match="not a support agent"):
        services.update_case(new_case, actor=agent, now=now, assignee=engineer)


def test_public_reply_is_emailed_to_the_requester_after_commit(
    new_case, agent, now, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.add_internal_note(
            new_case, body="Customer is on the legacy plan; DO NOT MENTION", actor=agent, now=now
        )
        assert mail.outbox == []
        services.add_public_reply(new_case, body="We are looking into it.", actor=agent, now=now)
        assert mail.outbox == []  # nothing leaves before the transaction commits
    assert mail.outbox == []  # written to the outbox: a worker sends it
    assert deliver_mail() == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["carla@acme.example"]
    assert new_case.key in message.subject
    assert "We are looking into it." in message.body
    assert "DO NOT MENTION" not in message.body
    new_case.refresh_from_db()
    assert new_case.first_response_at == now


def test_first_response_time_is_the_first_public_reply_only(new_case, agent, now):
    services.add_internal_note(new_case, body="note", actor=agent, now=now)
    new_case.refresh_from_db()
    assert new_case.first_response_at is None
    services.add_public_reply(new_case, body="one", actor=agent, now=now + dt.timedelta(minutes=5))
    services.add_public_reply(new_case, body="two", actor=agent, now=now + dt.timedelta(minutes=9))
    new_case.refresh_from_db()
    assert new_case.first_response_at == now + dt.timedelta(minutes=5)


def test_empty_replies_and_notes_are_refused(new_case, agent, now):
    with pytest.raises(DomainError):
        services.add_public_reply(new_case, body="   ", actor=agent, now=now)
    with pytest.raises(DomainError):
        services.add_internal_note(new_case, body="", actor=agent, now=now)
    assert new_case.events.count() == 1


def test_timeline_events_can_be_neither_changed_nor_deleted(new_case):
    event = new_case.events.get()
    event.body = "rewritten history"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        CaseEvent.objects.filter(pk=event.pk).update(body="x")
    with pytest.raises(TypeError):
        CaseEvent.objects.filter(pk=event.pk).delete()


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the database trigger exists on PostgreSQL only"
)
def test_the_database_refuses_to_rewrite_the_timeline(new_case):
    from django.db import DatabaseError, transaction

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE cases_caseevent SET body = 'x' WHERE case_id = %s", [new_case.pk])


def test_auto_close_closes_only_cases_resolved_long_enough_and_twice_is_harmless(agent, now, settings):
    settings.CASES_AUTO_CLOSE_DAYS = 7
    old = _case_in("resolved", agent=agent, now=now)
    Case.objects.filter(pk=old.pk).update(last_resolved_at=now - dt.timedelta(days=8))
    recent = _case_in("resolved", agent=agent, now=now)
    Case.objects.filter(pk=recent.pk).update(last_resolved_at=now - dt.timedelta(days=6))

    assert services.auto_close_resolved(now=now) == 1
    assert services.auto_close_resolved(now=now) == 0

    old.refresh_from_db()
    recent.refresh_from_db()
    assert (old.status, old.closed_at) == ("closed", now)
    assert recent.status == "resolved"
    assert old.events.filter(kind="status_changed", new_value="closed").count() == 1


def test_auto_close_task_closes_everything_due(agent, now, settings):
    from cases.tasks import auto_close_resolved

    for _ in range(3):
        case = _case_in("resolved", agent=agent, now=now)
        Case.objects.filter(pk=case.pk).update(last_resolved_at=now - dt.timedelta(days=30))
    assert auto_close_resolved() == 3
    assert auto_close_resolved() == 0
