"""The sweep: each warning and breach recorded and notified once, at a cost that follows what is due."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cases import services as case_services
from sla import services, tasks
from sla.models import ClockState, SlaClock, Target
from supportdesk.core import outbox
from supportdesk.core.models import Notification, OutboundMessage
from tests import factories
from tests.factories import at

T0 = at(2026, 3, 4, 10, 0)
MIN = dt.timedelta(minutes=1)


def _case(organisation, contact, agent, *, severity="P2", assignee="agent", team=None, now=T0):
    return case_services.create_case(
        title=f"Trouble {severity}",
        organisation=organisation,
        requester=contact,
        severity=severity,
        assignee=agent if assignee == "agent" else assignee,
        team=team,
        actor=agent,
        now=now,
    )


def _backlog(organisation, contact, *, cases: int, due_at: dt.datetime) -> None:
    """``cases`` open cases with four running clocks each, none due before ``due_at``."""
    rows = factories.CaseFactory.create_batch(
        cases, organisation=organisation, requester=contact, created_at=T0
    )
    SlaClock.objects.bulk_create(
        SlaClock(
            case=case,
            target=target,
            target_minutes=60,
            business_time=False,
            warning_ratio=0.75,
            started_at=T0,
            warn_at=due_at,
            due_at=due_at,
        )
        for case in rows
        for target in Target.values
    )


def test_with_nothing_due_the_sweep_is_two_indexed_queries_whatever_the_backlog(
    organisation, contact, django_assert_num_queries
):
    _backlog(organisation, contact, cases=60, due_at=T0 + 24 * 60 * MIN)
    assert SlaClock.objects.filter(state=ClockState.RUNNING).count() == 240
    with django_assert_num_queries(2):  # one range query for breaches, one for warnings
        assert services.record_due_warnings_and_breaches(now=T0 + 60 * MIN) == 0


def test_the_sweeps_cost_follows_the_clocks_due_not_the_backlog(organisation, contact, agent, manager):
    def queries_to_sweep(due_cases: int, backlog: int) -> int:
        SlaClock.objects.all().delete()
        _backlog(organisation, contact, cases=backlog, due_at=T0 + 24 * 60 * MIN)
        for _ in range(due_cases):
            _case(organisation, contact, agent, now=T0)
        with CaptureQueriesContext(connection) as ctx:
            # Enterprise P2 (24x7): first response due at +60 min, warned at +45.
            recorded = services.record_due_warnings_and_breaches(now=T0 + 50 * MIN)
        assert recorded == due_cases
        return len(ctx.captured_queries)

    small, bigger_backlog = queries_to_sweep(3, backlog=5), queries_to_sweep(3, backlog=60)
    assert small == bigger_backlog
    per_clock = queries_to_sweep(4, backlog=5) - small
    # Per warning: the claim and the timeline event (notifications are one INSERT per batch).
    assert per_clock == 2
    assert queries_to_sweep(6, backlog=5) - small == 3 * per_clock


def test_a_second_sweep_records_nothing(organisation, contact, agent):
    case = _case(organisation, contact, agent)
    assert services.record_due_warnings_and_breaches(now=T0 + 46 * MIN) == 1
    assert services.record_due_warnings_and_breaches(now=T0 + 46 * MIN) == 0
    assert services.record_due_warnings_and_breaches(now=T0 + 59 * MIN) == 0
    assert case.events.filter(kind="sla_warning").count() == 1


def test_a_warning_first_seen_after_its_due_is_recorded_once_late_and_folded_into_the_breach(
    organisation, contact, agent, manager, time_machine
):
    case = _case(organisation, contact, agent)  # Enterprise P2: first response warned +45, due +60
    fr = SlaClock.objects.get(case=case, target=Target.FIRST_RESPONSE)
    # No sweep ran from before the warning point until after the due instant (the broker was down).
    time_machine.move_to(T0 + 70 * MIN, tick=False)
    assert tasks.sweep() == 1  # one claim: the breach, carrying its late warning
    fr.refresh_from_db()
    assert (fr.state, fr.warned_at, fr.breached_at) == (ClockState.BREACHED, T0 + 70 * MIN, T0 + 70 * MIN)
    events = list(case.events.filter(kind__startswith="sla_").order_by("created_at", "id"))
    assert [(e.kind, e.new_value.get("late")) for e in events] == [
        ("sla_warning", True),
        ("sla_breached", None),
    ]
    assert "Recorded late, with the breach" in events[0].body
    # One notification per person, the breach's, which says the warning came too late.
    notes = Notification.objects.filter(title__startswith=f"{case.key} ")
    assert sorted(notes.values_list("recipient__username", "dedupe_key")) == [
        ("alice", f"sla:{fr.pk}:breach"),
        ("maria", f"sla:{fr.pk}:breach"),
    ]
    assert all("The warning was not sent in time" in note.body for note in notes)
    mails = OutboundMessage.objects.filter(case_id=case.pk)
    assert list(mails.values_list("dedupe_key", flat=True)) == [f"sla:{fr.pk}:breach"]
    assert "The warning was not sent in time" in mails.get().body

    # A second worker (or a duplicated beat) sweeping now, or later, adds nothing.
    assert tasks.sweep() == 0
    time_machine.move_to(T0 + 80 * MIN, tick=False)
    assert services.record_due_warnings_and_breaches(now=T0 + 80 * MIN) == 0
    assert case.events.filter(kind__startswith="sla_").count() == 2
    assert notes.count() == 2
    assert mails.count() == 1


def test_a_warning_recorded_in_time_is_not_recorded_again_by_the_breach(
    organisation, contact, agent, manager
):
    case = _case(organisation, contact, agent)
    assert services.record_due_warnings_and_breaches(now=T0 + 46 * MIN) == 1
    assert services.record_due_warnings_and_breaches(now=T0 + 61 * MIN) == 1
    fr = SlaClock.objects.get(case=case, target=Target.FIRST_RESPONSE)
    assert (fr.warned_at, fr.breached_at) == (T0 + 46 * MIN, T0 + 61 * MIN)
    kinds = (
        case.events.filter(kind__startswith="sla_")
        .order_by("created_at", "id")
        .values_list("kind", "new_value")
    )
    assert [(kind, new.get("late")) for kind, new in kinds] == [("sla_warning", None), ("sla_breached", None)]
    breach_notes = Notification.objects.filter(dedupe_key=f"sla:{fr.pk}:breach")
    assert breach_notes.count() == 2
    assert not any("The warning was not sent in time" in note.body for note in breach_notes)


def test_after_an_outage_one_sweep_catches_up_on_everything_in_batches(organisation, contact, agent):
    cases = [_case(organisation, contact, agent, now=T0 + i * MIN) for i in range(5)]
    # A day later every target of every case is past due: 5 cases x 4 targets.
    recorded = services.record_due_warnings_and_breaches(now=T0 + 25 * 60 * MIN, batch_size=3)
    assert recorded == 20
    assert SlaClock.objects.filter(state=ClockState.BREACHED).count() == 20
    for case in cases:
        events = case.events.filter(kind__in=services.SLA_EVENT_KINDS).order_by("created_at", "id")
        kinds = sorted(events.values_list("kind", flat=True))
        # Every warning was missed by the outage: each is recorded late, just before its breach.
        assert kinds == ["cadence_missed", "cadence_reminder"] + ["sla_breached"] * 3 + ["sla_warning"] * 3
        ordered = list(events.values_list("kind", "new_value"))
        for (warning, marks), (breach, _) in zip(ordered[::2], ordered[1::2], strict=True):
            assert marks["late"] is True
            assert (warning, breach) in {
                ("sla_warning", "sla_breached"),
                ("cadence_reminder", "cadence_missed"),
            }
    assert services.record_due_warnings_and_breaches(now=T0 + 25 * 60 * MIN) == 0


def test_a_clock_claimed_by_another_process_is_not_recorded_again(organisation, contact, agent, monkeypatch):
    case = _case(organisation, contact, agent)
    stale = list(
        SlaClock.objects.filter(case=case, target=Target.FIRST_RESPONSE).values_list("id", "case_id")
    )
    # Another worker recorded the breach between our candidates query and our claim.
    SlaClock.objects.filter(case=case, target=Target.FIRST_RESPONSE).update(
        state=ClockState.BREACHED, breached_at=T0 + 61 * MIN
    )

    class StaleCandidates:
        def values_list(self, *fields):
            return stale

    monkeypatch.setattr(services, "due_clocks", lambda **kwargs: StaleCandidates())
    assert services.record_due_warnings_and_breaches(now=T0 + 61 * MIN) == 0
    assert not case.events.filter(kind="sla_breached").exists()
    assert not Notification.objects.exists()


def test_paused_met_and_cancelled_clocks_are_never_swept(organisation, contact, agent):
    case = _case(organisation, contact, agent)
    case_services.add_public_reply(case, body="Hi", actor=agent, now=T0 + MIN)  # first response met
    case = case_services.transition(case, "triaged", severity="P2", actor=agent, now=T0 + 2 * MIN)
    case = case_services.transition(case, "in_progress", actor=agent, now=T0 + 2 * MIN)
    case_services.transition(case, "waiting_on_customer", actor=agent, now=T0 + 3 * MIN)  # paused
    assert services.record_due_warnings_and_breaches(now=T0 + 30 * 24 * 60 * MIN) == 0


def test_the_assignee_and_for_p1_p2_the_managers_are_notified(
    organisation, contact, agent, other_agent, manager
):
    p3 = _case(organisation, contact, agent, severity="P3", now=T0)
    p1 = _case(organisation, contact, other_agent, severity="P1", assignee=other_agent, now=T0)
    # Enterprise P1: first response 15 min (24x7); P3: 4 business hours, far later.
    services.record_due_warnings_and_breaches(now=T0 + 16 * MIN)
    p1_breach = Notification.objects.filter(dedupe_key__endswith=":breach")
    assert sorted(p1_breach.values_list("recipient__username", flat=True)) == ["bob", "maria"]
    note = p1_breach.get(recipient=other_agent)
    assert note.title == f"{p1.key} P1: First response breached"
    assert note.url == f"/cases/{p1.key}/"
    assert "15 min 24x7" in note.body
    assert not Notification.objects.filter(recipient=agent).exists()
    # P3 (business hours from Wednesday 10:00 UTC): the manager is not told.
    services.record_due_warnings_and_breaches(now=T0 + 5 * 60 * MIN)
    p3_notes = Notification.objects.filter(title__startswith=f"{p3.key} ")
    assert set(p3_notes.values_list("recipient__username", flat=True)) == {"alice"}


def test_an_unassigned_case_notifies_its_team(organisation, contact, agent, other_agent, manager):
    team = factories.TeamFactory(name="Tier 2", slug="tier-2", email="tier2@support.example")
    team.members.add(agent, other_agent)
    case = _case(organisation, contact, agent, severity="P3", assignee=None, team=team)
    services.record_due_warnings_and_breaches(now=T0 + 4 * 60 * MIN)  # P3 warning at 3 business hours
    assert sorted(
        Notification.objects.filter(title__startswith=f"{case.key} ").values_list(
            "recipient__username", flat=True
        )
    ) == ["alice", "bob"]


def test_e_mails_leave_only_after_the_recording_transaction_commits(
    organisation, contact, agent, manager, django_capture_on_commit_callbacks
):
    team = factories.TeamFactory(name="Tier 2", slug="tier-2", email="tier2@support.example")
    team.members.add(agent)
    case = _case(organisation, contact, agent, severity="P2", assignee=None, team=team)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.record_due_warnings_and_breaches(now=T0 + 50 * MIN)
    assert mail.outbox == []  # recorded, not yet committed: nothing has left
    for callback in callbacks:
        callback()
    assert mail.outbox == []  # committed to the outbox; the mail worker sends it
    assert outbox.send_due(now=T0 + 50 * MIN) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    # An unassigned case: the team's address instead of each member, plus the managers (P2).
    assert sorted(message.to) == ["maria@support.example", "tier2@support.example"]
    assert message.subject == f"[{case.key}] P2: First response at risk"
    assert f"/cases/{case.key}/" in message.body


def test_a_rolled_back_sweep_leaves_nothing_behind(
    organisation, contact, agent, django_capture_on_commit_callbacks
):
    case = _case(organisation, contact, agent)

    def killed_mid_sweep():
        with transaction.atomic():
            services.record_due_warnings_and_breaches(now=T0 + 50 * MIN)
            raise RuntimeError("worker killed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        killed_mid_sweep()
    assert not OutboundMessage.objects.exists()  # the outbox rows rolled back with the records
    assert mail.outbox == []
    assert not Notification.objects.exists()
    assert SlaClock.objects.get(case=case, target=Target.FIRST_RESPONSE).warned_at is None
    # The next sweep records it.
    assert services.record_due_warnings_and_breaches(now=T0 + 51 * MIN) == 1


def test_the_task_sweeps_at_the_current_time(organisation, contact, agent, time_machine):
    case = _case(organisation, contact, agent)
    time_machine.move_to(T0 + 61 * MIN, tick=False)
    assert tasks.sweep() == 1
    assert tasks.sweep() == 0
    assert SlaClock.objects.get(case=case, target=Target.FIRST_RESPONSE).breached_at == T0 + 61 * MIN
    assert tasks.sweep.name == "sla.sweep"
    assert tasks.sweep.acks_late is True
