"""The demo-data and bulk-generation management commands."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError

from cases import lifecycle
from cases.models import Case, CaseEvent, Contact, EventKind, Organisation, Severity, Status, Tag, Team
from supportdesk.core.models import OutboundMessage, StaffProfile
from supportdesk.core.roles import Role, roles_of
from tests.outbox import deliver_mail

# A Wednesday afternoon: the demo month then spans weekends, and nothing depends on the real clock.
NOW = dt.datetime(2026, 3, 11, 14, 30, tzinfo=dt.UTC)
DEMO_CASES = 40


def _load_demo(**kwargs) -> str:
    out = StringIO()
    call_command("load_demo_data", cases=DEMO_CASES, stdout=out, **kwargs)
    return out.getvalue()


def _snapshot() -> dict[str, object]:
    return {
        "users": get_user_model().objects.count(),
        "passwords": sorted(get_user_model().objects.values_list("username", "password")),
        "profiles": StaffProfile.objects.count(),
        "teams": Team.objects.count(),
        "organisations": Organisation.objects.count(),
        "contacts": Contact.objects.count(),
        "tags": Tag.objects.count(),
        "cases": sorted(Case.objects.values_list("id", "status", "version", "updated_at")),
        "events": CaseEvent.objects.count(),
    }


def assert_consistent_timeline(case: Case, *, now: dt.datetime) -> int:
    """The case row is exactly what its timeline says, and the timeline obeys the lifecycle.

    Returns the number of status transitions.
    """
    events = list(case.events.order_by("created_at", "id"))
    assert events[0].kind == EventKind.CREATED
    assert events[0].created_at == case.created_at
    assert [e.kind for e in events].count(EventKind.CREATED) == 1
    assert all(e.created_at <= now for e in events)
    status, transitions, reopens = Status.NEW, 0, 0
    for event in events:
        if event.kind == EventKind.STATUS_CHANGED:
            assert event.old_value == status
            lifecycle.check_transition(status, event.new_value, system=event.actor_id is None)
            status = event.new_value
            transitions += 1
        elif event.kind == EventKind.REOPENED:
            reopens += 1
    assert case.status == status
    assert case.reopen_count == reopens
    assert case.updated_at == events[-1].created_at
    public = [e.created_at for e in events if e.kind == EventKind.PUBLIC_REPLY]
    assert case.first_response_at == (public[0] if public else None)
    if case.status in (Status.RESOLVED, Status.CLOSED):
        assert case.first_resolved_at >= case.created_at
        assert case.last_resolved_at >= case.first_resolved_at
    if case.status == Status.CLOSED:
        assert case.closed_at >= case.last_resolved_at
    if case.triaged_at is not None:
        assert case.triaged_at >= case.created_at
        assert case.severity_confirmed
    return transitions


# --- load_demo_data ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_load_demo_data_twice_changes_nothing_the_second_time(django_capture_on_commit_callbacks):
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        first = _load_demo()
    before = _snapshot()
    with (
        time_machine.travel(NOW + dt.timedelta(days=1), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        second = _load_demo()

    assert _snapshot() == before
    assert callbacks == []
    assert len(before["cases"]) == DEMO_CASES
    assert "Loaded" in first
    assert "already loaded" in second


@pytest.mark.django_db
def test_demo_data_covers_every_status_and_severity_with_a_believable_timeline(
    django_capture_on_commit_callbacks,
):
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        _load_demo()

    cases = list(Case.objects.all())
    assert {c.status for c in cases} == set(Status.values)
    assert {c.severity for c in cases} == set(Severity.values)
    assert any(c.reopen_count > 0 for c in cases)
    kinds = set(CaseEvent.objects.values_list("kind", flat=True))
    assert {
        EventKind.PUBLIC_REPLY,
        EventKind.INTERNAL_NOTE,
        EventKind.REOPENED,
        EventKind.ASSIGNEE_CHANGED,
    } <= kinds
    assert CaseEvent.objects.filter(kind=EventKind.INTERNAL_NOTE, is_public=True).count() == 0
    # A month of activity, nothing in the future, case keys in creation order.
    assert min(c.created_at for c in cases) >= NOW - dt.timedelta(days=31)
    by_key = sorted(cases, key=lambda c: c.pk)
    assert [c.created_at for c in by_key] == sorted(c.created_at for c in cases)
    for case in cases:
        assert_consistent_timeline(case, now=NOW)
    # Closed cases were closed by the system, a week after their last resolution.
    for case in (c for c in cases if c.status == Status.CLOSED):
        assert case.closed_at - case.last_resolved_at >= dt.timedelta(days=7)
        assert case.events.get(kind=EventKind.STATUS_CHANGED, new_value=Status.CLOSED).actor_name == "system"


@pytest.mark.django_db
def test_demo_load_sends_no_email_to_demo_contacts(django_capture_on_commit_callbacks):
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        _load_demo()

    assert CaseEvent.objects.filter(kind=EventKind.PUBLIC_REPLY).exists()
    assert not OutboundMessage.objects.exists()  # nothing left in the outbox for a worker to send
    assert deliver_mail() == 0
    assert mail.outbox == []


DEMO_ROLES = {
    "agent": ({Role.AGENT}, False),
    "agent2": ({Role.AGENT}, False),
    "manager": ({Role.MANAGER, Role.AGENT}, False),
    "engineer": ({Role.ENGINEER}, False),
    "admin": ({Role.ADMIN, Role.MANAGER, Role.AGENT}, True),
}


@pytest.mark.django_db
def test_demo_users_log_in_with_their_documented_password_and_hold_their_role(
    client, django_capture_on_commit_callbacks
):
    with time_machine.travel(NOW, tick=False), django_capture_on_commit_callbacks(execute=True):
        output = _load_demo()

    for username, (roles, is_superuser) in DEMO_ROLES.items():
        # The printed logins are the real ones.
        assert re.search(rf"^\s*{username}\s+/\s+{username}\s", output, re.MULTILINE)
        # Through the login page, as a person does (the lockout backend needs the request).
        logged_in = client.post("/login/", {"username": username, "password": username})
        assert logged_in.status_code == 302, username
        client.logout()
        refused = client.post("/login/", {"username": username, "password": f"{username}-wrong"})
        assert refused.status_code == 200
        assert "_auth_user_id" not in client.session
        user = get_user_model().objects.get(username=username)
        assert set(roles_of(user)) == roles, username
        assert user.is_superuser is is_superuser
        assert user.is_staff is is_superuser
        assert user.first_name
        assert user.last_name


@pytest.mark.django_db
def test_load_demo_data_refuses_too_few_cases_to_cover_every_status():
    with pytest.raises(CommandError, match="at least 8"):
        call_command("load_demo_data", cases=3, stdout=StringIO())
    assert not Organisation.objects.exists()


# --- generate_cases ---------------------------------------------------------------------------


def _generate(**kwargs) -> str:
    out = StringIO()
    options = {"count": 200, "batch": 64, "seed": 3, "organisations": 20, "agents": 6}
    call_command("generate_cases", stdout=out, **{**options, **kwargs})
    return out.getvalue()


@pytest.mark.django_db
def test_generate_cases_creates_consistent_cases_and_timelines():
    with time_machine.travel(NOW, tick=False):
        output = _generate()

    cases = list(Case.objects.all())
    assert len(cases) == 200
    assert "Generated 200 cases" in output
    for case in cases:
        transitions = assert_consistent_timeline(case, now=NOW)
        # The services bump the version once per transition; generated rows match.
        assert case.version == 1 + transitions
        assert case.requester.organisation_id == case.organisation_id
    resolved = [c for c in cases if c.first_resolved_at is not None]
    assert resolved
    assert all(c.first_resolved_at >= c.created_at for c in resolved)
    # Still "resolved" only while the auto-close has not run (a week plus one sweep interval).
    for case in (c for c in cases if c.status == Status.RESOLVED):
        assert NOW - case.last_resolved_at <= dt.timedelta(days=7, minutes=15)
    # Two years of history: most cases are long closed, some are open, severities all present.
    statuses = {c.status for c in cases}
    assert Status.CLOSED in statuses
    assert {c.severity for c in cases} >= {Severity.P2, Severity.P3, Severity.P4}
    assert min(c.created_at for c in cases) < NOW - dt.timedelta(days=180)
    # Assignees are support staff, so the queue's assignee filter can find them.
    assignee_ids = {c.assignee_id for c in cases if c.assignee_id}
    for user in get_user_model().objects.filter(pk__in=assignee_ids):
        assert Role.AGENT in roles_of(user)


@pytest.mark.django_db
def test_generate_cases_reuses_its_pools_when_run_again():
    _generate(count=30)
    pools = (Organisation.objects.count(), Contact.objects.count(), Team.objects.count(), Tag.objects.count())
    users = get_user_model().objects.count()

    _generate(count=30, seed=4)

    assert Case.objects.count() == 60
    assert (
        Organisation.objects.count(),
        Contact.objects.count(),
        Team.objects.count(),
        Tag.objects.count(),
    ) == pools
    assert get_user_model().objects.count() == users


@pytest.mark.django_db
def test_generate_cases_events_per_case_adds_conversation():
    _generate(count=100, seed=7, events_per_case=4)
    lean = CaseEvent.objects.count() / 100
    _generate(count=100, seed=7, events_per_case=12)
    rich = (CaseEvent.objects.count() - lean * 100) / 100

    assert rich > lean + 3


@pytest.mark.django_db
def test_generate_cases_rejects_a_non_positive_count():
    with pytest.raises(CommandError):
        _generate(count=0)
    assert not Case.objects.exists()
